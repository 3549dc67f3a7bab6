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


def _write_stack(tmp_path, base):
    from methods.gaussians.mipmap import MipLevel, MipStack
    from methods.gaussians.ply import save_ply

    save_ply(base, tmp_path / "base.ply")
    levels = []
    for scale, seed in ((0.125, 2), (0.5, 3)):
        name = f"x{scale:g}.ply"
        save_ply(_densified(base, seed)[0], tmp_path / name)
        levels.append(MipLevel(scale, name, {}))
    return MipStack("base.ply", tuple(levels)).write(tmp_path / "mipmap.json")


def test_an_edit_shows_at_every_zoom_of_an_open_stack_and_saves_as_a_stack_that_reopens(tmp_path):
    import math

    from methods.gaussians.live_source import SplatSource
    from methods.gaussians.mipmap import MipStack
    from methods.gaussians.ply import load_ply
    from render.camera import Camera
    from render.live import RenderRequest

    path = _write_stack(tmp_path, _base(1500))
    src = SplatSource()
    src.set_stack(str(path))
    s = src.start_editing(wait=True)
    assert isinstance(s, StackSession) and len(s.levels) == 2

    def shown(zoom: float) -> int:
        cam = Camera.look_at((3.0, 0.0, 1.0), (0.0, 0.0, 0.0), width=64, height=48, fov_x=math.radians(50))
        o = src.Options(backend="torch", stack="nearest", edit_revision=s.revision)
        return src.render(RenderRequest(width=64, height=48, zoom=zoom, camera=cam.zoomed(zoom), options=o))\
            .aux["n_gaussians"]

    before = {z: shown(z) for z in (1.0, 0.125)}
    s.apply(E.SelectSphere(center=(0.0, 0.0, 0.0), radius=0.5))
    s.apply(E.Delete())
    after = {z: shown(z) for z in (1.0, 0.125)}
    lv8 = next(lv for sc, lv, _ in s.levels if sc == 0.125)
    assert after[1.0] == s.counts[0] < before[1.0] and after[0.125] == lv8.counts[0] < before[0.125]

    out = tmp_path / "edited" / "mipmap.json"
    line = src.save_edited(str(out))
    assert "wrote" in line
    stack = MipStack.read(out)
    assert load_ply(out.parent / stack.base).num_gaussians == s.counts[0]
    for lv, (scale, sess, _) in zip(stack.levels, s.levels):
        assert lv.scale == scale and load_ply(out.parent / lv.ply).num_gaussians == sess.counts[0]
    assert stack.meta["edited"] == "2 operations"


def test_the_edit_command_replays_ops_on_a_stack_and_refuses_to_replace_its_folder(tmp_path, capsys):
    import json

    import main
    from methods.gaussians.mipmap import MipStack
    from methods.gaussians.ply import load_ply

    path = _write_stack(tmp_path, _base(1200))
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps({"ops": [{"op": "select_sphere", "center": [0, 0, 0], "radius": 0.5},
                                       {"op": "delete"}]}))
    out = tmp_path / "out" / "mipmap.json"
    out.parent.mkdir()
    assert main.main(["edit", "gaussians", str(path), "--ops", str(ops), "--out", str(out)]) == 0
    assert "x0.125" in capsys.readouterr().out
    s = StackSession(load_ply(tmp_path / "base.ply"), [(0.125, load_ply(tmp_path / "x0.125.ply")),
                                                       (0.5, load_ply(tmp_path / "x0.5.ply"))])
    s.replay(json.loads(ops.read_text())["ops"])
    stack = MipStack.read(out)
    assert load_ply(out.parent / "base.ply").num_gaussians == s.counts[0] < 1200
    assert [load_ply(out.parent / lv.ply).num_gaussians for lv in stack.levels] == [lv.counts[0] for _, lv, _
                                                                                    in s.levels]
    before = (tmp_path / "base.ply").read_bytes()
    assert main.main(["edit", "gaussians", str(path), "--ops", str(ops), "--out", str(tmp_path / "new.json")]) != 0
    err = capsys.readouterr().err.strip()
    assert "--force" in err and len(err.splitlines()) == 1 and (tmp_path / "base.ply").read_bytes() == before
