"""The Walkthrough view in the real studio: holding W flies at the set speed, R twice records a video + UV frames +
camera path that ``render walkthrough`` reproduces, C saves a screenshot. Real X keys where xdotool exists,
injected keys otherwise (MIPSTUDIO_NO_XDOTOOL=1 forces the fallback)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from guitools import run_for, run_until, settle

pytestmark = pytest.mark.gui
XDOTOOL = None if os.environ.get("MIPSTUDIO_NO_XDOTOOL") else shutil.which("xdotool")


def _focus(studio, view) -> None:
    if XDOTOOL:
        x0, y0, x1, y1 = view.image_rect()
        win = subprocess.run([XDOTOOL, "search", "--name", "^mipstudio"], capture_output=True, text=True,
                             timeout=10).stdout.split()[-1]
        subprocess.run([XDOTOOL, "mousemove", "--window", win, str(int((x0 + x1) / 2)), str(int((y0 + y1) / 2))],
                       check=True, timeout=10)
        subprocess.run([XDOTOOL, "click", "1"], check=True, timeout=10)
        run_until(studio, lambda: studio.active_view == view.name, 5)
    studio.active_view = view.name
    assert studio.active_view == view.name


def _key(studio, key: str, down: bool) -> None:
    if XDOTOOL:
        subprocess.run([XDOTOOL, "keydown" if down else "keyup", key], check=True, timeout=10)
    elif down:
        studio.input.injected_keys.add(key)
    else:
        studio.input.injected_keys.discard(key)


def _tap(studio, key: str) -> None:
    _key(studio, key, True)
    run_for(studio, 0.1)
    _key(studio, key, False)
    run_for(studio, 0.1)


def test_walkthrough_flies_records_reproducibly_and_takes_screenshots(studio, tmp_path, monkeypatch):
    import dearpygui.dearpygui as dpg
    import imageio.v3 as iio

    import main
    from methods.metrics import psnr

    monkeypatch.setenv("MIPSTUDIO_OUTPUT", str(tmp_path))
    view = studio.views["walkthrough"]
    dpg.set_value(view.tags["mode"], "GL trilinear mipmaps")  # a GL mode keeps the encode quick
    dpg.set_value(view.tags["camera_mode"], "Fly")
    dpg.set_value(view.tags["speed"], 0.8)
    settle(studio, view)
    before = view.last_image().copy()
    _focus(studio, view)

    # hold W: the camera moves straight ahead at speed × time (± 20 %) and the picture changes
    start, forward = view.fly.position.copy(), view.fly.forward.copy()
    _key(studio, "w", True)
    t0 = time.monotonic()
    run_for(studio, 0.8)
    _key(studio, "w", False)
    held = time.monotonic() - t0
    run_for(studio, 0.2)
    along = float((view.fly.position - start) @ forward)
    assert 0.8 * 0.8 * held < along < 1.2 * 0.8 * (held + 0.2), (along, held)
    settle(studio, view)
    assert np.abs(view.last_image() - before)[..., :3].mean() > 0.003

    # R ... move ... R: a recording job writes video, UV frames and the path
    _tap(studio, "r")
    assert view.recording is not None
    _key(studio, "a", True)
    run_for(studio, 0.7)
    _key(studio, "a", False)
    _tap(studio, "r")
    assert view.recording is None and view.last_recording is not None
    handle, folder = view.last_recording
    assert run_until(studio, lambda: handle.finished, 120), handle.snapshot()
    assert handle.snapshot().status.name == "DONE", handle.snapshot().error
    doc = json.loads((folder / "path.json").read_text())
    n = len(doc["frames"])
    assert 10 <= n <= 40 and doc["mode"] == "trilinear"
    import imageio.v2 as imageio

    reader = imageio.get_reader(folder / "video.mp4")
    video = [np.asarray(f) for f in reader]
    reader.close()
    assert len(video) == n
    assert len(list((folder / "uv").glob("*.png"))) == n
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left

    # the recorded path reproduces the recorded frames
    rep = tmp_path / "reproduced"
    assert main.main(["render", "walkthrough", "--path", str(folder / "path.json"), "--mode", "trilinear",
                      "--out", str(rep)]) == 0
    for i in (0, n // 2, n - 1):
        frame = iio.imread(rep / f"frame_{i:04d}.png")[:video[i].shape[0], :video[i].shape[1]]
        assert psnr(frame.astype(np.float64) / 255, video[i].astype(np.float64) / 255) >= 40

    # C: a numbered screenshot of the panel
    _tap(studio, "c")
    shots = sorted((tmp_path / "walkthrough" / "screenshots").glob("*.png"))
    assert [p.name for p in shots] == ["00000.png"] and iio.imread(shots[0]).shape[:2] == view.panel_size[::-1]

    dpg.set_value(view.tags["camera_mode"], "Orbit")
    view.reset_camera()
    settle(studio, view)


def test_walk_opens_a_full_window_flies_and_saves_what_it_shows(x_display, tmp_path):
    """`main.py walk` under the (virtual) display: a scripted run holding W, then a screenshot read back from the
    window's framebuffer: the fish is there, the status line names the mode."""
    import imageio.v3 as iio

    root = Path(__file__).resolve().parents[1]
    shot = tmp_path / "walk.png"
    proc = subprocess.run([sys.executable, str(root / "main.py"), "walk", "--size", "320x180", "--mode", "trilinear",
                           "--seconds", "1.5", "--keys", "w", "--screenshot", str(shot)],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "GL trilinear mipmaps" in proc.stdout and "320x180" in proc.stdout
    img = iio.imread(shot)
    assert img.shape == (180, 320, 3)
    fish = np.abs(img.astype(int) - img[-1, -1].astype(int)).sum(axis=2) > 30  # differs from the background
    assert 0.05 < fish.mean() < 0.9
    assert (img[:12, :120] == 0).mean() > 0.3  # the status line's black box at the top left


def test_walk_without_a_display_says_what_to_do_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "main.py"), "walk"], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "xvfb-run" in lines[0] and "render walkthrough" in lines[0]
