"""Helpers for tests that drive the real studio (imported by conftest and the GUI tests)."""
from __future__ import annotations

import time


def run_until(studio, predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        studio.frame()
        if predicate():
            return True
    return False


def run_for(studio, seconds: float) -> int:
    n0, deadline = studio.frame_count, time.monotonic() + seconds
    while time.monotonic() < deadline:
        studio.frame()
    return studio.frame_count - n0


def settle(studio, view, timeout: float = 60.0) -> None:
    """Render until the view shows a full-resolution frame of its current request."""
    def done():
        fin = view.worker.latest()
        w, h = view.panel_size
        return (fin is not None and not view.worker.busy and view.uploaded_version == fin.version
                and not fin.request.preview and view.last_request is not None
                and fin.request.same_as(view.last_request) and fin.rgba.shape[:2] == (h, w))

    streak = [0]

    def steady():  # a layout change (an error line hidden) reaches the panel size a frame or two later
        streak[0] = streak[0] + 1 if done() else 0
        return streak[0] >= 3
    assert run_until(studio, steady, timeout), f"view {view.name} did not settle: {view.worker.error}"
    for _ in range(2):  # the screen capture reads the previous frame: draw the uploaded one twice
        studio.frame()


def press(item) -> None:
    """Run a button's callback the way Dear PyGui does: with as many of (sender, app_data, user_data) as the
    callable declares — so a test without xdotool exercises the same callback a click would."""
    import inspect

    import dearpygui.dearpygui as dpg

    cb = dpg.get_item_callback(item)
    args = (item, None, dpg.get_item_user_data(item))
    params = [p for p in inspect.signature(cb).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    cb(*args[:len(params)])
