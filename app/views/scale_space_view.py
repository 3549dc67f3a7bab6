"""Scale-space view: a neural Gaussian scale-space field (NGSSF) blurred by any Σ in one forward pass.

Pick a bundled demo field (or train one on your own photo with "Open image…" — the view follows the live field
while the job trains), then choose the blur (the source's options: isotropic σ², anisotropic ellipse, foveated
around the cursor, anti-alias by zoom, compare with the exact blur). Without a bundled neural field the view shows
the exact blur of the photo (same plumbing, labelled as such). The maths is in methods/ngssf/live_source.py.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import dearpygui.dearpygui as dpg

from app.views import register_view
from app.views.base import OPTIONS_WIDTH, View, one_line
from app.widgets.options_form import HELP_COLOR
from methods.ngssf.live_source import EXACT_LABEL, GAP, ScaleSpaceSource, demo_field
from render.viewport import Viewport, to_field

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def demo_names() -> tuple[str, ...]:
    try:
        from methods.ngssf.demo import DEMO_NAMES

        return tuple(DEMO_NAMES)
    except Exception:  # noqa: BLE001 - the view still opens on the exact blur
        return ("astronaut", "chelsea")


@register_view
class ScaleSpaceView(View):
    name = "scale_space"

    def create_source(self) -> ScaleSpaceSource:
        self.fovea = (0.0, 0.0)
        self.field_label = EXACT_LABEL
        self.demo_name = demo_names()[0]
        self.source = None
        self.source = self._make_demo_source(self.demo_name, notify=False)
        return self.source

    # ----- fields -------------------------------------------------------------------------------------------
    def _make_demo_source(self, name: str, notify: bool = True) -> ScaleSpaceSource:
        """The bundled neural field for ``name``; if it is missing, the exact blur of the same photo."""
        field, image, label, problem = demo_field(name)
        if problem and notify:
            self.show_error(problem)
        self.field_label = label
        if self.source is None:
            return ScaleSpaceSource(field, image, label=label)
        self.source.set_field(field, image, label=label)
        return self.source

    def load_demo(self, name: str) -> bool:
        """Show the demo field of photo ``name`` (stops following a training job)."""
        try:
            self._make_demo_source(name)
        except Exception as e:  # noqa: BLE001 - even the photo is missing: keep the current field
            self.show_error(f"cannot load demo '{name}': {one_line(e)}")
            return False
        self.stop_following()
        self.demo_name = name
        self.center = [0.0, 0.0]
        self.last_request = None
        return True

    def train_on_image(self, path: str, preset: str = "cpu", **job_kwargs: Any):
        """Start a TrainNGSSFJob on an image file; the view shows its live field once the trainer exists."""
        try:
            from methods.ngssf.modalities import load_picture
            from methods.ngssf.train_job import TrainNGSSFJob

            load_picture(path, 16)  # unreadable files fail here, with one line, not in the job thread
            job = TrainNGSSFJob(image=path, preset=preset, **job_kwargs)
        except Exception as e:  # noqa: BLE001
            self.show_error(f"cannot train on {path}: {one_line(e)}")
            return None
        handle = self.studio.jobs.submit(job)
        label = f"training on {Path(path).name}"
        self.follow_job(handle, job, lambda live: self._on_live(live, label), f"NGSSF training on {Path(path).name}")
        self.field_label = f"waiting for {label}"
        return handle

    def _on_live(self, live, label: str) -> None:
        self.source.follow(live, label)
        self.field_label = label
        self.center = [0.0, 0.0]

    # ----- widgets ------------------------------------------------------------------------------------------
    def build_extra(self, parent: int | str) -> None:
        t, n = self.tags, self.name
        t["variance_label"] = dpg.add_text("", parent=parent, tag=f"{n}.variance_px")
        dpg.add_separator(parent=parent)
        dpg.add_text("Field", parent=parent)
        t["demo"] = dpg.add_combo(list(demo_names()), default_value=self.demo_name, width=-1, parent=parent,
                                  tag=f"{n}.demo", callback=lambda s, a: self.load_demo(a))
        dpg.add_button(label="Open image ... (train)", width=-1, parent=parent,
                       callback=lambda: dpg.show_item(t["dialog"]))
        with dpg.file_dialog(show=False, width=560, height=380, callback=self._on_dialog,
                             default_path=os.getcwd()) as dialog:
            for ext in IMAGE_EXTS:
                dpg.add_file_extension(ext)
            dpg.add_file_extension(".*")
        t["dialog"] = dialog
        t["psnr"] = dpg.add_text("", parent=parent, tag=f"{n}.psnr", wrap=OPTIONS_WIDTH - 20)
        dpg.add_text("Drag to pan, wheel to zoom. Foveated: the sharp spot follows the cursor. Compare: "
                     "field | exact | |error| x4.", parent=parent, wrap=OPTIONS_WIDTH - 20, color=HELP_COLOR)

    def _on_dialog(self, sender, app_data) -> None:
        path = (app_data or {}).get("file_path_name")
        if path:
            self.train_on_image(path)

    def internal_options(self) -> dict[str, Any]:
        return {"fovea": self.fovea}

    # ----- input --------------------------------------------------------------------------------------------
    def handle_input(self, inp, has_focus: bool) -> bool:
        changed = super().handle_input(inp, has_focus)
        if self.form.values().get("mode") == "foveated" and inp.inside(self.image_rect()):
            fov = self.screen_to_field(inp.mouse[0], inp.mouse[1])
            if fov is not None and max(abs(fov[0] - self.fovea[0]), abs(fov[1] - self.fovea[1])) > 1e-3:
                self.fovea = (round(fov[0], 3), round(fov[1], 3))
                self.dynres.touch()
                changed = True
        return changed

    def screen_to_field(self, mx: float, my: float) -> tuple[float, float] | None:
        """Field coordinates under a screen position (in compare mode: within whichever panel it is over), by the
        same :class:`Viewport` mapping the source renders with."""
        x0, y0, x1, y1 = self.image_rect()
        w, h = x1 - x0, y1 - y0
        if w <= 0 or h <= 0:
            return None
        px, py = mx - x0, my - y0
        if self.form.values().get("compare"):
            sub = (w - 2 * GAP) / 3
            px, w = px % (sub + GAP), sub
        size = self.source.image_size
        u, v = Viewport(tuple(self.center), self.zoom, int(w), int(h), size).to_image(px, py)
        x, y = to_field((float(u), float(v)), size)
        return float(x), float(y)

    # ----- per frame ----------------------------------------------------------------------------------------
    def info(self) -> str:
        o = self.options
        iw, ih = self.source.image_size
        sigma_px = math.sqrt(o.variance) * (max(iw, ih) - 1) / 2  # field units -> training pixels
        dpg.set_value(self.tags["variance_label"], f"{'max ' if o.mode == 'foveated' else ''}sigma {sigma_px:.1f}px")
        fin = self.worker.latest()
        aux = fin.frame.aux if fin is not None else {}
        psnr = aux.get("psnr")
        parts = [self.field_label]
        if "field" in (fin.frame.timings if fin is not None else {}):
            parts.append(f"field {fin.frame.timings['field'] * 1000:.0f} ms")
        if psnr is not None:
            parts.append(f"PSNR {psnr:.1f} dB vs exact")
        note = aux.get("compare_note", "")
        dpg.set_value(self.tags["psnr"], (f"PSNR {psnr:.1f} dB vs exact" + (f" ({note})" if note else ""))
                      if psnr is not None else "")
        return " · ".join(parts)
