"""Runs a view's LiveSource off the UI thread: the newest request wins, stale ones are dropped.

A source with ``render_progressive(request)`` (an iterator of ever better frames) has each frame shown as it comes;
a newer request stops the iteration after the current frame, so a moving camera cancels a slow refinement.

The UI thread only ever calls :meth:`RenderWorker.submit` (non-blocking) and :meth:`RenderWorker.latest`
(a lock-protected read of the newest finished frame); it never waits on a render.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
import traceback
from dataclasses import dataclass

import numpy as np

from render.live import Frame, LiveSource, RenderRequest


@dataclass(frozen=True)
class Finished:
    """A finished render, already resized to the panel so the UI thread only uploads it."""

    version: int
    request: RenderRequest
    rgba: np.ndarray  # (panel_h, panel_w, 4) float32, contiguous
    frame: Frame
    seconds: float
    final: bool = True  # False for the partial frames of a progressive source while later passes are coming


def fit_to_panel(image: np.ndarray, width: int, height: int, pad: float = 0.06) -> np.ndarray:
    """Nearest-neighbour resize into the panel, keeping the aspect ratio (letterboxed with ``pad`` grey).

    Previews are rendered smaller and keep their pixels honest; frames of another aspect (a dataset camera shown
    in a wide panel) are not stretched.
    """
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return np.ascontiguousarray(image, dtype=np.float32)
    s = min(width / w, height / h)
    fw, fh = max(1, min(width, int(round(w * s)))), max(1, min(height, int(round(h * s))))
    rows = np.minimum((np.arange(fh) + 0.5) * h / fh, h - 1).astype(np.int64)
    cols = np.minimum((np.arange(fw) + 0.5) * w / fw, w - 1).astype(np.int64)
    fitted = image[rows][:, cols]
    if (fw, fh) == (width, height):
        return np.ascontiguousarray(fitted, dtype=np.float32)
    out = np.full((height, width, image.shape[2]), pad, np.float32)
    if image.shape[2] == 4:
        out[..., 3] = 1.0
    y0, x0 = (height - fh) // 2, (width - fw) // 2
    out[y0:y0 + fh, x0:x0 + fw] = fitted
    return out


@dataclass
class DynamicResolution:
    """Render smaller while the user interacts, full size when still (hysteresis keeps the scale from flickering).

    The preview scale is chosen from the last full-size render time so a preview takes about ``target_s``.
    """

    target_s: float = 1 / 30
    settle_s: float = 0.25  # stay in preview this long after the last interaction
    min_scale: float = 0.25
    _last_interaction: float = -1e9

    def touch(self) -> None:
        self._last_interaction = time.monotonic()

    def interacting(self) -> bool:
        return time.monotonic() - self._last_interaction < self.settle_s

    def scale(self, full_seconds: float | None) -> float:
        if full_seconds is None or full_seconds <= self.target_s:
            return 1.0
        s = math.sqrt(self.target_s / full_seconds)
        for q in (1.0, 0.5, 1 / 3, 0.25):  # quantised: a steady preview size while dragging
            if s >= q:
                return max(q, self.min_scale)
        return self.min_scale


class RenderWorker:
    """One background thread per view."""

    def __init__(self, source: LiveSource, name: str = "view") -> None:
        self._source = source
        self._cond = threading.Condition()
        self._pending: tuple[RenderRequest, int, int] | None = None  # request, panel w, panel h
        self._latest: Finished | None = None
        self._error: str | None = None
        self._error_detail: str = ""
        self._version = 0
        self._stop = False
        self._in_flight = False
        self._times: list[float] = []  # wall times of recent finished renders (for fps)
        self.last_seconds: float | None = None
        self.last_full_seconds: float | None = None
        self._thread = threading.Thread(target=self._loop, name=f"render-{name}", daemon=True)
        self._thread.start()

    # ----- UI-thread API (non-blocking) ---------------------------------------------------------------------
    def submit(self, request: RenderRequest, panel_size: tuple[int, int]) -> None:
        with self._cond:
            self._pending = (request, int(panel_size[0]), int(panel_size[1]))
            self._cond.notify()

    def set_source(self, source: LiveSource) -> None:
        with self._cond:
            self._source = source

    def latest(self) -> Finished | None:
        with self._cond:
            return self._latest

    @property
    def error(self) -> str | None:
        with self._cond:
            return self._error

    @property
    def error_detail(self) -> str:
        with self._cond:
            return self._error_detail

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._pending is not None or self._in_flight

    def fps(self, window_s: float = 2.0) -> float:
        """Renders finished per second over the last ``window_s`` seconds."""
        now = time.monotonic()
        with self._cond:
            recent = [t for t in self._times if now - t <= window_s]
        if len(recent) < 2:
            return 0.0 if not recent else 1.0 / max(self.last_seconds or 1.0, 1e-3)
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)

    def request_stop(self) -> None:
        """Ask the thread to end (a progressive render stops between passes); returns at once."""
        with self._cond:
            self._stop = True
            self._cond.notify()

    def stop(self, timeout: float = 2.0) -> bool:
        """End the thread; True once it has ended within ``timeout`` s."""
        self.request_stop()
        self._thread.join(timeout=timeout)
        return not self._thread.is_alive()

    # ----- worker thread ------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                request, pw, ph = self._pending
                self._pending = None
                self._in_flight = True
                source = self._source
            t0 = time.perf_counter()
            err, detail, cancelled = None, "", False
            try:
                progressive = getattr(source, "render_progressive", None)
                frames = progressive(request) if progressive is not None else iter((source.render(request),))
                try:
                    for frame in frames:
                        rgba = fit_to_panel(frame.rgba(), pw, ph)
                        with self._cond:
                            self._version += 1
                            self._latest = Finished(self._version, request, rgba, frame, time.perf_counter() - t0,
                                                    final=False)
                            cancelled = self._pending is not None or self._stop
                        if cancelled:  # a newer request (a moved camera) wins: stop this one between passes
                            break
                finally:
                    if hasattr(frames, "close"):
                        frames.close()
            except Exception as e:  # noqa: BLE001 - a bad render becomes a visible error, not a dead thread
                err = f"{type(e).__name__}: {e}".splitlines()[0]
                detail = traceback.format_exc()
            dt = time.perf_counter() - t0
            with self._cond:
                self._in_flight = False
                self._error, self._error_detail = err, detail
                latest = self._latest
                if err is None and latest is not None and latest.request is request and not cancelled:
                    self._latest = dataclasses.replace(latest, seconds=dt, final=True)
                    self.last_seconds = dt
                    if not request.preview:
                        self.last_full_seconds = dt
                    now = time.monotonic()
                    self._times.append(now)
                    self._times = [t for t in self._times if now - t <= 5.0]
                self._cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is pending or rendering (tests and screenshots; never called by the UI loop)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._in_flight, timeout)
