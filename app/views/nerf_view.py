"""NeRF view: a mip-NeRF 360 model (the bundled demo, a checkpoint, or a training job's live model), rendered
progressively; a click on a pixel opens the sampler probe for that ray.

Zoom here is the rendering resolution relative to the training images over the training field of view — the way
mip-NeRF's multiscale evaluation defines scales: zoom 1/8 renders a training-sized view with 1/8 of the pixels
(cones 8× wider, so the picture is prefiltered, not aliased), zoom 8 with 8× the pixels (cones 8× narrower). The
frame is then shown magnified to the panel with visible pixels, so what is on screen is honestly the sampling rate.
The rendering and the probe are methods/nerf360 (live_source.py, probe.py); this file only reads widgets, builds
requests and shows frames and plots.
"""
from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import dearpygui.dearpygui as dpg
import numpy as np

from app.input import LEFT
from app.render_worker import DynamicResolution
from app.views import register_view
from app.views.base import OPTIONS_WIDTH, View, one_line
from app.widgets.options_form import HELP_COLOR, OptionsForm
from app.widgets.sampler_probe import SamplerProbePanel
from methods.live_training import LiveTraining
from render.camera import Camera
from render.live import RenderRequest

TRAIN_JOB = "Train Mip-NeRF 360"
CLICK_MAX_MOVE = 3.0   # px: a press and release closer than this is a click (probe), not an orbit drag
CLICK_MAX_S = 0.6


@register_view
class NerfView(View):
    name = "nerf360"

    def create_source(self):
        from methods.nerf360.live_source import demo_source

        self.dynres = DynamicResolution(target_s=math.inf)  # the source's coarse passes replace previews
        self.train_form: OptionsForm | None = None
        self.probe_panel: SamplerProbePanel | None = None
        self.probe_target: tuple[Camera, float, float, int] | None = None  # camera on screen, pixel, revision
        self.probe_error = ""
        self._probe_future: Future | None = None
        self._probe_pool = ThreadPoolExecutor(1, thread_name_prefix="nerf-probe")
        self._press: tuple[float, float, float, float] | None = None  # x, y, time, movement of a left press
        source = demo_source()
        return source

    # ----- models -------------------------------------------------------------------------------------------
    def open_checkpoint(self, path: str) -> bool:
        """Show a ``train nerf360`` checkpoint; a file that is not one is a one-line error, the old model stays."""
        try:
            self.source.open_checkpoint(path)
        except Exception as e:  # noqa: BLE001
            self.show_error(f"cannot open {path}: {one_line(e)}")
            return False
        self.stop_following()
        self._model_changed()
        return True

    def start_training(self, **overrides: Any):
        """Start the mip-NeRF 360 training job with the form's options (``overrides`` win) and follow its model."""
        values = {**(self.train_form.values() if self.train_form else {}), **overrides}
        return self.start_and_follow(TRAIN_JOB, values, self._on_live, "mip-NeRF 360 training")

    def _on_live(self, job, live: LiveTraining) -> None:
        self.source.follow(live)
        self._model_changed()

    def _model_changed(self) -> None:
        self.clear_error()
        self.last_request = None
        self.reset_camera()
        model = self.source.model
        if self.probe_panel is not None and model is not None:
            s = model.config.samples
            self.probe_panel.reset_knobs((s[0] if len(s) > 1 else s[-1], s[-1]))

    # ----- widgets ------------------------------------------------------------------------------------------
    def build_extra(self, parent: int | str) -> None:
        t = self.tags
        dpg.add_separator(parent=parent)
        self.add_open_file(parent, "Open checkpoint ...", (".pt",), self.open_checkpoint)
        dpg.add_button(label="Sampler probe", parent=parent, width=-1, callback=lambda: self.show_probe())
        t["legend"] = dpg.add_text("", parent=parent, wrap=OPTIONS_WIDTH - 20, tag=f"{self.name}.legend")
        dpg.add_text("Click a pixel: its ray through the sampler. Drag: orbit. Zoom = sampling rate: it scales every "
                     "pixel's cone.", parent=parent, wrap=OPTIONS_WIDTH - 20, color=HELP_COLOR)
        self.train_form = self.add_train_form(parent, TRAIN_JOB, self.start_training)
        model = self.source.model
        s = model.config.samples if model is not None else (48, 48, 24)
        vw = self.studio.viewport_size()[0]
        self.probe_panel = SamplerProbePanel(f"{self.name}.probe", self.studio.texture_registry, self._on_knobs,
                                             (s[0] if len(s) > 1 else s[-1], s[-1]), pos=(max(0, vw - 820), 40))

    def destroy(self) -> None:
        self._probe_pool.shutdown(wait=False, cancel_futures=True)
        if self.probe_panel is not None:
            self.probe_panel.destroy()
        super().destroy()

    # ----- the probe ----------------------------------------------------------------------------------------
    def show_probe(self) -> None:
        if self.probe_panel is not None:
            self.probe_panel.open()

    def probe_at(self, fx: float, fy: float) -> bool:
        """Probe the ray under the point (fx, fy) ∈ [0, 1)² of the picture on screen (what a click does)."""
        req = self.uploaded_request
        if req is None or req.camera is None:
            self.show_error("nothing rendered yet to probe")
            return False
        cam = req.camera
        self.probe_target = (cam, fx * cam.width, fy * cam.height, req.revision)
        self.show_probe()
        self._submit_probe()
        return True

    def _on_knobs(self, knobs) -> None:
        if self.probe_target is not None:
            self._submit_probe()

    def _submit_probe(self) -> None:
        from methods.nerf360.probe import probe_series

        cam, x, y, revision = self.probe_target
        knobs = self.probe_panel.knobs()
        source = self.source

        def work():
            result = source.probe(cam, x, y, knobs, revision)
            return result, probe_series(result)

        if self._probe_future is not None:
            self._probe_future.cancel()
        self._probe_future = self._probe_pool.submit(work)

    def _poll_probe(self) -> None:
        fut = self._probe_future
        if fut is None or not fut.done():
            return
        self._probe_future = None
        try:
            result, series = fut.result()
        except Exception as e:  # noqa: BLE001 - e.g. no model: say so in the view
            self.probe_error = one_line(e)
            self.show_error(f"probe: {self.probe_error}")
            return
        self.probe_error = ""
        self.probe_panel.show(result, series)

    @property
    def probing(self) -> bool:
        return self._probe_future is not None

    def handle_input(self, inp, has_focus: bool) -> bool:
        inside = inp.inside(self.image_rect())
        down = LEFT in inp.buttons
        over_probe = self.probe_panel is not None and self.probe_panel.covers(*inp.mouse)
        if down and self._press is None and inside and not self.drag.is_dragging and not over_probe:
            self._press = (inp.mouse[0], inp.mouse[1], time.monotonic(), 0.0)
        elif down and self._press is not None:
            x, y, t0, moved = self._press
            self._press = (x, y, t0, max(moved, math.hypot(inp.mouse[0] - x, inp.mouse[1] - y)))
        elif not down and self._press is not None:
            x, y, t0, moved = self._press
            self._press = None
            if moved <= CLICK_MAX_MOVE and time.monotonic() - t0 <= CLICK_MAX_S:
                x0, y0, x1, y1 = self.image_rect()
                if x1 > x0 and y1 > y0:
                    self.probe_at((x - x0) / (x1 - x0), (y - y0) / (y1 - y0))
        return super().handle_input(inp, has_focus)

    # ----- requests: resolution = zoom × the training images' --------------------------------------------------
    def render_size(self, zoom: float) -> tuple[int, int]:
        """Pixels to render at ``zoom``: the training width × zoom, the panel's aspect."""
        pw, ph = self.panel_size if self.panel_size[0] else self.default_size
        view = self.source.view
        rw = max(4, int(round((view.width if view is not None else 128) * zoom)))
        return rw, max(4, int(round(rw * ph / pw)))

    def make_request(self, width: int, height: int, preview: bool) -> RenderRequest:
        zoom = self.zoom
        rw, rh = self.render_size(zoom)
        pw = self.panel_size[0] or rw
        cam = self.current_camera(rw, rh, zoom)  # the training focal × zoom on a zoom × training-sized grid
        revision = self.follow_policy.revision(self.live, self.worker.last_full_seconds)
        return RenderRequest(width=rw, height=rh, zoom=zoom, camera=cam, options=self.read_options(),
                             render_scale=round(rw / pw, 6), revision=revision)

    # ----- per frame ----------------------------------------------------------------------------------------
    def update(self, inp, has_focus: bool) -> None:
        self._poll_probe()
        if self.probe_panel is not None:
            self.probe_panel.tick()
        super().update(inp, has_focus)

    def overlay(self, rgba: np.ndarray, request) -> np.ndarray:
        """Mark the probed pixel (a small cross) when the frame is of the camera it was probed on."""
        if self.probe_target is None or request.camera is None or request.camera != self.probe_target[0]:
            return rgba
        cam, x, y, _ = self.probe_target
        h, w = rgba.shape[:2]
        px, py = int(x * w / cam.width), int(y * h / cam.height)
        out = rgba.copy()
        for d in (-6, -5, -4, -3, -2, 2, 3, 4, 5, 6):
            for qx, qy in ((px + d, py), (px, py + d)):
                if 0 <= qx < w and 0 <= qy < h:
                    out[qy, qx] = (1.0, 0.15, 0.6, 1.0)
        return out

    def info(self) -> str:
        fin = self.worker.latest()
        aux = fin.frame.aux if fin is not None else {}
        parts = [self.source.describe()]
        if aux.get("passes"):
            done = "" if fin.final else " ..."
            parts.append(f"pass {aux['pass']}/{aux['passes']} ({aux['pass_size'][0]}x{aux['pass_size'][1]}){done}")
        if aux.get("cone_ratio"):
            parts.append(f"cone radius {aux['cone_ratio']:.2f}x training")
        if fin is not None and self.panel_size[0]:
            parts.append(f"shown x{self.panel_size[0] / fin.request.width:.1f}")
        if "legend" in self.tags:
            dpg.set_value(self.tags["legend"], aux.get("legend", ""))
        return " · ".join(parts)

    def last_probe(self):
        return self.probe_panel.result if self.probe_panel is not None else None

