"""The studio window: menu, live views (tiled; dockable into tabs), the Jobs panel and a status bar.

The main loop (:meth:`Studio.frame`) is the only place that touches Dear PyGui items: it runs queued callbacks,
polls input once, lets each view submit/upload renders, refreshes the Jobs panel and the status bar, and draws.
Renders and jobs live on other threads; nothing here waits on them.
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")  # DPG texture deletion segfaults on Linux without it

import dearpygui.dearpygui as dpg  # noqa: E402
import numpy as np  # noqa: E402

from app.input import InputPoller  # noqa: E402
from app.jobs_manager import JOB_NICE, JobManager  # noqa: E402
from app.jobs_panel import JobsPanel  # noqa: E402
from app.memory import HeapPolicy, apply_heap_policy  # noqa: E402
from app.views import discover_views  # noqa: E402
from app.views.base import View  # noqa: E402
from app.widgets.options_form import OptionsForm  # noqa: E402
from methods.plugin import all_jobs  # noqa: E402
from render.device import device_description, process_memory_mb, studio_torch_threads  # noqa: E402

MENU_HEIGHT = 22
STATUS_HEIGHT = 34
JOBS_WIDTH = 380
KEEP_FINISHED_JOBS = 10  # the Jobs panel remembers this many finished jobs (their curves, previews); older go


@dataclass
class StudioConfig:
    width: int = 1440
    height: int = 900
    title: str = "mipstudio"
    views: tuple[str, ...] | None = None  # None: every registered view
    max_fps: float = 60.0  # display rate; above it the loop only takes CPU from renders and jobs
    vsync: bool = False
    transparent_windows: bool | None = None  # None: only under software GL (see apply_theme)
    ply: str | None = None  # a Gaussian scene for the Splat view (else the bundled demo)
    torch_threads: int | None = None  # None: all cores but one (render.device.studio_torch_threads)
    heap: HeapPolicy | None = field(default_factory=HeapPolicy)  # None: the C library's defaults (app/memory.py)


WORKER_THREADS = ("render-", "job-", "miner-", "stack-edit")  # threads that run torch/native code for the studio


def threads_still_working() -> list[str]:
    """Names of the studio's worker threads still alive (after ``Studio.close()``: ones that did not end in time)."""
    return [t.name for t in threading.enumerate() if t.is_alive() and t.name.startswith(WORKER_THREADS)]


def exit_after_close(code: int) -> int:
    """``code`` for the caller to return; if a worker thread is still inside torch, end the process here instead.
    At interpreter exit CPython ends daemon threads with pthread_exit, and a thread unwound that way through C++
    frames aborts the process ("terminate called without an active exception", CPython gh-87135): seen once in
    ten soak exits before ``close()`` stopped the views' sources too."""
    if threads_still_working():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


@dataclass
class FrameClock:
    """UI frame times (seconds) of the last few hundred frames."""

    times: deque = field(default_factory=lambda: deque(maxlen=600))
    last: float = field(default_factory=time.perf_counter)

    def tick(self) -> float:
        now = time.perf_counter()
        dt = now - self.last
        self.last = now
        self.times.append(dt)
        return dt

    def fps(self, n: int = 60) -> float:
        recent = list(self.times)[-n:]
        return len(recent) / sum(recent) if recent and sum(recent) > 0 else 0.0


def best_grid(n: int, width: int, height: int) -> tuple[int, int]:
    """Columns and rows for n views whose image panels have the longest short side (then the largest area): each
    view loses its options column, and a 600×60 strip shows less than a 220×150 panel."""
    from app.views.base import HEADER_HEIGHT, OPTIONS_WIDTH

    def panel(cols: int) -> tuple[float, float]:
        rows = math.ceil(n / cols)
        w = max(width / cols - OPTIONS_WIDTH - 24, 0)
        h = max(height / rows - HEADER_HEIGHT - 40, 0)
        return min(w, h), w * h

    cols = max(range(1, n + 1), key=panel)
    return cols, math.ceil(n / cols)


class Studio:
    """The application. Tests drive it frame by frame: ``setup()``, then ``frame()`` in a loop, then ``close()``."""

    def __init__(self, config: StudioConfig | None = None) -> None:
        self.config = config or StudioConfig()
        self.view_types = discover_views()  # source key -> (view class, SourceSpec), from the method families
        self.launchers = all_jobs()  # job name -> JobSpec, from the method families
        self.launcher_forms: dict[str, OptionsForm] = {}
        self.views: dict[str, View] = {}
        self.jobs = JobManager(nice=JOB_NICE, keep_finished=KEEP_FINISHED_JOBS)
        self.jobs_panel = JobsPanel(self.jobs)
        self.input = InputPoller()
        self.clock = FrameClock()
        self.frame_count = 0
        self.active_view: str | None = None
        self.texture_registry: int | str = 0
        self.tags: dict[str, int | str] = {}
        self._captures: list = []
        self._closed = False

    # ----- setup ------------------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.config
        if cfg.heap is not None:
            apply_heap_policy(cfg.heap)  # before the first thread: a session's heap stays near what it uses
        self.warmed_up = threading.Event()
        threading.Thread(target=_warm_up_torch, args=(self.warmed_up,), name="warm-up", daemon=True).start()
        import torch

        torch.set_num_threads(cfg.torch_threads or studio_torch_threads())  # a core stays with the UI thread
        sys.setswitchinterval(0.001)  # a job thread holding the GIL delays the UI by at most ~1 ms, not 5
        dpg.create_context()
        dpg.configure_app(manual_callback_management=True, docking=True, docking_space=False)
        dpg.create_viewport(title=cfg.title, width=cfg.width, height=cfg.height, vsync=cfg.vsync)
        self.texture_registry = dpg.add_texture_registry()
        apply_theme(software_gl() if cfg.transparent_windows is None else cfg.transparent_windows)
        self._build_menu()
        self._build_jobs_window()
        self._build_status_bar()
        self.input.install()
        dpg.set_viewport_resize_callback(lambda *_: self.layout())
        dpg.setup_dearpygui()
        dpg.show_viewport()
        for name in (cfg.views if cfg.views is not None else tuple(self.view_types)):
            self.open_view(name, relayout=False)
        self.layout()
        from app.views import VIEW_IMPORT_ERRORS

        for module, reason in VIEW_IMPORT_ERRORS.items():
            self.notify(f"view module '{module}' failed to load: {reason}")

    def _build_menu(self) -> None:
        with dpg.viewport_menu_bar():
            with dpg.menu(label="File"):
                dpg.add_menu_item(label="Save screenshot", callback=lambda: self.save_screenshot_async())
                dpg.add_menu_item(label="Quit", callback=lambda: dpg.stop_dearpygui())
            with dpg.menu(label="Views"):
                for name, (_, spec) in self.view_types.items():
                    self.tags[f"menu.{name}"] = dpg.add_menu_item(
                        label=spec.title, check=True, default_value=False,
                        callback=lambda s, a, u: self.open_view(u) if a else self.close_view(u), user_data=name)
            with dpg.menu(label="Layout"):
                dpg.add_menu_item(label="Tile views", callback=lambda: self.layout())
            with dpg.menu(label="Jobs"):
                for name in self.launchers:
                    dpg.add_menu_item(label=f"Start: {name}", callback=lambda s, a, u: self.start_job(u),
                                      user_data=name)
                dpg.add_menu_item(label="Cancel all", callback=lambda: self.jobs.cancel_all())
            with dpg.menu(label="Help"):
                dpg.add_text(HELP_TEXT)

    def _build_jobs_window(self) -> None:
        with dpg.window(label="Jobs", no_close=True, no_collapse=True, tag="jobs_window") as win:
            self.tags["jobs_window"] = win
            names = list(self.launchers)
            with dpg.group(horizontal=True):
                self.tags["launcher"] = dpg.add_combo(names, default_value=names[0] if names else "", width=230,
                                                      callback=lambda s, a: self._show_launcher_options(a))
                self.tags["start"] = dpg.add_button(
                    label="Start", callback=lambda: self.start_job(dpg.get_value(self.tags["launcher"])))
            self.tags["launcher_opts"] = dpg.add_group()
            for i, (name, spec) in enumerate(self.launchers.items()):
                with dpg.group(parent=self.tags["launcher_opts"], show=False) as g:
                    form = self.launcher_forms[name] = OptionsForm(spec.options, f"job{i}", width=150)
                    form.build(g)
                    if spec.help:
                        dpg.add_text(spec.help, wrap=JOBS_WIDTH - 30, color=(160, 160, 170))
                self.tags[f"launcher.{name}"] = g
            if names:
                self._show_launcher_options(names[0])
            dpg.add_separator()
            self.jobs_panel.build(win)

    def _show_launcher_options(self, name: str) -> None:
        for n in self.launchers:
            dpg.configure_item(self.tags[f"launcher.{n}"], show=(n == name))

    def _build_status_bar(self) -> None:
        with dpg.window(no_title_bar=True, no_move=True, no_resize=True, no_close=True, no_collapse=True,
                        no_scrollbar=True, tag="status_window") as win:
            self.tags["status_window"] = win
            self.tags["status"] = dpg.add_text("", tag="status_text")

    # ----- layout -----------------------------------------------------------------------------------------
    def viewport_size(self) -> tuple[int, int]:
        w = dpg.get_viewport_client_width() or self.config.width
        h = dpg.get_viewport_client_height() or self.config.height
        return int(w), int(h)

    def layout(self) -> None:
        """Anchor Jobs (right) and status bar (bottom); tile open views in a grid over the remaining area."""
        W, H = self.viewport_size()
        area_w, area_h = W - JOBS_WIDTH, H - MENU_HEIGHT - STATUS_HEIGHT
        dpg.configure_item(self.tags["jobs_window"], pos=(area_w, MENU_HEIGHT), width=JOBS_WIDTH, height=area_h)
        dpg.configure_item(self.tags["status_window"], pos=(0, H - STATUS_HEIGHT), width=W, height=STATUS_HEIGHT)
        views = list(self.views.values())
        if not views:
            return
        cols, rows = best_grid(len(views), area_w, area_h)
        cw, ch = area_w // cols, area_h // rows
        for i, v in enumerate(views):
            r, c = divmod(i, cols)
            dpg.configure_item(v.tags["window"], pos=(c * cw, MENU_HEIGHT + r * ch), width=cw, height=ch)

    # ----- views ------------------------------------------------------------------------------------------
    def open_view(self, name: str, relayout: bool = True) -> View | None:
        if name in self.views:
            return self.views[name]
        if name not in self.view_types:
            self.notify(f"unknown view '{name}'; available: {', '.join(self.view_types)}")
            return None
        cls, spec = self.view_types[name]
        try:
            view = cls(self, spec)
            view.build((0, MENU_HEIGHT), view.default_size)
        except Exception as e:  # noqa: BLE001 - a broken view must not take the studio down
            self.notify(f"could not open view '{name}': {type(e).__name__}: {e}")
            return None
        self.views[name] = view
        if f"menu.{name}" in self.tags:
            dpg.set_value(self.tags[f"menu.{name}"], True)
        if relayout:
            self.layout()
        return view

    def close_view(self, name: str) -> None:
        view = self.views.pop(name, None)
        if view is not None:
            view.destroy()
        if f"menu.{name}" in self.tags:
            dpg.set_value(self.tags[f"menu.{name}"], False)
        if self.active_view == name:
            self.active_view = None

    # ----- jobs -------------------------------------------------------------------------------------------
    def start_job(self, launcher_name: str, **overrides):
        spec = self.launchers.get(launcher_name)
        if spec is None:
            self.notify(f"unknown job '{launcher_name}'; available: {', '.join(self.launchers)}")
            return None
        form = self.launcher_forms.get(launcher_name)
        try:
            job = spec.make_job(**{**(form.values() if form is not None else {}), **overrides})
        except Exception as e:  # noqa: BLE001 - bad options become a message, not a crash
            self.notify(f"cannot start '{launcher_name}': {e}")
            return None
        return self.jobs.submit(job)

    def notify(self, message: str) -> None:
        """One line in the status bar (and stderr) for problems the user should see."""
        self._notice = (message, time.monotonic())
        print(f"mipstudio: {message}", flush=True)

    _notice: tuple[str, float] = ("", 0.0)

    # ----- main loop --------------------------------------------------------------------------------------
    def frame(self) -> None:
        dt = self.clock.tick()
        dpg.run_callbacks(dpg.get_callback_queue())
        inp = self.input.poll(dt)
        self._update_focus(inp)
        for name, view in list(self.views.items()):
            try:
                view.update(inp, has_focus=(name == self.active_view))
            except Exception as e:  # noqa: BLE001
                self.notify(f"view '{name}' failed: {type(e).__name__}: {e}; closing it")
                self.close_view(name)
        self.jobs_panel.update()
        self._update_status()
        dpg.render_dearpygui_frame()
        self.frame_count += 1
        if self.config.max_fps > 0:
            spare = 1.0 / self.config.max_fps - (time.perf_counter() - self.clock.last)
            if spare > 0:
                time.sleep(spare)

    def _update_focus(self, inp) -> None:
        for name, view in self.views.items():
            if view.texture is not None and inp.inside(view.image_rect()) and (inp.buttons or
                                                                               self.active_view is None):
                self.active_view = name

    def _update_status(self) -> None:
        parts = [f"UI {self.clock.fps():.0f} fps"]
        parts += [f"{v.title.split(' (')[0]}: {v.status_line}" for v in self.views.values()]
        parts.append(device_description())  # the threads torch really uses now
        parts.append(f"RAM {process_memory_mb():.0f} MB")
        parts.append(f"jobs running: {self.jobs.active_count}")
        msg, t = self._notice
        if msg and time.monotonic() - t < 10:
            parts.append(msg)
        dpg.set_value(self.tags["status"], "  |  ".join(parts))

    def run(self) -> None:
        while dpg.is_dearpygui_running():
            self.frame()
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.jobs.cancel_all()
        for view in self.views.values():  # every render is told first, so they all wind down together
            view.worker.request_stop()
        self.jobs.shutdown(timeout=3.0)
        for name in list(self.views):  # each view's source stops its own threads too (MINER fits, NeRF probes)
            view = self.views.pop(name)
            try:
                view.destroy()
            except Exception as e:  # noqa: BLE001 - closing goes on for the other views
                print(f"mipstudio: closing the {name} view: {type(e).__name__}: {e}", file=sys.stderr)
        dpg.destroy_context()

    # ----- screenshots ------------------------------------------------------------------------------------
    def capture(self, max_frames: int = 30) -> np.ndarray:
        """The whole viewport as HxWx4 float32 (DPG's framebuffer), rendering frames until it arrives.

        DPG hands back the frame drawn *before* the request, so one frame is drawn first to show current state.
        """
        self.frame()
        self._captures.clear()
        dpg.output_frame_buffer(callback=lambda s, a: self._captures.append(a))
        for _ in range(max_frames):
            self.frame()
            if self._captures:
                break
        if not self._captures:
            raise RuntimeError("the frame buffer capture did not arrive")
        buf = self._captures.pop()
        w, h = buf.get_width(), buf.get_height()
        return np.array(buf, dtype=np.float32).reshape(h, w, 4)

    def settled_screenshot(self, path: str, seconds: float, idle_timeout: float = 60.0) -> str:
        """Run the UI for ``seconds``, let every view finish its render, then save the window (docs, --screenshot)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.frame()
        for view in self.views.values():
            view.worker.wait_idle(idle_timeout)
        for _ in range(5):  # the capture reads the previous frame: draw the finished renders first
            self.frame()
        return self.save_screenshot(path)

    def save_screenshot(self, path: str) -> str:
        from assets.cache import atomic_save_image

        img = self.capture()
        atomic_save_image(path, img[..., :3])
        return path

    def save_screenshot_async(self) -> None:
        path = os.path.abspath(time.strftime("mipstudio_%Y%m%d_%H%M%S.png"))
        dpg.output_frame_buffer(callback=lambda s, a: self._write_buffer(a, path))

    def _write_buffer(self, buf, path: str) -> None:
        from assets.cache import atomic_save_image

        w, h = buf.get_width(), buf.get_height()
        atomic_save_image(path, np.array(buf, dtype=np.float32).reshape(h, w, 4)[..., :3])
        self.notify(f"screenshot saved: {path}")


WINDOW_BG = (37, 37, 38)


def software_gl() -> bool:
    """True when OpenGL is Mesa's CPU rasterizer (Xvfb, VMs): there every full-window fill costs milliseconds."""
    try:
        from render.gl import gl_info

        renderer = gl_info().get("GL_RENDERER", "").lower()
    except Exception:  # noqa: BLE001 - no GL at all: assume the slow path
        return True
    return any(k in renderer for k in ("llvmpipe", "softpipe", "swrast"))


def apply_theme(transparent_windows: bool) -> None:
    """With ``transparent_windows`` the window backgrounds are left transparent over a viewport cleared to the
    same colour: tiled windows look the same, but software GL skips a blended fill per window (measured on
    llvmpipe: 35 -> 23 ms per frame). Overlapping floating windows then show through, so GPUs keep opaque ones."""
    with dpg.theme() as theme:
        with dpg.theme_component(dpg.mvAll):
            dpg.add_theme_color(dpg.mvThemeCol_WindowBg, (*WINDOW_BG, 0 if transparent_windows else 255))
    dpg.bind_theme(theme)
    dpg.set_viewport_clear_color((*WINDOW_BG, 255))


def _warm_up_torch(done: threading.Event) -> None:
    """Import torch's optimizer machinery (~2 s, pulls in torch._dynamo) while the user looks at the first frame,
    instead of inside the first job the user starts."""
    try:
        import torch

        torch.optim.Adam([torch.zeros(1, requires_grad=True)]).step()
    finally:
        done.set()


HELP_TEXT = """Views: left-drag rotates (Orbit) or looks around (Fly); right-drag pans; wheel dollies.
Fly mode: hold W/A/S/D to move, Space/Shift up/down (click the image first to focus it).
Zoom slider: sampling rate relative to training, 1/8x ... 8x (log scale).
Jobs: pick a job, set its options, Start; Cancel stops it at the next step."""
