"""Scale-space view: a neural Gaussian scale-space field (NGSSF) blurred by any Σ in one forward pass.

Pick a bundled demo field (or train one on your own photo with "Open image…" — the view follows the live field
while the job trains), then choose the blur: isotropic σ², an anisotropic ellipse (σ², ratio, angle) or a foveated
blur that is sharp around the cursor and grows with the distance from it. "Anti-alias by zoom" adds the screen
pixel's footprint, so the zoom slider (the sampling rate relative to training) stays alias-free when zooming out.
"Compare" puts the exact blur and the error map next to the field and shows their PSNR.

Without a bundled neural field the view shows the exact blur of the photo (same plumbing, labelled as such).
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import dearpygui.dearpygui as dpg

from app.views import register_view
from app.views.base import OPTIONS_WIDTH, View
from methods.ngssf.live_source import GAP, MODES, ExactBlurField, ScaleSpaceSource
from render.live import RenderRequest

EXACT_LABEL = "exact blur (no neural field available)"
VAR_LOG10 = (-6.0, -1.0)
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
FALLBACK_SIZE = 256  # the cpu training preset's image size


def demo_names() -> tuple[str, ...]:
    try:
        from methods.ngssf.demo import DEMO_NAMES

        return tuple(DEMO_NAMES)
    except Exception:  # noqa: BLE001 - the view still opens on the exact blur
        return ("astronaut", "chelsea")


@register_view
class ScaleSpaceView(View):
    name = "scale_space"
    title = "Scale space (NGSSF)"
    is_3d = False
    order = 30

    def create_source(self) -> ScaleSpaceSource:
        self.fovea = [0.0, 0.0]
        self.field_label = EXACT_LABEL
        self.demo_name = demo_names()[0]
        self.train_job = None
        self.train_handle = None
        self.trainer = None
        self._revision, self._revision_time = 0, -1e9
        self._source: ScaleSpaceSource | None = None
        self._source = self._make_demo_source(self.demo_name, notify=False)
        return self._source

    # ----- fields -------------------------------------------------------------------------------------------
    def _make_demo_source(self, name: str, notify: bool = True) -> ScaleSpaceSource:
        """The bundled neural field for ``name``; if it is missing, the exact blur of the same photo."""
        try:
            from methods.ngssf.demo import load_demo

            demo = load_demo(name)
            field, image, label = demo.field, demo.image, f"neural field '{name}'"
        except Exception as e:  # noqa: BLE001 - a missing/broken demo falls back to the exact blur
            if notify:
                self.studio.notify(f"no NGSSF demo '{name}': {str(e).splitlines()[0] if str(e) else e}; "
                                   f"showing the exact blur")
            from methods.ngssf.modalities import load_picture

            image, _ = load_picture(name, FALLBACK_SIZE)
            field, label = ExactBlurField(image), EXACT_LABEL
        self.field_label = label
        if self._source is None:
            return ScaleSpaceSource(field, image, label=label)
        self._source.set_field(field, image, label=label)
        return self._source

    def load_demo(self, name: str) -> bool:
        """Show the demo field of photo ``name`` (stops following a training job)."""
        try:
            self._make_demo_source(name)
        except Exception as e:  # noqa: BLE001 - even the photo is missing: keep the current field
            self.studio.notify(f"cannot load demo '{name}': {e}")
            return False
        self.demo_name = name
        self.train_job = self.trainer = self.train_handle = None
        self.center = [0.0, 0.0]
        self.last_request = None
        return True

    def train_on_image(self, path: str, preset: str = "cpu", **job_kwargs):
        """Start a TrainNGSSFJob on an image file; the view shows its live field once the trainer exists."""
        try:
            from methods.ngssf.modalities import load_picture
            from methods.ngssf.train_job import TrainNGSSFJob

            load_picture(path, 16)  # unreadable files fail here, with one line, not in the job thread
            job = TrainNGSSFJob(image=path, preset=preset, **job_kwargs)
        except Exception as e:  # noqa: BLE001
            self.studio.notify(f"cannot train on {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            return None
        self.train_job, self.trainer = job, None
        self.train_handle = self.studio.jobs.submit(job)
        self.field_label = f"waiting for training on {Path(path).name}"
        return self.train_handle

    def _hook_trainer(self) -> None:
        job = self.train_job
        if job is not None and job.trainer is None and self.train_handle is not None and self.train_handle.finished:
            snap = self.train_handle.snapshot()
            if snap.status.name != "CANCELLED":
                err = snap.error or "it stopped before its field existed"
                self.studio.notify(f"NGSSF training on {Path(job.image).name} failed: {str(err).splitlines()[0]}")
            self.train_job = self.train_handle = None
            self.field_label = self._source.label
            return
        if job is None or job.trainer is None or self.trainer is job.trainer:
            return
        trainer = self.trainer = job.trainer
        image = getattr(trainer.signal, "image", None)
        if image is None:
            self.studio.notify("the training job has no picture to show; keeping the current field")
            self.train_job = None
            return
        label = f"training on {Path(job.image).name}"
        self._source.set_field(trainer.field, image, lock=trainer.lock, label=label)
        self.field_label = label
        self.center = [0.0, 0.0]
        self.last_request = None

    def _training(self) -> bool:
        return self.trainer is not None and self.train_handle is not None and not self.train_handle.finished

    # ----- options ------------------------------------------------------------------------------------------
    def build_options(self, parent: int | str) -> None:
        t, n = self.tags, self.name
        dpg.add_text("Field", parent=parent)
        names = list(demo_names())
        t["demo"] = dpg.add_combo(names, default_value=self.demo_name, width=-1, parent=parent, tag=f"{n}.demo",
                                  callback=lambda s, a: self.load_demo(a))
        dpg.add_button(label="Open image ... (train)", width=-1, parent=parent,
                       callback=lambda: dpg.show_item(t["dialog"]))
        with dpg.file_dialog(show=False, width=560, height=380, callback=self._on_dialog,
                             default_path=os.getcwd()) as dialog:
            for ext in IMAGE_EXTS:
                dpg.add_file_extension(ext)
            dpg.add_file_extension(".*")
        t["dialog"] = dialog
        dpg.add_separator(parent=parent)
        dpg.add_text("Blur", parent=parent)
        t["mode"] = dpg.add_radio_button(list(MODES), default_value="isotropic", parent=parent, tag=f"{n}.mode")
        t["variance"] = dpg.add_slider_float(label="", min_value=VAR_LOG10[0], max_value=VAR_LOG10[1],
                                             default_value=-4.0, format="", width=-1, parent=parent,
                                             tag=f"{n}.variance")
        t["variance_label"] = dpg.add_text("", parent=parent, tag=f"{n}.variance_label")
        t["ratio"] = dpg.add_slider_float(label="ratio", min_value=1.0, max_value=20.0, default_value=4.0,
                                          format="%.1f", width=120, parent=parent, tag=f"{n}.ratio")
        t["angle"] = dpg.add_slider_float(label="angle", min_value=0.0, max_value=180.0, default_value=0.0,
                                          format="%.0f deg", width=120, parent=parent, tag=f"{n}.angle")
        t["antialias"] = dpg.add_checkbox(label="anti-alias by zoom", default_value=True, parent=parent,
                                          tag=f"{n}.antialias")
        t["compare"] = dpg.add_checkbox(label="compare with exact", default_value=False, parent=parent,
                                        tag=f"{n}.compare")
        t["ellipse"] = dpg.add_checkbox(label="2-sigma ellipse", default_value=True, parent=parent,
                                        tag=f"{n}.ellipse")
        t["psnr"] = dpg.add_text("", parent=parent, tag=f"{n}.psnr", wrap=OPTIONS_WIDTH - 20)
        dpg.add_text("Drag to pan, wheel to zoom. Foveated: the sharp spot follows the cursor. Compare: "
                     "field | exact | |error| x4.", parent=parent, wrap=OPTIONS_WIDTH - 20, color=(160, 160, 170))

    def _on_dialog(self, sender, app_data) -> None:
        path = (app_data or {}).get("file_path_name")
        if path:
            self.train_on_image(path)

    @property
    def variance(self) -> float:
        return float(10.0 ** dpg.get_value(self.tags["variance"]))

    def read_options(self) -> dict[str, Any]:
        t = self.tags
        mode = dpg.get_value(t["mode"])
        opts: dict[str, Any] = {"mode": mode, "variance": float(f"{self.variance:.4g}"),
                                "antialias": bool(dpg.get_value(t["antialias"])),
                                "compare": bool(dpg.get_value(t["compare"])),
                                "ellipse": bool(dpg.get_value(t["ellipse"])),
                                "field": self.field_label}
        if mode == "anisotropic":
            opts["ratio"] = round(float(dpg.get_value(t["ratio"])), 2)
            opts["angle"] = round(float(dpg.get_value(t["angle"])), 1)
        if mode == "foveated":
            opts["fovea"] = (round(self.fovea[0], 3), round(self.fovea[1], 3))
        if self._training():
            # the live field is re-copied (under the trainer's lock) at most every max(1 s, 3x the last render),
            # so drawing takes at most about a third of the CPU from training; a counter, not time/period, so a
            # changing render time never makes the revision jump back and forth
            now = time.monotonic()
            period = max(1.0, 3.0 * (self.worker.last_full_seconds or 0.0))
            if now - self._revision_time >= period:
                self._revision, self._revision_time = self._revision + 1, now
            opts["revision"] = self._revision
        return opts

    def make_request(self, width: int, height: int, preview: bool) -> RenderRequest:
        opts = self.read_options()
        if self.panel_size[0]:
            opts["render_scale"] = round(width / self.panel_size[0], 4)  # previews cover the same region
        return RenderRequest(width=width, height=height, zoom=self.zoom, options=RenderRequest.pack_options(opts),
                             preview=preview, center=(round(self.center[0], 5), round(self.center[1], 5)))

    # ----- input --------------------------------------------------------------------------------------------
    def handle_input(self, inp, has_focus: bool) -> bool:
        before = list(self.center)
        changed = super().handle_input(inp, has_focus)
        iw, ih = self._source.image_size
        pw = self.panel_size[0] or 1
        # the base class pans by 2/(panel width·zoom) per screen pixel; one screen pixel here is 1/zoom training
        # pixels = 2/((N−1)·zoom) field units, so the picture sticks to the mouse
        self.center = [float(min(max(before[0] + (self.center[0] - before[0]) * pw / max(iw - 1, 1), -1.5), 1.5)),
                       float(min(max(before[1] + (self.center[1] - before[1]) * pw / max(ih - 1, 1), -1.5), 1.5))]
        if dpg.get_value(self.tags["mode"]) == "foveated" and inp.inside(self.image_rect()):
            fov = self.screen_to_field(inp.mouse[0], inp.mouse[1])
            if fov is not None and (abs(fov[0] - self.fovea[0]) > 1e-3 or abs(fov[1] - self.fovea[1]) > 1e-3):
                self.fovea = list(fov)
                self.dynres.touch()
                changed = True
        return changed

    def screen_to_field(self, mx: float, my: float) -> tuple[float, float] | None:
        """Field coordinates under a screen position (in compare mode: within whichever panel it is over)."""
        x0, y0, x1, y1 = self.image_rect()
        w, h = x1 - x0, y1 - y0
        if w <= 0 or h <= 0:
            return None
        px, py = mx - x0, my - y0
        if dpg.get_value(self.tags["compare"]):
            sub = (w - 2 * GAP) / 3
            px = px % (sub + GAP)
            w = sub
        iw, ih = self._source.image_size
        zoom = self.zoom
        u = (self.center[0] + 1) * (iw - 1) / 2 + (px - w / 2) / zoom
        v = (self.center[1] + 1) * (ih - 1) / 2 + (py - h / 2) / zoom
        return (u / max(iw - 1, 1) * 2 - 1, v / max(ih - 1, 1) * 2 - 1)

    # ----- per frame ----------------------------------------------------------------------------------------
    def update(self, inp, has_focus: bool) -> None:
        self._hook_trainer()
        if "variance_label" in self.tags:
            iw, ih = self._source.image_size
            var = self.variance
            dpg.set_value(self.tags["variance_label"],
                          f"{'max ' if dpg.get_value(self.tags['mode']) == 'foveated' else ''}"
                          f"var {var:.1e}, sigma {math.sqrt(var) * (max(iw, ih) - 1) / 2:.1f}px")
        super().update(inp, has_focus)

    def info(self) -> str:
        fin = self.worker.latest()
        aux = fin.frame.aux if fin is not None else {}
        psnr = aux.get("psnr")
        parts = [self.field_label]
        if "field" in (fin.frame.timings if fin is not None else {}):
            parts.append(f"field {fin.frame.timings['field'] * 1000:.0f} ms")
        if psnr is not None:
            parts.append(f"PSNR {psnr:.1f} dB vs exact")
        if "psnr" in self.tags:
            note = aux.get("compare_note", "")
            dpg.set_value(self.tags["psnr"], (f"PSNR {psnr:.1f} dB vs exact" + (f" ({note})" if note else ""))
                          if psnr is not None else "")
        return " · ".join(parts)
