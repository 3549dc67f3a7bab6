"""A live view: image panel + log zoom slider + the source's options, fed by a RenderWorker.

A view shows one :class:`methods.plugin.SourceSpec`: the source's options dataclass becomes the widgets
(app/widgets/options_form.py), its ``framing()`` the 3D camera, its ``describe()`` the info line. Subclasses only
add what a dataclass cannot describe (file dialogs, buttons). Everything per-frame happens in :meth:`View.update`
on the UI thread and never waits on a render: it reads widgets once, builds a request, submits it if it changed,
and uploads a finished frame if there is a new one. A view following a training job asks :class:`FollowPolicy`
which snapshot revision to show.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable, ClassVar

import dearpygui.dearpygui as dpg
import numpy as np

from app.input import LEFT, MIDDLE, RIGHT, InputFrame
from app.render_worker import DynamicResolution, RenderWorker  # noqa: F401 (DynamicResolution re-exported)
from app.widgets.options_form import OptionsForm
from app.widgets.panel_texture import PanelTexture
from methods.live_training import FollowPolicy, LiveTraining
from methods.plugin import SourceSpec
from render.camera import Camera, frame_camera
from render.controls import DragTracker, FlyController, OrbitController
from render.live import ZOOM_MAX, ZOOM_MIN, LiveSource, RenderRequest

OPTIONS_WIDTH = 210
HEADER_HEIGHT = 58  # zoom row + info row


def zoom_label(zoom: float) -> str:
    """1/8×, 1/2×, 1×, 2.5× … — fractions read better than 0.125 for zoom-out."""
    if zoom < 1:
        inv = 1 / zoom
        return f"1/{inv:.0f}x" if abs(inv - round(inv)) < 0.02 else f"{zoom:.3g}x"
    return f"{zoom:.3g}x"


def one_line(e: BaseException | str) -> str:
    """The first line of an error, for the view's error line and the status bar."""
    text = str(e).strip()
    first = text.splitlines()[0] if text else ""
    return first or (type(e).__name__ if isinstance(e, BaseException) else "")


class View:
    """A live view of one source. Custom subclasses register with :func:`app.views.register_view` under the
    source's key; every other source gets this class as is."""

    name: ClassVar[str] = "view"  # a custom subclass: the SourceSpec key it shows
    default_size: ClassVar[tuple[int, int]] = (512, 384)

    def __init__(self, studio: Any, spec: SourceSpec) -> None:
        self.studio, self.spec = studio, spec
        self.name, self.title, self.is_3d, self.order = spec.key, spec.title, spec.is_3d, spec.order
        self.tags: dict[str, int | str] = {}
        self.panel_size = (0, 0)
        self.texture: PanelTexture | None = None
        self.uploaded_version = -1
        self.uploaded_request: RenderRequest | None = None
        self.last_request: RenderRequest | None = None
        self.dynres = DynamicResolution()
        self.drag = DragTracker()
        self.center = [0.0, 0.0]  # 2D views: view centre minus image centre, in image pixels (render/viewport.py)
        self.orbit: OrbitController | None = None
        self.fly: FlyController | None = None
        self.camera_touched = False  # the user moved the camera: a panel resize keeps it instead of re-framing
        self.status_line = ""
        self.error_text = ""
        self.live: LiveTraining | None = None  # a training job's snapshots, when following one
        self.follow_policy = FollowPolicy()
        self._job: tuple[Any, Any, Callable[[LiveTraining], None], str] | None = None
        self.opened = ""  # what was opened through the view (a file, a model), shown instead of the picked option
        self._picked: Any = None
        self.source: LiveSource = self.create_source()
        self.form = OptionsForm(self.source.Options, self.name, width=OPTIONS_WIDTH - 116)  # room for the label
        self.worker = RenderWorker(self.source, name=self.name)
        if self.is_3d:
            self.reset_camera()

    # ----- to override ----------------------------------------------------------------------------------------
    def create_source(self) -> LiveSource:
        """The source this view shows; called once when the view opens."""
        return self.spec.factory()

    def build_extra(self, parent: int | str) -> None:
        """Widgets a dataclass cannot describe (file dialogs, buttons), added under the generated ones."""

    def add_open_file(self, parent: int | str, label: str, extensions: tuple[str, ...],
                      on_path: Callable[[str], Any]) -> None:
        """A full-width button opening a file dialog for ``extensions``; the chosen path goes to ``on_path``."""
        def chosen(sender, app_data) -> None:
            path = (app_data or {}).get("file_path_name")
            if path:
                on_path(path)

        with dpg.file_dialog(show=False, width=560, height=380, callback=chosen,
                             default_path=os.getcwd()) as dialog:
            for ext in extensions:
                dpg.add_file_extension(ext)
        self.tags["dialog"] = dialog
        dpg.add_button(label=label, parent=parent, width=-1, callback=lambda: dpg.show_item(dialog))

    def add_train_form(self, parent: int | str, job_name: str, start: Callable[[], Any]) -> OptionsForm | None:
        """The options of Jobs-panel job ``job_name`` and a Train button calling ``start()`` (None when the job
        does not exist)."""
        spec = self.studio.launchers.get(job_name)
        if spec is None:
            return None
        dpg.add_separator(parent=parent)
        dpg.add_text("Train on a dataset", parent=parent)
        form = OptionsForm(spec.options, f"{self.name}.train", width=110)
        form.build(parent)
        self.tags["train"] = dpg.add_button(label="Train", width=-1, parent=parent, callback=lambda: start())
        return form

    def internal_options(self) -> dict[str, Any]:
        """Values of the options dataclass's internal fields (no widget) that the view computes each frame."""
        return {}

    def opened_until_picked(self, option: str = "image") -> str:
        """``self.opened`` until the user picks another value of the form's ``option`` (a bundled photo), which
        replaces it; called once per frame by views that open files."""
        picked = self.form.values().get(option)
        if self._picked is not None and picked != self._picked:
            self.opened = ""
        self._picked = picked
        return self.opened

    def read_options(self) -> Any:
        """The source's options dataclass, read from the widgets once per frame."""
        return self.form.read(**self.internal_options())

    def base_camera(self, width: int, height: int) -> Camera:
        """The zoom-1 camera for a panel of this size (3D views): the source's framing at the training focal."""
        framing = getattr(self.source, "framing", None) if hasattr(self, "source") else None
        if framing is not None:
            return frame_camera(framing(), width, height)
        return Camera.look_at((4.0, 0.0, 1.0), (0.0, 0.0, 0.0), width=width, height=height)

    def home_target(self) -> np.ndarray:
        framing = getattr(self.source, "framing", None) if hasattr(self, "source") else None
        return np.asarray(framing().center if framing is not None else (0.0, 0.0, 0.0), dtype=np.float64)

    def overlay(self, rgba: np.ndarray, request: RenderRequest) -> np.ndarray:
        """Marks drawn over a finished frame before it is shown (a probe cross, …); the default draws none."""
        return rgba

    def info(self) -> str:
        """Extra text for the view's info line (the source's ``describe()``)."""
        describe = getattr(self.source, "describe", None)
        return describe() if describe is not None else ""

    # ----- errors the user must see, in the view itself -------------------------------------------------------
    def show_error(self, message: str) -> None:
        """A one-line problem (a file that would not load, a failed job) shown in red under the info line, wrapped
        to the view's width; the view keeps showing what it showed before."""
        self.error_text = message
        self.studio.notify(message)

    def clear_error(self) -> None:
        self.error_text = ""

    # ----- following a training job (the one shared policy) ----------------------------------------------------
    def follow_job(self, handle: Any, job: Any, on_ready: Callable[[LiveTraining], None], what: str) -> None:
        """Show ``job``'s model once it publishes snapshots (``job.live``); ``on_ready(live)`` configures the
        source. If the job ends before that, its one-line error is shown in the view."""
        self._job = (handle, job, on_ready, what)

    def start_job(self, job_name: str, values: dict[str, Any], what: str) -> tuple[Any, Any] | None:
        """Start the Jobs-panel job ``job_name`` with ``values``: (handle, job), or None with a one-line error in the
        view."""
        spec = self.studio.launchers.get(job_name)
        if spec is None:
            self.show_error(f"the job '{job_name}' is not available")
            return None
        try:
            job = spec.make_job(**values)
        except (ValueError, TypeError) as e:
            self.show_error(f"cannot start {what}: {one_line(e)}")
            return None
        return self.studio.jobs.submit(job), job

    def start_and_follow(self, job_name: str, values: dict[str, Any], on_live: Callable[[Any, LiveTraining], None],
                         what: str) -> Any:
        """Start the Jobs-panel job ``job_name`` with ``values`` and follow its model (``on_live(job, live)``);
        returns the job handle, or None with a one-line error in the view."""
        started = self.start_job(job_name, values, what)
        if started is None:
            return None
        handle, job = started
        self.follow_job(handle, job, lambda live: on_live(job, live), what)
        return handle

    def stop_following(self) -> None:
        self._job, self.live = None, None

    def _poll_job(self) -> None:
        if self._job is None:
            return
        handle, job, on_ready, what = self._job
        live = getattr(job, "live", None)
        if live is not None and live is not self.live:
            try:
                on_ready(live)
            except Exception as e:  # noqa: BLE001 - keep the current picture, say why
                self.show_error(f"cannot show {what}: {one_line(e)}")
                self._job = None
                return
            self.live = live
            self.last_request = None
            self.clear_error()
        elif live is None and handle.finished:
            snap = handle.snapshot()
            if snap.status.name != "CANCELLED":
                self.show_error(f"{what} failed: {one_line(snap.error or 'it stopped before its model existed')}")
            self._job = None

    @property
    def following(self) -> bool:
        return self.live is not None

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
                    t["camera_mode"] = dpg.add_radio_button(["Orbit", "Fly"], horizontal=True,
                                                            default_value="Orbit", tag=f"{self.name}.camera_mode")
                    dpg.add_button(label="Reset", small=True, callback=self.reset_camera)
            t["info"] = dpg.add_text("", tag=f"{self.name}.info")
            t["error"] = dpg.add_text("", color=(255, 110, 110), wrap=max(200, size[0] - 24),
                                      tag=f"{self.name}.error", show=False)
            with dpg.group(horizontal=True):
                t["image_area"] = dpg.add_child_window(width=-OPTIONS_WIDTH - 8, height=-1, border=False,
                                                       no_scrollbar=True, tag=f"{self.name}.image_area")
                with dpg.child_window(width=OPTIONS_WIDTH, height=-1, tag=f"{self.name}.options") as opts:
                    t["options"] = opts
                    self.form.build(opts)
                    t.update(self.form.tags)
                    self.build_extra(opts)

    @property
    def options(self) -> Any:
        """The options of the last submitted request (what the panel shows or is about to)."""
        return self.last_request.options if self.last_request is not None else self.form.defaults()

    def destroy(self) -> None:
        self.worker.stop()
        close = getattr(self.source, "close", None)  # a source with background work of its own stops it
        if close is not None:
            close()
        if "window" in self.tags and dpg.does_item_exist(self.tags["window"]):
            dpg.delete_item(self.tags["window"])
        self._delete_texture()

    # ----- texture lifecycle (re-created on resize; DPG textures cannot change size) ----------------------------
    def _ensure_texture(self, w: int, h: int) -> None:
        if self.texture is not None and (w, h) == self.panel_size:
            return
        if self.texture is None or not self.texture.resize(w, h):  # the same textures if the new size fits them
            self._delete_texture()
            self.texture = PanelTexture(self.studio.texture_registry, self.tags["image_area"], w, h)
            self.tags["image"] = self.texture.image
        self.panel_size = (w, h)
        if self.is_3d and not self.camera_touched:
            self.reset_camera()  # frame the object for the new panel's aspect
        dpg.configure_item(self.tags["error"], wrap=max(200, w + OPTIONS_WIDTH - 16))
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
        self.camera_touched = False
        self.dynres.touch()

    @property
    def mode(self) -> str:
        return dpg.get_value(self.tags["camera_mode"]) if "camera_mode" in self.tags else "Orbit"

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
                dx, dy = deltas[LEFT]  # the picture sticks to the cursor: d screen px = d/zoom image px
                self.center[0] -= dx / zoom
                self.center[1] -= dy / zoom
                size = getattr(self.source, "image_size", None)
                if size is not None:  # keep some of the image in view
                    self.center = [float(np.clip(self.center[i], -0.75 * size[i], 0.75 * size[i])) for i in (0, 1)]
                changed |= (dx, dy) != (0, 0)
            if inside and inp.wheel:
                dpg.set_value(self.tags["zoom"], float(np.clip(dpg.get_value(self.tags["zoom"]) + 0.25 * inp.wheel,
                                                               math.log2(ZOOM_MIN), math.log2(ZOOM_MAX))))
                changed = True
        if changed or self.drag.is_dragging:
            self.dynres.touch()
        if changed and self.is_3d:
            self.camera_touched = True
        return changed

    # ----- per frame ----------------------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return float(2.0 ** dpg.get_value(self.tags["zoom"])) if "zoom" in self.tags else 1.0

    def make_request(self, width: int, height: int, preview: bool) -> RenderRequest:
        """The request for a width×height render of the panel: 3D cameras are built for the panel and scaled with
        the render (focal × render_scale), so a preview shows the same field of view, only coarser."""
        pw, ph = self.panel_size if self.panel_size[0] else (width, height)
        scale = width / pw
        zoom = self.zoom
        cam = None
        if self.is_3d:
            cam = self.current_camera(pw, ph, zoom)
            if (width, height) != (pw, ph):
                cam = cam.scaled(scale)
                width, height = cam.width, cam.height
        # a followed training job, else the source's own background work (a source that fits as it shows)
        live = self.live if self.live is not None else getattr(self.source, "live", None)
        revision = self.follow_policy.revision(live, self.worker.last_full_seconds)
        return RenderRequest(width=width, height=height, zoom=zoom, camera=cam, options=self.read_options(),
                             render_scale=round(scale, 6), preview=preview, revision=revision,
                             center=(round(self.center[0], 4), round(self.center[1], 4)))

    def update(self, inp: InputFrame | None, has_focus: bool) -> None:
        if not self.visible():
            return
        self._poll_job()
        aw, ah = dpg.get_item_rect_size(self.tags["image_area"])
        w, h = max(16, int(aw)), max(16, int(ah))
        if aw > 0 and ah > 0:
            self._ensure_texture(w, h)
        if self.texture is None:
            return
        if inp is not None:
            self.handle_input(inp, has_focus)
        if dpg.is_item_active(self.tags["zoom"]) or self.form.active():
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

    def _upload(self) -> None:
        fin = self.worker.latest()
        if fin is None or fin.version == self.uploaded_version:
            return
        w, h = self.panel_size
        if fin.rgba.shape[:2] != (h, w):
            return  # rendered for an older panel size; the new request is on its way
        self.texture.show(self.overlay(fin.rgba, fin.request))
        self.uploaded_version = fin.version
        self.uploaded_request = fin.request

    def _refresh_text(self, req: RenderRequest) -> None:
        dpg.set_value(self.tags["zoom_label"], f"zoom {zoom_label(req.zoom)}")
        fin = self.worker.latest()
        ms = f"{fin.seconds * 1000:.0f} ms" if fin else "-"
        res = f"{fin.request.width}x{fin.request.height}" if fin else "-"
        extra = self.info()
        fps = self.worker.fps()
        detail = self.status_detail()
        self.status_line = (f"{fps:.1f} fps" if fps > 0 else "idle") + (f" · {detail}" if detail else "")
        dpg.set_value(self.tags["info"], f"render {ms} · {res}{' (preview)' if fin and fin.request.preview else ''}"
                                         f" · {self.status_line}{' · ' + extra if extra else ''}")
        err = self.error_text or self.worker.error or ""
        dpg.set_value(self.tags["error"], err)
        dpg.configure_item(self.tags["error"], show=bool(err))

    def status_detail(self) -> str:
        """A few words after the view's frame rate in the status bar (e.g. which rasterizer drew the frame)."""
        return ""

    # ----- pixels (tests, screenshots) ------------------------------------------------------------------------
    def last_image(self) -> np.ndarray | None:
        """The last uploaded frame as HxWx4 float32 (what the panel shows)."""
        fin = self.worker.latest()
        return None if fin is None else fin.rgba
