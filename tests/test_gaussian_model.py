"""GaussianModel (init, activations, 3D filter, copies, checkpoints), compute_3d_filter and the demo splat scene."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from methods.gaussians import SH_C0, GaussianModel, compute_3d_filter, load_ply
from methods.gaussians.model import _knn_torch, knn_mean_sq_dist, quat_to_rotmat, rotmat_to_quat
from methods.io import CheckpointError, load_checkpoint, save_checkpoint
from render.camera import Camera


def _brute_knn(points: np.ndarray, k: int = 3) -> np.ndarray:
    """All pairwise squared distances, self excluded, k smallest averaged."""
    p = points.astype(np.float64)
    d2 = ((p[:, None, :] - p[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    return np.sort(d2, axis=1)[:, :k].mean(axis=1)


def _model(n: int = 10, seed: int = 0, degree: int = 3) -> GaussianModel:
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return GaussianModel(r(n, 3), r(n, 4), r(n, 3) - 2, r(n), r(n, 1, 3), r(n, (degree + 1) ** 2 - 1, 3),
                         filter_3d=torch.rand(n, generator=g) * 0.05)


# ----- initialisation -------------------------------------------------------------------------------------------
def test_from_points_matches_3dgs_init():
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(300, 3)).astype(np.float32)
    xyz[10] = xyz[11] = xyz[12] = xyz[13]  # a cluster of duplicates: distance 0 -> clamped at 1e-7
    rgb = rng.random((300, 3)).astype(np.float32)
    m = GaussianModel.from_points(xyz, rgb, sh_degree=3)
    want = np.log(np.sqrt(np.maximum(_brute_knn(xyz.astype(np.float64)), 1e-7)))
    np.testing.assert_allclose(m.log_scales.detach().numpy(), np.repeat(want[:, None], 3, 1), rtol=1e-5, atol=1e-5)
    assert float(m.log_scales[10, 0].detach()) == pytest.approx(math.log(math.sqrt(1e-7)), rel=1e-6)
    assert torch.equal(m.quats, torch.tensor([[1.0, 0, 0, 0]]).expand(300, 4))
    torch.testing.assert_close(m.opacities, torch.full((300,), 0.1))
    torch.testing.assert_close(m.sh_dc[:, 0], (torch.from_numpy(rgb) - 0.5) / SH_C0)
    assert m.sh_rest.shape == (300, 15, 3) and not m.sh_rest.any()
    assert m.max_sh_degree == 3 and m.active_sh_degree == 0 and m.filter_3d is None


def test_knn_backends_agree_with_brute_force():
    pts = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (257, 3)))
    pts[5] = pts[6]
    want = torch.from_numpy(_brute_knn(pts.numpy()))
    torch.testing.assert_close(knn_mean_sq_dist(pts, 3), want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(_knn_torch(pts, 3, chunk=64), want, rtol=1e-10, atol=1e-12)
    # fewer points than neighbours: use all the others
    two = torch.tensor([[0.0, 0, 0], [0, 0, 2.0]])
    assert knn_mean_sq_dist(two, 3).tolist() == [4.0, 4.0]


def test_from_points_accepts_uint8_and_rejects_bad_shapes():
    m = GaussianModel.from_points(np.eye(3) * [1, 2, 3], np.array([[255, 0, 128]] * 3, np.uint8), sh_degree=1)
    torch.testing.assert_close(m.sh_dc[0, 0], (torch.tensor([1.0, 0.0, 128 / 255]) - 0.5) / SH_C0)
    assert m.sh_rest.shape == (3, 3, 3)
    with pytest.raises(ValueError, match=r"\(N,3\)"):
        GaussianModel.from_points(np.zeros((4, 3)), np.zeros((3, 3)))


def test_random_in_box_blender_init():
    m = GaussianModel.random_in_box(2000, -1.3, 1.3, seed=7)
    assert m.num_gaussians == 2000 and len(m) == 2000
    xyz = m.means.detach()
    assert float(xyz.min()) >= -1.3 and float(xyz.max()) <= 1.3
    assert float(xyz.min()) < -1.2 and float(xyz.max()) > 1.2  # really fills the box
    dc = m.sh_dc.detach()
    assert float(dc.min()) >= 0.0 and float(dc.max()) <= 1 / 255 and float(dc.max()) > 0.9 / 255
    torch.testing.assert_close(m.opacities, torch.full((2000,), 0.1))
    same = GaussianModel.random_in_box(2000, -1.3, 1.3, seed=7)
    other = GaussianModel.random_in_box(2000, -1.3, 1.3, seed=8)
    assert torch.equal(same.means, m.means) and torch.equal(same.sh_dc, m.sh_dc)
    assert not torch.equal(other.means, m.means)
    box = GaussianModel.random_in_box(500, (0, 0, 0), (1, 2, 3), seed=0)
    assert torch.all(box.means.detach().max(0).values <= torch.tensor([1.0, 2, 3]))
    assert float(box.means.detach()[:, 2].max()) > 2.5


def test_constructor_validates_shapes():
    good = _model(4)
    p = good.params()
    with pytest.raises(ValueError, match=r"quats is \(4, 3\)"):
        GaussianModel(p["means"], p["quats"][:, :3], p["log_scales"], p["logit_opacities"], p["sh_dc"], p["sh_rest"])
    with pytest.raises(ValueError, match="filter_3d"):
        GaussianModel(*p.values(), filter_3d=torch.zeros(5))
    with pytest.raises(ValueError, match="sh_rest"):
        GaussianModel(*list(p.values())[:5], torch.zeros(4, 10, 3))


# ----- activations and the 3D filter ----------------------------------------------------------------------------
def test_activations_and_sh():
    m = _model(6)
    torch.testing.assert_close(m.scales, torch.exp(m.log_scales))
    torch.testing.assert_close(m.opacities, torch.sigmoid(m.logit_opacities))
    torch.testing.assert_close(m.rotations.norm(dim=1), torch.ones(6))
    sh = m.sh()
    assert sh.shape == (6, 16, 3) and torch.equal(sh[:, :1], m.sh_dc) and torch.equal(sh[:, 1:], m.sh_rest)


def test_effective_applies_3d_filter_formula():
    m = GaussianModel(torch.zeros(1, 3), torch.tensor([[1.0, 0, 0, 0]]), torch.log(torch.tensor([[0.1, 0.2, 0.4]])),
                      torch.tensor([0.0]), torch.zeros(1, 1, 3), torch.zeros(1, 0, 3), filter_3d=torch.tensor([0.3]))
    s, o = m.effective(use_3d_filter=True)
    want_s = [math.sqrt(x * x + 0.09) for x in (0.1, 0.2, 0.4)]
    want_o = 0.5 * math.sqrt((0.01 * 0.04 * 0.16) / ((0.01 + 0.09) * (0.04 + 0.09) * (0.16 + 0.09)))
    torch.testing.assert_close(s[0], torch.tensor(want_s))
    assert float(o[0].detach()) == pytest.approx(want_o, rel=1e-6)
    s0, o0 = m.effective(use_3d_filter=False)
    torch.testing.assert_close(s0, m.scales)
    torch.testing.assert_close(o0, m.opacities)
    m.filter_3d = None  # a plain 3DGS model renders unfiltered even when the filter is requested
    s1, o1 = m.effective(use_3d_filter=True)
    torch.testing.assert_close(s1, m.scales)
    torch.testing.assert_close(o1, m.opacities)


def test_effective_is_differentiable():
    m = _model(5)
    s, o = m.effective(True)
    (s.sum() + o.sum()).backward()
    assert m.log_scales.grad is not None and m.logit_opacities.grad is not None
    assert m.log_scales.grad.abs().sum() > 0


def _cameras() -> list[Camera]:
    return [
        Camera.look_at((3, 0, 0.5), (0, 0, 0), width=64, height=48, fov_x=math.radians(60)),
        Camera.look_at((0, -2, 0), (0, 0, 0), width=80, height=80, fov_x=math.radians(30)),  # the largest fx
        Camera.look_at((0, 0, 4), (0, 0.5, 0), width=32, height=64, fov_x=math.radians(90)),
    ]


def _brute_filter(xyz: np.ndarray, cams: list[Camera]) -> np.ndarray:
    f = max(c.fx for c in cams)
    depth = []
    for p in xyz:
        best = None
        for c in cams:
            x, y, z = c.world_to_cam[:3, :3] @ p + c.world_to_cam[:3, 3]
            if z <= 0.2:
                continue
            u, v = x / z * c.fx + c.width / 2, y / z * c.fy + c.height / 2
            if -0.15 * c.width <= u <= 1.15 * c.width and -0.15 * c.height <= v <= 1.15 * c.height:
                best = z if best is None else min(best, z)
        depth.append(best)
    dmax = max(d for d in depth if d is not None)
    return np.array([(dmax if d is None else d) / f * math.sqrt(0.2) for d in depth])


def test_3d_filter_matches_brute_force():
    rng = np.random.default_rng(3)
    xyz = rng.uniform(-2.5, 2.5, (400, 3))
    xyz[0] = [0, 0, 0]            # seen by all
    xyz[1] = [100, 100, -100]     # seen by none -> max depth among seen
    xyz[2] = [2.9, 0, 0.5]        # 0.1 in front of camera 0: fails z > 0.2 there
    got = compute_3d_filter(torch.from_numpy(xyz).float(), _cameras())
    want = _brute_filter(xyz.astype(np.float32).astype(np.float64), _cameras())
    assert got.dtype == torch.float32 and got.shape == (400,)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)
    assert float(got[1]) == pytest.approx(float(want.max()), rel=1e-6)
    # the test exercises both branches: some points are unseen, and depths vary
    assert len(np.unique(np.round(want, 8))) > 50


def test_3d_filter_errors():
    with pytest.raises(ValueError, match="at least one camera"):
        compute_3d_filter(torch.zeros(3, 3), [])
    with pytest.raises(ValueError, match="no Gaussian"):
        compute_3d_filter(torch.tensor([[0.0, 0.0, -50.0]]), _cameras()[:1])
    assert compute_3d_filter(torch.zeros(0, 3), _cameras()).shape == (0,)


# ----- copies and checkpoints -----------------------------------------------------------------------------------
def test_clone_and_subset():
    m = _model(8)
    c = m.clone()
    with torch.no_grad():
        c.means.add_(1.0)
        c.filter_3d.add_(1.0)
    assert not torch.equal(c.means, m.means) and not torch.equal(c.filter_3d, m.filter_3d)
    mask = torch.tensor([True, False, True, False, False, False, False, True])
    s = m.subset(mask)
    assert s.num_gaussians == 3 and torch.equal(s.means, m.means[mask]) and torch.equal(s.sh_rest, m.sh_rest[mask])
    assert torch.equal(s.filter_3d, m.filter_3d[mask])
    idx = m.subset(torch.tensor([7, 0]))
    assert torch.equal(idx.quats, m.quats[[7, 0]])
    assert isinstance(s.means, torch.nn.Parameter) and s.means.requires_grad
    with pytest.raises(ValueError, match="mask"):
        m.subset(torch.ones(3, dtype=torch.bool))


def test_payload_round_trip_through_checkpoint(tmp_path):
    m = _model(12, degree=2)
    m.active_sh_degree = 1
    path = save_checkpoint(tmp_path / "g.ckpt", m.to_payload(), kind="gaussians", version=1)
    back = GaussianModel.from_payload(load_checkpoint(path, kind="gaussians"))
    assert back.max_sh_degree == 2 and back.active_sh_degree == 1
    for name, p in m.params().items():
        assert torch.equal(getattr(back, name), p.detach()), name
    assert torch.equal(back.filter_3d, m.filter_3d)
    bad = m.to_payload()
    del bad["quats"]
    with pytest.raises(CheckpointError, match="missing quats"):
        GaussianModel.from_payload(bad)
    bad = m.to_payload()
    bad["means"] = bad["means"][:3]
    with pytest.raises(CheckpointError, match="disagree on the number of Gaussians.*means 3, quats 12"):
        GaussianModel.from_payload(bad)


def test_quaternion_matrix_round_trip():
    q = torch.nn.functional.normalize(torch.randn(200, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    R = quat_to_rotmat(q)
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(200, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(200), atol=1e-5, rtol=0)
    q2 = rotmat_to_quat(R).float()
    torch.testing.assert_close(q2, q * torch.sign(q[:, :1]), atol=1e-5, rtol=0)  # same rotation, w ≥ 0
    # the rotation takes the x axis to R[:, :, 0]: a known case, 90° about z maps x -> y
    rz = quat_to_rotmat(torch.tensor([[math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)]]))
    torch.testing.assert_close(rz[0] @ torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1, 0]), atol=1e-6, rtol=0)


# ----- rendering and the demo scene -----------------------------------------------------------------------------
def _rasterizer_or_skip():
    splat = pytest.importorskip("render.splat")
    if not hasattr(splat, "rasterize_camera"):
        pytest.skip("render.splat.rasterize_camera not available yet")
    return splat


def test_render_passes_effective_parameters():
    splat = _rasterizer_or_skip()
    m = GaussianModel.from_points(np.array([[0.0, 0, 0], [0.2, 0, 0], [0, 0.2, 0], [0, 0, 0.2]]),
                                  np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]), sh_degree=1)
    m.filter_3d = torch.full((4,), 0.05)
    cam = Camera.look_at((0, -2, 0), (0, 0, 0), width=32, height=32)
    with torch.no_grad():
        out = m.render(cam, filter="mip", use_3d_filter=True, background=(0.0, 0.0, 0.0))
        s, o = m.effective(True)
        ref = splat.rasterize_camera(m.means, m.rotations, s, o, m.sh(), camera=cam, sh_degree=0, filter="mip")
        unfiltered = m.render(cam, use_3d_filter=False)
    assert out.color.shape == (32, 32, 3)
    torch.testing.assert_close(out.color, ref.color)
    assert float(out.alpha.max()) > 0.05                      # something is drawn
    assert float((out.color - unfiltered.color).abs().max()) > 1e-3  # and the filter changes it
    with pytest.raises(ValueError, match="sh_degree"):
        m.render(cam, sh_degree=2)


def test_demo_scene_is_deterministic_and_loads():
    from methods.gaussians.demo import demo_cameras, demo_model, demo_ply_path

    path = demo_ply_path()
    assert path.name == "scene.ply" and path.exists()
    m = load_ply(path)
    assert 3000 <= m.num_gaussians <= 6000 and m.max_sh_degree == 3 and m.filter_3d is not None
    again = demo_model()
    for name, p in again.params().items():
        assert torch.equal(getattr(m, name), p.detach()), name
    torch.testing.assert_close(m.filter_3d, compute_3d_filter(m.means, demo_cameras()))
    # flat surface splats: the thinnest axis is an order of magnitude below the others
    s = m.scales.detach().sort(dim=1).values
    assert bool((s[:, 0] * 5 < s[:, 1]).all())
    r = m.means.detach().norm(dim=1)
    assert float(r.max()) < 1.3 and float(r.min()) > 0.4


def test_display_copies_follow_the_compute_device_and_the_models_edits(monkeypatch):
    """The Splat view renders a CPU-loaded model on the compute device (so "auto" can pick the CUDA kernels): one
    copy per model, reused while its parameters are unchanged, remade after an in-place edit. Here the compute
    device is torch's 'meta' device, standing in for CUDA."""
    import gc

    from methods.gaussians import live_source
    from methods.gaussians.demo import demo_model

    model = demo_model()
    copies = live_source.DisplayCopies(keep=2)
    assert copies.get(model) is model  # already on the compute device (CPU here): no copy
    monkeypatch.setattr(live_source, "compute_device", lambda: torch.device("meta"))
    first = copies.get(model)
    assert first.device.type == "meta" and first.num_gaussians == model.num_gaussians
    assert copies.get(model) is first
    with torch.no_grad():
        model.logit_opacities.sub_(1.0)  # an in-place edit bumps the version: the next frame gets a fresh copy
    second = copies.get(model)
    assert second is not first
    model.set_params({"means": model.means.detach() + 1.0})  # a replaced tensor (version 0 again) is seen too
    third = copies.get(model)
    assert third is not second
    others = [demo_model() for _ in range(3)]
    for m in others:
        copies.get(m)
    assert len(copies._copies) <= 2  # bounded
    del others, m
    gc.collect()
    copies.get(model)
    assert all(entry[0]() is not None for entry in copies._copies.values())  # dead models' copies go first
