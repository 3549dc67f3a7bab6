"""The SR view in the real studio: it renders the bundled GaussianSR model, the zoom slider changes how many screen
pixels the image covers, the split shows two upscalers side by side, and a bad file is one line while the view keeps
drawing."""
from __future__ import annotations

import math

import numpy as np
import pytest
from guitools import run_for, settle

pytestmark = pytest.mark.gui


@pytest.fixture()
def view(studio):
    import dearpygui.dearpygui as dpg

    v = studio.views["sr"]
    v.form.set("image", "chelsea")
    v.form.set("pretend_lr", 4.0)
    v.form.set("compare", "off")
    v.form.set("mode", "gaussiansr")
    v.center = [0.0, 0.0]
    dpg.set_value(v.tags["zoom"], 0.0)
    settle(studio, v, 120)
    return v


def _covered(frame) -> tuple[int, int]:
    """Columns and rows of the frame the image covers (the rest is the background)."""
    from methods.gaussiansr.live_source import BACKGROUND

    on = np.abs(frame.image - BACKGROUND).max(-1) > 1e-6
    return int(on.any(0).sum()), int(on.any(1).sum())


def test_sr_view_renders_gaussiansr_and_zoom_changes_the_output_size(studio, view):
    import dearpygui.dearpygui as dpg

    fin = view.worker.latest()
    assert fin.frame.aux["modes"] == {"left": "gaussiansr"}  # the bundled model drew it, not the bicubic fallback
    w, h = fin.frame.aux["lr_size"]
    assert (w, h) == (112, 75)  # chelsea 451x300 shown at 1/4
    pw, ph = fin.request.width, fin.request.height  # the panel clips what does not fit
    assert _covered(fin.frame) == (min(w, pw), min(h, ph))
    dpg.set_value(view.tags["zoom"], math.log2(2.0))
    settle(studio, view, 120)
    fin = view.worker.latest()
    assert fin.request.zoom == pytest.approx(2.0)
    assert _covered(fin.frame) == (min(2 * w, pw), min(2 * h, ph))
    assert _covered(fin.frame) != (min(w, pw), min(h, ph))
    assert view.last_image()[..., :3].std() > 0.05
    assert "GaussianSR" in view.info()


def test_the_split_shows_two_upscalers(studio, view):
    import dearpygui.dearpygui as dpg

    view.form.set("compare", "nearest")
    view.form.set("split", 0.5)
    dpg.set_value(view.tags["zoom"], math.log2(6.0))
    settle(studio, view, 120)
    fin = view.worker.latest()
    assert fin.frame.aux["modes"] == {"left": "gaussiansr", "right": "nearest"}
    img = fin.frame.image
    mid = img.shape[1] // 2
    right = img[:, mid + 8:]
    left = img[:, :mid - 8]
    # nearest: 6x6 screen blocks of one colour, so most horizontal neighbours are equal; GaussianSR: smooth
    same = lambda a: float((np.abs(np.diff(a, axis=1)).max(-1) < 1e-6).mean())  # noqa: E731
    assert same(right) > 0.7 and same(left) < 0.3
    assert np.allclose(img[:, mid - 1:mid + 1], (1.0, 0.85, 0.2), atol=1e-3)  # the split line
    assert "psnr" in fin.frame.aux and fin.frame.aux["psnr"]["gaussiansr"] > fin.frame.aux["psnr"]["nearest"]
    view.form.set("compare", "off")


def test_a_bad_file_is_one_line_and_the_view_keeps_drawing(studio, view, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    assert not view.open_image(str(bad))
    assert "broken.png" in view.error_text and "\n" not in view.error_text
    n = run_for(studio, 0.5)
    assert n > 3 and view.worker.latest().frame.aux["lr_size"] == (112, 75)
    view.clear_error()
