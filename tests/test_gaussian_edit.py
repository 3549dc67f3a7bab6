"""The splat editor's edit model: every operation and its undo are bit-exact, redo equals the first apply, closed
forms for the colour and transform maths, ops files round-trip, bad input is one line and changes nothing."""
from __future__ import annotations

import math
import random

import pytest
import torch

from methods.gaussians import edit as E
from methods.gaussians.model import PARAM_NAMES, GaussianModel


def _model(n: int = 400, seed: int = 0) -> GaussianModel:
    g = torch.Generator().manual_seed(seed)
    m = GaussianModel.random_in_box(n, seed=seed, sh_degree=1)
    with torch.no_grad():
        m.logit_opacities.copy_(torch.randn(n, generator=g) * 2)
        m.sh_dc.copy_(torch.randn(n, 1, 3, generator=g))
        m.sh_rest.copy_(torch.randn(m.sh_rest.shape, generator=g) * 0.1)
        m.quats.copy_(torch.randn(n, 4, generator=g))
        m.log_scales.add_(torch.randn(n, 3, generator=g))
    return m


def _state(s: E.EditSession) -> dict[str, torch.Tensor]:
    out = {k: getattr(s.model, k).detach().clone() for k in PARAM_NAMES}
    out["alive"], out["selection"] = s.alive.clone(), s.selection.clone()
    return out


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


ONE_OF_EACH = [
    E.SelectBox(lo=(-0.5, -0.5, -0.5), hi=(0.6, 0.6, 0.6)),
    E.SelectSphere(center=(0.6, 0.3, 0.1), radius=0.7, mode="add"),
    E.SelectOpacity(min=0.0, max=0.3, mode="intersect"),
    E.SelectScale(min=0.05, mode="remove"),
    E.SelectIndices(indices=(1, 5, 9, 200), mode="add"),
    E.SelectAll(),
    E.Invert(),
    E.SelectNone(),
    E.Grow(radius=0.3),
    E.Shrink(radius=0.2),
    E.Delete(),
    E.Crop(shape="sphere", center=(0.0, 0.0, 0.0), radius=1.2),
    E.Crop(shape="box", lo=(-1.0, -1.0, -1.0), hi=(1.0, 1.0, 1.0)),
    E.ScaleOpacity(factor=0.25),
    E.Recolour(hue=40.0, saturation=1.5, brightness=0.8, shift=(0.05, 0.0, -0.02)),
    E.Transform(translate=(0.1, -0.2, 0.3), rotate=(0.9, 0.1, 0.3, -0.2), scale=1.3),
    E.Transform(rotate=(0.0, 0.0, 0.0, 1.0), pivot=(0.5, 0.5, 0.0)),
]


@pytest.mark.parametrize("op", ONE_OF_EACH, ids=lambda op: op.label()[:40])
def test_each_operation_and_its_undo_are_bit_exact_and_redo_equals_the_first_apply(op):
    s = E.EditSession(_model())
    s.apply(E.SelectSphere(center=(0.0, 0.0, 0.0), radius=0.9))
    before = _state(s)
    s.apply(op)
    after = _state(s)
    assert not _equal(before, after), "the operation changed nothing: the test would prove nothing"
    assert s.undo() is op and _equal(_state(s), before)
    assert s.redo() is op and _equal(_state(s), after)
    assert s.undo() is op and _equal(_state(s), before)


def test_a_random_sequence_of_200_operations_and_200_undos_returns_the_original():
    rng = random.Random(3)
    s = E.EditSession(_model(600, seed=1))
    original = _state(s)
    applied = 0
    while applied < 200:
        kind = rng.randrange(8)
        c = tuple(rng.uniform(-1, 1) for _ in range(3))
        op = [E.SelectSphere(center=c, radius=rng.uniform(0.2, 1.0), mode=rng.choice(E.MODES)),
              E.SelectBox(lo=tuple(v - 0.4 for v in c), hi=tuple(v + 0.4 for v in c), mode=rng.choice(E.MODES)),
              E.Invert(), E.Delete(), E.ScaleOpacity(factor=rng.uniform(0, 2)),
              E.Recolour(hue=rng.uniform(-180, 180), saturation=rng.uniform(0, 2), brightness=rng.uniform(0, 2)),
              E.Transform(translate=c, rotate=tuple(rng.gauss(0, 1) for _ in range(4)), scale=rng.uniform(0.5, 2)),
              E.Crop(shape="sphere", center=c, radius=rng.uniform(1.0, 3.0))][kind]
        try:
            s.apply(op)
        except E.EditError:       # empty selection, nothing to crop: nothing changed, counted separately
            continue
        applied += 1
        if rng.random() < 0.2 and s.position:   # interleaved undo/redo
            s.undo()
            s.redo()
    assert s.counts[0] < 600            # something was deleted along the way
    for _ in range(200):
        assert s.undo() is not None
    assert s.undo() is None and _equal(_state(s), original)


def test_closed_forms_of_recolour_opacity_transform_and_selections():
    pts = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.3, 0.3, 0.3], [-2.0, 0.0, 0.0]])
    m = GaussianModel.from_points(pts, torch.full((4, 3), 0.5), sh_degree=0)
    with torch.no_grad():
        m.sh_dc[0, 0] = torch.tensor([1.0, 0.0, 0.0]).sub(0.5).div(E.SH_C0)     # pure red
        m.logit_opacities[:] = torch.logit(torch.tensor([0.6, 0.05, 0.5, 0.9]))
        m.quats[:] = torch.tensor([1.0, 0.0, 0.0, 0.0])
        m.log_scales[:] = torch.log(torch.tensor([[0.01] * 3, [0.5, 0.01, 0.01], [0.02] * 3, [0.02] * 3]))
    s = E.EditSession(m)
    s.apply(E.SelectSphere(center=(0.0, 0.0, 0.0), radius=1.0))
    assert s.selected().tolist() == [0, 2]
    s.apply(E.SelectBox(lo=(-3, -3, -3), hi=(0.5, 3, 3), mode="add"))
    assert s.selected().tolist() == [0, 1, 2, 3]
    s.apply(E.SelectOpacity(max=0.1))
    assert s.selected().tolist() == [1]                          # the faint one
    s.apply(E.SelectScale(min=0.1))
    assert s.selected().tolist() == [1]                          # the large one
    s.apply(E.SelectIndices(indices=(0,)))
    s.apply(E.Recolour(hue=120.0))                               # red -> green exactly (a cyclic permutation)
    rgb = m.sh_dc.detach()[0, 0] * E.SH_C0 + 0.5
    assert torch.allclose(rgb, torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    s.apply(E.Recolour(saturation=0.0, brightness=2.0))           # grey of the mean, doubled
    rgb = m.sh_dc.detach()[0, 0] * E.SH_C0 + 0.5
    assert torch.allclose(rgb, torch.full((3,), 2.0 / 3.0), atol=1e-6)
    s.apply(E.ScaleOpacity(factor=0.5))
    assert abs(float(torch.sigmoid(m.logit_opacities.detach()[0])) - 0.3) < 1e-6
    half = math.sqrt(0.5)
    s.apply(E.Transform(rotate=(half, 0.0, 0.0, half), scale=2.0, translate=(0.0, 0.0, 1.0), pivot=(0, 0, 0)))
    assert torch.allclose(m.means.detach()[0], torch.tensor([0.0, 2.0, 1.0]), atol=1e-6)   # 90° about z, x2, +z
    from render.splat.projection import quat_to_rotmat
    rz = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(quat_to_rotmat(m.quats.detach()[:1])[0], rz, atol=1e-6)
    assert torch.allclose(m.log_scales.detach()[0].exp(), torch.full((3,), 0.02), atol=1e-7)
    assert torch.equal(m.means.detach()[1:], pts[1:])            # unselected rows untouched


def test_grow_and_shrink_match_brute_force_distances_and_the_display_drops_deleted_and_tints_selected():
    m = _model(3000, seed=4)
    s = E.EditSession(m)
    s.apply(E.SelectSphere(center=(0.2, 0.0, 0.0), radius=0.5))
    s.apply(E.SelectIndices(indices=(7,)))
    s.apply(E.Delete())                                   # a dead one must neither grow nor be grown into
    s.apply(E.SelectSphere(center=(0.2, 0.0, 0.0), radius=0.5))
    sel, alive = s.selection.clone(), s.alive.clone()
    d = torch.cdist(m.means.detach().double(), m.means.detach().double())
    s.apply(E.Grow(radius=0.15))
    near_sel = (d[:, sel] <= 0.15).any(1)
    assert torch.equal(s.selection, sel | (near_sel & alive)) and int(s.selection.sum()) > int(sel.sum())
    grown = s.selection.clone()
    s.apply(E.Shrink(radius=0.15))
    near_unsel = (d[:, alive & ~grown] <= 0.15).any(1)
    assert torch.equal(s.selection, grown & ~near_unsel) and int(s.selection.sum()) < int(grown.sum())

    shown = s.display()
    assert shown.num_gaussians == 2999
    keep = s.alive
    hit = s.selection[keep]
    rgb = shown.sh_dc.detach()[:, 0] * E.SH_C0 + 0.5
    orig = m.sh_dc.detach()[keep][:, 0] * E.SH_C0 + 0.5
    tinted = (1 - E.TINT_WEIGHT) * orig + E.TINT_WEIGHT * torch.tensor(E.SELECTION_TINT)
    assert torch.allclose(rgb[hit], tinted[hit], atol=1e-5) and torch.equal(rgb[~hit], orig[~hit])
    assert torch.equal(s.display(tint=False).sh_dc.detach(), m.sh_dc.detach()[keep])


def test_ops_files_round_trip_and_bad_input_is_one_line_with_nothing_changed():
    import json

    s = E.EditSession(_model())
    for op in ONE_OF_EACH[:5] + [E.Recolour(hue=10.0), E.Transform(translate=(1, 2, 3)), E.Delete()]:
        s.apply(op)
    entries = json.loads(json.dumps(s.export_ops()))
    fresh = E.EditSession(_model())
    assert fresh.replay(entries) == len(entries)
    assert _equal(_state(fresh), _state(s))
    edited = fresh.edited()
    assert edited.num_gaussians == fresh.counts[0] < 400
    assert torch.equal(edited.means.detach(), fresh.model.means.detach()[fresh.alive])

    bad = [({"op": "explode"}, "unknown operation 'explode'"),
           ({"op": "opacity", "factor": -1}, "factor must be >= 0"),
           ({"op": "opacity", "factor": float("nan")}, "finite"),
           ({"op": "select_box", "lo": [1, 1, 1], "hi": [0, 0, 0]}, "lo must be <= hi"),
           ({"op": "select_box", "lo": [1, 1]}, "3 numbers"),
           ({"op": "transform", "rotate": [0, 0, 0, 0]}, "non-zero quaternion"),
           ({"op": "select_sphere", "colour": 3}, "unknown field"),
           ({"op": "select_indices", "indices": [0, 10 ** 6]}, "0..399"),
           ("delete", "an object with an 'op' field")]
    for entry, words in bad:
        t = E.EditSession(_model())
        before = _state(t)
        with pytest.raises(E.EditError, match=words) as e:
            t.replay([{"op": "select_all"}, entry])
        assert "\n" not in str(e.value) and "operation 1" in str(e.value)
        assert _equal(_state(t), before) and t.position == 0 and t.history == []
    t = E.EditSession(_model())
    with pytest.raises(E.EditError, match="selection is empty"):
        t.apply(E.Delete())
    assert t.revision == 0 and t.history == []


def test_history_memory_is_bounded_by_dropping_the_oldest_entries():
    s = E.EditSession(_model(2000), max_history_mb=0.05)   # ~50 kB: a few full-selection recolours
    s.apply(E.SelectAll())
    for i in range(20):
        s.apply(E.Recolour(hue=float(i)))
    assert sum(d.nbytes for _, d in s.history) <= 0.05 * 2 ** 20 and len(s.history) < 21
    n = len(s.history)
    assert all(s.undo() is not None for _ in range(n)) and s.undo() is None


def test_the_edit_command_replays_an_ops_file_and_never_half_writes(tmp_path, capsys):
    import json

    import main
    from methods.gaussians.ply import load_ply, save_ply

    src = tmp_path / "in.ply"
    save_ply(_model(500, seed=2), src)
    ops = [{"op": "select_sphere", "center": [0, 0, 0], "radius": 0.8}, {"op": "invert"}, {"op": "delete"},
           {"op": "select_all"}, {"op": "recolour", "hue": 90.0}]
    (tmp_path / "ops.json").write_text(json.dumps({"ops": ops}))
    out = tmp_path / "out.ply"
    assert main.main(["edit", "gaussians", str(src), "--ops", str(tmp_path / "ops.json"), "--out", str(out)]) == 0
    session = E.EditSession(load_ply(src))
    session.replay(ops)
    expected, got = session.edited(), load_ply(out)
    assert 0 < got.num_gaussians == expected.num_gaussians < 500
    assert all(torch.equal(getattr(got, k).detach(), getattr(expected, k).detach()) for k in PARAM_NAMES)
    assert "5 operations, 500 -> " in capsys.readouterr().out
    # bad ops, the input as output, a missing ops file: one line each, nothing written or replaced
    before = src.read_bytes()
    cases = [([{"op": "delete"}], "selection is empty"), ([{"op": "recolour", "hue": "red"}], "recolour"),
             ({"ops": 3}, "expected a list")]
    for doc, words in cases:
        (tmp_path / "bad.json").write_text(json.dumps(doc))
        target = tmp_path / "never.ply"
        assert main.main(["edit", "gaussians", str(src), "--ops", str(tmp_path / "bad.json"), "--out",
                          str(target)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0] and "bad.json" in err[0] and not target.exists()
    assert main.main(["edit", "gaussians", str(src), "--ops", str(tmp_path / "ops.json"), "--out", str(src)]) == 1
    assert "--force" in capsys.readouterr().err and src.read_bytes() == before
    assert main.main(["edit", "gaussians", str(src), "--ops", str(tmp_path / "nope.json"), "--out", str(out)]) == 1
    assert "no such file" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.tmp*"))


def test_rectangle_and_lasso_select_exactly_the_centres_projected_inside():
    import numpy as np

    from render.camera import Camera

    cam = Camera.look_at((0.0, -4.0, 0.0), (0.0, 0.0, 0.0), width=200, height=100)
    # a 20 x 10 grid of points placed at known pixel centres (u, v) = (10i + 5, 10j + 5), at varied depths
    u, v = np.meshgrid(np.arange(20) * 10 + 5.0, np.arange(10) * 10 + 5.0)
    uv = np.stack([u.ravel(), v.ravel()], -1)
    depth = 2.0 + (np.arange(len(uv)) % 7) * 0.5
    pts = cam.unproject(uv, depth)
    behind = cam.unproject(np.array([[55.0, 55.0]]), np.array([1.0]))
    behind = 2 * cam.position - behind          # mirrored through the camera centre: projects inside, but behind
    means = torch.tensor(np.concatenate([pts, behind]), dtype=torch.float32)
    got = E.screen_select(means, cam, rect=(92.0, 28.0, 41.0, 71.0))        # any corner order
    expected = [k for k, (a, b) in enumerate(uv) if 41 <= a <= 92 and 28 <= b <= 71]
    assert got.tolist() == expected and len(expected) == 5 * 4
    tri = [(0.0, 0.0), (200.0, 0.0), (0.0, 100.0)]                         # lower-left half of the image
    got = E.screen_select(means, cam, polygon=tri)
    expected = [k for k, (a, b) in enumerate(uv) if a / 200 + b / 100 < 1]
    assert got.tolist() == expected and 0 < len(expected) < 200
    with pytest.raises(E.EditError, match="at least 3"):
        E.screen_select(means, cam, polygon=[(0, 0), (1, 1)])
    # footprints: a Gaussian whose centre is 4 px outside is taken once its disc (radius · f / z px) reaches in
    near = cam.unproject(np.array([[100.0, 50.0], [100.0, 50.0]]), np.array([2.0, 2.0]))
    m2 = torch.tensor(near, dtype=torch.float32)
    r_px = np.array([3.0, 5.0])                       # pixel radii: one short of the edge, one past it
    radii = torch.tensor(r_px * 2.0 / cam.fx)          # world radii at depth 2
    assert E.screen_select(m2, cam, rect=(104, 0, 200, 100)).tolist() == []
    assert E.screen_select(m2, cam, rect=(104, 0, 200, 100), radii=radii).tolist() == [1]
    square = [(104.0, 0.0), (200.0, 0.0), (200.0, 100.0), (104.0, 100.0)]
    assert E.screen_select(m2, cam, polygon=square, radii=radii).tolist() == [1]
    assert E.screen_select(means, cam, polygon=tri, radii=torch.zeros(len(means))).tolist() == expected


def test_a_rotation_turns_the_view_dependent_colour_with_the_gaussians():
    """After rotating by R, the colour seen from direction R d is the colour seen before from d (every band)."""
    from render.splat.projection import quat_to_rotmat
    from render.splat.sh import eval_sh

    m = GaussianModel.random_in_box(50, seed=7, sh_degree=3)
    with torch.no_grad():
        m.sh_rest.copy_(torch.randn(m.sh_rest.shape, generator=torch.Generator().manual_seed(1)))
    coeffs0 = torch.cat([m.sh_dc.detach(), m.sh_rest.detach()], 1).double()
    q = (0.7, 0.2, -0.5, 0.4)
    s = E.EditSession(m)
    s.apply(E.SelectAll())
    s.apply(E.Transform(rotate=q))
    r = quat_to_rotmat(torch.tensor(q, dtype=torch.float64)[None] / math.hypot(*q))[0]
    coeffs1 = torch.cat([m.sh_dc.detach(), m.sh_rest.detach()], 1).double()
    d = torch.nn.functional.normalize(torch.randn(50, 3, generator=torch.Generator().manual_seed(2),
                                                  dtype=torch.float64), dim=1)
    before = eval_sh(coeffs0, d, 3)
    after = eval_sh(coeffs1, d @ r.T, 3)
    assert torch.allclose(before, after, atol=1e-4), (before - after).abs().max()
    assert not torch.allclose(eval_sh(coeffs1, d, 3), before, atol=1e-2)  # the bands did turn
