"""The render worker: newest request wins, stale requests are dropped, errors become state, never a dead thread."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from app.render_worker import RenderWorker, fit_to_panel
from app.views.base import DynamicResolution, zoom_label
from dataclasses import dataclass

from render.live import Frame, RenderRequest


@dataclass(frozen=True)
class FailOptions:
    fail: bool = False


class SlowSource:
    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.rendered: list[float] = []
        self.threads: set[str] = set()

    def render(self, request: RenderRequest) -> Frame:
        self.threads.add(threading.current_thread().name)
        time.sleep(self.seconds)
        if getattr(request.options, "fail", False):
            raise ValueError("bad option\nsecond line")
        self.rendered.append(request.zoom)
        return Frame(np.full((request.height, request.width, 3), request.zoom / 8, np.float32))


def test_latest_request_wins_and_stale_ones_are_dropped():
    src = SlowSource(0.05)
    worker = RenderWorker(src, name="t")
    try:
        t0 = time.perf_counter()
        for k in range(1, 21):
            worker.submit(RenderRequest(8, 8, zoom=k / 4), (8, 8))
        submit_time = time.perf_counter() - t0
        assert worker.wait_idle(5)
        assert submit_time < 0.05, "submit must not wait for renders"
        assert src.rendered[-1] == 20 / 4
        assert len(src.rendered) <= 3, f"stale requests were rendered: {src.rendered}"
        assert worker.latest().request.zoom == 5.0
        assert src.threads == {"render-t"}
    finally:
        worker.stop()


def test_errors_become_one_line_state_and_worker_survives():
    src = SlowSource(0.0)
    worker = RenderWorker(src)
    try:
        worker.submit(RenderRequest(4, 4, options=FailOptions(fail=True)), (4, 4))
        worker.wait_idle(5)
        assert worker.error == "ValueError: bad option"
        assert "Traceback" in worker.error_detail
        worker.submit(RenderRequest(4, 4, zoom=2.0), (4, 4))
        worker.wait_idle(5)
        assert worker.error is None and worker.latest().request.zoom == 2.0
    finally:
        worker.stop()


def test_preview_frames_are_resized_to_the_panel_with_nearest_pixels():
    img = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    out = fit_to_panel(img, 6, 4)
    assert out.shape == (4, 6, 4) and out.flags["C_CONTIGUOUS"]
    assert np.array_equal(out[::2, ::2], img)  # every preview pixel becomes a 2x2 block


def test_dynamic_resolution_scale_targets_the_frame_budget():
    d = DynamicResolution(target_s=1 / 30)
    assert d.scale(None) == 1.0 and d.scale(0.01) == 1.0
    assert d.scale(4 / 30) == 0.5  # 4x the budget -> half the pixels per side
    assert d.scale(100.0) == d.min_scale
    assert not d.interacting()
    d.touch()
    assert d.interacting()


@pytest.mark.parametrize("zoom,label", [(0.125, "1/8x"), (0.5, "1/2x"), (1.0, "1x"), (2.5, "2.5x"), (8.0, "8x")])
def test_zoom_labels(zoom, label):
    assert zoom_label(zoom) == label


def test_request_equality_includes_camera_pose():
    from render.camera import Camera

    a = Camera.look_at((3, 0, 1), (0, 0, 0), width=8, height=8)
    b = Camera.look_at((3, 0.001, 1), (0, 0, 0), width=8, height=8)
    assert RenderRequest(8, 8, camera=a).same_as(RenderRequest(8, 8, camera=a))
    assert not RenderRequest(8, 8, camera=a).same_as(RenderRequest(8, 8, camera=b))
    assert not RenderRequest(8, 8, zoom=2).same_as(RenderRequest(8, 8, zoom=1))


def test_frames_of_another_aspect_are_letterboxed_not_stretched():
    img = np.random.default_rng(0).random((4, 4, 4)).astype(np.float32)
    out = fit_to_panel(img, 12, 8)  # 4x4 into 12x8: scaled by 2 to 8x8, centred with 2 columns of padding
    assert out.shape == (8, 12, 4)
    assert np.array_equal(out[:, 2:10][::2, ::2], img)
    assert np.all(out[:, :2, :3] == np.float32(0.06)) and np.all(out[:, 10:, 3] == 1.0)
