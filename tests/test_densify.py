"""Densification, pruning, opacity reset and the optimizer bookkeeping, on hand-built Gaussians."""
from __future__ import annotations

import math

import pytest
import torch

from methods.gaussians import (
    DensifyConfig,
    DensifyStats,
    GaussianModel,
    LearningRates,
    densify_and_prune,
    make_optimizer,
    position_lr,
    reset_opacity,
    update_position_lr,
)
from methods.gaussians.model import quat_to_rotmat

EXTENT = 1.0


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _scene() -> GaussianModel:
    """A: small, high gradient (clone). B: large, rotated, high gradient (split). C: transparent (prune).
    D: ordinary, low gradient (keep)."""
    means = torch.tensor([[0.0, 0, 0], [1.0, 2.0, 3.0], [5.0, 5, 5], [-1.0, 0, 0]])
    q_b = torch.tensor([math.cos(0.4), math.sin(0.4) * 0.6, 0.0, math.sin(0.4) * 0.8])  # 0.8 rad about (0.6,0,0.8)
    quats = torch.stack([torch.tensor([1.0, 0, 0, 0]), q_b * 2.0, torch.tensor([1.0, 0, 0, 0]),
                         torch.tensor([0.0, 1, 0, 0])])
    scales = torch.tensor([[0.005, 0.002, 0.001], [0.05, 0.02, 0.01], [0.005, 0.005, 0.005], [0.004, 0.004, 0.004]])
    logits = torch.tensor([_logit(0.5), _logit(0.7), _logit(0.001), _logit(0.9)])
    g = torch.Generator().manual_seed(1)
    dc = torch.randn(4, 1, 3, generator=g)
    rest = torch.randn(4, 15, 3, generator=g)
    return GaussianModel(means, quats, torch.log(scales), logits, dc, rest, filter_3d=torch.tensor([.1, .2, .3, .4]))


def _stats(grads: list[float]) -> DensifyStats:
    s = DensifyStats.zeros(len(grads))
    s.grad_accum += torch.tensor(grads) * 2
    s.count += 2
    return s


def _optimizer_with_state(model: GaussianModel) -> torch.optim.Adam:
    opt = make_optimizer(model, EXTENT)
    loss = sum((p * (i + 1)).square().sum() for i, p in enumerate(model.params().values()))
    loss.backward()
    opt.step()
    opt.zero_grad()
    return opt


# ----- statistics -----------------------------------------------------------------------------------------------
def test_stats_accumulate_ndc_gradient_norms():
    s = DensifyStats.zeros(3)
    grad = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 10.0]])
    s.update(grad, torch.tensor([5, 0, 2]), width=100, height=50)      # pixel grad × (W/2, H/2)
    s.update(grad, torch.tensor([7, 3, 0]), width=100, height=50)
    want0 = math.hypot(1 * 50, 2 * 25)
    assert s.grad_accum.tolist() == pytest.approx([2 * want0, math.hypot(150, 100), math.hypot(500, 250)])
    assert s.count.tolist() == [2, 1, 1]
    assert s.max_radii.tolist() == [7, 3, 2]
    assert s.mean_grad().tolist() == pytest.approx([want0, math.hypot(150, 100), math.hypot(500, 250)])
    z = DensifyStats.zeros(2)
    assert z.mean_grad().tolist() == [0.0, 0.0]  # never seen: 0, not NaN
    with pytest.raises(ValueError, match="backward"):
        s.update(None, torch.zeros(3), 10, 10)
    with pytest.raises(ValueError, match=r"\(3,2\)"):
        s.update(torch.zeros(4, 2), torch.zeros(4), 10, 10)


# ----- clone / split / prune ------------------------------------------------------------------------------------
def test_clone_split_prune_and_adam_rows():
    m = _scene()
    before = {k: v.detach().clone() for k, v in m.params().items()}
    opt = _optimizer_with_state(m)
    old_state = {name: {k: (v.clone() if torch.is_tensor(v) else v) for k, v in opt.state[p].items()}
                 for name, p in m.params().items()}
    after_step = {k: v.detach().clone() for k, v in m.params().items()}
    stats = _stats([1e-3, 1e-3, 0.0, 1e-5])
    seed = 1234
    counts = densify_and_prune(m, stats, opt, DensifyConfig(), EXTENT, it=600,
                               generator=torch.Generator().manual_seed(seed))
    assert counts == {"cloned": 1, "split": 1, "pruned": 1, "before": 4, "after": 5}
    # order: kept originals [A, D], clone [A'], children [B1, B2]
    p = m.params()
    assert m.num_gaussians == 5
    for name in p:
        assert torch.equal(p[name][0], after_step[name][0]), name   # A unchanged
        assert torch.equal(p[name][1], after_step[name][3]), name   # D unchanged
        assert torch.equal(p[name][2], after_step[name][0]), name   # A' is an exact duplicate
    # split children: scale / 1.6, positions μ + R·(ε ⊙ s) with the seeded ε, other attributes copied
    s_b = torch.exp(after_step["log_scales"][1])
    torch.testing.assert_close(m.scales[3:].detach(), (s_b / 1.6).expand(2, 3))
    eps = torch.randn(2, 3, generator=torch.Generator().manual_seed(seed))
    R = quat_to_rotmat(after_step["quats"][1:2])[0]
    want = after_step["means"][1] + (eps * s_b) @ R.T
    torch.testing.assert_close(m.means[3:].detach(), want)
    assert not torch.allclose(m.means[3], m.means[4])
    for name in ("quats", "logit_opacities", "sh_dc", "sh_rest"):
        assert torch.equal(p[name][3], after_step[name][1]) and torch.equal(p[name][4], after_step[name][1]), name
    assert not torch.equal(before["means"], after_step["means"])  # the optimizer step did move things
    # Adam: same groups hold the new Parameters; kept rows keep their moments, new rows start at zero
    for group in opt.param_groups:
        name = group["name"]
        assert group["params"][0] is p[name]
        st = opt.state[p[name]]
        for key in ("exp_avg", "exp_avg_sq"):
            old = old_state[name][key]
            assert st[key].shape == p[name].shape
            assert torch.equal(st[key][0], old[0]) and torch.equal(st[key][1], old[3]), (name, key)
            assert not st[key][2:].any(), (name, key)
            assert old[[0, 3]].abs().sum() > 0, (name, key)  # the kept moments are not trivially zero
        assert torch.equal(st["step"], old_state[name]["step"])
    # bookkeeping that follows N
    assert len(stats) == 5 and not stats.grad_accum.any() and not stats.count.any()
    torch.testing.assert_close(m.filter_3d, torch.tensor([.1, .4, .1, .2, .2]))
    # and training continues with the new shapes
    sum(v.square().sum() for v in m.params().values()).backward()
    opt.step()
    assert opt.state[m.means]["exp_avg"][2:].abs().sum() > 0


def test_big_gaussians_pruned_only_after_first_reset():
    m = _scene()
    with torch.no_grad():
        m.log_scales[3] = math.log(0.2)  # D: larger than 0.1 × extent, but low gradient
    for it, expect_d in ((3000, True), (3100, False)):
        mm = m.clone()
        densify_and_prune(mm, _stats([0, 0, 0, 0]), None, DensifyConfig(), EXTENT, it=it)
        assert (mm.num_gaussians == 3) is expect_d, it  # C is always pruned (opacity)
        assert bool((mm.means.detach() == torch.tensor([-1.0, 0, 0])).all(1).any()) is expect_d


def test_screen_size_prune_is_opt_in():
    m = _scene()
    stats = _stats([0, 0, 0, 0])
    stats.max_radii = torch.tensor([30.0, 1.0, 1.0, 1.0])
    kept = m.clone()
    densify_and_prune(kept, stats, None, DensifyConfig(), EXTENT, it=5000)
    assert kept.num_gaussians == 3  # reference behaviour: only C (opacity) goes
    stats = _stats([0, 0, 0, 0])
    stats.max_radii = torch.tensor([30.0, 1.0, 1.0, 1.0])
    pruned = m.clone()
    densify_and_prune(pruned, stats, None, DensifyConfig(screen_size_prune=True), EXTENT, it=5000)
    assert pruned.num_gaussians == 2
    assert not bool((pruned.means.detach() == 0).all(1).any())  # A (radius 30 px) is gone


def test_densify_rejects_mismatched_inputs():
    m = _scene()
    with pytest.raises(ValueError, match="stats track 3"):
        densify_and_prune(m, DensifyStats.zeros(3), None, DensifyConfig(), EXTENT, it=600)
    opt = make_optimizer(m.clone(), EXTENT)
    with pytest.raises(ValueError, match="make_optimizer"):
        densify_and_prune(m, _stats([0] * 4), opt, DensifyConfig(), EXTENT, it=600)


# ----- opacity reset --------------------------------------------------------------------------------------------
def test_reset_opacity_plain_and_filtered():
    m = _scene()
    opt = _optimizer_with_state(m)
    param = m.logit_opacities
    other = opt.state[m.means]["exp_avg"].clone()
    o_before = m.opacities.detach().clone()
    reset_opacity(m, opt, use_3d_filter=False)
    assert m.logit_opacities is param  # updated in place: optimizer groups untouched
    torch.testing.assert_close(m.opacities.detach(), torch.clamp(o_before, max=0.01))
    assert float(o_before[2]) < 0.01 and float(m.opacities[2].detach()) == pytest.approx(float(o_before[2]))
    st = opt.state[m.logit_opacities]
    assert not st["exp_avg"].any() and not st["exp_avg_sq"].any()
    assert torch.equal(opt.state[m.means]["exp_avg"], other)

    f = _scene()
    with torch.no_grad():
        f.filter_3d = torch.tensor([0.001, 0.02, 0.0, 0.004])
    _, eff_before = f.effective(True)
    reset_opacity(f, None, use_3d_filter=True)
    _, eff_after = f.effective(True)
    torch.testing.assert_close(eff_after.detach(), torch.clamp(eff_before.detach(), max=0.01))
    # the raw opacity is the capped effective one divided by the filter coefficient, so it is above 0.01
    assert float(f.opacities[1].detach()) > 0.011


# ----- optimizer and learning rates -----------------------------------------------------------------------------
def test_make_optimizer_groups():
    m = _scene()
    opt = make_optimizer(m, extent=2.5)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == pytest.approx({"means": 1.6e-4 * 2.5, "quats": 1e-3, "log_scales": 5e-3, "logit_opacities": 0.05,
                                 "sh_dc": 2.5e-3, "sh_rest": 1.25e-4})
    assert all(g["eps"] == 1e-15 for g in opt.param_groups)
    assert [g["params"][0] for g in opt.param_groups] == list(m.params().values())
    lr = update_position_lr(opt, 30_000, 2.5)
    assert lr == pytest.approx(1.6e-6 * 2.5) and opt.param_groups[0]["lr"] == lr
    half = make_optimizer(m, 1.0, LearningRates(scaling=0.001))
    assert {g["name"]: g["lr"] for g in half.param_groups}["log_scales"] == 0.001


def test_position_lr_schedule():
    ext = 3.0
    assert position_lr(0, ext) == pytest.approx(1.6e-4 * ext, rel=1e-12)
    assert position_lr(30_000, ext) == pytest.approx(1.6e-6 * ext, rel=1e-12)
    assert position_lr(60_000, ext) == pytest.approx(1.6e-6 * ext, rel=1e-12)
    assert position_lr(15_000, ext) == pytest.approx(ext * math.sqrt(1.6e-4 * 1.6e-6), rel=1e-12)
    # log-linear: equal steps multiply the rate by the same factor
    r1 = position_lr(1000, ext) / position_lr(0, ext)
    r2 = position_lr(21_000, ext) / position_lr(20_000, ext)
    assert r1 == pytest.approx(r2, rel=1e-12) and r1 == pytest.approx(0.01 ** (1000 / 30_000), rel=1e-12)
    assert position_lr(-1, ext) == 0.0
    assert position_lr(100, ext, lr_init=1e-3, lr_final=1e-5, max_steps=200) == pytest.approx(ext * 1e-4)


# ----- schedule and presets -------------------------------------------------------------------------------------
def test_schedule_matches_reference():
    cfg = DensifyConfig.paper()
    fired = [it for it in range(1, 30_001) if cfg.should_densify(it)]
    assert fired[0] == 600 and fired[-1] == 14_900 and len(fired) == 144
    resets = [it for it in range(1, 30_001) if cfg.should_reset_opacity(it)]
    assert resets == [3000, 6000, 9000, 12_000]
    assert [it for it in range(1, 30_001) if cfg.should_reset_opacity(it, white_background=True)] == \
        [500, 3000, 6000, 9000, 12_000]
    assert not cfg.prunes_big(3000) and cfg.prunes_big(3001)


def test_presets():
    assert DensifyConfig.preset("paper") == DensifyConfig()
    small = DensifyConfig.preset("cpu_small")
    assert small.until_iter < 3000 and small.grad_threshold == 2e-4
    assert any(small.should_densify(it) for it in range(1, 3001))
    with pytest.raises(KeyError, match="cpu_small"):
        DensifyConfig.preset("nope")
    sc = DensifyConfig().scaled(3000)
    assert (sc.from_iter, sc.until_iter, sc.interval, sc.opacity_reset_interval) == (50, 1500, 10, 300)
