"""The NeRF view in the real studio: it renders the bundled model, the zoom slider changes the cone radius of the
rays it asks for, and clicking a pixel (a real X click where xdotool exists, the same handler otherwise) fills the
sampler probe's plot with every series."""
from __future__ import annotations

import math
import os
import shutil
import subprocess

import numpy as np
import pytest
from guitools import run_for, run_until, settle

pytestmark = pytest.mark.gui
XDOTOOL = None if os.environ.get("MIPSTUDIO_NO_XDOTOOL") else shutil.which("xdotool")


@pytest.fixture()
def view(studio):
    import dearpygui.dearpygui as dpg

    v = studio.views["nerf360"]
    dpg.set_value(v.tags["zoom"], 0.0)
    settle(studio, v, 120)
    return v


def test_nerf_view_renders_the_bundled_model_at_the_training_sampling_rate(studio, view):
    from methods.nerf360.demo import DEMO_PATH

    assert DEMO_PATH.is_file() and view.source.model is not None
    fin = view.worker.latest()
    assert fin.final and fin.frame.aux["complete"]
    # zoom 1: a training-sized grid at the training focal, so the cone equals the training one
    assert fin.request.width == view.source.view.width
    assert fin.request.camera.fx == pytest.approx(view.source.view.focal)
    assert fin.frame.aux["cone_ratio"] == pytest.approx(1.0, rel=1e-3)
    assert view.last_image()[..., :3].std() > 0.03


def test_zoom_slider_changes_the_cone_radius_of_the_requested_rays(studio, view):
    import dearpygui.dearpygui as dpg

    from methods.nerf360.model import camera_rays

    r1 = float(camera_rays(view.uploaded_request.camera).radii.median())
    dpg.set_value(view.tags["zoom"], math.log2(1 / 4))
    settle(studio, view, 120)
    req = view.uploaded_request
    assert req.zoom == pytest.approx(1 / 4)
    r4 = float(camera_rays(req.camera).radii.median())
    assert r4 == pytest.approx(4 * r1, rel=2e-2)  # the rays the source casts: 4x wider cones
    assert view.worker.latest().frame.aux["cone_ratio"] == pytest.approx(4.0, rel=2e-2)
    assert req.width == round(view.source.view.width / 4)  # and 1/4 of the pixels
    dpg.set_value(view.tags["zoom"], 0.0)
    settle(studio, view, 120)


def _click(studio, view, fx: float, fy: float) -> None:
    if XDOTOOL:
        x0, y0, x1, y1 = view.image_rect()
        win = subprocess.run([XDOTOOL, "search", "--name", "^mipstudio"], capture_output=True, text=True,
                             timeout=10).stdout.split()[-1]
        subprocess.run([XDOTOOL, "mousemove", "--window", win, str(int(x0 + fx * (x1 - x0))),
                        str(int(y0 + fy * (y1 - y0)))], check=True, timeout=10)
        run_for(studio, 0.2)
        subprocess.run([XDOTOOL, "click", "1"], check=True, timeout=10)
    else:
        view.probe_at(fx, fy)


def test_clicking_a_pixel_fills_the_sampler_probe_with_every_series(studio, view):
    import dearpygui.dearpygui as dpg

    before = view.uploaded_request.camera
    _click(studio, view, 0.5, 0.6)
    assert run_until(studio, lambda: view.last_probe() is not None and not view.probing, 30), view.probe_error
    run_for(studio, 0.3)
    probe = view.last_probe()
    cam = view.uploaded_request.camera
    assert cam == before  # a click is not an orbit drag
    assert abs(probe.pixel[0] - 0.5 * cam.width) <= 1 and abs(probe.pixel[1] - 0.6 * cam.height) <= 1
    panel = view.probe_panel
    assert panel.visible
    values = panel.series_values()
    expected = {"proposal 1", "proposal 2", "drawn for round 2", "drawn for NeRF", "bound 1", "bound 2",
                "NeRF weights", "violation 1", "violation 2", "round 1 samples", "round 2 samples", "NeRF samples"}
    assert expected <= set(values)
    for name in expected:
        assert len(values[name][0]) > 0 and np.isfinite(values[name][1]).all(), name
    assert "L_prop" in dpg.get_value(panel.tags["summary"])
    # a knob re-runs only the sampler on that ray: 12 NeRF samples now
    dpg.set_value(panel.tags["nerf_samples"], 12)
    panel._changed()
    assert run_until(studio, lambda: len(view.last_probe().nerf_weights) == 12, 30)
    assert len(panel.series_values()["NeRF samples"][0]) == 12
    dpg.set_value(panel.tags["nerf_samples"], view.source.model.config.samples[-1])
    panel._changed()
    assert run_until(studio, lambda: not view.probing, 30)


def test_a_file_that_is_not_a_checkpoint_is_one_line_and_the_model_stays(studio, view, tmp_path):
    bad = tmp_path / "not_a_checkpoint.pt"
    bad.write_bytes(b"definitely not torch")
    model = view.source.model
    assert not view.open_checkpoint(str(bad))
    assert "cannot open" in view.error_text and "\n" not in view.error_text
    assert view.source.model is model
    run_for(studio, 0.3)
    view.clear_error()


def test_train_button_starts_a_job_and_the_view_follows_its_live_model(studio, view):
    from methods.nerf360.demo import demo_checkpoint

    handle = view.start_training(scene="tiny", preset="test_tiny", steps=60)
    assert handle is not None
    assert run_until(studio, lambda: view.following, 120), view.error_text
    assert run_until(studio, lambda: view.worker.latest() is not None and view.worker.latest().request.revision > 0,
                     60)
    assert view.source.view.width == 32  # framed by the tiny scene's training images, not the demo's
    assert run_until(studio, lambda: handle.finished, 180)
    assert handle.snapshot().status.name == "DONE"
    assert view.open_checkpoint(str(demo_checkpoint()))  # back to the demo for the other tests
    assert not view.following
    settle(studio, view, 120)


@pytest.mark.skipif(XDOTOOL is None, reason="needs real X clicks (apt-get install xdotool)")
def test_a_click_on_the_probe_window_over_the_picture_is_not_a_probe(studio, view):
    import dearpygui.dearpygui as dpg

    _click(studio, view, 0.3, 0.3)
    assert run_until(studio, lambda: view.last_probe() is not None and not view.probing, 30)
    first = view.last_probe().pixel
    x0, y0, x1, y1 = view.image_rect()
    panel = view.probe_panel
    dpg.configure_item(panel.tags["window"], pos=(int(x0), int(y0)), width=int(x1 - x0), height=int(y1 - y0))
    run_for(studio, 0.5)
    _click(studio, view, 0.7, 0.7)  # lands on the probe window, which now covers the picture
    run_for(studio, 1.0)
    assert not view.probing and view.last_probe().pixel == first
    dpg.configure_item(panel.tags["window"], pos=(700, 40), width=760, height=520)
    run_for(studio, 0.3)
