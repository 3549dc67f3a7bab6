"""The splat editor in the real studio: a rectangle dragged over the Splat view selects exactly the Gaussians whose
projected centres it covers (tinted on screen), Delete removes them (fewer Gaussians in the info line, changed
pixels), Ctrl+Z twice brings back the original picture bit for bit. Real X input where xdotool exists, the same
handlers (synthetic input frames, injected keys) otherwise."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from guitools import run_for, run_until, settle

pytestmark = pytest.mark.gui
XDOTOOL = None if os.environ.get("MIPSTUDIO_NO_XDOTOOL") else shutil.which("xdotool")


def _xdo(*args: str) -> None:
    subprocess.run([XDOTOOL, *args], check=True, timeout=10, capture_output=True)


def _window() -> str:
    return subprocess.run([XDOTOOL, "search", "--name", "^mipstudio"], capture_output=True, text=True,
                          timeout=10).stdout.split()[-1]


def _drag(studio, view, a: tuple[float, float], b: tuple[float, float]) -> None:
    """Left-drag from panel fraction ``a`` to ``b``."""
    from app.input import LEFT, InputFrame

    x0, y0, x1, y1 = view.image_rect()
    pa = (x0 + a[0] * (x1 - x0), y0 + a[1] * (y1 - y0))
    pb = (x0 + b[0] * (x1 - x0), y0 + b[1] * (y1 - y0))
    steps = [(pa[0] + t * (pb[0] - pa[0]), pa[1] + t * (pb[1] - pa[1])) for t in np.linspace(0, 1, 6)]
    if XDOTOOL:
        win = _window()
        _xdo("mousemove", "--window", win, str(int(pa[0])), str(int(pa[1])))
        run_for(studio, 0.1)
        _xdo("mousedown", "1")
        run_for(studio, 0.1)
        for x, y in steps[1:]:
            _xdo("mousemove", "--window", win, str(int(x)), str(int(y)))
            run_for(studio, 0.05)
        _xdo("mouseup", "1")
        run_for(studio, 0.2)
        return
    studio.active_view = view.name
    for i, (x, y) in enumerate(steps + [steps[-1]]):
        buttons = frozenset({LEFT}) if i < len(steps) else frozenset()
        view.handle_input(InputFrame((x, y), buttons, frozenset(), frozenset(), 0.0, 0.016), True)
    run_for(studio, 0.1)


def _keys(studio, *keys: str) -> None:
    if XDOTOOL:
        _xdo("key", "+".join(keys))
        run_for(studio, 0.2)
        return
    for k in keys:   # held in order, released together: what "ctrl+z" does
        studio.input.injected_keys.add(k)
        run_for(studio, 0.05)
    run_for(studio, 0.05)
    studio.input.injected_keys.difference_update(keys)
    run_for(studio, 0.1)


def _count(view) -> int:
    import dearpygui.dearpygui as dpg

    return int(re.search(r"([\d,]+) Gaussians", dpg.get_value(view.tags["info"])).group(1).replace(",", ""))


def test_drag_a_rectangle_delete_and_undo_in_the_splat_view(studio):
    import dearpygui.dearpygui as dpg

    from methods.gaussians import edit as E
    from methods.gaussians.demo import demo_ply_path

    view = studio.views["splat"]
    assert view.open_ply(str(demo_ply_path()))
    view.form.set("backend", "torch")
    settle(studio, view)
    before, n0 = view.last_image().copy(), _count(view)
    cam = view.uploaded_request.camera
    view.editor.form.set("tool", "rectangle")
    _drag(studio, view, (0.3, 0.3), (0.7, 0.7))
    s = view.source.edit
    assert s is not None and s.position == 1, view.error_text
    # exactly the centres inside the dragged rectangle (in the shown camera's pixels; the drag's end points are
    # integer screen pixels, so the expected set is computed from the rectangle the session recorded)
    idx = s.history[0][0].indices
    uv, z = cam.project(s.model.means.detach().numpy())
    x0, y0, x1, y1 = view.image_rect()
    k = cam.width / view.panel_size[0]
    lo = np.array([0.3 * (x1 - x0), 0.3 * (y1 - y0)]) * k
    hi = np.array([0.7 * (x1 - x0), 0.7 * (y1 - y0)]) * k
    inner = np.nonzero((z > cam.near) & np.all(uv >= lo + 1.5 * k, 1) & np.all(uv <= hi - 1.5 * k, 1))[0]
    outer = np.nonzero((z > cam.near) & np.all(uv >= lo - 1.5 * k, 1) & np.all(uv <= hi + 1.5 * k, 1))[0]
    assert len(inner) > 10 and set(inner.tolist()) <= set(idx.tolist()) <= set(outer.tolist())
    settle(studio, view)
    tinted = view.last_image()
    assert np.abs(tinted - before)[..., :3].max(axis=2).mean() > 0.005  # the selection is drawn (orange)

    _keys(studio, "Delete" if XDOTOOL else "delete")
    assert run_until(studio, lambda: s.position == 2, 5)
    assert isinstance(s.history[1][0], E.Delete)
    settle(studio, view)
    assert _count(view) == n0 - len(idx) < n0
    changed = (np.abs(view.last_image() - before)[..., :3].max(axis=2) > 0.05).mean()
    assert changed > 0.02, changed

    _keys(studio, "ctrl", "z")
    assert run_until(studio, lambda: s.position == 1, 5)
    assert dpg.get_item_configuration(view.editor.tags["history"])["items"][1].startswith("2. (undone) delete")
    _keys(studio, "ctrl", "shift", "z")                          # redo
    assert run_until(studio, lambda: s.position == 2, 5)
    view.editor.go_to("1. select_indices")                       # a click in the history list
    assert s.position == 1
    _keys(studio, "ctrl", "z")
    assert run_until(studio, lambda: s.position == 0, 5)
    settle(studio, view)
    assert _count(view) == n0
    assert np.array_equal(view.last_image(), before)
    view.editor.form.set("tool", "camera")
    view.form.set("backend", "auto")
    settle(studio, view)


def test_save_edited_asks_before_replacing_the_opened_file_and_writes_a_ply_that_loads(studio, tmp_path):
    import dearpygui.dearpygui as dpg

    from methods.gaussians import edit as E
    from methods.gaussians.demo import demo_ply_path
    from methods.gaussians.ply import load_ply

    view = studio.views["splat"]
    original = str(demo_ply_path())
    assert view.open_ply(original)
    ed = view.editor
    assert ed.run(E.SelectSphere(center=(0.0, 0.0, 0.0), radius=0.6)) and ed.delete(), view.error_text
    n = view.source.edit.counts[0]
    before = open(original, "rb").read()
    assert not ed.save(original)                      # asks instead
    run_for(studio, 0.2)
    assert dpg.is_item_shown(ed.tags["confirm"]) and ed.pending_save == original
    ed.cancel_save()
    assert open(original, "rb").read() == before
    out = tmp_path / "edited.ply"
    assert ed.save(str(out)) and load_ply(out).num_gaussians == n < load_ply(original).num_gaussians
    assert not ed.save(str(tmp_path / "edited.txt")) and "as .ply" in view.error_text
    assert view.open_ply(original)
    settle(studio, view)
