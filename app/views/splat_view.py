"""Splat view: a 3D Gaussian scene (.ply) or the live model of a training job, drawn by our rasterizer.

Zoom 1× is the sampling rate the model was trained at (the dataset's focal length). Picking a dataset test view
puts the camera exactly on it at the dataset scale nearest to the zoom, so the panel shows PSNR against true
ground truth and, in "error" mode, where the error is. Everything but the widgets lives in
methods/gaussians/live_source.py (SplatSource) and methods/datasets/test_views.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import dearpygui.dearpygui as dpg

from app.views import register_view
from app.views.base import OPTIONS_WIDTH, View, one_line
from app.views.splat_edit import SplatEditPanel
from app.widgets.options_form import HELP_COLOR, OptionsForm
from methods.live_training import LiveTraining
from render.device import cuda_device_name
from render.live import RenderRequest

FREE = "free camera"
BACKEND_TITLES = {"gl": "OpenGL", "torch": "torch", "cuda": "CUDA"}
TRAIN_JOB = "Train Gaussian splatting (3DGS / Mip-Splatting)"


@register_view
class SplatView(View):
    name = "splat"

    def create_source(self):
        from methods.gaussians.live_source import SplatSource

        self.model_label = "no model"
        self._backend_note = ""
        self._stacks_seen: set[int] = set()
        self.train_form: OptionsForm | None = None
        self.editor: SplatEditPanel | None = None
        self.opened_path = ""  # the .ply or mipmap.json shown: saving edits over it asks first
        source = SplatSource()
        self.source = source
        path = getattr(self.studio.config, "ply", None) or self._demo_ply()
        if path:
            self._load_into(source, path)
        return source

    # ----- model loading --------------------------------------------------------------------------------------
    def _demo_ply(self) -> str | None:
        try:
            from methods.gaussians.demo import demo_ply_path

            return str(demo_ply_path())
        except Exception as e:  # noqa: BLE001 - the view still opens; the user can load a file
            self.error_text = f"no bundled demo scene: {one_line(e)}"
            return None

    def _load_into(self, source, path: str) -> bool:
        from methods.gaussians.ply import load_ply

        try:
            model = load_ply(path)
        except Exception as e:  # noqa: BLE001 - one line in the view; it keeps the old model
            self.show_error(f"cannot open {path}: {one_line(e)}")
            return False
        self.stop_following()
        source.set_model(model)
        self.model_label = Path(path).name
        self.opened_path = path
        self.clear_error()
        if getattr(model, "load_note", ""):
            self.show_error(model.load_note)  # shown, not fatal: the rest of the scene is on screen
        self.last_request = None
        if "gt_view" in self.tags:
            dpg.configure_item(self.tags["gt_view"], items=[FREE])
            dpg.set_value(self.tags["gt_view"], FREE)
        self.reset_camera()
        return True

    def open_ply(self, path: str) -> bool:
        return self._load_into(self.source, path)

    # ----- widgets --------------------------------------------------------------------------------------------
    def build_extra(self, parent: int | str) -> None:
        t = self.tags
        dpg.add_separator(parent=parent)
        self.add_open_file(parent, "Open .ply / mipmap.json ...", (".ply", ".json"),
                           lambda p: self.open_stack(p) if p.endswith(".json") else self.open_ply(p))
        dpg.add_separator(parent=parent)
        dpg.add_text("Ground truth", parent=parent)
        t["gt_view"] = dpg.add_combo([FREE], default_value=FREE, width=-1, parent=parent, tag=f"{self.name}.gt_view")
        t["psnr"] = dpg.add_text("", parent=parent, tag=f"{self.name}.psnr")
        self.editor = SplatEditPanel(self)
        self.editor.build(parent)
        self.train_form = self.add_train_form(parent, TRAIN_JOB, self.start_training)
        if self.train_form is not None:
            dpg.add_text("The view follows the live model while the job runs; Cancel keeps the last checkpoint.",
                         parent=parent, wrap=OPTIONS_WIDTH - 20, color=HELP_COLOR)

    def open_stack(self, path: str) -> bool:
        """Show a Mipmap-GS stack: the level(s) matching the zoom are drawn (the 'mip stack' option)."""
        try:
            stack = self.source.set_stack(path)
        except Exception as e:  # noqa: BLE001 - one line in the view; it keeps what it showed
            self.show_error(f"cannot open {path}: {one_line(e)}")
            return False
        self.stop_following()
        self.opened_path = path
        self.model_label = f"{Path(path).parent.name}/mipmap.json: base + {len(stack.levels)} levels"
        self.clear_error()
        views = self.source.test_views
        items = [FREE] + ([f"test view {i}" for i in range(len(views))] if views is not None else [])
        dpg.configure_item(self.tags["gt_view"], items=items)
        dpg.set_value(self.tags["gt_view"], FREE)
        if views is not None:
            self.form.set("white_background", True)
            self.form.set("filter", stack.meta.get("method", "3dgs") if stack.meta.get("method") in ("3dgs", "mip")
                          else "3dgs")
            self.form.set("use_3d_filter", stack.meta.get("method") == "mip")
        self.last_request = None
        self.reset_camera()
        return True

    def _open_finished_stacks(self) -> None:
        """A Mipmap-GS job that finished since the last frame opens its stack here."""
        for h in self.studio.jobs.jobs:
            if h.id in self._stacks_seen or not h.finished:
                continue
            self._stacks_seen.add(h.id)
            result = h.result if isinstance(h.result, dict) else {}
            if "stack" in result and h.snapshot().status.name == "DONE":
                self.open_stack(result["stack"])

    # ----- ground truth -----------------------------------------------------------------------------------------
    def _gt_index(self) -> int | None:
        v = dpg.get_value(self.tags["gt_view"]) if "gt_view" in self.tags else FREE
        return None if v == FREE or self.source.test_views is None else int(v.rsplit(" ", 1)[1])

    def make_request(self, width: int, height: int, preview: bool) -> RenderRequest:
        k = self._gt_index()
        if k is None:
            return super().make_request(width, height, preview)
        src = self.source
        cam, scale = src.test_views.view(k, self.zoom, src.train_scale)
        return RenderRequest(width=cam.width, height=cam.height, zoom=scale / src.train_scale, camera=cam,
                             options=self.form.read(**self.internal_options(), gt_view=k, gt_scale=scale),
                             revision=self.follow_policy.revision(self.live, self.worker.last_full_seconds))

    def internal_options(self) -> dict[str, Any]:
        edit = self.source.edit
        return {"edit_revision": edit.revision if edit is not None else 0}

    def handle_input(self, inp, has_focus: bool) -> bool:
        if self.editor is not None:
            inp = self.editor.handle_input(inp, has_focus)  # a selection tool takes the left button
        changed = super().handle_input(inp, has_focus)
        if changed and self._gt_index() is not None:
            dpg.set_value(self.tags["gt_view"], FREE)  # moving the camera leaves the ground-truth view
        return changed

    # ----- training ---------------------------------------------------------------------------------------------
    def start_training(self, **overrides: Any):
        """Start the Gaussian training job with the form's options (``overrides`` win) and follow its model."""
        values = {**(self.train_form.values() if self.train_form else {}), **overrides}
        return self.start_and_follow(TRAIN_JOB, values, self._on_live, "Gaussian training")

    def _on_live(self, job, live: LiveTraining) -> None:
        info = self.source.follow(live, getattr(job, "root", "") or None)
        self.opened_path = ""
        self.model_label = f"training {info.get('method', '')} ({info.get('preset', '')})"
        for name in ("filter", "use_3d_filter", "white_background"):
            if name in info:
                self.form.set(name, info[name])
        views = self.source.test_views
        items = [FREE] + ([f"test view {i}" for i in range(len(views))] if views is not None else [])
        dpg.configure_item(self.tags["gt_view"], items=items)
        self.reset_camera()

    def update(self, inp, has_focus: bool) -> None:
        self._open_finished_stacks()
        super().update(inp, has_focus)
        if self.editor is not None and self.visible():
            self.editor.refresh()

    def destroy(self) -> None:
        if self.editor is not None:
            self.editor.destroy()
        super().destroy()

    # ----- info ---------------------------------------------------------------------------------------------
    def status_detail(self) -> str:
        fin = self.worker.latest()
        backend = fin.frame.aux.get("backend") if fin is not None else None
        if not backend:
            return ""
        title = BACKEND_TITLES.get(backend, backend)
        if backend == "cuda":
            title += f" ({cuda_device_name()})"  # the "CUDA (GPU name)"
        return f"{title} rasterizer"

    def info(self) -> str:
        fin = self.worker.latest()
        aux = fin.frame.aux if fin is not None else {}
        note = aux.get("backend_note", "")
        if note and not self.error_text:
            self.show_error(note)  # e.g. no OpenGL 4.3: the torch reference drew this frame
        elif not note and self.error_text == self._backend_note:
            self.clear_error()
        self._backend_note = note
        psnr = aux.get("psnr")
        dpg.set_value(self.tags["psnr"], f"PSNR {psnr:.2f} dB vs GT x{aux['gt_scale']:g}" if psnr is not None else "")
        n = aux.get("n_gaussians")
        levels = f" · levels {aux['levels']}" if aux.get("levels") else ""
        selected = f" · {aux['selected']:,} selected" if aux.get("selected") else ""
        return f"{self.model_label}" + (f" · {n:,} Gaussians" if n is not None else "") + selected + levels
