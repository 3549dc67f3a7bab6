"""The CUDA rasterizer's shared math (cuda/splat_math.cuh) checked on the CPU against the torch reference, and the
compile gate for cuda/*.cu — the parts of the CUDA backend that a machine without a GPU can verify.

The header is built with g++ into a small library (cuda/cpu_shim.cpp, loaded with ctypes): the same inline
functions the kernels call, so a sign, an index or a clamp that differs from the reference fails here.
"""
from __future__ import annotations

import ctypes
import math
import shutil
import subprocess

import numpy as np
import pytest
import torch

from render.camera import Camera, look_at_world_to_cam
from render.splat.cuda_build import CUDA_DIR, CameraStruct, CompilerMissing, camera_struct, compile_ptx, sources
from render.splat.projection import FILTERS, covariance3d, project_gaussians
from render.splat.sh import sh_to_rgb

F = ctypes.POINTER(ctypes.c_float)
I = ctypes.POINTER(ctypes.c_int)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("no g++ to build cuda/cpu_shim.cpp")
    so = tmp_path_factory.mktemp("cudamath") / "libsplatmath.so"
    proc = subprocess.run([gxx, "-O2", "-shared", "-fPIC", "-Wall", "-Werror", "-std=c++17",
                           str(CUDA_DIR / "cpu_shim.cpp"), "-o", str(so)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lib = ctypes.CDLL(str(so))
    assert lib.camera_size() == ctypes.sizeof(CameraStruct)  # the struct layouts agree
    return lib


def ptr(a: np.ndarray, kind=F):
    return a.ctypes.data_as(kind)


def c_camera(cam: Camera, filt: str) -> CameraStruct:
    f = FILTERS[filt]
    return camera_struct(cam.world_to_cam, cam.K, cam.width, cam.height, dilation=f.dilation, compensate=f.compensate)


def scene(cam: Camera, n: int, seed: int):
    rng = np.random.default_rng(seed)
    pc = np.column_stack([rng.uniform(-0.8, 0.8, n), rng.uniform(-0.7, 0.7, n), rng.uniform(-0.5, 4.0, n)])
    pc[:, :2] *= np.abs(pc[:, 2:3]) + 0.1  # across and beyond the frustum, some behind the camera or near plane
    c2w = cam.cam_to_world
    means = (pc @ c2w[:3, :3].T + c2w[:3, 3]).astype(np.float32)
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    scales = np.exp(rng.uniform(np.log(0.003), np.log(0.4), (n, 3))).astype(np.float32)
    opac = rng.uniform(0.01, 0.99, n).astype(np.float32)
    return means, quats, scales, opac


def camera() -> Camera:
    w2c = look_at_world_to_cam([0.7, -2.5, 1.1], [0.05, 0.1, 0.0])
    return Camera(fx=90.0, fy=96.0, cx=61.0, cy=37.0, width=120, height=80, world_to_cam=w2c)


def test_covariance_matches_the_reference(lib):
    cam = camera()
    _, quats, scales, _ = scene(cam, 500, 0)
    out = np.zeros((500, 6), np.float32)
    lib.covariance3d_batch(500, ptr(quats), ptr(scales), ptr(out))
    ref = covariance3d(torch.from_numpy(quats), torch.from_numpy(scales)).numpy()
    ref6 = ref[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]]
    np.testing.assert_allclose(out, ref6, rtol=1e-5, atol=1e-8 * np.abs(ref6).max())


@pytest.mark.parametrize("filt", ["3dgs", "mip", "none"])
def test_projection_matches_the_reference(lib, filt):
    cam = camera()
    n = 3000
    means, quats, scales, opac = scene(cam, n, 1)
    cov = covariance3d(torch.from_numpy(quats), torch.from_numpy(scales))
    cov6 = np.ascontiguousarray(cov.numpy()[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]])
    out_f, out_i = np.zeros((n, 10), np.float32), np.zeros((n, 5), np.int32)
    ccam = c_camera(cam, filt)
    lib.project_batch(n, ptr(means), ptr(cov6), ptr(opac), ctypes.byref(ccam), ptr(out_f), ptr(out_i, I))
    vm = torch.tensor(np.asarray(cam.world_to_cam), dtype=torch.float32)
    K = torch.tensor(np.asarray(cam.K), dtype=torch.float32)
    ref = project_gaussians(torch.from_numpy(means), torch.from_numpy(quats), torch.from_numpy(scales),
                            torch.from_numpy(opac), vm, K, cam.width, cam.height, filter=filt)
    radii = ref.radii.numpy()
    vis = radii > 0
    assert 200 < vis.sum() < n - 200  # culled by the near plane, off screen, and drawn ones all occur
    assert (ref.depths.numpy() <= 0.2).sum() > 100
    # radius and tiles are integers from ceil/floor of float32 values: equal everywhere but the odd rounding tie
    assert (out_i[:, 0] == radii).mean() > 0.999
    same = out_i[:, 0] == radii
    np.testing.assert_array_equal(out_i[same & vis, 1:3], ref.tile_min.numpy()[same & vis])
    np.testing.assert_array_equal(out_i[same & vis, 3:5], ref.tile_max.numpy()[same & vis])
    np.testing.assert_allclose(out_f[:, 2], ref.depths.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out_f[vis, 0:2], ref.means2d.numpy()[vis], rtol=1e-5, atol=1e-3)
    cov2 = ref.cov2d.numpy()[vis]
    np.testing.assert_allclose(out_f[vis, 6:9], cov2, rtol=0, atol=1e-5 * np.abs(cov2).max())

    def kappa(c: np.ndarray) -> np.ndarray:  # condition number of [[a, b], [b, c]]
        mid = 0.5 * (c[:, 0] + c[:, 2])
        disc = np.sqrt(np.maximum(mid ** 2 - (c[:, 0] * c[:, 2] - c[:, 1] ** 2), 0))
        return np.maximum((mid + disc) / np.maximum(mid - disc, 1e-30), 1.0)

    # The conic inverts the 2D covariance and Mip-Splatting's compensation divides two determinants: float32
    # rounding in another order is amplified by the condition number κ, so the bound is 1e-5·κ relative
    # (κ ≤ 10 for most splats, large for needle-thin ones); the median must be at float32 rounding.
    want = ref.conics.numpy()[vis]
    err = np.abs(out_f[vis, 3:6] - want).max(axis=1) / np.abs(want).max(axis=1)
    assert np.all(err <= 1e-5 * kappa(cov2)) and np.median(err) < 1e-6
    want = ref.opacities.numpy()[vis]
    err = np.abs(out_f[vis, 9] - want) / np.maximum(want, 1e-12)
    assert np.all(err <= 1e-5 * kappa(ref.cov2d_raw.numpy()[vis])) and np.median(err) < 1e-6


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_colour_matches_the_reference(lib, degree):
    rng = np.random.default_rng(degree)
    n, k = 400, (degree + 1) ** 2
    sh = rng.normal(0, 0.5, (n, k, 3)).astype(np.float32)
    d = rng.normal(size=(n, 3))
    d = (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)
    out = np.zeros((n, 3), np.float32)
    lib.sh_batch(n, k, degree, ptr(sh), ptr(d), ptr(out))
    ref = sh_to_rgb(torch.from_numpy(sh), torch.from_numpy(d), degree).numpy()
    assert (ref == 0).any() and (ref > 0).any()  # the clamp at 0 is exercised
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_alpha_at_pixel_centres(lib):
    """power > 0 skipped, alpha capped at 0.99, alpha < 1/255 skipped — at pixel centres."""
    rng = np.random.default_rng(5)
    n = 4000
    mean = rng.uniform(0, 20, (n, 2)).astype(np.float32)
    A = rng.normal(size=(n, 2, 2))
    cov = A @ A.transpose(0, 2, 1) * 4 + np.eye(2) * 0.3
    inv = np.linalg.inv(cov)
    conic = np.stack([inv[:, 0, 0], inv[:, 0, 1], inv[:, 1, 1]], 1).astype(np.float32)
    opac = rng.uniform(0.001, 1.0, n).astype(np.float32)
    pix = (np.floor(rng.uniform(0, 20, (n, 2))) + 0.5).astype(np.float32)
    mean[:300], opac[:300] = pix[:300], rng.uniform(0.995, 1.0, 300)  # at the centre: the 0.99 cap
    out = np.zeros(n, np.float32)
    lib.alpha_batch(n, ptr(mean), ptr(conic), ptr(opac), ptr(pix), ptr(out))
    d = mean.astype(np.float64) - pix
    power = -0.5 * (conic[:, 0] * d[:, 0] ** 2 + conic[:, 2] * d[:, 1] ** 2) - conic[:, 1] * d[:, 0] * d[:, 1]
    want = np.minimum(0.99, opac * np.exp(power))
    want = np.where((power > 0) | (want < 1 / 255), 0.0, want)
    near_cut = np.abs(want - 1 / 255) < 1e-6  # float32 vs float64 may fall either side of the cut
    assert (want == 0).sum() > 100 and (want == 0.99).sum() > 10 and ((want > 0) & (want < 0.99)).sum() > 100
    np.testing.assert_allclose(out[~near_cut], want[~near_cut], rtol=2e-5, atol=1e-7)


def test_every_kernel_source_compiles_to_ptx_for_sm90():
    """The compile gate: every cuda/*.cu with the runtime's options and -Werror (nvcc) or NVRTC's log checked."""
    srcs = sources()
    assert srcs, "no cuda/*.cu"
    for src in srcs:
        try:
            ptx = compile_ptx(src)
        except CompilerMissing as e:
            pytest.skip(str(e))
        assert ".target sm_90" in ptx and ".entry" in ptx, src.name


def test_a_broken_kernel_fails_the_gate_with_the_compiler_message(tmp_path):
    bad = tmp_path / "broken.cu"
    bad.write_text('#include "splat_math.cuh"\nextern "C" __global__ void k(float* x) { x[0] = undefined_name; }\n')
    try:
        compile_ptx(bad)
    except CompilerMissing as e:
        pytest.skip(str(e))
    except RuntimeError as e:
        assert "undefined_name" in str(e) and "broken.cu" in str(e)
    else:
        raise AssertionError("a kernel with an undefined identifier compiled")


def test_radius_is_three_sigma_of_the_larger_eigenvalue(lib):
    """Closed form: an isotropic Gaussian of std s at depth z straight ahead has σ = f·s/z px, radius ⌈3·√(σ²+0.3)⌉."""
    cam = Camera(fx=100.0, fy=100.0, cx=50.0, cy=50.0, width=100, height=100, world_to_cam=np.eye(4))
    s, z = 0.05, 2.0
    means = np.array([[0.0, 0.0, z]], np.float32)
    cov6 = np.array([[s * s, 0, 0, s * s, 0, s * s]], np.float32)
    out_f, out_i = np.zeros((1, 10), np.float32), np.zeros((1, 5), np.int32)
    ccam = c_camera(cam, "3dgs")
    lib.project_batch(1, ptr(means), ptr(cov6), ptr(np.array([0.5], np.float32)), ctypes.byref(ccam), ptr(out_f),
                      ptr(out_i, I))
    sigma2 = (100.0 * s / z) ** 2 + 0.3
    assert out_i[0, 0] == math.ceil(3 * math.sqrt(sigma2))
    np.testing.assert_allclose(out_f[0, 3:6], [1 / sigma2, 0.0, 1 / sigma2], rtol=1e-5)


@pytest.mark.parametrize("filt,degree,bg", [("3dgs", 3, (0.0, 0.0, 0.0)), ("mip", 1, (1.0, 1.0, 1.0)),
                                            ("none", 0, (0.2, 0.5, 0.8))])
def test_the_kernels_data_flow_on_cpu_renders_the_reference_image(lib, filt, degree, bg):
    """render_cpu runs the forward pass as the CUDA kernels do (project, tile keys in Gaussian order, stable sort,
    tile ranges, per-tile compositing with the stop rule) with the header's functions: the image, alpha, depth and
    per-pixel count must be the torch reference's, including pixels where the stop rule fires."""
    from render.splat import rasterize_camera
    from render.splat.projection import camera_position

    cam = camera()
    n = 2500
    means, quats, scales, opac = scene(cam, n, 7)
    opac = np.sqrt(opac).astype(np.float32)  # more opaque: many pixels reach the stop rule
    k = (degree + 1) ** 2
    sh = np.random.default_rng(8).normal(0, 0.4, (n, k, 3)).astype(np.float32)
    cov = covariance3d(torch.from_numpy(quats), torch.from_numpy(scales))
    cov6 = np.ascontiguousarray(cov.numpy()[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]])
    vm = torch.tensor(np.asarray(cam.world_to_cam), dtype=torch.float32)
    campos = camera_position(vm).numpy().astype(np.float32)
    h, w = cam.height, cam.width
    color, alpha, depth = np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    count = np.zeros((h, w), np.int32)
    ccam = c_camera(cam, filt)
    lib.render_cpu(n, ptr(means), ptr(cov6), ptr(opac), ptr(sh), k, degree, ctypes.byref(ccam), ptr(campos),
                   ptr(np.asarray(bg, np.float32)), ptr(color), ptr(alpha), ptr(depth), ptr(count, I))
    ref = rasterize_camera(torch.from_numpy(means), torch.from_numpy(quats), torch.from_numpy(scales),
                           torch.from_numpy(opac), torch.from_numpy(sh), cam, filter=filt, sh_degree=degree,
                           background=bg, backend="torch")
    assert float((1 - ref.alpha).min()) < 2e-4  # the stop rule fired somewhere
    np.testing.assert_allclose(color, ref.color.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(alpha, ref.alpha.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(depth, ref.depth.numpy(), rtol=0, atol=1e-5 * float(ref.depth.abs().max()))
    assert (count == ref.n_contrib.numpy()).mean() > 0.999  # equal but for a rounding tie at the 1/255 or 1e-4 cut


def test_compositing_backward_matches_autograd_through_the_reference(lib):
    """The per-pixel backward (reverse pass over each pixel's composited splats, then the α rule's derivatives) gives
    the gradients torch autograd takes through the reference compositor, for colour, alpha and depth losses, with
    the stop rule firing."""
    from render.splat.torch_ref import bin_gaussians, composite

    cam = camera()
    n = 1200
    means, quats, scales, opac = scene(cam, n, 11)
    vm = torch.tensor(np.asarray(cam.world_to_cam), dtype=torch.float32)
    K = torch.tensor(np.asarray(cam.K), dtype=torch.float32)
    with torch.no_grad():
        p = project_gaussians(torch.from_numpy(means), torch.from_numpy(quats), torch.from_numpy(scales),
                              torch.from_numpy(np.sqrt(opac)), vm, K, cam.width, cam.height, filter="mip")
    rng = np.random.default_rng(12)
    leaves = {"mean2d": p.means2d.clone(), "conic": p.conics.clone(), "opacity": p.opacities.clone(),
              "rgb": torch.from_numpy(rng.uniform(0, 1, (n, 3)).astype(np.float32)), "z": p.depths.clone()}
    for t in leaves.values():
        t.requires_grad_(True)
    bg = torch.tensor([0.3, 0.6, 0.9])
    color, alpha, depth, _ = composite(leaves["mean2d"], leaves["conic"], leaves["opacity"], leaves["rgb"],
                                       leaves["z"], p.radii, p.tile_min, p.tile_max, cam.width, cam.height, bg)
    assert float((1 - alpha.detach()).min()) < 2e-4  # the stop rule fired
    h, w = cam.height, cam.width
    g_color = torch.from_numpy(rng.normal(size=(h, w, 3)).astype(np.float32))
    g_depth = torch.from_numpy(rng.normal(size=(h, w)).astype(np.float32)) * 0.1
    g_alpha = torch.from_numpy(rng.normal(size=(h, w)).astype(np.float32))
    ((color * g_color).sum() + (depth * g_depth).sum() + (alpha * g_alpha).sum()).backward()

    gx = (w + 15) // 16
    gauss, start, count = bin_gaussians(p.radii, p.tile_min, p.tile_max, p.depths, gx * ((h + 15) // 16), gx)
    ranges = np.stack([start.numpy(), (start + count).numpy()], 1).astype(np.int32).ravel()
    values = gauss.numpy().astype(np.uint32)
    arr = {k: np.ascontiguousarray(v.detach().numpy(), np.float32) for k, v in leaves.items()}
    out = {"mean2d": np.zeros((n, 2), np.float32), "conic": np.zeros((n, 3), np.float32),
           "opacity": np.zeros(n, np.float32), "rgb": np.zeros((n, 3), np.float32), "z": np.zeros(n, np.float32)}
    lib.composite_backward_cpu(n, ptr(arr["mean2d"]), ptr(arr["conic"]), ptr(arr["opacity"]), ptr(arr["rgb"]),
                               ptr(arr["z"]), w, h, 16, ptr(ranges, I), ptr(values, ctypes.POINTER(ctypes.c_uint)),
                               ptr(bg.numpy()), ptr(g_color.numpy()), ptr(g_depth.numpy()), ptr(g_alpha.numpy()),
                               ptr(out["mean2d"]), ptr(out["conic"]), ptr(out["opacity"]), ptr(out["rgb"]),
                               ptr(out["z"]))
    for name, got in out.items():
        want = leaves[name].grad.numpy()
        scale = np.abs(want).max()
        assert scale > 0 and np.abs(want).sum() > 0, name
        err = np.abs(got - want).max() / scale
        assert err < 1e-4, (name, err)


@pytest.mark.parametrize("filt,degree", [("3dgs", 3), ("mip", 2), ("none", 1)])
def test_projection_and_sh_backward_match_autograd_through_the_reference(lib, filt, degree):
    """dL/d(means, quaternions, scales, opacities, SH) from dL/d(means2d, conics, filtered opacities, colours): the
    header's backward against torch autograd through project_gaussians and sh_to_rgb, including splats where the
    Jacobian clamp bites and, for mip, the compensation."""
    from render.splat.projection import camera_position

    cam = camera()
    n = 1500
    means, quats, scales, opac = scene(cam, n, 21)
    rng = np.random.default_rng(22)
    k = (degree + 1) ** 2
    sh = rng.normal(0, 0.4, (n, k, 3)).astype(np.float32)
    leaves = [torch.tensor(a, requires_grad=True) for a in (means, quats, scales, opac, sh)]
    vm = torch.tensor(np.asarray(cam.world_to_cam), dtype=torch.float32)
    K = torch.tensor(np.asarray(cam.K), dtype=torch.float32)
    p = project_gaussians(*leaves[:4], vm, K, cam.width, cam.height, filter=filt)
    campos = camera_position(vm)
    dirs = leaves[0] - campos
    rgb = sh_to_rgb(leaves[4], dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12), degree)
    vis = (p.radii > 0).float()
    g = {"m2d": rng.normal(size=(n, 2)), "conic": rng.normal(size=(n, 3)) * 100, "op": rng.normal(size=n),
         "rgb": rng.normal(size=(n, 3))}
    g = {key: torch.tensor(v, dtype=torch.float32) for key, v in g.items()}
    loss = ((p.means2d * g["m2d"]).sum(-1) + (p.conics * g["conic"]).sum(-1) + p.opacities * g["op"]
            + (rgb * g["rgb"]).sum(-1)) * vis
    loss.sum().backward()

    ccam = c_camera(cam, filt)
    pc = means @ np.asarray(cam.world_to_cam)[:3, :3].T + np.asarray(cam.world_to_cam)[:3, 3]
    r = pc[:, 0] / pc[:, 2]
    clamped = ((r > ccam.lim[0]) | (r < -ccam.lim[1])) & (p.radii.numpy() > 0)
    assert clamped.sum() > 5  # drawn splats whose Jacobian is clamped: the constant-coordinate branch is exercised
    outs = [np.zeros_like(means), np.zeros_like(quats), np.zeros_like(scales), np.zeros_like(opac), np.zeros_like(sh)]
    garr = {key: np.ascontiguousarray((v * vis[:, None] if v.ndim == 2 else v * vis).numpy()) for key, v in g.items()}
    radii = np.ascontiguousarray(p.radii.numpy().astype(np.int32))
    lib.project_backward_batch(n, ptr(means), ptr(quats), ptr(scales), ptr(opac), ptr(sh), k, degree,
                               ctypes.byref(ccam), ptr(campos.detach().numpy().astype(np.float32)), ptr(radii, I),
                               ptr(garr["m2d"]), ptr(garr["conic"]), ptr(garr["op"]), ptr(garr["rgb"]),
                               *[ptr(o) for o in outs])
    for name, got, leaf in zip(("means", "quats", "scales", "opacities", "sh"), outs, leaves):
        want = leaf.grad.numpy()
        err = np.abs(got - want).max() / np.abs(want).max()
        assert np.abs(want).max() > 0 and err < 1e-4, (name, err)


def test_the_first_use_self_check_accepts_the_reference_and_names_what_differs():
    """The CUDA backend's first-use self-check (render/splat/cuda_backend.py) is a comparison of two backends; here
    it runs on the CPU with the torch reference as both sides, and with candidates that break one output each."""
    import dataclasses

    from render.splat.cuda_backend import compare_backends
    from render.splat.torch_ref import rasterize_torch

    cpu = torch.device("cpu")
    assert compare_backends(rasterize_torch, rasterize_torch, cpu) is None

    def brighter(*a, **kw):
        out = rasterize_torch(*a, **kw)
        return dataclasses.replace(out, color=out.color + 1e-3)

    def scaled_opacity_grad(means, quats, scales, opacities, *rest, **kw):
        bent = opacities + 0.01 * (opacities - opacities.detach())  # same value, gradient x1.01
        return rasterize_torch(means, quats, scales, bent, *rest, **kw)

    assert "color max |diff| 0.001" in compare_backends(brighter, rasterize_torch, cpu)
    assert "opacities gradient off by 0.01" in compare_backends(scaled_opacity_grad, rasterize_torch, cpu)
