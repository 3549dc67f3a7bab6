"""NGSSF neural field: encoding statistics, 1-Lipschitz MLP, Stiefel trick, weight cache, modulation, checkpoints
and calibration (on a stand-in field whose true calibration factor is known)."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from methods.ngssf.calibrate import CALIBRATION_PRESETS, calibrate, near_level_set
from methods.ngssf.encoding import FourierEncoding, ball_points, cube_to_ball, modulation, sample_frequencies
from methods.field import Field
from methods.ngssf.lipschitz import (LipschitzMLP, NormalizedRowsLinear, SpectralLimLinear, factor_plan,
                                     naive_factor)
from methods.ngssf.neural_field import (FIELD_PRESETS, FieldConfig, NeuralField, field_config)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)  # the unseeded draws below (test inputs) are then reproducible too


def _ks_uniform(u: torch.Tensor) -> float:
    """Kolmogorov-Smirnov distance of samples in [0, 1] to U(0, 1)."""
    u = u.double().sort().values
    n = u.numel()
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(torch.maximum(i / n - u, u - (i - 1) / n).max())


def _tiny(**kw) -> NeuralField:
    return NeuralField(field_config("tiny", "picture", 2, 3, **kw))


# ------------------------------------------------------------------------------------------------------ encoding
def test_frequency_lengths_follow_half_normal_in_2d():
    var = 2000.0
    A = sample_frequencies(2, 512, var, seed=3).double()
    lengths = A.norm(dim=1)
    cdf = torch.erf(lengths / math.sqrt(2.0 * var))  # half-normal CDF
    assert _ks_uniform(cdf) < 0.02  # Sobol stratification: far tighter than iid's ~0.06
    assert lengths.mean().item() == pytest.approx(math.sqrt(2.0 * var / math.pi), rel=0.03)  # 35.7 cycles/unit
    assert torch.isfinite(A).all() and (lengths > 0).all()


def test_3d_lengths_use_r_squared_like_the_reference():
    A = sample_frequencies(3, 4096, 100.0, seed=0).double()
    u = torch.erf(A.norm(dim=1) / math.sqrt(200.0))  # = r² of the ball point
    assert u.mean().item() == pytest.approx(0.6, abs=0.01)  # r³ is uniform in 3D, so E[r²] = 3/5, not 1/2
    assert _ks_uniform(u.pow(1.5)) < 0.02


def test_cube_to_ball_is_volume_preserving():
    g = torch.Generator().manual_seed(0)
    for d, ball_volume, power in ((2, math.pi, 2), (3, 4.0 * math.pi / 3.0, 3)):
        p = torch.rand(20000, d, generator=g, dtype=torch.float64) * 2 - 1
        q = cube_to_ball(p)
        r = q.norm(dim=1)
        assert r.max().item() <= 1.0 + 1e-12
        assert _ks_uniform(r.pow(power)) < 0.015  # uniform in the ball ⇔ r^d uniform (radial part)
        # and the Jacobian determinant is the constant vol(ball) / vol(cube) everywhere (angular part too)
        x = p[:300].clone().requires_grad_()
        y = cube_to_ball(x)
        J = torch.stack([torch.autograd.grad(y[:, i].sum(), x, retain_graph=True)[0] for i in range(d)], dim=1)
        det = torch.linalg.det(J)
        assert torch.allclose(det, torch.full_like(det, ball_volume / 2 ** d), rtol=1e-9)


def test_ball_points_rejection_for_high_dimensions():
    p = ball_points(5, 300, seed=1)
    assert p.shape == (300, 5) and (p.norm(dim=1) < 1).all()


def test_encoding_buffer_in_state_dict_and_restored():
    a, b = FourierEncoding(2, 64, 50.0, seed=0), FourierEncoding(2, 64, 50.0, seed=1)
    assert "A" in a.state_dict() and not torch.equal(a.A, b.A)
    assert torch.equal(a.A, FourierEncoding(2, 64, 50.0, seed=0).A)  # seeded
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.A, b.A)
    x = torch.rand(5, 2, generator=torch.Generator().manual_seed(0))
    e = a(x)
    phase = 2 * math.pi * x.double() @ a.A.double().t()  # float64 reference: float32 phases reach ~100 rad
    ref = torch.cat([torch.cos(phase), torch.sin(phase)], 1).float()
    assert e.shape == (5, 128) and torch.allclose(e, ref, atol=1e-4)


def test_modulation_matches_loop_and_isotropic_closed_form():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(16, 3, generator=g) * 5
    L = torch.randn(4, 3, 3, generator=g) * 0.1
    cov = L @ L.transpose(1, 2)
    w = modulation(A, cov)
    loop = torch.tensor([[math.exp(-math.sqrt(max(float(a @ c @ a), 0.0))) for a in A] for c in cov])
    assert torch.allclose(w, loop, rtol=1e-5)
    s, c = 3e-3, 7.0
    iso = modulation(A, c * s * torch.eye(3).expand(4, 3, 3))
    assert torch.allclose(iso, torch.exp(-math.sqrt(c * s) * A.norm(dim=1)).expand(4, -1), rtol=1e-5)
    assert modulation(A, None) is None


# ---------------------------------------------------------------------------------------------------- Lipschitz
@pytest.mark.parametrize("n,k", [(40, 8), (12, 8), (8, 8)])  # QR path, direct path, square
def test_stiefel_trick_equals_naive_expm(n, k):
    g = torch.Generator().manual_seed(n)
    P = (torch.randn(n, k, generator=g, dtype=torch.float64)).requires_grad_()
    plan = factor_plan(P)
    fast = plan.finish(torch.matrix_exp(plan.generator))
    naive = naive_factor(P)
    assert plan.generator.shape[0] == min(n, 2 * k)
    assert torch.allclose(fast, naive, atol=1e-10)
    assert torch.allclose(fast.t() @ fast, torch.eye(k, dtype=torch.float64), atol=1e-10)
    G = torch.randn(n, k, generator=g, dtype=torch.float64)
    g_fast = torch.autograd.grad((fast * G).sum(), P)[0]
    g_naive = torch.autograd.grad((naive * G).sum(), P)[0]
    assert torch.allclose(g_fast, g_naive, atol=1e-9)
    P32 = P.detach().float()  # and in float32, the dtype actually trained
    plan32 = factor_plan(P32)
    assert torch.allclose(plan32.finish(torch.matrix_exp(plan32.generator)), naive_factor(P32), atol=1e-5)


def _check_norms(mlp: LipschitzMLP) -> None:
    for layer in mlp.hidden:
        assert torch.linalg.matrix_norm(layer.weight().detach(), ord=2) < 1.0
    assert (mlp.out.weight().detach().norm(dim=1) <= 1.0 + 1e-6).all()


def test_layer_norms_bounded_before_and_after_training():
    g = torch.Generator().manual_seed(0)
    mlp = LipschitzMLP(96, 32, 2, 3, g)
    assert mlp.hidden[0].gen_v.shape == (96, 32)  # non-square first layer: Stiefel factor, no 96×96 parameter
    _check_norms(mlp)
    opt = torch.optim.Adam(mlp.parameters(), lr=0.5)
    x = torch.randn(64, 96, generator=g) * 10
    for _ in range(5):
        opt.zero_grad()
        (-mlp(x).pow(2).sum()).backward()  # pushes weights to grow as much as they can
        opt.step()
    _check_norms(mlp)
    assert mlp.out.weight_raw.norm(dim=1).max() > 1.0  # the raw rows did grow past 1: the normalisation is active


def test_whole_mlp_is_1_lipschitz_per_channel():
    g = torch.Generator().manual_seed(1)
    mlp = LipschitzMLP(128, 48, 3, 4, g)
    with torch.no_grad():  # make it less trivial than the init
        for layer in mlp.hidden:
            layer.sv_logit.fill_(8.0)
            layer.gen_u.add_(torch.randn(layer.gen_u.shape, generator=g))
        mlp.out.weight_raw.mul_(100.0)
        e1, e2 = torch.randn(2000, 128, generator=g), torch.randn(2000, 128, generator=g) * 0.3
        e2 = e1 + e2
        diff = (mlp(e1) - mlp(e2)).abs()
        dist = (e1 - e2).norm(dim=1, keepdim=True)
    assert (diff <= dist * (1 + 1e-5)).all()
    # local slopes: every channel's gradient norm ≤ 1, and a step along it changes the output by ≤ the step
    e = torch.randn(500, 128, generator=g).requires_grad_()
    for c in range(4):
        grad = torch.autograd.grad(mlp(e)[:, c].sum(), e)[0]
        slope = grad.norm(dim=1)
        assert (slope <= 1 + 1e-5).all() and slope.max() > 0.2  # bounded, and the bound is not vacuous
        with torch.no_grad():
            step = 1e-2 * grad / slope[:, None].clamp_min(1e-12)
            assert ((mlp(e + step) - mlp(e))[:, c].abs() <= 1e-2 * (1 + 1e-3)).all()


def test_batched_weights_equal_per_layer_weights():
    mlp = LipschitzMLP(80, 24, 3, 2, torch.Generator().manual_seed(2))
    with torch.no_grad():
        for (W, b), layer in zip(mlp.weights()[:-1], mlp.hidden):
            assert torch.allclose(W, layer.weight(), atol=1e-6)
        x = torch.randn(10, 80)
        h = x
        for layer in mlp.hidden:
            h = torch.relu(layer(h))
        assert torch.allclose(mlp(x), mlp.out(h), atol=1e-6)


def test_weight_cache_hits_and_invalidates():
    mlp = LipschitzMLP(40, 16, 2, 3, torch.Generator().manual_seed(3))
    x = torch.randn(8, 40)
    with torch.no_grad():
        y1 = mlp(x)
        n = mlp.builds
        assert torch.equal(mlp(x), y1) and mlp.builds == n  # cache hit
        mlp.hidden[1].gen_v[2, 3] += 0.5  # in-place parameter edit (a rotation of two large singular directions)
        y2 = mlp(x)
        assert mlp.builds == n + 1 and not torch.allclose(y1, y2)
        mlp.invalidate_cache()
        assert torch.allclose(mlp(x), y2)  # the rebuilt weights were fresh, not stale
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    mlp(x).sum().backward()  # grad path: never cached
    opt.step()
    with torch.no_grad():
        y3 = mlp(x)
    assert not torch.allclose(y2, y3)
    fresh = LipschitzMLP(40, 16, 2, 3)
    fresh.load_state_dict(mlp.state_dict())
    with torch.no_grad():
        assert torch.allclose(fresh(x), y3, atol=1e-6)
        mlp.load_state_dict(LipschitzMLP(40, 16, 2, 3).state_dict())  # load bumps versions → rebuild
        assert not torch.allclose(mlp(x), y3)


def test_normalized_rows_scale_only_long_rows():
    lin = NormalizedRowsLinear(4, 2)
    with torch.no_grad():
        lin.weight_raw.copy_(torch.tensor([[3.0, 4.0, 0, 0], [0.1, 0.2, 0, 0]]))
    W = lin.weight()
    assert torch.allclose(W[0], torch.tensor([0.6, 0.8, 0, 0])) and torch.allclose(W[1], lin.weight_raw[1])


def test_spectral_layer_init():
    layer = SpectralLimLinear(6, 6, torch.Generator().manual_seed(0))
    P = layer.gen_u.detach()
    nz = P.nonzero().tolist()
    assert nz and all(j == i + 1 and i % 2 == 0 for i, j in nz)  # (0,1), (2,3), … only
    assert P.abs().max() <= math.pi and layer.sv_logit.abs().max() <= 5.0


# ------------------------------------------------------------------------------------------------- neural field
def test_paper_preset_matches_reference_parameter_count():
    field = NeuralField(field_config("paper", "picture", 2, 3))
    assert sum(p.numel() for p in field.parameters()) == 6_300_675  # the reference's "24 MB per field"


def test_field_call_validates_and_applies_calibration():
    field = _tiny()
    x = torch.rand(32, 2) * 2 - 1
    with torch.no_grad():
        assert torch.equal(field(x), field(x, 0.0)) and field(x).shape == (32, 3)
        field.calibration.fill_(4.0)
        y = field(x, 1e-3)
        field.calibration.fill_(1.0)
        assert torch.allclose(y, field(x, 4e-3), atol=1e-6)
        assert not torch.allclose(y, field(x), atol=1e-3)
        per_point = field(x, torch.full((32,), 1e-3))
        assert torch.allclose(per_point, field(x, 1e-3 * torch.eye(2)), atol=1e-6)
    with pytest.raises(ValueError, match="symmetric"):
        field(x, torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    iso = NeuralField(field_config("tiny", "ackley", 2, 1))
    assert not iso.anisotropic and iso.config.freq_var == 50.0
    with pytest.raises(ValueError, match="isotropic"):
        iso(x, torch.eye(2))


def test_training_step_gives_finite_gradients_and_learns():
    torch.manual_seed(0)
    field = _tiny()
    opt = torch.optim.Adam(field.parameters(), lr=5e-3)
    x = torch.rand(256, 2) * 2 - 1
    target = torch.sin(3 * x[:, :1]).expand(-1, 3)
    cov = torch.diag_embed(10 ** (torch.rand(256, 2) * 14 - 12))
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = ((field(x, cov) - target) ** 2).sum(1).mean()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in field.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_gradients_wrt_points_and_chunked_inference_agree():
    field = _tiny()
    x = (torch.rand(10_000, 2) * 2 - 1).requires_grad_()
    cov = torch.full((10_000,), 1e-3)
    y = field.forward(x, torch.diag_embed(cov[:, None].expand(-1, 2)))  # grad path: one batch, out-of-place
    (gx,) = torch.autograd.grad(y[:, 0].sum(), x)
    assert torch.isfinite(gx).all() and gx.abs().max() > 0
    with torch.no_grad():  # no-grad path: slices of ``infer_chunk`` points, in-place feature ops
        assert torch.allclose(field(x.detach(), cov), y.detach(), atol=1e-5)


def test_checkpoint_roundtrip_and_errors():
    field = _tiny(seed=5)
    with torch.no_grad():
        field.calibration.fill_(3.5)
    buf = io.BytesIO()
    torch.save(field.to_checkpoint(), buf)
    buf.seek(0)
    ckpt = torch.load(buf)
    back = NeuralField.from_checkpoint(ckpt)
    assert back.config == field.config and float(back.calibration) == 3.5
    assert torch.equal(back.encoding.A, field.encoding.A)
    x = torch.rand(16, 2)
    with torch.no_grad():
        assert torch.allclose(back(x, 1e-3), field(x, 1e-3))
    bad_shape = dict(ckpt, config=dict(ckpt["config"], hidden=32))
    with pytest.raises(ValueError, match="shape"):
        NeuralField.from_checkpoint(bad_shape)
    missing = dict(ckpt, state={k: v for k, v in ckpt["state"].items() if k != "encoding.A"})
    with pytest.raises(ValueError, match="encoding.A"):
        NeuralField.from_checkpoint(missing)
    with pytest.raises(ValueError, match="unknown keys"):
        NeuralField.from_checkpoint(dict(ckpt, config=dict(ckpt["config"], width=3)))
    with pytest.raises(ValueError, match="version"):
        NeuralField.from_checkpoint(dict(ckpt, version=7))


def test_field_config_names():
    cfg = field_config("cpu", "mesh", 3, 1)
    assert (cfg.hidden, cfg.freq_var, cfg.dim, cfg.channels) == (256, 100.0, 3, 1)
    assert set(FIELD_PRESETS) == {"paper", "cpu", "tiny"} and FieldConfig().hidden == 1024
    with pytest.raises(ValueError, match="cpu.*paper.*tiny"):
        field_config("huge", "picture", 2, 3)
    with pytest.raises(ValueError, match="ackley"):
        field_config("cpu", "video", 2, 3)


# -------------------------------------------------------------------------------------------------- calibration
class _Sinusoids(Field):
    """Sum of sinusoids whose smoothed response at pseudo-variance Σ̂ = calibration·Σ is the *exact* Gaussian
    blur at variance Σ̂ / c0, so a correct calibration must recover c0."""

    dim, channels, name = 2, 2, "sinusoids"

    def __init__(self, c0: float):
        g = torch.Generator().manual_seed(0)
        n = 24
        lengths = torch.logspace(math.log10(0.5), math.log10(40.0), n)
        ang = torch.rand(n, generator=g) * 2 * math.pi
        self.A = torch.stack([torch.cos(ang), torch.sin(ang)], 1) * lengths[:, None]
        self.phase = torch.rand(n, generator=g) * 2 * math.pi
        self.mix = torch.randn(n, 2, generator=g) / math.sqrt(n)
        self.c0, self.calibration = c0, torch.tensor(1.0)

    def evaluate(self, x, cov):
        waves = torch.cos(2 * math.pi * x @ self.A.t() + self.phase)
        if cov is not None:
            q = torch.einsum("bde,md,me->bm", cov * self.calibration / self.c0, self.A, self.A)
            waves = waves * torch.exp(-2 * math.pi ** 2 * q)
        return waves @ self.mix


def test_calibration_recovers_known_factor():
    stand_in = _Sinusoids(c0=7.3)
    seen = []
    res = calibrate(stand_in, progress=seen.append)
    assert res.factor == pytest.approx(7.3, rel=0.1)
    assert float(stand_in.calibration) == pytest.approx(res.factor)
    assert res.ratios.shape == res.targets.shape == res.matched.shape == (16,)
    assert res.mse.shape == (256, 16) and seen and seen[-1].step == seen[-1].total


def test_calibration_on_neural_field_and_restore_on_error():
    field = _tiny()
    res = calibrate(field, points=8, samples=64, candidates=np.logspace(-5, 2, 32))
    assert math.isfinite(res.factor) and res.factor > 0 and float(field.calibration) == pytest.approx(res.factor)
    with torch.no_grad():
        field.calibration.fill_(2.0)

    def broken(*_):
        raise RuntimeError("sampler failed")
    with pytest.raises(RuntimeError):
        calibrate(field, point_sampler=broken)
    assert float(field.calibration) == 2.0


def test_level_set_sampler_picks_points_near_surface():
    class Circle(Field):
        dim, channels = 2, 1

        def evaluate(self, x, cov):
            return x.norm(dim=1, keepdim=True) - 0.5
    pts = near_level_set(10_000)(Circle(), 64, torch.Generator().manual_seed(0))
    assert pts.shape == (64, 2) and ((pts.norm(dim=1) - 0.5).abs() < 0.02).all()
    assert CALIBRATION_PRESETS["mesh"]["targets"][0] == pytest.approx(1e-2)
