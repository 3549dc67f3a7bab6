"""NGSSF signals and ground truth: exact blur vs closed forms, reflection semantics, Monte-Carlo convergence,
Ackley, mesh SDFs and extraction, covariance draws and picture metrics."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from methods.ngssf.covariances import CovariancePool, benchmark_covariances, random_spd
from methods.field import grid_points
from methods.ngssf.ground_truth import MonteCarloBlurField, gaussian_blur_exact, mc_sample_count, mirror_extend
from methods.ngssf.metrics import compare_images, format_table
from methods.ngssf.signals import (AckleyField, GridField, SDFField, _nearest_on, _pseudo_normals, export_mesh,
                                   extract_mesh, mesh_sdf)

trimesh = pytest.importorskip("trimesh")


def _cos_image(h: int, w: int, k: int, l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cos(πk(x+1))·cos(πl(y+1)) on the pixel centres: even about both borders, so mirror-compatible."""
    x, y = np.meshgrid(np.linspace(-1, 1, w), np.linspace(-1, 1, h))  # x along columns, y along rows
    return np.cos(np.pi * k * (x + 1)) * np.cos(np.pi * l * (y + 1)), x, y


# ------------------------------------------------------------------------------------------------- exact blur
@pytest.mark.parametrize("var", [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
def test_exact_blur_isotropic_sinusoid_closed_form(var):
    img, _, _ = _cos_image(97, 129, 3, 2)
    out = gaussian_blur_exact(img[..., None], var)[..., 0]
    f2 = (3 / 2) ** 2 + (2 / 2) ** 2  # cycles per unit: cos(πk x) has f = k/2
    assert np.abs(out - img * math.exp(-2 * math.pi**2 * var * f2)).max() < 1e-3


@pytest.mark.parametrize("cov", [[[2e-3, 1e-3], [1e-3, 1.5e-3]], [[1e-2, -4e-3], [-4e-3, 3e-3]],
                                 [[1e-2, 0.0], [0.0, 0.0]]])
def test_exact_blur_anisotropic_rotated_closed_form(cov):
    k, l = 4, 3
    img, x, y = _cos_image(65, 81, k, l)
    s = np.array(cov)
    out = gaussian_blur_exact(torch.tensor(img[..., None], dtype=torch.float64), torch.tensor(s))[..., 0].numpy()
    # cos·cos = ½[cos(θx+θy) + cos(θx−θy)]: the two plane waves are damped differently by a rotated Σ
    a_plus = math.exp(-0.5 * math.pi**2 * np.array([k, l]) @ s @ np.array([k, l]))
    a_minus = math.exp(-0.5 * math.pi**2 * np.array([k, -l]) @ s @ np.array([k, -l]))
    tx, ty = np.pi * k * (x + 1), np.pi * l * (y + 1)
    ref = 0.5 * (a_plus * np.cos(tx + ty) + a_minus * np.cos(tx - ty))
    assert abs(a_plus - a_minus) > 1e-3 or cov[0][1] == 0.0
    assert np.abs(out - ref).max() < 1e-3


def test_exact_blur_kinds_zero_and_axes():
    rng = np.random.default_rng(1)
    img = rng.uniform(-1, 1, (20, 30, 3)).astype(np.float32)
    assert np.array_equal(gaussian_blur_exact(img, 0.0), img)
    t = gaussian_blur_exact(torch.from_numpy(img), 1e-2)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape == img.shape
    # axis 0 of Σ is x (columns): blurring only x leaves every column-constant image unchanged
    rows = np.repeat(rng.uniform(-1, 1, (20, 1, 1)), 30, axis=1)
    assert np.abs(gaussian_blur_exact(rows, [[1e-1, 0], [0, 0]]) - rows).max() < 1e-9
    assert np.abs(gaussian_blur_exact(rows, [[0, 0], [0, 1e-1]]) - rows).max() > 1e-2
    # a huge variance flattens to the mean of the mirrored period
    flat = gaussian_blur_exact(img, 1e3)
    assert np.ptp(flat[..., 0]) < 1e-5


def test_exact_blur_matches_scipy_mirror_filter():
    """Independent check of the border rule: scipy's 'mirror' mode is whole-sample symmetric (d c b|a b c d|c b a)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(2)
    img = gaussian_filter(rng.uniform(-1, 1, (48, 64)), 2.0, mode="mirror")  # smooth, so sampling the kernel is fine
    sx, sy = 0.2, 0.1  # field units
    ours = gaussian_blur_exact(img, [[sx**2, 0], [0, sy**2]])
    ref = gaussian_filter(img, (sy * 47 / 2, sx * 63 / 2), mode="mirror", truncate=8.0)
    assert np.abs(ours - ref).max() < 2e-3


def test_reflection_matches_grid_sample_of_mirrored_image():
    """GridField's reflection padding == bilinear lookups in the periodic mirrored extension the FFT blur uses."""
    rng = np.random.default_rng(3)
    h, w = 9, 13
    img = rng.uniform(-1, 1, (h, w, 2)).astype(np.float32)
    field = GridField(img)
    pts = torch.rand(4000, 2) * 8 - 4  # far outside [-1, 1]: several reflections
    ext = mirror_extend(img, (0, 1))                                 # (2h−2, 2w−2) = one period
    assert ext.shape == (2 * h - 2, 2 * w - 2, 2)
    tiled = torch.from_numpy(np.tile(ext, (2, 2, 1))).permute(2, 0, 1)[None]  # two periods each way
    px = torch.remainder((pts[:, 0] + 1) * (w - 1) / 2, 2 * w - 2)  # pixel coordinate inside the first period
    py = torch.remainder((pts[:, 1] + 1) * (h - 1) / 2, 2 * h - 2)
    g = torch.stack([px / (tiled.shape[-1] - 1) * 2 - 1, py / (tiled.shape[-2] - 1) * 2 - 1], -1)
    ref = F.grid_sample(tiled, g[None, None], mode="bilinear", align_corners=True)[0, :, 0].t()
    assert torch.allclose(field(pts), ref, atol=1e-5)


def test_gridfield_smoothed_uses_exact_blur_and_caches():
    img, _, _ = _cos_image(33, 33, 2, 2)
    field = GridField(img[..., None])
    pts = grid_points((33, 33))
    out = field(pts, 1e-2).reshape(33, 33)
    assert np.abs(out.numpy() - img * math.exp(-2 * math.pi**2 * 1e-2 * 2)).max() < 1e-4
    assert len(field._cache) == 1
    field(pts, 1e-2)
    assert len(field._cache) == 1
    # per-point covariances: a few distinct ones stay exact, zero means unsmoothed
    cov = torch.where(torch.arange(len(pts)) % 2 == 0, 1e-2, 0.0)
    mixed = field(pts, cov).reshape(-1)
    assert torch.allclose(mixed[1::2], torch.from_numpy(img.reshape(-1)[1::2]).float(), atol=1e-5)
    assert torch.allclose(mixed[::2], out.reshape(-1)[::2], atol=1e-6)


# ----------------------------------------------------------------------------------------------- Monte Carlo
def test_mc_sample_count_rule():
    assert [mc_sample_count(v, 2) for v in (1e-4, 1e-3, 1e-2, 1e-1)] == [200, 2000, 20000, 20000]
    assert [mc_sample_count(v, 3) for v in (1e-4, 1e-3, 1e-2, 1e-1)] == [632, 20000, 632456, 632456]
    assert mc_sample_count(0.0, 2) == 200 and mc_sample_count(1e-12, 3) == 632
    assert mc_sample_count(torch.tensor([1e-2, 1e-4]), 2) == 2000  # anisotropic: product over eigenvalues
    assert mc_sample_count(torch.tensor([[1e-3, 1e-3], [1e-2, 1e-2]]), 2).tolist() == [2000, 20000]


@pytest.mark.parametrize("cov", [torch.tensor([[1e-2, 5e-3], [5e-3, 8e-3]]), torch.tensor([[1e-1, 0.0], [0.0, 0.0]])])
def test_mc_converges_to_exact_blur(cov):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(4)
    img = gaussian_filter(rng.uniform(-1, 1, (48, 64, 3)), 2.0, mode="mirror")
    field = GridField(img / np.abs(img).max())
    pts = grid_points((48, 64))
    exact = field(pts, cov)
    errs = [float((MonteCarloBlurField(field, samples=n, seed=7)(pts, cov) - exact).abs().mean()) for n in (250, 4000)]
    # ~1/sqrt(n): 16× the samples → ~4× less error (down to a ~0.002 floor: the exact blur treats the grid as
    # band-limited, the MC estimate blurs its bilinear interpolant)
    assert errs[0] / errs[1] > 2.5 and errs[1] < 0.005, errs


def test_mc_per_point_and_deterministic():
    field = GridField(np.linspace(-1, 1, 16 * 16).reshape(16, 16, 1))
    pts = torch.rand(50, 2) * 2 - 1
    cov = random_spd(50, 2, torch.Generator().manual_seed(0), log10_range=(-4, -2))
    mc = MonteCarloBlurField(field, samples=300, seed=3, budget=4096)
    a, b = mc(pts, cov), mc(pts, cov)
    assert torch.equal(a, b) and a.shape == (50, 1)
    # a linear ramp (away from the mirrored borders) is unchanged by any zero-mean blur
    inner = torch.rand(50, 2) * 0.6 - 0.3
    small = random_spd(50, 2, torch.Generator().manual_seed(1), log10_range=(-6, -4))
    assert torch.allclose(MonteCarloBlurField(field, samples=500)(inner, small), field(inner), atol=2e-3)


# ------------------------------------------------------------------------------------------------------ Ackley
def test_ackley_values_and_isotropy():
    f = AckleyField()
    assert abs(float(f(torch.zeros(1, 2)))) < 1e-6
    pts = torch.tensor([[0.25, -0.1], [0.5, 0.5], [-0.9, 0.3]])
    for p, v in zip(pts, f(pts)[:, 0]):
        z = 4 * p.double()
        cos_sum = float(torch.cos(2 * math.pi * z).sum())
        ref = (-20 * math.exp(-0.2 * math.sqrt(0.5 * float(z @ z))) - math.exp(0.5 * cos_sum) + math.e + 20) / 10
        assert abs(float(v) - ref) < 1e-5
    with pytest.raises(ValueError, match="isotropic only"):
        f(pts, torch.eye(2) * 1e-3)
    # smoothing a minimum raises it; the MC value is reproducible
    s1, s2 = f(torch.zeros(1, 2), 1e-2), f(torch.zeros(1, 2), 1e-2)
    assert float(s1) > 0.1 and torch.equal(s1, s2)


# ---------------------------------------------------------------------------------------------------- meshes
@pytest.fixture(scope="module")
def sphere_sdf():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.7)
    mesh.apply_translation([0.3, -0.2, 0.1])  # from_mesh must undo offset and scale
    return SDFField.from_mesh(mesh, res=40, pool_size=4096)


def test_mesh_sdf_exact_matches_brute_force():
    mesh = trimesh.creation.icosphere(subdivisions=2)
    p = np.random.default_rng(5).uniform(-1.5, 1.5, (3000, 3))
    fast = mesh_sdf(mesh, p)
    t = torch.tensor(mesh.triangles, dtype=torch.float32)
    tri_idx = torch.arange(len(t)).expand(len(p), -1)
    pn = torch.from_numpy(_pseudo_normals(mesh.vertices, mesh.faces)).float()
    dist, sgn = _nearest_on(torch.from_numpy(p).float()[:, None], tri_idx, t, pn)  # brute force: all triangles
    arg = dist.argmin(dim=1)
    brute = (dist.min(dim=1).values * sgn.gather(1, arg[:, None])[:, 0]).numpy()
    assert np.abs(fast - brute).max() < 1e-6
    r = np.linalg.norm(p, axis=1)
    assert np.abs(fast - (r - 1)).max() < 0.03  # icosphere facets vs the true sphere
    assert np.all(fast[r < 0.9] < 0) and np.all(fast[r > 1.01] > 0)
    box = trimesh.creation.box(extents=(1, 1, 1))
    assert np.allclose(mesh_sdf(box, [[0, 0, 0], [1, 0, 0], [1, 1, 0]]), [-0.5, 0.5, math.sqrt(0.5)], atol=1e-6)


def test_sdf_field_sphere(sphere_sdf):
    pts = torch.rand(3000, 3) * 2 - 1
    r = pts.norm(dim=1)
    v = sphere_sdf(pts)[:, 0]
    h = 2.4 / 39
    assert (v - (r - 1)).abs().max() < h / 2, float((v - (r - 1)).abs().max())
    assert bool((v[r < 0.8] < 0).all())
    p, d = sphere_sdf.sample_training_points(2000, torch.Generator().manual_seed(0))
    assert p.shape == (2000, 3) and d.shape == (2000, 1)
    assert (d[:, 0] - (p.norm(dim=1) - 1)).abs().max() < 0.01
    assert float((d == 0).float().mean()) > 0.25  # ~37.5% on-surface targets


def test_extract_mesh_and_smoothing_shrinks(sphere_sdf):
    mesh = extract_mesh(sphere_sdf, res=48)
    r = np.linalg.norm(mesh.vertices, axis=1)
    assert len(mesh.faces) > 500 and np.abs(r - 1).max() < 0.03
    assert mesh.volume > 0 and abs(mesh.volume - 4 / 3 * math.pi) < 0.15
    smooth = extract_mesh(sphere_sdf, res=48, cov=5e-2)
    # blurring a convex SDF raises it (Jensen), so the zero level set moves inward
    assert np.linalg.norm(smooth.vertices, axis=1).mean() < r.mean() - 0.02
    assert len(extract_mesh(sphere_sdf, res=16, cov=None).faces) > 0


def test_export_mesh_roundtrip_and_bad_suffix(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=1)
    for name in ("m.ply", "m.obj"):
        out = export_mesh(mesh, tmp_path / name)
        back = trimesh.load(str(out), force="mesh")
        assert len(back.faces) == len(mesh.faces) and np.allclose(sorted(back.area_faces), sorted(mesh.area_faces))
    with pytest.raises(ValueError, match="suffix"):
        export_mesh(mesh, tmp_path / "m.stl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.obj", "m.ply"]

    class Broken(trimesh.Trimesh):
        def export(self, file_obj=None, file_type=None, **kw):
            file_obj.write(b"partial")
            raise OSError("disk full")

    broken = Broken(vertices=mesh.vertices, faces=mesh.faces)
    with pytest.raises(OSError):
        export_mesh(broken, tmp_path / "m.ply")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.obj", "m.ply"]
    assert len(trimesh.load(str(tmp_path / "m.ply"), force="mesh").faces) == len(mesh.faces)  # old file intact
    # a mesh file path works too, and a field without a zero crossing extracts to an empty mesh
    assert SDFField.from_mesh(tmp_path / "m.obj", res=12, pool_size=64).grid.values.shape == (12, 12, 12, 1)
    assert len(extract_mesh(GridField(np.ones((4, 4, 4, 1))), res=8).faces) == 0


# ------------------------------------------------------------------------------------------------ covariances
def test_random_spd_and_pool():
    g = torch.Generator().manual_seed(0)
    s = random_spd(500, 3, g, log10_range=(-6, 1), dtype=torch.float64)
    assert torch.equal(s, s.transpose(-1, -2))
    ev = torch.linalg.eigvalsh(s)
    assert float(ev.min()) > 0.9e-6 and float(ev.max()) < 1.1e1
    pool = CovariancePool(1000, 2, seed=1)
    b = pool.sample(64, torch.Generator().manual_seed(2))
    assert b.shape == (64, 2, 2) and len(pool) == 1000
    assert torch.equal(CovariancePool(1000, 2, seed=1).pool, pool.pool)


def test_benchmark_covariances_fixed():
    a, b = benchmark_covariances(), benchmark_covariances()
    assert a.shape == (100, 2, 2) and torch.equal(a, b) and a.dtype == torch.float64
    ev = torch.linalg.eigvalsh(a)
    assert float(ev.min()) > 0.99e-4 and float(ev.max()) < 1.01e-1
    assert benchmark_covariances(dim=3).shape == (100, 3, 3)
    assert not torch.equal(benchmark_covariances(seed=1), a)


# ---------------------------------------------------------------------------------------------------- metrics
def test_compare_images():
    rng = np.random.default_rng(6)
    gt = rng.uniform(-1, 1, (64, 64, 3))
    r = compare_images(gt, gt, 1e-2)
    assert r["crop"] == math.ceil(3 * 0.1 * 64 / 2) == 10 and r["psnr"] == math.inf and r["ssim"] == pytest.approx(1.0)
    noisy = gt + rng.normal(0, 0.02, gt.shape)
    expected = 10 * math.log10(4 / 0.02**2)
    assert compare_images(noisy, gt, 0.0)["psnr"] == pytest.approx(expected, abs=0.2)
    assert compare_images(torch.from_numpy(noisy), torch.from_numpy(gt), np.diag([1e-3, 1e-2]))["crop"] == 10
    empty = compare_images(gt[:16, :16], gt[:16, :16] * 0.5, 1e-1)  # 16 − 2·8 = 0 px left: NaN, no crash
    assert empty["crop"] == 8 and math.isnan(empty["psnr"]) and math.isnan(empty["ssim"])
    two = compare_images(gt[:40, :40], gt[:40, :40] * 0.5, 1e-1)  # 40 − 2·19 = 2 px: PSNR yes, SSIM NaN
    assert two["crop"] == 19 and np.isfinite(two["psnr"]) and math.isnan(two["ssim"])
    five = compare_images(gt[:5, :5], gt[:5, :5] * 0.9, 0.0)  # shrinks the SSIM window
    assert np.isfinite(five["ssim"])
    table = format_table([{"variance": 1e-4, "psnr": 31.234, "ssim": 0.91}, {"variance": 0.1, "psnr": math.inf}],
                         ["variance", ("psnr", "PSNR"), "ssim"])
    lines = table.splitlines()
    assert lines[0].startswith("| variance") and "PSNR" in lines[0] and len(lines) == 4
    assert "inf" in lines[3] and "-" in lines[3] and "31.234" in lines[2]
    positional = format_table([["σ² = 0.001", "30.12", 0.5]], ["scale", "PSNR", "SSIM"]).splitlines()
    assert positional[2].split("|")[1].strip() == "σ² = 0.001" and "0.5" in positional[2]
