"""Edits across a mip stack: the level-to-base correspondence recovers a simulated densification's parents, and one
operation (and its undo) reaches the corresponding Gaussians of every level."""
from __future__ import annotations

import random

import pytest
import torch

from methods.gaussians import edit as E
from methods.gaussians.model import PARAM_NAMES, GaussianModel
from methods.gaussians.stack_edit import StackSession, match_level


def _base(n: int = 3000, seed: int = 0) -> GaussianModel:
    g = torch.Generator().manual_seed(seed)
    m = GaussianModel.random_in_box(n, seed=seed, sh_degree=1)
    with torch.no_grad():
        m.log_scales.copy_(torch.log(torch.full((n, 3), 0.004)) + 0.3 * torch.randn(n, 3, generator=g))
        m.sh_dc.copy_(torch.randn(n, 1, 3, generator=g))
        m.logit_opacities.copy_(torch.randn(n, generator=g))
    return m


def _densified(base: GaussianModel, seed: int = 1) -> tuple[GaussianModel, torch.Tensor]:
    """A level as finetuning makes it with position LR 0: opacities and colours changed, 10 % pruned, 5 % cloned
    (appended copies), 5 % split into two children drawn from the parent (scales / 1.6), the parents removed —
    the same row order as densify_and_prune: cat(old, clones, children)[keep]. Returns it and each row's parent."""
    g = torch.Generator().manual_seed(seed)
    n = base.num_gaussians
    r = torch.rand(n, generator=g)
    prune, clone, split = r < 0.10, (r >= 0.10) & (r < 0.15), (r >= 0.15) & (r < 0.20)
    p = {k: getattr(base, k).detach().clone() for k in PARAM_NAMES}
    p["logit_opacities"] += 0.5 * torch.randn(n, generator=g)
    p["sh_dc"] += 0.1 * torch.randn(p["sh_dc"].shape, generator=g)
    parent = torch.arange(n)
    sp = torch.nonzero(split).flatten().repeat(2)
    children = {k: v[sp].clone() for k, v in p.items()}
    children["means"] += torch.randn(len(sp), 3, generator=g) * p["log_scales"][sp].exp()
    children["log_scales"] -= torch.log(torch.tensor(1.6))
    full = {k: torch.cat([p[k], p[k][clone], children[k]]) for k in PARAM_NAMES}
    parents = torch.cat([parent, parent[clone], parent[sp]])
    keep = torch.cat([~(prune | split), torch.ones(int(clone.sum()) + len(sp), dtype=torch.bool)])
    level = GaussianModel(**{k: v[keep] for k, v in full.items()})
    return level, parents[keep]


def test_the_correspondence_recovers_the_parents_of_a_simulated_densification():
    base = _base()
    level, parents = _densified(base)
    c = match_level(base, level)
    right = c.index == parents
    assert float(right.float().mean()) >= 0.97, c.summary()
    assert c.by_index > 0 and c.by_position > 0 and c.by_radius > 0, c.summary()
    exact = slice(0, len(parents) - c.by_radius - c.unmatched)   # kept and cloned rows come first (row order)
    assert c.by_index + c.by_position == len(parents[exact]) and bool(right[exact].all())  # exact centres: no error
    children = slice(len(parents[exact]), None)
    assert float(right[children].float().mean()) >= 0.8, c.summary()  # split children: the nearest is mostly theirs
    assert c.unmatched <= 0.02 * len(parents), c.summary()


def _levels(base):
    return [(0.25, _densified(base, seed=2)[0]), (0.5, _densified(base, seed=3)[0])]


def _stack_state(s: StackSession) -> list[dict[str, torch.Tensor]]:
    out = []
    for sess in [s] + [lv for _, lv, _ in s.levels]:
        d = {k: getattr(sess.model, k).detach().clone() for k in PARAM_NAMES}
        d["alive"], d["selection"] = sess.alive.clone(), sess.selection.clone()
        out.append(d)
    return out


def _same(a, b) -> bool:
    return all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


def test_a_delete_reaches_the_corresponding_gaussians_of_every_level_and_one_undo_restores_all():
    base = _base(2000)
    s = StackSession(base, _levels(base))
    before = _stack_state(s)
    s.apply(E.SelectSphere(center=(0.3, 0.0, 0.0), radius=0.4))
    s.apply(E.Delete())
    dead = ~s.alive
    assert 0 < int(dead.sum()) < 2000
    for _, lv, corr in s.levels:
        matched = corr.index >= 0
        assert torch.equal(~lv.alive[matched], dead[corr.index[matched]])  # exactly the corresponding ones
        assert bool(lv.alive[~matched].all())                               # unmatched ones stay
    after = _stack_state(s)
    s.undo()
    s.undo()
    assert _same(_stack_state(s), before)
    s.redo()
    s.redo()
    assert _same(_stack_state(s), after)


def test_recolour_and_a_centroid_rotation_move_every_level_like_the_base():
    base = _base(2000)
    s = StackSession(base, _levels(base))
    s.apply(E.SelectBox(lo=(-0.2, -0.2, -0.2), hi=(0.5, 0.5, 0.5)))
    s.apply(E.Transform(rotate=(0.8, 0.0, 0.6, 0.0), translate=(0.1, 0.0, 0.0)))
    s.apply(E.Recolour(hue=90.0))
    for _, lv, corr in s.levels:
        both = (corr.index >= 0) & lv.selection
        idx = torch.nonzero(both).flatten()
        same_place = idx[: int(len(idx) * 0.5)]
        # a level row that sat exactly on its base row before the edit sits exactly on it after: same pivot
        exact = same_place[torch.isclose(lv.model.means.detach()[same_place],
                                         base.means.detach()[corr.index[same_place]], atol=1e-5).all(1)]
        assert len(exact) > 0.4 * len(same_place)
        assert bool(lv.selection[idx].all())


def test_a_random_sequence_on_a_stack_undoes_to_the_original_and_bad_stacks_are_one_line():
    rng = random.Random(5)
    base = _base(1500)
    s = StackSession(base, _levels(base))
    original = _stack_state(s)
    applied = 0
    while applied < 60:
        c = tuple(rng.uniform(-1, 1) for _ in range(3))
        op = rng.choice([E.SelectSphere(center=c, radius=rng.uniform(0.2, 1.0), mode=rng.choice(E.MODES)),
                         E.Invert(), E.Delete(), E.ScaleOpacity(factor=rng.uniform(0, 2)), E.Grow(radius=0.05),
                         E.Recolour(hue=rng.uniform(-180, 180)), E.Transform(translate=c, scale=rng.uniform(0.5, 2)),
                         E.Crop(shape="sphere", center=c, radius=rng.uniform(1.0, 3.0))])
        try:
            s.apply(op)
        except E.EditError:
            continue
        applied += 1
        if rng.random() < 0.2:
            s.undo()
            s.redo()
    assert s.counts[0] < 1500 and all(lv.counts[0] < lv.n for _, lv, _ in s.levels)
    while s.undo() is not None:
        pass
    assert _same(_stack_state(s), original)

    odd = GaussianModel.random_in_box(100, seed=1, sh_degree=0)
    with pytest.raises(E.EditError, match="the x0.5 level has SH degree 0, the base 1") as e:
        StackSession(base, [(0.5, odd)])
    assert "\n" not in str(e.value)
