"""Mip-NeRF 360 math core (methods/nerf360): each closed form is checked against brute force or Monte Carlo."""
from __future__ import annotations

import math

import pytest
import torch

from methods.nerf360 import geometry as geo
from methods.nerf360 import losses as L
from methods.nerf360 import sampling as S

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _random_histogram(batch: int, m: int, *, zeros: bool = False, dtype=torch.float64):
    """Sorted edges on [0, 1] (ends included) and weights summing to 1; optionally some empty bins."""
    inner = torch.sort(torch.rand(batch, m - 1, dtype=dtype), -1).values
    edges = torch.cat([torch.zeros(batch, 1, dtype=dtype), inner, torch.ones(batch, 1, dtype=dtype)], -1)
    w = torch.rand(batch, m, dtype=dtype) ** 2
    if zeros:
        w = w * (torch.rand(batch, m, dtype=dtype) > 0.4)
        w[:, 0] += 0.1  # never all-empty
    return edges, w / w.sum(-1, keepdim=True)


def _step_pdf(edges: torch.Tensor, weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Density of a single histogram (1-D edges/weights) at points x, by brute force over bins."""
    widths = edges[1:] - edges[:-1]
    pdf = torch.where(widths > 0, weights / widths.clamp_min(1e-300), torch.zeros_like(widths))
    inside = (x[:, None] >= edges[None, :-1]) & (x[:, None] < edges[None, 1:])
    return (inside * pdf[None]).sum(-1)


# ---------------------------------------------------------------------------------------------------------------------
# s-space
# ---------------------------------------------------------------------------------------------------------------------

def test_s_t_round_trip_and_endpoints():
    near = 0.05 + torch.rand(64, 1, dtype=torch.float64)
    far = near * 10 ** (1 + 5 * torch.rand(64, 1, dtype=torch.float64))
    s = torch.rand(64, 33, dtype=torch.float64)
    t = S.s_to_t(s, near, far)
    assert ((t >= near) & (t <= far)).all()
    torch.testing.assert_close(S.t_to_s(t, near, far), s, rtol=0, atol=1e-9)
    torch.testing.assert_close(S.s_to_t(S.t_to_s(t, near, far), near, far), t, rtol=1e-9, atol=0)
    torch.testing.assert_close(S.t_to_s(near, near, far), torch.zeros_like(near), rtol=0, atol=1e-12)
    torch.testing.assert_close(S.t_to_s(far, near, far), torch.ones_like(far), rtol=0, atol=1e-12)
    # float32 with the 360 preset's near/far: uniform s is linear in disparity
    s32 = torch.linspace(0, 1, 11)
    t32 = S.s_to_t(s32, 0.2, 1e6)
    assert abs(t32[0].item() - 0.2) < 1e-6 and abs(t32[-1].item() / 1e6 - 1) < 1e-3
    torch.testing.assert_close(S.t_to_s(t32, 0.2, 1e6), s32, rtol=0, atol=1e-6)
    disparity = 1 / t32.double()
    torch.testing.assert_close(disparity.diff(), torch.full((10,), disparity.diff()[0].item(), dtype=torch.float64),
                               rtol=1e-4, atol=0)


# ---------------------------------------------------------------------------------------------------------------------
# contraction
# ---------------------------------------------------------------------------------------------------------------------

def _random_dirs(n: int, dtype=torch.float64) -> torch.Tensor:
    d = torch.randn(n, 3, dtype=dtype)
    return d / d.norm(dim=-1, keepdim=True)


def test_contract_identity_inside_and_bounded_outside():
    inside = _random_dirs(500) * torch.rand(500, 1, dtype=torch.float64)
    assert torch.equal(geo.contract(inside), inside)
    for dtype in (torch.float32, torch.float64):
        far = _random_dirs(500, dtype) * 1e6
        r = geo.contract(far).norm(dim=-1)
        assert (r < 2).all() and (r > 1.999).all(), dtype
    mid = _random_dirs(500) * (1 + 20 * torch.rand(500, 1, dtype=torch.float64))
    out = geo.contract(mid)
    r_in, r_out = mid.norm(dim=-1), out.norm(dim=-1)
    torch.testing.assert_close(r_out, 2 - 1 / r_in, rtol=1e-12, atol=0)
    torch.testing.assert_close(geo.inv_contract(out), mid, rtol=1e-9, atol=1e-12)
    # finite gradients, also at the origin
    x = torch.cat([torch.zeros(1, 3, dtype=torch.float64), mid[:5]]).requires_grad_(True)
    geo.contract(x).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("radius_range", [(0.0, 0.95), (1.05, 50.0)], ids=["inside", "outside"])
def test_contract_jacobian_matches_autograd(radius_range):
    lo, hi = radius_range
    pts = _random_dirs(12) * (lo + (hi - lo) * torch.rand(12, 1, dtype=torch.float64))
    closed = geo.contract_jacobian(pts)
    for p, j in zip(pts, closed):
        ref = torch.autograd.functional.jacobian(geo.contract, p)
        torch.testing.assert_close(j, ref, rtol=1e-10, atol=1e-12)
    if lo > 1:  # the Jacobian really is non-trivial out there
        assert (closed - torch.eye(3, dtype=torch.float64)).abs().amax() > 1e-3


def test_contract_gaussians_matches_monte_carlo():
    mean = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)  # r ≈ 2.29, outside the ball
    a = torch.randn(3, 3, dtype=torch.float64)
    cov = 1e-4 * (a @ a.T + 0.2 * torch.eye(3, dtype=torch.float64))  # std ≈ 0.01-0.03 ≪ ‖μ‖: linear regime
    m2, c2 = geo.contract_gaussians(mean, cov)
    x = torch.distributions.MultivariateNormal(mean, cov).sample((400_000,))
    y = geo.contract(x)
    emp = torch.cov(y.T)
    rel = (emp - c2).norm() / c2.norm()
    assert rel < 0.02, f"contracted covariance off by {rel:.3%}"
    # the mean moves only by the second-order term (≪ the contracted std)
    assert (y.mean(0) - m2).norm() < 0.05 * c2.trace().sqrt()
    # the linearized covariance is strongly anisotropic vs the input (radial 1/r^4, tangential ((2r-1)/r^2)^2)
    assert (c2.norm() / cov.norm()) < 0.9
    # a diagonal input is accepted and equals the full path
    d_full = geo.contract_gaussians(mean, torch.diag(cov.diagonal()))[1]
    torch.testing.assert_close(geo.contract_gaussians(mean, cov.diagonal())[1], d_full)


# ---------------------------------------------------------------------------------------------------------------------
# conical frustums
# ---------------------------------------------------------------------------------------------------------------------

def _sample_frustum(origin, direction, t0, t1, radius, n):
    """Points uniform in the volume of the frustum: t has density ∝ t² (disk area), uniform within each disk."""
    u, v, phi = (torch.rand(n, dtype=torch.float64) for _ in range(3))
    t = (t0 ** 3 + u * (t1 ** 3 - t0 ** 3)) ** (1 / 3)
    d_hat = direction / direction.norm()
    e1 = torch.linalg.cross(d_hat, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    e1 = e1 / e1.norm()
    e2 = torch.linalg.cross(d_hat, e1)
    rho = radius * t * v.sqrt()
    ang = 2 * math.pi * phi
    return (origin + t[:, None] * direction + rho[:, None] * (ang.cos()[:, None] * e1 + ang.sin()[:, None] * e2))


def test_frustum_gaussian_matches_monte_carlo():
    origin = torch.tensor([1.0, 2.0, -3.0], dtype=torch.float64)
    direction = torch.tensor([0.3, -1.2, 0.8], dtype=torch.float64)  # deliberately not unit length
    t0, t1, radius = 1.0, 3.0, 0.2
    pts = _sample_frustum(origin, direction, t0, t1, radius, 400_000)
    mean, cov = geo.cast_cones(torch.tensor([t0, t1], dtype=torch.float64), origin, direction,
                               torch.tensor([radius], dtype=torch.float64))
    mean, cov = mean[0], cov[0]
    emp_cov = torch.cov(pts.T)
    assert (pts.mean(0) - mean).norm() < 0.01 * cov.trace().sqrt()
    rel = (emp_cov - cov).norm() / cov.norm()
    assert rel < 0.015, f"frustum covariance off by {rel:.3%}"
    # along-ray and perpendicular variances separately (the perpendicular part is small in the Frobenius norm)
    d_hat = direction / direction.norm()
    along_emp, along = d_hat @ emp_cov @ d_hat, d_hat @ cov @ d_hat
    perp_emp, perp = (emp_cov.trace() - along_emp) / 2, (cov.trace() - along) / 2
    assert abs(along_emp / along - 1) < 0.01 and abs(perp_emp / perp - 1) < 0.01, (along_emp / along, perp_emp / perp)
    _, var_t, var_r = geo.frustum_to_gaussian(torch.tensor(t0, dtype=torch.float64),
                                              torch.tensor(t1, dtype=torch.float64), radius)
    torch.testing.assert_close(along, var_t.double() * direction.norm() ** 2, rtol=1e-6, atol=0)
    torch.testing.assert_close(perp, var_r.double(), rtol=1e-6, atol=0)
    # diagonal form = diagonal of the full form
    _, diag = geo.cast_cones(torch.tensor([t0, t1], dtype=torch.float64), origin, direction,
                             torch.tensor([radius], dtype=torch.float64), diag=True)
    torch.testing.assert_close(diag[0], cov.diagonal())


def test_frustum_gaussian_is_float32_stable():
    """Thin, far frustums: float32 stays close to the float64 value of the same inputs (the naive form does not)."""
    t0 = torch.tensor([1000.0, 50.0, 3.0])
    t1 = t0 + torch.tensor([0.01, 0.001, 1e-4])
    r = 1e-3
    out32 = geo.frustum_to_gaussian(t0, t1, r)
    out64 = geo.frustum_to_gaussian(t0.double(), t1.double(), r)
    for a, b in zip(out32, out64):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=0)


def test_pixel_cone_radii_pinhole():
    h, w, f = 6, 8, 50.0
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    dirs = torch.stack([(x + 0.5 - w / 2) / f, -(y + 0.5 - h / 2) / f, -torch.ones_like(x)], -1)
    radii = geo.pixel_cone_radii(dirs)
    assert radii.shape == (h, w, 1)
    torch.testing.assert_close(radii, torch.full_like(radii, 2 / math.sqrt(12) / f))


# ---------------------------------------------------------------------------------------------------------------------
# IPE
# ---------------------------------------------------------------------------------------------------------------------

def test_ipe_zero_variance_is_plain_pe():
    mu = 3 * torch.randn(10, 5, dtype=torch.float64)
    enc = geo.integrated_pos_enc(mu, torch.zeros_like(mu), 0, 6)
    scaled = torch.cat([mu * 2.0 ** l for l in range(6)], -1)
    ref = torch.cat([torch.sin(scaled), torch.cos(scaled)], -1)
    torch.testing.assert_close(enc, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(geo.integrated_pos_enc(mu, torch.full_like(mu, 1e-14), 0, 6), ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(geo.pos_enc(mu, 0, 6), torch.cat([mu, ref], -1))


def test_ipe_attenuation_per_octave():
    n_freq, k = 8, 4
    mu = torch.randn(20, k, dtype=torch.float64)
    for var_scale in (1e-4, 1e-2, 0.3):
        var = var_scale * torch.rand(20, k, dtype=torch.float64)
        enc = geo.integrated_pos_enc(mu, var, 0, n_freq)
        s, c = enc.split(n_freq * k, -1)
        amp = (s ** 2 + c ** 2).sqrt().reshape(20, n_freq, k)
        expected = torch.stack([torch.exp(-0.5 * 4.0 ** l * var) for l in range(n_freq)], 1)
        torch.testing.assert_close(amp, expected, rtol=1e-10, atol=1e-14)
    # phase is untouched: sin/cos ratio is the plain PE's
    s, c = geo.integrated_pos_enc(mu, torch.full_like(mu, 1e-3), 0, 3).split(3 * k, -1)
    scaled = torch.cat([mu * 2.0 ** l for l in range(3)], -1)
    torch.testing.assert_close(torch.atan2(s, c), torch.atan2(torch.sin(scaled), torch.cos(scaled)))


def test_ipe_bases():
    ico = geo.ipe_basis("icosahedron", dtype=torch.float64)
    assert ico.shape == (21, 3)
    torch.testing.assert_close(ico.norm(dim=-1), torch.ones(21, dtype=torch.float64))
    dots = (ico @ ico.T).abs() - torch.eye(21, dtype=torch.float64)
    assert dots.max() < 1 - 1e-3, "two directions are parallel or antiparallel"
    # 42 geodesic vertices before antipode removal, each with an antipode: exactly the 10v²+2 of a v=2 geodesic
    full = geo.geodesic_directions("icosahedron", 2, remove_antipodes=False)
    assert full.shape == (42, 3)
    assert all(((full + p).norm(dim=-1) < 1e-9).any() for p in full)
    # nearest-neighbour angles are near-uniform on a geodesic sphere (a bad construction would not be)
    ang = torch.acos((full @ full.T - 2 * torch.eye(42, dtype=torch.float64)).amax(-1).clamp(-1, 1))
    assert ang.max() / ang.min() < 1.25
    axes = geo.ipe_basis("axes", dtype=torch.float64)
    torch.testing.assert_close(axes.abs() @ axes.abs().T, torch.eye(3, dtype=torch.float64))
    with pytest.raises(KeyError):
        geo.ipe_basis("dodecahedron")


def test_lift_gaussians_full_and_diag():
    basis = geo.ipe_basis("icosahedron", dtype=torch.float64)
    mean = torch.randn(7, 3, dtype=torch.float64)
    a = torch.randn(7, 3, 3, dtype=torch.float64)
    cov = a @ a.transpose(-1, -2)
    mu, var = geo.lift_gaussians(mean, cov, basis)
    # projected variance of samples along b_k
    ref_var = torch.stack([torch.stack([b @ c @ b for b in basis]) for c in cov])
    torch.testing.assert_close(var, ref_var)
    torch.testing.assert_close(mu, mean @ basis.T)
    diag = cov.diagonal(dim1=-2, dim2=-1)
    torch.testing.assert_close(geo.lift_gaussians(mean, diag, basis)[1],
                               geo.lift_gaussians(mean, torch.diag_embed(diag), basis)[1])
    feats = geo.ipe_features(mean, cov, basis, 0, 12)
    assert feats.shape == (7, 504)


# ---------------------------------------------------------------------------------------------------------------------
# proposal loss
# ---------------------------------------------------------------------------------------------------------------------

def test_proposal_bound_of_itself_and_of_coarsenings():
    edges, w = _random_histogram(32, 16, zeros=True)
    assert L.proposal_loss_per_interval(edges, w, edges, w).abs().max() < 1e-20
    for _ in range(5):
        keep = torch.sort(torch.randperm(15)[: torch.randint(1, 15, ()).item()] + 1).values
        idx = torch.cat([torch.tensor([0]), keep, torch.tensor([16])])
        coarse_edges = edges[:, idx]
        cum = torch.cat([torch.zeros(32, 1, dtype=torch.float64), w.cumsum(-1)], -1)
        coarse_w = cum[:, idx[1:]] - cum[:, idx[:-1]]
        loss = L.proposal_loss_per_interval(edges, w, coarse_edges, coarse_w)
        assert loss.abs().max() < 1e-20
    # ...but a refinement does NOT bound a coarse histogram: two halves vs the fine bins
    half = torch.tensor([[0.0, 0.5, 1.0]], dtype=torch.float64)
    fine = torch.linspace(0, 1, 9, dtype=torch.float64)[None]
    assert L.proposal_loss(half, torch.tensor([[0.3, 0.7]], dtype=torch.float64), fine,
                           torch.full((1, 8), 1 / 8, dtype=torch.float64)) > 0.01


def test_proposal_loss_hand_computed():
    eps = 1e-7
    # NeRF [0,.25,.5,1] w=(.1,.6,.3); proposal [0,.5,1] ŵ=(.4,.6). [.25,.5) only touches the second proposal bin
    # at .5, so its bound is .4 and the violation is (.6-.4)²/(.6+eps); the others are bounded (.4 ≥ .1, .6 ≥ .3).
    nerf_e = torch.tensor([[0.0, 0.25, 0.5, 1.0]], dtype=torch.float64)
    nerf_w = torch.tensor([[0.1, 0.6, 0.3]], dtype=torch.float64)
    prop_e = torch.tensor([[0.0, 0.5, 1.0]], dtype=torch.float64)
    prop_w = torch.tensor([[0.4, 0.6]], dtype=torch.float64, requires_grad=True)
    per = L.proposal_loss_per_interval(nerf_e, nerf_w, prop_e, prop_w, eps=eps)
    torch.testing.assert_close(per, torch.tensor([[0.0, 0.2 ** 2 / (0.6 + eps), 0.0]], dtype=torch.float64))
    # NeRF [0,.4,.6,1] w=(.2,.7,.1); proposal ŵ=(.15,.85): [.4,.6) straddles both bins (bound 1.0),
    # [0,.4) is bounded by .15 only -> (.2-.15)²/(.2+eps).
    nerf_e2 = torch.tensor([[0.0, 0.4, 0.6, 1.0]], dtype=torch.float64)
    nerf_w2 = torch.tensor([[0.2, 0.7, 0.1]], dtype=torch.float64)
    prop_w2 = torch.tensor([[0.15, 0.85]], dtype=torch.float64)
    torch.testing.assert_close(L.outer_measure(nerf_e2, prop_e, prop_w2),
                               torch.tensor([[0.15, 1.0, 0.85]], dtype=torch.float64))
    loss2 = L.proposal_loss(nerf_e2, nerf_w2, prop_e, prop_w2, eps=eps)
    torch.testing.assert_close(loss2, torch.tensor(0.05 ** 2 / (0.2 + eps) / 3, dtype=torch.float64))
    # gradients reach the proposal weights only; the NeRF side is detached
    nerf_w_req = nerf_w.clone().requires_grad_(True)
    total = L.interlevel_loss(nerf_e, nerf_w_req, [(prop_e, prop_w)], eps=eps)
    torch.testing.assert_close(total, torch.tensor(0.04 / (0.6 + eps) / 3, dtype=torch.float64))
    total.backward()
    assert nerf_w_req.grad is None
    # d/dŵ_0 of mean((w1 - ŵ_0)²/(w1+eps)) = -2(w1-ŵ_0)/(w1+eps)/3; ŵ_1 only bounds a satisfied interval
    torch.testing.assert_close(prop_w.grad, torch.tensor([[-2 * 0.2 / (0.6 + eps) / 3, 0.0]], dtype=torch.float64))


# ---------------------------------------------------------------------------------------------------------------------
# distortion loss
# ---------------------------------------------------------------------------------------------------------------------

def test_distortion_linear_equals_pairwise():
    edges, w = _random_histogram(6, 11, zeros=True)
    fast = L.distortion_per_ray(edges, w)
    for b in range(6):
        e, wb = edges[b].tolist(), w[b].tolist()
        n = len(wb)
        mids = [(e[i] + e[i + 1]) / 2 for i in range(n)]
        total = 0.0
        for i in range(n):
            for j in range(n):
                if i == j:  # E|u - v| for u, v uniform on one interval is Δ/3
                    total += wb[i] ** 2 * (e[i + 1] - e[i]) / 3
                else:  # disjoint intervals: |u - v| keeps its sign, so the mean is |m_i - m_j|
                    total += wb[i] * wb[j] * abs(mids[i] - mids[j])
        assert abs(fast[b].item() - total) < 1e-12
    torch.testing.assert_close(L.distortion_loss(edges, w), fast.mean())


def test_distortion_matches_double_integral_quadrature():
    edges, w = _random_histogram(1, 7)
    # midpoint rule with K nodes inside every bin (so narrow bins are resolved): point masses w_i/K
    k = 200
    frac = (torch.arange(k, dtype=torch.float64) + 0.5) / k
    x = (edges[0, :-1, None] + frac * (edges[0, 1:] - edges[0, :-1])[:, None]).flatten()
    mass = (w[0, :, None] / k).expand(-1, k).flatten()
    quad = (mass[:, None] * mass[None, :] * (x[:, None] - x[None, :]).abs()).sum()
    fast = L.distortion_per_ray(edges, w)[0]
    assert abs(fast.item() - quad.item()) < 1e-4 * quad.item()
    # a single concentrated bin has the smallest distortion
    conc = torch.tensor([[0.0, 0.5, 0.51, 1.0]], dtype=torch.float64)
    assert L.distortion_per_ray(conc, torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)) < fast


# ---------------------------------------------------------------------------------------------------------------------
# resampling
# ---------------------------------------------------------------------------------------------------------------------

def test_schedules_match_report():
    assert S.anneal_exponent(0.0) == 0.0 and S.anneal_exponent(1.0) == 1.0
    assert abs(S.anneal_exponent(0.1) - 0.5263) < 1e-3 and abs(S.anneal_exponent(0.5) - 0.9091) < 1e-3
    eps = S.dilation_schedule([64, 64, 32])
    assert len(eps) == 2
    assert abs(eps[0] - 0.0103125) < 1e-9 and abs(eps[1] - 0.0026221) < 1e-7


def test_uniform_edges():
    e = S.uniform_s_edges(16, (3,))
    torch.testing.assert_close(e, torch.linspace(0, 1, 17).expand(3, 17))
    gen = torch.Generator().manual_seed(1)
    jit = S.uniform_s_edges(16, (500,), train=True, generator=gen, dtype=torch.float64)
    inner = jit[:, 1:-1] - torch.linspace(0, 1, 17, dtype=torch.float64)[1:-1]
    # one jitter per ray: every inner edge of a ray moves by the same offset, within half a bin
    assert (inner - inner[:, :1]).abs().max() < 1e-12
    assert inner.abs().max() <= 0.5 / 16 + 1e-12 and inner[:, 0].std() > 0.01
    assert (jit.diff(dim=-1) >= 0).all() and jit.min() >= 0 and jit.max() <= 1


def test_resample_matches_histogram_density():
    edges, w = _random_histogram(4, 8, zeros=True)
    n = 4000
    out = S.resample(edges, w, n, dilation=0.0, anneal=1.0, train=False)
    inner = out[:, 1:-1]
    for b in range(4):
        counts = torch.bucketize(inner[b], edges[b, 1:-1], right=True).bincount(minlength=8).double()
        frac = counts / inner.shape[-1]
        assert (frac - w[b]).abs().max() < 3.0 / n, (frac, w[b])
    # training (single jitter per ray) is unbiased when pooled over rays
    # (an inner edge is the midpoint of two centres, so an empty bin can hold at most one edge per ray)
    gen = torch.Generator().manual_seed(3)
    e1, w1 = edges[:1].expand(400, 9), w[:1].expand(400, 8)
    out_t = S.resample(e1, w1, 256, dilation=0.0, anneal=1.0, train=True, generator=gen)
    inner_t = out_t[:, 1:-1]
    counts = torch.bucketize(inner_t.flatten(), edges[0, 1:-1], right=True).bincount(minlength=8).double()
    assert (counts / inner_t.numel() - w[0]).abs().max() < 0.006


def test_resample_edges_valid_and_deterministic():
    edges, w = _random_histogram(16, 12, zeros=True, dtype=torch.float32)
    w = w.requires_grad_(True)
    for dilation, anneal in [(0.0, 1.0), (0.0103, 0.3), (0.05, 0.0)]:
        for train in (False, True):
            gen = torch.Generator().manual_seed(7)
            out = S.resample(edges, w, 24, dilation=dilation, anneal=anneal, train=train, generator=gen)
            assert out.shape == (16, 25) and not out.requires_grad
            assert (out.diff(dim=-1) >= 0).all() and out.min() >= 0 and out.max() <= 1
            assert torch.isfinite(out).all()
    a = S.resample(edges, w, 24, dilation=0.01, anneal=0.7, train=False)
    b = S.resample(edges, w, 24, dilation=0.01, anneal=0.7, train=False)
    assert torch.equal(a, b)
    r1 = S.resample(edges, w, 24, train=True, generator=torch.Generator().manual_seed(5))
    r2 = S.resample(edges, w, 24, train=True, generator=torch.Generator().manual_seed(5))
    r3 = S.resample(edges, w, 24, train=True, generator=torch.Generator().manual_seed(6))
    assert torch.equal(r1, r2) and not torch.equal(r1, r3)
    # anneal = 0 spends equal mass on every non-empty-width bin, whatever its weight
    flat = S.resample(edges[:1].double(), w[:1].detach().double(), 1200, anneal=0.0)
    counts = torch.bucketize(flat[0, 1:-1], edges[0, 1:-1].double(), right=True).bincount(minlength=12).double()
    torch.testing.assert_close(counts / 1199, torch.full((12,), 1 / 12, dtype=torch.float64), rtol=0, atol=3 / 1200)


def test_max_dilate_support_and_brute_force():
    edges = torch.linspace(0, 1, 8, dtype=torch.float64)[None]
    w = torch.tensor([[0.0, 0.0, 0.5, 0.0, 0.5, 0.0, 0.0]], dtype=torch.float64)
    eps = 0.03
    de, dw = S.max_dilate(edges, w, eps)
    torch.testing.assert_close(dw.sum(-1), torch.ones(1, dtype=torch.float64))
    x = torch.linspace(0, 1, 20001, dtype=torch.float64)[:-1]
    before, after = _step_pdf(edges[0], w[0], x), _step_pdf(de[0], dw[0], x)
    assert ((before > 0) <= (after > 0)).all(), "dilation shrank the support"
    s = edges[0]
    grown = ((x >= s[2] - eps) & (x < s[3] + eps)) | ((x >= s[4] - eps) & (x < s[5] + eps))
    assert torch.equal(after > 0, grown)
    # random histograms: the dilated density is ∝ the brute-force max filter of the original density
    e, wr = _random_histogram(5, 9, zeros=True)
    for eps in (0.004, 0.02, 0.2):
        de, dw = S.max_dilate(e, wr, eps)
        assert de.shape == (5, 30) and (de.diff(dim=-1) >= 0).all()
        for b in range(5):
            widths = e[b, 1:] - e[b, :-1]
            pdf = wr[b] / widths
            xq = torch.rand(3000, dtype=torch.float64)
            cover = (xq[:, None] >= e[b, None, :-1] - eps) & (xq[:, None] < e[b, None, 1:] + eps)
            brute = (cover * pdf[None]).amax(-1)
            got = _step_pdf(de[b], dw[b], xq)
            assert torch.equal(got > 0, brute > 0)
            ratio = got[brute > 0] / brute[brute > 0]
            assert ratio.max() - ratio.min() < 1e-9 * ratio.max()


# ---------------------------------------------------------------------------------------------------------------------
# compositing
# ---------------------------------------------------------------------------------------------------------------------

def test_volume_weights_sum_to_one():
    t = S.s_to_t(S.uniform_s_edges(32, (4,)), 0.2, 1e6)
    for dens in (torch.zeros(4, 32), torch.rand(4, 32) * 5, torch.full((4, 32), 1e6)):
        dens = dens.requires_grad_(True)
        w, trans = S.volume_weights(dens, t)
        torch.testing.assert_close(w.sum(-1), torch.ones(4), rtol=0, atol=1e-5)
        assert (w >= 0).all() and (trans <= 1).all()
        w[..., :-1].sum().backward()
        assert torch.isfinite(dens.grad).all()
    w0, _ = S.volume_weights(torch.zeros(2, 5), torch.linspace(1, 2, 6).expand(2, 6))
    torch.testing.assert_close(w0, torch.tensor([[0.0, 0, 0, 0, 1]] * 2))
    # the non-final weights are the usual α_i T_i
    dens = torch.rand(3, 6, dtype=torch.float64)
    te = torch.sort(torch.rand(3, 7, dtype=torch.float64), -1).values + 1
    w, _ = S.volume_weights(dens, te, 2.0)
    tau = dens * te.diff(dim=-1) * 2.0
    ref = (1 - torch.exp(-tau)) * torch.exp(-(torch.cumsum(tau, -1) - tau))
    torch.testing.assert_close(w[:, :-1], ref[:, :-1])
    w_open, _ = S.volume_weights(dens, te, 2.0, opaque=False)
    torch.testing.assert_close(w_open, ref)


def test_depth_readouts():
    t = torch.tensor([[1.0, 2.0, 4.0, 8.0]], dtype=torch.float64)
    w = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(S.median_depth(t, w), torch.tensor([3.0], dtype=torch.float64))
    torch.testing.assert_close(S.mean_depth(t, w), torch.tensor([3.0], dtype=torch.float64))
    w2 = torch.tensor([[0.5, 0.0, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(S.mean_depth(t, w2), torch.tensor([(1.5 + 6.0) / 2], dtype=torch.float64))
    torch.testing.assert_close(S.weighted_percentile(t, w2, [0.25, 0.75]),
                               torch.tensor([[1.5, 6.0]], dtype=torch.float64))


def test_charbonnier():
    pred, target = torch.zeros(4, 3), torch.tensor([[0.0, 3.0, -4.0]] * 4)
    expected = (1e-3 + math.sqrt(9 + 1e-6) + math.sqrt(16 + 1e-6)) / 3
    assert abs(L.charbonnier(pred, target).item() - expected) < 1e-6
    assert abs(L.charbonnier(target, target).item() - 1e-3) < 1e-9
