"""A live view: image panel + log zoom slider + the view's own options, fed by a RenderWorker.

Subclasses supply a LiveSource (``create_source``), their option widgets (``build_options`` / ``read_options``)
and, for 3D views, a base camera. Everything per-frame happens in :meth:`View.update` on the UI thread and never
waits on a render: it reads widgets once, builds a request, submits it if it changed, and uploads a finished frame
if there is a new one.
"""
from __future__ import annotations

import abc
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import dearpygui.dearpygui as dpg
import numpy as np

from app.input import LEFT, MIDDLE, RIGHT, InputFrame
from app.render_worker import RenderWorker
from app.widgets.panel_texture import PanelTexture
from render.camera import Camera
from render.controls import DragTracker, FlyController, OrbitController
from render.live import ZOOM_MAX, ZOOM_MIN, LiveSource, RenderRequest

OPTIONS_WIDTH = 210
HEADER_HEIGHT = 58  # zoom row + info row


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


def zoom_label(zoom: float) -> str:
    """1/8×, 1/2×, 1×, 2.5× … — fractions read better than 0.125 for zoom-out."""
    if zoom < 1:
        inv = 1 / zoom
        return f"1/{inv:.0f}x" if abs(inv - round(inv)) < 0.02 else f"{zoom:.3g}x"
    return f"{zoom:.3g}x"


class View(abc.ABC):
    """Base class of every live view. Register subclasses with :func:`app.views.register_view`."""

    name: ClassVar[str] = "view"
    title: ClassVar[str] = "View"
    is_3d: ClassVar[bool] = True
    order: ClassVar[int] = 100
    default_size: ClassVar[tuple[int, int]] = (512, 384)

    def __init__(self, studio: Any) -> None:
        self.studio = studio
        self.tags: dict[str, int | str] = {}
        self.panel_size = (0, 0)
        self.texture: PanelTexture | None = None
        self.uploaded_version = -1
        self.uploaded_request: RenderRequest | None = None
        self.last_request: RenderRequest | None = None
        self.dynres = DynamicResolution()
        self.drag = DragTracker()
        self.center = [0.0, 0.0]  # 2D views: pan centre in [-1, 1]^2
        self.orbit: OrbitController | None = None
        self.fly: FlyController | None = None
        self.status_line = ""
        self.worker = RenderWorker(self.create_source(), name=self.name)
        if self.is_3d:
            self.reset_camera()

    # ----- to override ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_source(self) -> LiveSource:
        """The source this view shows; called once when the view opens."""

    def build_options(self, parent: int | str) -> None:
        """Add the view's own widgets under ``parent`` (keep tags in self.tags)."""

    def read_options(self) -> dict[str, Any]:
        """Read the view's widgets once per frame into plain values (they become part of the request)."""
        return {}

    def base_camera(self, width: int, height: int) -> Camera:
        """The zoom-1 camera for a panel of this size (3D views): same pixels per scene unit as training."""
        return Camera.look_at((4.0, 0.0, 1.0), (0.0, 0.0, 0.0), width=width, height=height)

    def home_target(self) -> np.ndarray:
        return np.zeros(3)

    def info(self) -> str:
        """Extra text for the view's info line (e.g. Gaussian count)."""
        return ""

    # ----- layout -------------------------------------------------------------------------------------------
    def build(self, pos: tuple[int, int], size: tuple[int, int]) -> None:
        t = self.tags
        with dpg.window(label=self.title, pos=pos, width=size[0], height=size[1], no_scrollbar=True,
                        no_collapse=True, on_close=lambda: self.studio.close_view(self.name)) as win:
            t["window"] = win
            with dpg.group(horizontal=True):
                t["zoom"] = dpg.add_slider_float(label="", width=200, min_value=math.log2(ZOOM_MIN),
                                                 max_value=math.log2(ZOOM_MAX), default_value=0.0,
                                                 format="", tag=f"{self.name}.zoom")
                t["zoom_label"] = dpg.add_text("zoom 1x", tag=f"{self.name}.zoom_label")
                dpg.add_button(label="1x", small=True, callback=lambda: dpg.set_value(t["zoom"], 0.0))
                if self.is_3d:
                    t["mode"] = dpg.add_radio_button(["Orbit", "Fly"], horizontal=True, default_value="Orbit",
                                                     tag=f"{self.name}.mode")
                    dpg.add_button(label="Reset", small=True, callback=self.reset_camera)
            t["info"] = dpg.add_text("", tag=f"{self.name}.info")
            with dpg.group(horizontal=True):
                t["image_area"] = dpg.add_child_window(width=-OPTIONS_WIDTH - 8, height=-1, border=False,
                                                       no_scrollbar=True, tag=f"{self.name}.image_area")
                with dpg.child_window(width=OPTIONS_WIDTH, height=-1, tag=f"{self.name}.options") as opts:
                    t["options"] = opts
                    self.build_options(opts)
                    t["error"] = dpg.add_text("", color=(255, 90, 90), wrap=OPTIONS_WIDTH - 16)

    def destroy(self) -> None:
        self.worker.stop()
        if "window" in self.tags and dpg.does_item_exist(self.tags["window"]):
            dpg.delete_item(self.tags["window"])
        self._delete_texture()

    # ----- texture lifecycle (re-created on resize; DPG textures cannot change size) ----------------------------
    def _ensure_texture(self, w: int, h: int) -> None:
        if self.texture is not None and (w, h) == self.panel_size:
            return
        self._delete_texture()
        self.panel_size = (w, h)
        self.texture = PanelTexture(self.studio.texture_registry, self.tags["image_area"], w, h)
        self.tags["image"] = self.texture.image
        self.uploaded_version = -1
        self.uploaded_request = None
        self.last_request = None

    def _delete_texture(self) -> None:
        if self.texture is not None:
            self.texture.destroy()
        self.texture = None

    def image_rect(self) -> tuple[float, float, float, float]:
        if "image" not in self.tags or not dpg.does_item_exist(self.tags["image"]):
            return (0, 0, 0, 0)
        x0, y0 = dpg.get_item_rect_min(self.tags["image"])
        return (x0, y0, x0 + self.panel_size[0], y0 + self.panel_size[1])

    def visible(self) -> bool:
        return dpg.does_item_exist(self.tags.get("window", 0)) and dpg.is_item_shown(self.tags["window"])

    # ----- camera -------------------------------------------------------------------------------------------
    def reset_camera(self) -> None:
        w, h = self.panel_size if self.panel_size[0] > 0 else self.default_size
        cam = self.base_camera(w, h)
        self.orbit = OrbitController.from_camera(cam, self.home_target())
        self.fly = FlyController.from_camera(cam)
        self.center = [0.0, 0.0]
        self.dynres.touch()

    @property
    def mode(self) -> str:
        return dpg.get_value(self.tags["mode"]) if "mode" in self.tags else "Orbit"

    def current_camera(self, width: int, height: int, zoom: float) -> Camera:
        base = self.base_camera(width, height)
        ctrl = self.fly if self.mode == "Fly" else self.orbit
        return ctrl.camera(base).zoomed(zoom)

    def handle_input(self, inp: InputFrame, has_focus: bool) -> bool:
        """Apply this frame's input; returns True if the view changed because of it."""
        inside = inp.inside(self.image_rect())
        deltas = self.drag.update(inp.mouse[0], inp.mouse[1], inp.buttons, inside)
        changed = False
        zoom = self.zoom
        if self.is_3d:
            focal = self.base_camera(*self.panel_size).fx * zoom if self.panel_size[0] else 500.0
            if self.mode == "Fly":
                if LEFT in deltas or RIGHT in deltas:
                    dx, dy = deltas.get(LEFT, deltas.get(RIGHT))
                    self.fly.look(dx, dy)
                    changed |= (dx, dy) != (0, 0)
                if has_focus:
                    keys = [k for k in inp.keys_down if k in ("w", "a", "s", "d", "space", "shift")]
                    if keys:
                        self.fly.update(keys, inp.dt)
                        changed = True
            else:
                if LEFT in deltas:
                    self.orbit.rotate(*deltas[LEFT])
                    changed |= deltas[LEFT] != (0, 0)
                for b in (RIGHT, MIDDLE):
                    if b in deltas:
                        self.orbit.pan(deltas[b][0], deltas[b][1], focal)
                        changed |= deltas[b] != (0, 0)
                if inside and inp.wheel:
                    self.orbit.dolly(inp.wheel)
                    changed = True
        else:
            if LEFT in deltas and self.panel_size[0]:
                dx, dy = deltas[LEFT]
                s = 2.0 / (self.panel_size[0] * zoom)
                self.center[0] -= dx * s
                self.center[1] -= dy * s
                changed |= (dx, dy) != (0, 0)
            if inside and inp.wheel:
                dpg.set_value(self.tags["zoom"], float(np.clip(dpg.get_value(self.tags["zoom"]) + 0.25 * inp.wheel,
                                                               math.log2(ZOOM_MIN), math.log2(ZOOM_MAX))))
                changed = True
        if changed or self.drag.is_dragging:
            self.dynres.touch()
        return changed

    # ----- per frame ----------------------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return float(2.0 ** dpg.get_value(self.tags["zoom"])) if "zoom" in self.tags else 1.0

    def make_request(self, width: int, height: int, preview: bool) -> RenderRequest:
        zoom = self.zoom
        cam = self.current_camera(width, height, zoom) if self.is_3d else None
        return RenderRequest(width=width, height=height, zoom=zoom, camera=cam,
                             options=RenderRequest.pack_options(self.read_options()), preview=preview,
                             center=(self.center[0], self.center[1]))

    def update(self, inp: InputFrame | None, has_focus: bool) -> None:
        if not self.visible():
            return
        aw, ah = dpg.get_item_rect_size(self.tags["image_area"])
        w, h = max(16, int(aw)), max(16, int(ah))
        if aw > 0 and ah > 0:
            self._ensure_texture(w, h)
        if self.texture is None:
            return
        if inp is not None:
            self.handle_input(inp, has_focus)
        if dpg.is_item_active(self.tags["zoom"]) or self._option_active():
            self.dynres.touch()  # coarse frames while a slider is dragged, full resolution once it is released
        w, h = self.panel_size
        preview = self.dynres.interacting()
        scale = self.dynres.scale(self.worker.last_full_seconds) if preview else 1.0
        preview = preview and scale < 1.0
        rw, rh = max(8, int(round(w * scale))), max(8, int(round(h * scale)))
        req = self.make_request(rw, rh, preview)
        if not req.same_as(self.last_request):
            self.last_request = req
            self.worker.submit(req, (w, h))
        self._upload()
        self.texture.tick()
        self._refresh_text(req)

    def _option_active(self) -> bool:
        """Is one of the view's own option widgets being dragged or edited right now?"""
        opts = self.tags.get("options")
        if opts is None:
            return False
        return any(dpg.is_item_active(c) for c in dpg.get_item_children(opts, 1) or ()
                   if any(k in dpg.get_item_type(c) for k in ("Slider", "Drag")))  # only these have an active state worth a preview

    def _upload(self) -> None:
        fin = self.worker.latest()
        if fin is None or fin.version == self.uploaded_version:
            return
        w, h = self.panel_size
        if fin.rgba.shape[:2] != (h, w):
            return  # rendered for an older panel size; the new request is on its way
        self.texture.show(fin.rgba)
        self.uploaded_version = fin.version
        self.uploaded_request = fin.request

    def _refresh_text(self, req: RenderRequest) -> None:
        dpg.set_value(self.tags["zoom_label"], f"zoom {zoom_label(req.zoom)}")
        fin = self.worker.latest()
        ms = f"{fin.seconds * 1000:.0f} ms" if fin else "-"
        res = f"{fin.request.width}x{fin.request.height}" if fin else "-"
        extra = self.info()
        fps = self.worker.fps()
        self.status_line = f"{fps:.1f} fps" if fps > 0 else "idle"
        dpg.set_value(self.tags["info"], f"render {ms} · {res}{' (preview)' if fin and fin.request.preview else ''}"
                                         f" · {self.status_line}{' · ' + extra if extra else ''}")
        err = self.worker.error
        dpg.set_value(self.tags["error"], err or "")

    # ----- pixels (tests, screenshots) ------------------------------------------------------------------------
    def last_image(self) -> np.ndarray | None:
        """The last uploaded frame as HxWx4 float32 (what the panel shows)."""
        fin = self.worker.latest()
        return None if fin is None else fin.rgba
