"""Drives the real studio under (X)vfb: every view opens and shows pixels, the zoom slider changes them, holding W
flies forward, a job runs while the UI keeps drawing and is cancelled from its button, the window resizes.

Real X input (xdotool) is used for keys and clicks where it is installed; assertions are on framebuffer pixels
(``dpg.output_frame_buffer``) and on app state.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from guitools import press, run_for, run_until, settle

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[1]
# MIPSTUDIO_NO_XDOTOOL=1 runs the fallback paths on a machine that has xdotool (test_gui_without_xdotool.py does)
XDOTOOL = None if os.environ.get("MIPSTUDIO_NO_XDOTOOL") else shutil.which("xdotool")


def crop(shot: np.ndarray, view) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v)) for v in view.image_rect())
    return shot[y0:y1, x0:x1, :3]


def xdo(*args: str) -> None:
    subprocess.run([XDOTOOL, *args], check=True, timeout=10, capture_output=True)


def window_id() -> str:
    out = subprocess.run([XDOTOOL, "search", "--name", "^mipstudio"], capture_output=True, text=True, timeout=10)
    ids = out.stdout.split()
    assert ids, "the studio window was not found by xdotool"
    return ids[-1]


def mouse_to(view, fx: float = 0.5, fy: float = 0.5) -> None:
    x0, y0, x1, y1 = view.image_rect()
    xdo("mousemove", "--window", window_id(), str(int(x0 + fx * (x1 - x0))), str(int(y0 + fy * (y1 - y0))))


def test_every_registered_view_opens_and_its_render_reaches_the_screen(studio):
    from app.views import VIEW_IMPORT_ERRORS, discover_views

    assert not VIEW_IMPORT_ERRORS
    assert set(studio.views) == set(discover_views()) and len(studio.views) >= 2
    for view in studio.views.values():  # a view may have re-rendered since the fixture settled it (a live source)
        settle(studio, view)
    shot = studio.capture()
    assert shot.shape[:2] == (studio.viewport_size()[1], studio.viewport_size()[0])
    for view in studio.views.values():
        px = crop(shot, view)
        assert px.shape[:2] == view.panel_size[::-1]
        assert px.std() > 0.03, f"{view.name} panel is blank"
        shown = view.last_image()[..., :3]
        assert np.abs(px - shown).mean() < 0.03, f"{view.name}: the screen does not show the rendered frame"


def test_an_error_line_shrinks_the_panel_without_new_textures_and_the_screen_still_matches(studio):
    """Each texture re-creation leaked native memory (soak: opening bad files, whose error line above the image
    resizes the panel); a size within the textures' capacity now shows part of the same textures."""
    view = studio.views["image"]
    settle(studio, view)
    tex, raw, still, size = view.texture, view.texture.raw, view.texture.still, view.panel_size
    view.show_error("a problem with a long explanation " * 12)      # wraps to several lines
    assert run_until(studio, lambda: view.panel_size != size, 10)
    assert view.panel_size[1] < size[1] and view.texture is tex and (tex.raw, tex.still) == (raw, still)
    settle(studio, view)
    px = crop(studio.capture(), view)
    assert px.shape[:2] == view.panel_size[::-1]
    assert np.abs(px - view.last_image()[..., :3]).mean() < 0.03    # the shown part is the new frame
    view.clear_error()
    assert run_until(studio, lambda: view.panel_size == size, 10) and view.texture is tex
    settle(studio, view)
    assert np.abs(crop(studio.capture(), view) - view.last_image()[..., :3]).mean() < 0.03


def test_zoom_slider_changes_the_pixels_of_every_view(studio):
    for view in studio.views.values():
        before = crop(studio.capture(), view)
        import dearpygui.dearpygui as dpg

        dpg.set_value(view.tags["zoom"], math.log2(1 / 8))
        settle(studio, view)
        assert view.uploaded_request.zoom == pytest.approx(1 / 8)
        assert dpg.get_value(view.tags["zoom_label"]) == "zoom 1/8x"
        after = crop(studio.capture(), view)
        changed = float((np.abs(after - before).max(-1) > 0.05).mean())  # share of visibly changed pixels
        assert changed > 0.03, f"{view.name}: zoom 1/8 looks like zoom 1 ({changed:.1%} of pixels changed)"
        dpg.set_value(view.tags["zoom"], 0.0)
        settle(studio, view)


@pytest.mark.skipif(XDOTOOL is None, reason="xdotool is not installed (apt-get install xdotool)")
def test_holding_w_in_fly_mode_moves_forward_at_the_set_speed(studio):
    import dearpygui.dearpygui as dpg

    view = studio.views["mesh"]
    dpg.set_value(view.tags["camera_mode"], "Fly")
    settle(studio, view)
    before_img = crop(studio.capture(), view)
    mouse_to(view)
    xdo("click", "1")  # focus the mesh panel (a click without motion does not turn the camera)
    run_until(studio, lambda: studio.active_view == "mesh", 5)
    assert studio.active_view == "mesh"
    start, forward = view.fly.position.copy(), view.fly.forward.copy()
    xdo("keydown", "w")
    t0 = time.monotonic()
    run_for(studio, 0.8)
    xdo("keyup", "w")
    held = time.monotonic() - t0
    run_for(studio, 0.2)
    moved = view.fly.position - start
    along = float(moved @ forward)
    speed = view.fly.speed
    assert 0.5 * speed * held < along <= 1.05 * speed * (held + 0.2), (along, speed, held)
    assert np.linalg.norm(moved - along * forward) < 1e-6 * max(1.0, along)  # straight ahead
    settle(studio, view)
    after_img = crop(studio.capture(), view)
    assert np.abs(after_img - before_img).mean() > 0.01
    dpg.set_value(view.tags["camera_mode"], "Orbit")
    view.reset_camera()
    settle(studio, view)


@pytest.mark.skipif(XDOTOOL is None, reason="xdotool is not installed (apt-get install xdotool)")
def test_dragging_orbits_with_low_resolution_previews_then_full_resolution(studio):
    view = studio.views["mesh"]
    settle(studio, view)
    yaw0 = view.orbit.yaw
    seen = []
    mouse_to(view, 0.4, 0.5)
    xdo("mousedown", "1")
    for k in range(1, 9):
        mouse_to(view, 0.4 + 0.02 * k, 0.5)
        run_for(studio, 0.08)
        fin = view.worker.latest()
        seen.append((fin.request.preview, fin.request.width))
    xdo("mouseup", "1")
    settle(studio, view)
    assert view.orbit.yaw != pytest.approx(yaw0), "dragging did not rotate the orbit camera"
    final = view.worker.latest().request
    assert not final.preview and (final.width, final.height) == view.panel_size
    if view.worker.last_full_seconds > view.dynres.target_s:  # slow renders must drop resolution while dragging
        assert any(p and w < view.panel_size[0] for p, w in seen), seen
    view.reset_camera()
    settle(studio, view)


def test_a_job_runs_in_the_background_while_the_ui_keeps_drawing_and_cancels_from_its_button(studio):
    import dearpygui.dearpygui as dpg

    handle = studio.start_job("Fit tiny MLP to an image (demo)", steps=100000, size=32)
    assert run_until(studio, lambda: handle.snapshot().step > 0, 30), handle.snapshot()
    step0 = handle.snapshot().step
    frames = run_for(studio, 2.0)
    snap = handle.snapshot()
    assert frames >= 20, f"UI drew only {frames} frames in 2 s while a job ran"
    assert snap.step > step0 and snap.status.name == "RUNNING"
    tags = studio.jobs_panel.row_tags(handle.id)
    assert dpg.get_value(tags["progress"]) > 0
    assert "loss" in snap.history and len(snap.history["loss"][1]) > 1
    assert dpg.get_value(tags["series"]["loss"])[0], "the loss plot has no points"
    if XDOTOOL:
        x0, y0 = dpg.get_item_rect_min(tags["cancel"])
        w, h = dpg.get_item_rect_size(tags["cancel"])
        xdo("mousemove", "--window", window_id(), str(int(x0 + w / 2)), str(int(y0 + h / 2)))
        run_for(studio, 0.1)
        xdo("click", "1")
    else:
        press(tags["cancel"])
    t0 = time.monotonic()
    assert run_until(studio, lambda: handle.snapshot().status.name == "CANCELLED", 3.0)
    assert time.monotonic() - t0 < 1.5
    assert run_for(studio, 0.5) >= 5  # and the studio is still alive


def test_resizing_the_window_recreates_the_panel_textures(studio):
    import dearpygui.dearpygui as dpg

    old = {n: v.panel_size for n, v in studio.views.items()}
    dpg.set_viewport_width(1100)
    dpg.set_viewport_height(700)
    run_until(studio, lambda: studio.viewport_size() == (1100, 700), 5)
    studio.layout()
    for view in studio.views.values():
        run_until(studio, lambda: view.panel_size != old[view.name], 5)
        settle(studio, view)
        assert view.panel_size != old[view.name]
        assert view.last_image().shape[:2] == view.panel_size[::-1]
    shot = studio.capture()
    for view in studio.views.values():
        assert crop(shot, view).std() > 0.03


def test_screenshot_file_is_the_window(studio, tmp_path):
    import imageio.v3 as iio

    path = studio.save_screenshot(str(tmp_path / "shot.png"))
    img = iio.imread(path)
    w, h = studio.viewport_size()
    assert img.shape == (h, w, 3) and img.std() > 10
    assert not [p for p in tmp_path.iterdir() if p.name != "shot.png"]  # no temp files left


def test_without_a_display_the_studio_prints_one_hint_line_and_exits_2():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, str(ROOT / "main.py")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "xvfb-run" in lines[0] and "Traceback" not in proc.stderr


def test_the_dataset_job_runs_from_the_panel_widgets_and_streams_a_preview(studio, tmp_path):
    import dearpygui.dearpygui as dpg

    name = "Generate synthetic dataset"
    dpg.set_value(studio.tags["launcher"], name)
    studio._show_launcher_options(name)
    widgets = studio.launcher_forms[name].tags
    out = tmp_path / "gui_ds"
    for key, value in (("preset", "tiny"), ("resolution", 24), ("train_views", 4), ("out_dir", str(out))):
        dpg.set_value(widgets[key], value)
    before = {h.id for h in studio.jobs.jobs}
    dpg.get_item_callback(studio.tags["start"])()
    new = [h for h in studio.jobs.jobs if h.id not in before]
    assert len(new) == 1
    handle = new[0]
    assert run_until(studio, lambda: handle.finished, 120), handle.snapshot()
    snap = handle.snapshot()
    assert snap.status.name == "DONE", snap.error
    assert snap.step == snap.total > 0 and snap.preview is not None
    run_for(studio, 0.2)
    tags = studio.jobs_panel.row_tags(handle.id)
    assert tags["texture"] is not None and dpg.get_value(tags["progress"]) == pytest.approx(1.0)
    import json

    assert len(json.loads((out / "transforms_train.json").read_text())["frames"]) == 4


def test_splat_view_trains_from_the_gui_follows_the_live_model_and_scores_against_ground_truth(studio, tmp_path):
    import dearpygui.dearpygui as dpg

    from assets.synthetic_scene import SceneSpec
    from methods.datasets.generate import GenerateSyntheticDataset
    from methods.jobs import run_headless

    root = tmp_path / "tiny"
    run_headless(GenerateSyntheticDataset(out_dir=root, spec=SceneSpec.preset("tiny")), show_bar=False)
    view = studio.views["splat"]
    handle = view.start_training(dataset=str(root), preset="test_tiny", method="mip", iterations=4000,
                                 out_dir=str(tmp_path / "run"))
    assert run_until(studio, lambda: view.live is not None and view.live.revision >= 5, 120), \
        handle.snapshot().error
    settle(studio, view)
    first = view.last_image().copy()
    rev_first = view.uploaded_request.revision
    assert run_until(studio, lambda: view.live.revision >= rev_first + 60, 120)
    assert run_until(studio, lambda: view.uploaded_request.revision > rev_first, 30)  # the shared follow policy
    settle(studio, view)
    changed = (np.abs(view.last_image() - first)[..., :3].max(axis=2) > 0.02).sum()
    assert changed > 100, f"the view did not follow the training model ({changed} pixels changed)"

    items = dpg.get_item_configuration(view.tags["gt_view"])["items"]
    assert len(items) == 1 + 2  # free camera + the tiny preset's 2 test views
    dpg.set_value(view.tags["gt_view"], items[1])
    dpg.set_value(view.tags["zoom"], 1.0)  # 2x: ground truth rendered at scale 2

    def latest_has(pred):  # live-model requests change on a clock while training, so wait for the frame itself
        return lambda: (f := view.worker.latest()) is not None and view.uploaded_version == f.version and pred(f)

    assert run_until(studio, latest_has(lambda f: f.request.options.gt_scale == 2.0 and "psnr" in f.frame.aux), 90)
    fin = view.worker.latest()
    assert fin.request.options.gt_scale == 2.0 and fin.request.width == 64
    assert np.isfinite(fin.frame.aux["psnr"]) and "PSNR" in dpg.get_value(view.tags["psnr"])
    dpg.set_value(view.tags["mode"], "error")
    assert run_until(studio, latest_has(lambda f: f.request.options.mode == "error"), 90)

    handle.cancel()
    assert run_until(studio, lambda: handle.finished, 30)
    assert handle.snapshot().status.name == "CANCELLED"
    assert list((tmp_path / "run").glob("*.pt")) or list((tmp_path / "run").rglob("*.pt")), "no checkpoint kept"
    dpg.set_value(view.tags["mode"], "rgb")
    dpg.set_value(view.tags["gt_view"], "free camera")
    dpg.set_value(view.tags["zoom"], 0.0)
    settle(studio, view)


def test_a_broken_ply_shows_one_readable_line_in_the_splat_view_and_keeps_the_model(studio, tmp_path):
    import dearpygui.dearpygui as dpg

    from methods.gaussians.demo import demo_ply_path

    view = studio.views["splat"]
    good = Path(demo_ply_path()).read_bytes()
    bad = tmp_path / "truncated.ply"
    bad.write_bytes(good[: len(good) // 3])
    label = view.model_label
    assert view.open_ply(str(bad)) is False
    run_for(studio, 0.3)
    text = dpg.get_value(view.tags["error"])
    assert text.startswith(f"cannot open {bad}") and len(text.splitlines()) == 1 and "Traceback" not in text
    assert dpg.is_item_shown(view.tags["error"])
    wrap = dpg.get_item_configuration(view.tags["error"])["wrap"]
    assert 0 < wrap <= dpg.get_item_rect_size(view.tags["window"])[0]  # wrapped inside the view, not cut off
    assert view.model_label == label  # the view keeps showing what it showed
    assert view.open_ply(str(demo_ply_path()))
    run_for(studio, 0.2)
    assert dpg.get_value(view.tags["error"]) == "" and not dpg.is_item_shown(view.tags["error"])
    settle(studio, view)


def test_a_ply_with_some_nan_gaussians_opens_without_them_and_says_how_many(studio, tmp_path):
    import dearpygui.dearpygui as dpg

    from methods.gaussians.demo import demo_ply_path
    from methods.gaussians.ply import load_ply, save_ply

    view = studio.views["splat"]
    model = load_ply(demo_ply_path())
    n = model.num_gaussians
    with torch.no_grad():
        model.means[:7, 0] = float("nan")
        model.logit_opacities[100] = float("inf")
    path = save_ply(model, tmp_path / "diverged.ply")
    assert view.open_ply(str(path))
    settle(studio, view)
    text = dpg.get_value(view.tags["error"])
    assert f"dropped 8 of {n:,} Gaussians" in text and len(text.splitlines()) == 1
    assert view.worker.latest().frame.aux["n_gaussians"] == n - 8
    assert view.last_image()[..., :3].std() > 0.03  # the rest of the scene is on screen
    assert view.open_ply(str(demo_ply_path()))
    settle(studio, view)


def test_the_status_bar_and_info_report_the_same_thread_count(studio):
    import dearpygui.dearpygui as dpg
    import torch

    from render.device import device_description, studio_torch_threads

    studio.frame()
    assert device_description() in dpg.get_value(studio.tags["status"])
    assert f"torch {torch.get_num_threads()} thread" in dpg.get_value(studio.tags["status"])
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "info"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"{device_description(studio_torch_threads())} in the studio" in proc.stdout


def test_a_half_size_preview_shows_the_same_field_of_view(studio):
    """The bug: previews kept the focal length, so a ½-size preview showed a 20.6° crop of a 40° view. Compare
    the projected bounding box of the fish (normalised by image size) in a preview and a full request."""
    view = studio.views["mesh"]
    w, h = view.panel_size
    full = view.make_request(w, h, preview=False)
    half = view.make_request(w // 2, h // 2, preview=True)
    assert half.render_scale == pytest.approx((w // 2) / w)
    assert half.camera.fov_x == pytest.approx(full.camera.fov_x, rel=0.01)
    pts = np.concatenate([np.asarray(m.positions) for m in view.source.meshes])

    def box(cam):
        uv, _ = cam.project(pts)
        return np.array([uv[:, 0].min() / cam.width, uv[:, 0].max() / cam.width,
                         uv[:, 1].min() / cam.height, uv[:, 1].max() / cam.height])

    np.testing.assert_allclose(box(half.camera), box(full.camera), atol=0.01)
    b = box(full.camera)
    assert b.min() >= 0 and b.max() <= 1  # the framed fish is inside the panel


def test_switching_the_splat_rasterizer_keeps_the_picture_and_the_status_bar_names_it(studio):
    """The rasterizer combo: the torch reference and OpenGL draw the same panel (≥ 50 dB) and the status bar says
    which one drew it."""
    import dearpygui.dearpygui as dpg

    from methods.gaussians.demo import demo_ply_path

    view = studio.views["splat"]
    assert view.open_ply(str(demo_ply_path()))
    images, requests = {}, {}
    for backend, title in (("torch", "torch rasterizer"), ("gl", "OpenGL rasterizer")):
        view.form.set("backend", backend)
        settle(studio, view)
        fin = view.worker.latest()
        assert fin.frame.aux["backend"] == backend and fin.request.options.backend == backend
        assert run_until(studio, lambda: title in dpg.get_value(studio.tags["status"]), 10), \
            dpg.get_value(studio.tags["status"])
        settle(studio, view)  # the frames drawn while waiting for the status bar may have started a new request
        fin = view.worker.latest()
        assert fin.frame.aux["backend"] == backend and not fin.request.preview
        images[backend] = fin.rgba[..., :3].astype(np.float64)
        requests[backend] = fin.request
    assert requests["torch"].camera == requests["gl"].camera, requests  # the same picture was asked of both
    mse = float(np.mean((images["torch"] - images["gl"]) ** 2))
    assert images["gl"].std() > 0.03 and 10 * np.log10(1.0 / max(mse, 1e-20)) >= 50
    view.form.set("backend", "auto")
    settle(studio, view)


def test_without_gl_compute_the_splat_view_falls_back_to_torch_with_one_line(studio, monkeypatch):
    import dearpygui.dearpygui as dpg

    from methods.gaussians.demo import demo_ply_path
    from render.splat import gl_backend

    view = studio.views["splat"]
    assert view.open_ply(str(demo_ply_path()))
    monkeypatch.setattr(gl_backend, "MIN_GL_VERSION", 990)  # as on a GL 3.3 / 4.1 context
    monkeypatch.setattr(gl_backend, "_RENDERERS", {})
    view.form.set("backend", "gl")
    settle(studio, view)
    assert view.worker.latest().frame.aux["backend"] == "torch"
    run_for(studio, 0.3)
    text = dpg.get_value(view.tags["error"])
    assert text.startswith("gl: needs OpenGL 9.9 (compute shaders)") and text.endswith("rendered with torch")
    assert len(text.splitlines()) == 1 and "torch rasterizer" in dpg.get_value(studio.tags["status"])
    assert view.last_image()[..., :3].std() > 0.03  # the scene is on screen all the same
    monkeypatch.undo()
    view.form.set("backend", "auto")
    settle(studio, view)
    run_for(studio, 0.3)
    assert dpg.get_value(view.tags["error"]) == ""  # the note goes once GL draws again
    assert view.worker.latest().frame.aux["backend"] == "gl"
