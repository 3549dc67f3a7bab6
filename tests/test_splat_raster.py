"""The pure-torch splat rasterizer against closed forms and an independent per-pixel brute force (numpy, float64).

The brute force is written from the 3DGS rules in the research notes, not from render/splat, so a shared mistake
would have to be made twice. It is slow on purpose: one Python loop per pixel over a depth-sorted list.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from render.camera import Camera, look_at_world_to_cam
from render.splat import FILTERS, project_gaussians, rasterize, rasterize_camera
from render.splat.sh import SH_C0, SH_C1, sh_basis

W, H = 32, 24


# ----------------------------------------------------------------------------------------------------------------
# Independent numpy reference
# ----------------------------------------------------------------------------------------------------------------
def np_rotmat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z]])


def np_project(cam: Camera, mean, quat, scale, opacity, filt: str, near: float = 0.2, tile: int = 16):
    """One Gaussian: (uv, z, filtered cov 2x2, opacity', radius, tile rect) or None when culled."""
    R, t = cam.world_to_cam[:3, :3], cam.world_to_cam[:3, 3]
    p = R @ np.asarray(mean, float) + t
    if p[2] <= near:
        return None
    lim_x = 1.3 * (0.5 * cam.width / cam.fx)
    lim_y = 1.3 * (0.5 * cam.height / cam.fy)
    tx = np.clip(p[0] / p[2], -lim_x, lim_x) * p[2]
    ty = np.clip(p[1] / p[2], -lim_y, lim_y) * p[2]
    J = np.array([[cam.fx / p[2], 0, -cam.fx * tx / p[2] ** 2], [0, cam.fy / p[2], -cam.fy * ty / p[2] ** 2]])
    M = np_rotmat(np.asarray(quat, float)) @ np.diag(scale)
    cov = J @ R @ (M @ M.T) @ R.T @ J.T
    k = {"3dgs": 0.3, "mip": 0.1, "none": 0.0}[filt]
    covf = cov + k * np.eye(2)
    o = opacity
    if filt == "mip":
        d0, d1 = np.linalg.det(cov), np.linalg.det(covf)
        o = 0.0 if min(d0, d1) <= 1e-6 else opacity * math.sqrt(d0 / (d1 + 1e-6) + 1e-6)
    det = np.linalg.det(covf)
    if det <= 0:
        return None
    mid = 0.5 * (covf[0, 0] + covf[1, 1])
    r = math.ceil(3 * math.sqrt(mid + math.sqrt(max(0.1, mid * mid - det))))
    uv = np.array([cam.fx * p[0] / p[2] + cam.cx, cam.fy * p[1] / p[2] + cam.cy])
    gx, gy = math.ceil(cam.width / tile), math.ceil(cam.height / tile)
    x0, x1 = (min(max(math.floor((uv[0] - r) / tile), 0), gx), min(max(math.ceil((uv[0] + r) / tile), 0), gx))
    y0, y1 = (min(max(math.floor((uv[1] - r) / tile), 0), gy), min(max(math.ceil((uv[1] + r) / tile), 0), gy))
    if r == 0 or x1 <= x0 or y1 <= y0:
        return None
    return dict(uv=uv, z=p[2], cov=covf, cov_raw=cov, o=o, r=r, rect=(x0, x1, y0, y1))


def brute_force(cam: Camera, means, quats, scales, opac, rgb, filt: str, bg=(0.0, 0.0, 0.0), tile: int = 16):
    """Per-pixel loop over the Gaussians whose tile rectangle holds the pixel, sorted front to back."""
    projs = [np_project(cam, means[i], quats[i], scales[i], opac[i], filt) for i in range(len(means))]
    color = np.zeros((cam.height, cam.width, 3))
    alpha = np.zeros((cam.height, cam.width))
    depth = np.zeros((cam.height, cam.width))
    count = np.zeros((cam.height, cam.width), dtype=np.int64)
    stopped = np.zeros((cam.height, cam.width), dtype=bool)
    for i in range(cam.height):
        for j in range(cam.width):
            tx, ty = j // tile, i // tile
            here = [(g["z"], gi) for gi, g in enumerate(projs)
                    if g is not None and g["rect"][0] <= tx < g["rect"][1] and g["rect"][2] <= ty < g["rect"][3]]
            T, C, D, n = 1.0, np.zeros(3), 0.0, 0
            for _, gi in sorted(here):
                g = projs[gi]
                d = g["uv"] - np.array([j + 0.5, i + 0.5])
                power = -0.5 * d @ np.linalg.inv(g["cov"]) @ d
                if power > 0:
                    continue
                a = min(0.99, g["o"] * math.exp(power))
                if a < 1 / 255:
                    continue
                if T * (1 - a) < 1e-4:
                    stopped[i, j] = True
                    break
                C += a * T * rgb[gi]
                D += a * T * g["z"]
                T *= 1 - a
                n += 1
            color[i, j] = C + T * np.asarray(bg)
            alpha[i, j], depth[i, j], count[i, j] = 1 - T, D, n
    brute_force.stopped = stopped  # for tests that must know the stop rule fired
    return color, alpha, depth, count


# ----------------------------------------------------------------------------------------------------------------
# Scenes
# ----------------------------------------------------------------------------------------------------------------
def off_axis_camera(width: int = W, height: int = H) -> Camera:
    """Non-trivial pose so transposes or sign flips in the view matrix cannot cancel."""
    w2c = look_at_world_to_cam([0.7, -2.5, 1.1], [0.05, 0.1, 0.0])
    return Camera(fx=30.0, fy=33.0, cx=width / 2, cy=height / 2, width=width, height=height, world_to_cam=w2c)


def random_scene(cam: Camera, n: int, seed: int, scale_range=(0.02, 0.25)):
    rng = np.random.default_rng(seed)
    pc = np.column_stack([rng.uniform(-0.6, 0.6, n), rng.uniform(-0.5, 0.5, n), rng.uniform(1.0, 4.0, n)])
    pc[:, :2] *= pc[:, 2:3] * 0.8  # spread across (and a little beyond) the frustum
    c2w = cam.cam_to_world
    means = pc @ c2w[:3, :3].T + c2w[:3, 3]
    quats = rng.normal(size=(n, 4))
    scales = np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]), (n, 3)))
    opac = rng.uniform(0.05, 0.98, n)
    rgb = rng.uniform(0, 1, (n, 3))
    return means, quats, scales, opac, rgb


def t64(*arrays):
    return [torch.tensor(np.asarray(a), dtype=torch.float64) for a in arrays]


# ----------------------------------------------------------------------------------------------------------------
# 1. Projection
# ----------------------------------------------------------------------------------------------------------------
def test_projection_matches_closed_form():
    cam = off_axis_camera()
    means, quats, scales, opac, _ = random_scene(cam, 6, seed=1)
    # add one far off to the side so the 1.3·tan(fov/2) clamp of the Jacobian is exercised
    c2w = cam.cam_to_world
    means = np.vstack([means, c2w[:3, :3] @ np.array([1.2, 0.2, 1.5]) + c2w[:3, 3]])
    quats, scales, opac = np.vstack([quats, [1, 0.2, 0, 0]]), np.vstack([scales, [0.5, 0.5, 0.5]]), np.append(opac, 0.5)
    proj = project_gaussians(*t64(means, quats, scales, opac, cam.world_to_cam, cam.K), W, H, filter="3dgs")
    uv, z = cam.project(means)
    np.testing.assert_allclose(proj.means2d.numpy(), uv, rtol=0, atol=1e-9)
    np.testing.assert_allclose(proj.depths.numpy(), z, rtol=0, atol=1e-12)
    for i in range(len(means)):
        ref = np_project(cam, means[i], quats[i], scales[i], opac[i], "3dgs")
        if ref is None:
            assert proj.radii[i] == 0
            continue
        a, b, c = proj.cov2d[i].numpy()
        np.testing.assert_allclose([[a, b], [b, c]], ref["cov"], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(proj.cov2d_raw[i].numpy() + [0.3, 0, 0.3], proj.cov2d[i].numpy(), atol=1e-12)
        inv = np.linalg.inv(ref["cov"])
        np.testing.assert_allclose(proj.conics[i].numpy(), [inv[0, 0], inv[0, 1], inv[1, 1]], rtol=1e-9)
        assert int(proj.radii[i]) == ref["r"]
        assert tuple(proj.tile_min[i].tolist()) == (ref["rect"][0], ref["rect"][2])
        assert tuple(proj.tile_max[i].tolist()) == (ref["rect"][1], ref["rect"][3])
    assert proj.radii[-1] > 0  # the clamped one is still drawn (its rectangle reaches the image)


def test_frustum_clamp_changes_covariance_only_beyond_the_limit():
    """The Jacobian uses x/z clamped at 1.3·tan(fov/2); the 2D mean does not."""
    cam = Camera(fx=20.0, fy=20.0, cx=16.0, cy=12.0, width=W, height=H, world_to_cam=np.eye(4))
    lim = 1.3 * 16.0 / 20.0
    z = 2.0
    means = np.array([[0.9 * lim * z, 0, z], [2.0 * lim * z, 0, z]])
    quats, scales = np.tile([1.0, 0, 0, 0], (2, 1)), np.full((2, 3), 0.3)
    proj = project_gaussians(*t64(means, quats, scales, np.full(2, 0.5), cam.world_to_cam, cam.K), W, H,
                             filter="none")
    s2 = 0.3 ** 2
    for i, tx in enumerate([0.9 * lim * z, lim * z]):  # clamped: the Jacobian sees x = lim·z
        J = np.array([[20 / z, 0, -20 * tx / z**2], [0, 20 / z, 0]])
        np.testing.assert_allclose(proj.cov2d[i].numpy()[[0, 2]], np.diag(J @ (s2 * np.eye(3)) @ J.T), rtol=1e-12)
    np.testing.assert_allclose(proj.means2d[1, 0].item(), 20 * 2.0 * lim + 16.0)


def test_frustum_clamp_gradient_follows_3dgs():
    """3DGS zeroes the gradient of a clamped x and differentiates J in z with the clamped x held fixed.

    For Σ = σ²I on the camera axes, a = σ²((f/z)² + (f·tx/z²)²); with tx = lim·z₀ frozen,
    ∂a/∂z = σ²(−2f²/z³ − 4f²tx²/z⁵) and ∂a/∂x = 0 (the true derivative of lim·z would differ).
    """
    f, z, s = 20.0, 2.0, 0.3
    cam = Camera(fx=f, fy=f, cx=16.0, cy=12.0, width=W, height=H, world_to_cam=np.eye(4))
    lim = 1.3 * 16.0 / f
    means = torch.tensor([[2.0 * lim * z, 0.0, z]], dtype=torch.float64, requires_grad=True)
    proj = project_gaussians(means, *t64([[1.0, 0, 0, 0]], [[s, s, s]], [0.5], cam.world_to_cam, cam.K), W, H,
                             filter="none")
    (grad,) = torch.autograd.grad(proj.cov2d_raw[0, 0], means)
    tx = lim * z
    np.testing.assert_allclose(grad.numpy()[0], [0.0, 0.0, s * s * (-2 * f**2 / z**3 - 4 * f**2 * tx**2 / z**5)],
                               rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# 2. A single isotropic Gaussian in closed form
# ----------------------------------------------------------------------------------------------------------------
def test_isotropic_gaussian_closed_form():
    f, z, s, o = 30.0, 3.0, 0.6, 0.8
    cam = Camera(fx=f, fy=f, cx=W / 2, cy=H / 2, width=W, height=H, world_to_cam=np.eye(4))
    bg = np.array([0.1, 0.2, 0.3])
    rgb = np.array([0.9, 0.5, 0.1])
    out = rasterize_camera(*t64([[0, 0, z]], [[2.0, 0, 0, 0]], [[s, s, s]], [o], [rgb]), cam,
                           background=tuple(bg))
    var = (f * s / z) ** 2 + 0.3  # on the optical axis J W Σ Wᵀ Jᵀ = (f s / z)² I, plus the 3DGS dilation
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    a = o * np.exp(-0.5 * ((jj - W / 2) ** 2 + (ii - H / 2) ** 2) / var)
    assert 3 * math.sqrt(var) > 16  # radius covers every tile, so every pixel is evaluated
    a = np.where(a >= 1 / 255, a, 0.0)
    np.testing.assert_allclose(out.alpha.numpy(), a, atol=1e-12)
    np.testing.assert_allclose(out.color.numpy(), a[..., None] * rgb + (1 - a[..., None]) * bg, atol=1e-12)
    np.testing.assert_allclose(out.depth.numpy(), a * z, atol=1e-12)
    assert int(out.radii[0]) == math.ceil(3 * math.sqrt(var))
    np.testing.assert_array_equal(out.n_contrib.numpy(), (a > 0).astype(np.int32))


# ----------------------------------------------------------------------------------------------------------------
# 3. Compositing vs the brute force
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("filt", ["3dgs", "mip", "none"])
@pytest.mark.parametrize("seed", [0, 1])
def test_compositing_matches_brute_force(filt, seed):
    cam = off_axis_camera()
    means, quats, scales, opac, rgb = random_scene(cam, 20, seed=seed)
    bg = (0.3, 0.6, 0.9)
    out = rasterize_camera(*t64(means, quats, scales, opac, rgb), cam, filter=filt, background=bg)
    color, alpha, depth, count = brute_force(cam, means, quats, scales, opac, rgb, filt, bg)
    assert count.max() >= 3 and alpha.max() > 0.5  # the scene really overlaps
    assert np.abs(out.color.numpy() - color).max() <= 1e-5
    assert np.abs(out.alpha.numpy() - alpha).max() <= 1e-5
    assert np.abs(out.depth.numpy() - depth).max() <= 1e-5
    np.testing.assert_array_equal(out.n_contrib.numpy(), count)


def test_transmittance_stop_and_alpha_cap_match_brute_force():
    """A stack of near-opaque splats: the 0.99 cap and the T < 1e-4 stop both trigger, in small K-blocks too."""
    cam = Camera(fx=30.0, fy=30.0, cx=W / 2, cy=H / 2, width=W, height=H, world_to_cam=np.eye(4))
    n = 12
    rng = np.random.default_rng(5)
    means = np.column_stack([rng.uniform(-0.3, 0.3, n), rng.uniform(-0.2, 0.2, n), np.linspace(1.0, 3.0, n)])
    quats, scales = rng.normal(size=(n, 4)), np.full((n, 3), 0.3) * means[:, 2:3]
    opac, rgb = np.full(n, 0.995), rng.uniform(0, 1, (n, 3))
    _, alpha, _, count = brute_force(cam, means, quats, scales, opac, rgb, "3dgs")
    assert brute_force.stopped.sum() > 50 and alpha.max() > 0.999  # the stop rule fires on many pixels
    from render.splat import torch_ref

    for chunk in (None, 256 * 3):  # default chunks, and K split into blocks of 3 with T carried over
        old = torch_ref.CHUNK_ELEMENTS
        torch_ref.CHUNK_ELEMENTS = chunk
        try:
            out = rasterize_camera(*t64(means, quats, scales, opac, rgb), cam)
        finally:
            torch_ref.CHUNK_ELEMENTS = old
        color_ref, alpha_ref, depth_ref, count_ref = brute_force(cam, means, quats, scales, opac, rgb, "3dgs")
        assert np.abs(out.color.numpy() - color_ref).max() <= 1e-9
        assert np.abs(out.alpha.numpy() - alpha_ref).max() <= 1e-9
        assert np.abs(out.depth.numpy() - depth_ref).max() <= 1e-9
        np.testing.assert_array_equal(out.n_contrib.numpy(), count_ref)


def test_float32_agrees_with_float64():
    cam = off_axis_camera()
    arrays = random_scene(cam, 20, seed=3)
    o64 = rasterize_camera(*t64(*arrays), cam)
    o32 = rasterize_camera(*[torch.as_tensor(a, dtype=torch.float32) for a in arrays], cam)
    assert o32.color.dtype == torch.float32
    assert (o32.color.double() - o64.color).abs().max() < 1e-4
    assert (o32.n_contrib != o64.n_contrib).float().mean() < 0.01  # only knife-edge α thresholds may flip


# ----------------------------------------------------------------------------------------------------------------
# 4. Gradients
# ----------------------------------------------------------------------------------------------------------------
def _smooth_scene():
    """8×8 image, 4 large overlapping splats: every α is in (1/255, 0.99) and T stays far above 1e-4."""
    cam = Camera(fx=12.0, fy=12.0, cx=4.0, cy=4.0, width=8, height=8,
                 world_to_cam=look_at_world_to_cam([0.3, -3.0, 0.4], [0, 0, 0]))
    means = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.4, -0.2], [-0.35, -0.2, 0.25], [0.1, 0.5, 0.3]],
                         dtype=torch.float64)
    quats = torch.tensor([[1.0, 0.1, -0.2, 0.3], [0.8, -0.3, 0.1, 0.2], [0.9, 0.2, 0.4, -0.1],
                          [0.7, 0.1, 0.1, 0.6]], dtype=torch.float64)
    scales = torch.tensor([[1.0, 0.8, 0.9], [0.9, 1.2, 0.7], [1.1, 0.9, 1.0], [0.8, 1.0, 1.3]], dtype=torch.float64)
    opac = torch.tensor([0.5, 0.6, 0.4, 0.55], dtype=torch.float64)
    rgb = torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.2, 0.3, 0.9], [0.6, 0.6, 0.1]], dtype=torch.float64)
    return cam, means, quats, scales, opac, rgb


@pytest.mark.parametrize("filt", ["3dgs", "mip"])
def test_gradcheck_rgb(filt):
    cam, *params = _smooth_scene()
    with torch.no_grad():
        out = rasterize_camera(*params, cam, filter=filt)
    assert (out.n_contrib == 4).all() and out.alpha.max() < 0.99  # precondition: smooth everywhere

    def f(means, quats, scales, opac, rgb):
        o = rasterize_camera(means, quats, scales, opac, rgb, cam, filter=filt, background=(0.2, 0.1, 0.4))
        return o.color, o.alpha, o.depth

    inputs = tuple(p.clone().requires_grad_(True) for p in params)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_sh_view_direction():
    cam, means, quats, scales, opac, _ = _smooth_scene()
    rng = np.random.default_rng(0)
    sh = torch.as_tensor(rng.normal(0, 0.15, (4, 9, 3)))
    sh[:, 0] += 1.0  # keeps SH + 0.5 well above the clamp at 0

    def f(means, sh):
        return rasterize_camera(means, quats, scales, opac, sh, cam).color

    assert torch.autograd.gradcheck(f, (means.clone().requires_grad_(True), sh.requires_grad_(True)),
                                    eps=1e-6, atol=1e-6, rtol=1e-4)


def test_means2d_grad_is_retained_and_matches_pixel_shift():
    """means2d.grad is dL/d(pixel mean): shifting the image by δ pixels changes L by grad·δ."""
    cam, means, quats, scales, opac, rgb = _smooth_scene()
    means = means.clone().requires_grad_(True)
    out = rasterize_camera(means, quats, scales, opac, rgb, cam)
    weights = torch.as_tensor(np.random.default_rng(1).uniform(0, 1, (8, 8, 3)))
    (out.color * weights).sum().backward()
    g = out.means2d.grad
    assert g is not None and g.shape == (4, 2) and bool((g.abs().sum(1) > 0).all())
    # reference: the same loss with only the 2D mean of Gaussian 0 moved, by central differences
    from render.splat import torch_ref
    from render.splat.projection import project_gaussians as proj_fn

    with torch.no_grad():
        p = proj_fn(means, quats, scales, opac, *t64(cam.world_to_cam, cam.K), 8, 8)

        def loss(shift):
            m2 = p.means2d.clone()
            m2[0, 0] += shift
            c, *_ = torch_ref.composite(m2, p.conics, p.opacities, rgb, p.depths, p.radii, p.tile_min,
                                        p.tile_max, 8, 8, torch.zeros(3, dtype=torch.float64))
            return (c * weights).sum()

        h = 1e-6
        fd = (loss(h) - loss(-h)) / (2 * h)
    np.testing.assert_allclose(g[0, 0].item(), fd.item(), rtol=1e-5)


@pytest.mark.parametrize("chunk,ckpt", [(256, False), (256, True), (None, True)])
def test_chunking_and_checkpointing_do_not_change_gradients(monkeypatch, chunk, ckpt):
    """K split into one-Gaussian blocks (T carried across) and checkpointed chunks give the same gradients."""
    from render.splat import torch_ref

    cam = off_axis_camera()
    arrays = t64(*random_scene(cam, 20, seed=4))
    weights = torch.as_tensor(np.random.default_rng(2).uniform(0, 1, (H, W, 3)))

    def grads():
        params = [a.clone().requires_grad_(True) for a in arrays]
        out = rasterize_camera(*params, cam, filter="mip")
        ((out.color * weights).sum() + out.depth.sum() + out.alpha.sum()).backward()
        return [out.color.detach(), out.n_contrib] + [p.grad for p in params]

    ref = grads()
    if chunk:
        monkeypatch.setattr(torch_ref, "CHUNK_ELEMENTS", chunk)
    if ckpt:
        monkeypatch.setattr(torch_ref, "CHECKPOINT_ABOVE_BYTES", 0)
    for a, b in zip(ref, grads()):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    assert ref[2].abs().sum() > 0


# ----------------------------------------------------------------------------------------------------------------
# 5. Screen filters
# ----------------------------------------------------------------------------------------------------------------
def test_filters_dilation_and_mip_compensation():
    cam = off_axis_camera()
    means, quats, scales, opac, _ = random_scene(cam, 10, seed=7, scale_range=(0.002, 0.05))
    args = t64(means, quats, scales, opac, cam.world_to_cam, cam.K)
    p = {name: project_gaussians(*args, W, H, filter=name) for name in FILTERS}
    raw = p["none"].cov2d_raw.numpy()
    np.testing.assert_array_equal(p["none"].cov2d.numpy(), raw)
    np.testing.assert_allclose(p["3dgs"].cov2d.numpy() - raw, np.tile([0.3, 0.0, 0.3], (10, 1)), atol=1e-12)
    np.testing.assert_allclose(p["mip"].cov2d.numpy() - raw, np.tile([0.1, 0.0, 0.1], (10, 1)), atol=1e-12)
    np.testing.assert_array_equal(p["3dgs"].opacities.numpy(), opac)
    np.testing.assert_array_equal(p["none"].opacities.numpy(), opac)
    a, b, c = raw.T
    det0, det1 = a * c - b * b, (a + 0.1) * (c + 0.1) - b * b
    ratio = det0 / det1
    assert ratio.min() < 0.05 and ratio.max() > 0.5  # sub-pixel and larger splats: compensation matters
    # the exact Mip-Splatting expression (research §2.2) ...
    exact = opac * np.sqrt(np.maximum(det0, 1e-6) / (np.maximum(det1, 1e-6) + 1e-6) + 1e-6)
    np.testing.assert_allclose(p["mip"].opacities.numpy(), exact, rtol=1e-12)
    # ... is the determinant ratio sqrt(det Σ / det(Σ + 0.1 I)) up to its 1e-6 guards
    np.testing.assert_allclose(p["mip"].opacities.numpy(), opac * np.sqrt(ratio), rtol=0, atol=2e-3 * opac.max())
    big = ratio > 0.05
    np.testing.assert_allclose(p["mip"].opacities.numpy()[big], (opac * np.sqrt(ratio))[big], rtol=2e-5)
    # radius comes from the filtered covariance
    for name, k in (("none", 0.0), ("3dgs", 0.3), ("mip", 0.1)):
        for i in np.nonzero(p[name].radii.numpy())[0]:
            ai, ci, bi = a[i] + k, c[i] + k, b[i]
            mid, det = 0.5 * (ai + ci), ai * ci - bi * bi
            assert p[name].radii[i] == math.ceil(3 * math.sqrt(mid + math.sqrt(max(0.1, mid * mid - det))))


def test_mip_filter_zeroes_degenerate_splat():
    """A flat disc seen exactly edge-on has det Σ₂D = 0: mip gives it zero opacity, 'none' culls it."""
    cam = Camera(fx=30.0, fy=30.0, cx=W / 2, cy=H / 2, width=W, height=H, world_to_cam=np.eye(4))
    args = t64([[0.0, 0.0, 3.0]], [[1.0, 0, 0, 0]], [[0.0, 0.3, 0.3]], [0.9], [[1.0, 1.0, 1.0]])
    mip = rasterize_camera(*args, cam, filter="mip")
    assert mip.alpha.abs().max() == 0
    none = rasterize_camera(*args, cam, filter="none")
    assert int(none.radii[0]) == 0 and none.alpha.abs().max() == 0
    assert rasterize_camera(*args, cam, filter="3dgs").alpha.max() > 0.5  # 3DGS dilation keeps a 1-px line


# ----------------------------------------------------------------------------------------------------------------
# 6. Spherical harmonics
# ----------------------------------------------------------------------------------------------------------------
def test_sh_basis_is_orthonormal():
    """∫ Yᵢ Yⱼ dω = δᵢⱼ by exact Gauss-Legendre × uniform-φ quadrature: checks constants and monomials."""
    ct, wt = np.polynomial.legendre.leggauss(10)
    phi = np.arange(24) * 2 * np.pi / 24
    st = np.sqrt(1 - ct**2)
    d = np.stack([np.outer(st, np.cos(phi)), np.outer(st, np.sin(phi)), np.outer(ct, np.ones_like(phi))], -1)
    w = np.outer(wt, np.full(24, 2 * np.pi / 24)).reshape(-1)
    Y = sh_basis(torch.as_tensor(d.reshape(-1, 3)), 3).numpy()
    np.testing.assert_allclose((Y * w[:, None]).T @ Y, np.eye(16), atol=1e-12)


def test_sh_colour_degree0_and_degree1_direction():
    f = 30.0
    cam_pos = np.array([0.2, -0.1, -2.0])
    w2c = np.eye(4)
    w2c[:3, 3] = -cam_pos  # camera at cam_pos, axes aligned with the world
    cam = Camera(fx=f, fy=f, cx=W / 2, cy=H / 2, width=W, height=H, world_to_cam=w2c)
    mean = np.array([0.5, 0.3, 1.0])
    d = (mean - cam_pos) / np.linalg.norm(mean - cam_pos)
    sh = np.zeros((1, 4, 3))
    sh[0, 0] = [0.4, -0.3, -2.5]  # the last channel goes negative and must clamp to 0
    sh[0, 1:] = [[0.2, 0.1, 0.0], [-0.1, 0.3, 0.2], [0.05, -0.2, 0.1]]
    rgb0 = np.maximum(SH_C0 * sh[0, 0] + 0.5, 0)
    rgb1 = np.maximum(SH_C0 * sh[0, 0] - SH_C1 * d[1] * sh[0, 1] + SH_C1 * d[2] * sh[0, 2]
                      - SH_C1 * d[0] * sh[0, 3] + 0.5, 0)
    assert np.abs(rgb1 - rgb0).max() > 0.05
    geo = t64([mean], [[1.0, 0, 0, 0]], [[0.3, 0.3, 0.3]], [0.7])
    for deg, rgb in ((0, rgb0), (1, rgb1)):
        got = rasterize_camera(*geo, torch.as_tensor(sh), cam, sh_degree=deg)
        want = rasterize_camera(*geo, torch.as_tensor(rgb[None]), cam)
        np.testing.assert_allclose(got.color.numpy(), want.color.numpy(), atol=1e-12)
    assert rasterize_camera(*geo, torch.as_tensor(sh), cam).color.sum() > 0  # default = full degree (1)


# ----------------------------------------------------------------------------------------------------------------
# 7. Culling, empty scenes, argument errors
# ----------------------------------------------------------------------------------------------------------------
def test_culled_gaussians_do_not_affect_the_image():
    cam = off_axis_camera()
    means, quats, scales, opac, rgb = random_scene(cam, 8, seed=11)
    c2w = cam.cam_to_world
    hidden = np.array([[0.0, 0.0, 0.1], [0.02, 0.01, 0.2], [0.5, 0.0, -1.0], [40.0, 0.0, 2.0]])  # near/behind/aside
    extra = hidden @ c2w[:3, :3].T + c2w[:3, 3]
    base = rasterize_camera(*t64(means, quats, scales, opac, rgb), cam)
    rng = np.random.default_rng(0)
    full = rasterize_camera(*t64(np.vstack([means, extra]), np.vstack([quats, rng.normal(size=(4, 4))]),
                                 np.vstack([scales, np.full((4, 3), 0.5)]), np.append(opac, [0.9] * 4),
                                 np.vstack([rgb, np.ones((4, 3))])), cam)
    assert (full.radii[-4:] == 0).all() and (full.radii[:-4] == base.radii).all()
    assert torch.equal(full.color, base.color) and torch.equal(full.n_contrib, base.n_contrib)


@pytest.mark.parametrize("n", [0, 3])
def test_empty_or_fully_culled_scene_is_background(n):
    cam = off_axis_camera()
    c2w = cam.cam_to_world
    means = np.array([[0.0, 0.0, -1.0]] * n).reshape(n, 3) @ c2w[:3, :3].T + c2w[:3, 3]
    args = t64(means, np.tile([1.0, 0, 0, 0], (n, 1)), np.full((n, 3), 0.2), np.full(n, 0.5), np.ones((n, 3)))
    args = [a.reshape(n, *s) for a, s in zip(args, [(3,), (4,), (3,), (), (3,)])]
    means_t = args[0].clone().requires_grad_(True)
    out = rasterize_camera(means_t, *args[1:], cam, background=(0.25, 0.5, 0.75))
    np.testing.assert_array_equal(out.color.detach().numpy(), np.broadcast_to([0.25, 0.5, 0.75], (H, W, 3)))
    assert out.alpha.abs().max() == 0 and out.n_contrib.max() == 0 and out.radii.shape == (n,)


def test_bad_arguments_name_the_argument():
    cam = off_axis_camera()
    good = t64(*random_scene(cam, 3, seed=0))
    with pytest.raises(ValueError, match="quats"):
        rasterize_camera(good[0], good[1][:, :3], *good[2:], cam)
    bad = good[2].clone()
    bad[1, 1] = float("nan")
    with pytest.raises(ValueError, match="scales"):
        rasterize_camera(good[0], good[1], bad, *good[3:], cam)
    with pytest.raises(ValueError, match="opacities"):
        rasterize_camera(*good[:3], good[3][:, None], good[4], cam)
    with pytest.raises(ValueError, match="colors"):
        rasterize_camera(*good[:4], torch.zeros(3, 5, 3, dtype=torch.float64), cam)  # 5 is not (d+1)²
    with pytest.raises(ValueError, match="filter"):
        rasterize_camera(*good, cam, filter="box")
    with pytest.raises(ValueError, match="viewmat"):
        rasterize(*good, torch.eye(3, dtype=torch.float64), torch.as_tensor(cam.K), W, H)


# ----------------------------------------------------------------------------------------------------------------
# 8. Tile boundaries
# ----------------------------------------------------------------------------------------------------------------
def test_gaussian_straddling_four_tiles_matches_dense_evaluation():
    f = 30.0
    cam = Camera(fx=f, fy=f, cx=16.0, cy=16.0, width=32, height=32, world_to_cam=np.eye(4))
    mean, quat, o = np.array([0.01, -0.02, 3.0]), np.array([0.9, 0.2, -0.3, 0.4]), 0.9
    scale = np.array([0.25, 0.1, 0.15])
    out = rasterize_camera(*t64([mean], [quat], [scale], [o], [[1.0, 0.5, 0.25]]), cam)
    ref = np_project(cam, mean, quat, scale, o, "3dgs")
    assert ref["rect"] == (0, 2, 0, 2)  # all four tiles
    jj, ii = np.meshgrid(np.arange(32) + 0.5, np.arange(32) + 0.5)
    d = np.stack([ref["uv"][0] - jj, ref["uv"][1] - ii], -1)
    power = -0.5 * np.einsum("...i,ij,...j->...", d, np.linalg.inv(ref["cov"]), d)
    a = np.minimum(0.99, o * np.exp(power))
    a = np.where(a >= 1 / 255, a, 0.0)
    assert (a > 0).sum() > 40 and all((a[r, c] > 0).any() for r in (slice(0, 16), slice(16, 32))
                                      for c in (slice(0, 16), slice(16, 32)))
    np.testing.assert_allclose(out.alpha.numpy(), a, atol=1e-12)
    np.testing.assert_allclose(out.color.numpy(), a[..., None] * [1.0, 0.5, 0.25], atol=1e-12)


def test_backend_dispatch_prefers_priority_and_honours_name(monkeypatch):
    """The seam a CUDA backend plugs into: highest priority accepting the device wins; backend= forces one."""
    from render.splat import api

    monkeypatch.setattr(api, "_BACKENDS", dict(api._BACKENDS))
    seen = []

    def fake(*args, **kw):
        seen.append(kw["filter"].name)
        return api._BACKENDS["torch"].fn(*args, **kw)

    api.register_backend(api.Backend("fake", lambda d: d.type == "cpu", fake, priority=5))
    cam = off_axis_camera()
    scene = t64(*random_scene(cam, 5, seed=0))
    out_fake = rasterize_camera(*scene, cam, filter="mip")
    out_torch = rasterize_camera(*scene, cam, filter="mip", backend="torch")
    assert seen == ["mip"] and torch.equal(out_fake.color, out_torch.color)
    with pytest.raises(ValueError, match="backend"):
        rasterize_camera(*scene, cam, backend="nope")
