"""Splat view: a 3D Gaussian scene (.ply) rendered by our rasterizer, or the live model of a training job.

Zoom 1× means the sampling rate the model was trained at (the dataset's focal length). Picking a dataset test view
puts the camera exactly on it at the dataset scale nearest to the zoom, so the panel shows PSNR against true
ground truth and, in "error" mode, where the error is.
"""
from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import dearpygui.dearpygui as dpg
import numpy as np

from app.views import register_view
from app.views.base import OPTIONS_WIDTH, View
from render.camera import Camera, look_at_world_to_cam
from render.live import RenderRequest

FILTERS = ("mip", "3dgs", "none")
MODES = ("rgb", "depth", "alpha", "count", "error")
FREE = "free camera"
DEFAULT_FOCAL = 256 / math.tan(math.radians(25))  # a loaded .ply without its dataset: 50° over 512 px


class DatasetGT:
    """Test cameras and images of a multi-scale dataset, loaded lazily per scale (cached)."""

    def __init__(self, root: Path, white_background: bool) -> None:
        from methods.datasets import read_multiscale

        self.root, self.white = Path(root), white_background
        self.scales = sorted({1.0, *(float(e["scale"]) for e in read_multiscale(root)["splits"]["test"])})
        self._cache: dict[float, Any] = {}
        self._lock = threading.Lock()

    def at(self, scale: float):
        from methods.datasets import load_nerf_synthetic

        with self._lock:
            if scale not in self._cache:
                self._cache[scale] = load_nerf_synthetic(self.root, "test", scale=scale,
                                                         white_background=self.white)
            return self._cache[scale]

    def nearest_scale(self, s: float) -> float:
        return min(self.scales, key=lambda x: abs(math.log2(x) - math.log2(s)))


@register_view
class SplatView(View):
    name = "splat"
    title = "Splat (3DGS / Mip-Splatting)"
    order = 5

    def create_source(self):
        from methods.gaussians.live_source import SplatSource

        self.model_label = "no model"
        self.base_focal = DEFAULT_FOCAL
        self.center_point = np.zeros(3)
        self.radius = 4.0
        self.gt: DatasetGT | None = None
        self.train_scale = 1.0  # dataset scale the shown model was trained at (zoom 1)
        self.trainer = None
        self._last_aux: dict = {}
        source = SplatSource(gt_lookup=self._gt_lookup)
        self._source = source
        path = getattr(self.studio.config, "ply", None) or self._demo_ply()
        if path:
            self._load_into(source, path)
        return source

    # ----- model loading --------------------------------------------------------------------------------------
    @staticmethod
    def _demo_ply() -> str | None:
        try:
            from assets.splat_demo import demo_ply_path

            return str(demo_ply_path())
        except Exception:  # noqa: BLE001 - the view still opens; the user can load a file
            return None

    def _load_into(self, source, path: str) -> bool:
        from methods.gaussians.ply import load_ply

        try:
            model = load_ply(path)
        except Exception as e:  # noqa: BLE001 - one line to the user, the view keeps the old model
            self.studio.notify(f"cannot open {path}: {e}")
            return False
        source.set_model(model)
        self.model_label = Path(path).name
        self._frame_model(model)
        self.gt = None
        self.train_scale = 1.0
        self.last_request = None
        return True

    def _frame_model(self, model) -> None:
        """Orbit the robust centre of the Gaussians at a distance that fits their bulk in view."""
        import torch

        with torch.no_grad():
            xyz = model.means.detach().cpu().numpy()
        if len(xyz):
            lo, hi = np.percentile(xyz, 2, axis=0), np.percentile(xyz, 98, axis=0)
            self.center_point = (lo + hi) / 2
            self.radius = float(max(np.linalg.norm(hi - lo), 1e-3)) * 1.1
        self.reset_camera()

    def open_ply(self, path: str) -> bool:
        return self._load_into(self._source, path)

    # ----- camera ---------------------------------------------------------------------------------------------
    def base_camera(self, width: int, height: int) -> Camera:
        c = getattr(self, "center_point", np.zeros(3))
        r = getattr(self, "radius", 4.0)
        eye = c + r * np.array([0.0, -math.cos(math.radians(25)), math.sin(math.radians(25))])
        f = getattr(self, "base_focal", DEFAULT_FOCAL)
        return Camera(f, f, width / 2, height / 2, width, height, look_at_world_to_cam(eye, c), near=0.01)

    def home_target(self) -> np.ndarray:
        return np.asarray(getattr(self, "center_point", np.zeros(3)), dtype=np.float64)

    # ----- options --------------------------------------------------------------------------------------------
    def build_options(self, parent: int | str) -> None:
        t = self.tags
        dpg.add_button(label="Open .ply ...", parent=parent, width=-1, callback=lambda: dpg.show_item(t["dialog"]))
        with dpg.file_dialog(show=False, width=560, height=380, callback=self._on_dialog,
                             default_path=os.getcwd()) as dialog:
            dpg.add_file_extension(".ply")
        t["dialog"] = dialog
        dpg.add_text("2D filter", parent=parent)
        t["filter"] = dpg.add_radio_button(FILTERS, default_value="mip", horizontal=True, parent=parent,
                                           tag=f"{self.name}.filter")
        t["filter3d"] = dpg.add_checkbox(label="3D filter (Mip-Splatting)", default_value=True, parent=parent,
                                         tag=f"{self.name}.filter3d")
        t["render_mode"] = dpg.add_combo(MODES, label="render", default_value="rgb", width=120, parent=parent,
                                         tag=f"{self.name}.render_mode")
        t["sh"] = dpg.add_slider_int(label="SH degree", min_value=0, max_value=3, default_value=3, width=120,
                                     parent=parent, tag=f"{self.name}.sh")
        t["white"] = dpg.add_checkbox(label="white background", default_value=False, parent=parent)
        dpg.add_separator(parent=parent)
        dpg.add_text("Ground truth", parent=parent)
        t["gt_view"] = dpg.add_combo([FREE], default_value=FREE, width=-1, parent=parent, tag=f"{self.name}.gt_view")
        t["psnr"] = dpg.add_text("", parent=parent, tag=f"{self.name}.psnr")
        dpg.add_separator(parent=parent)
        dpg.add_text("Train on a dataset", parent=parent)
        t["dataset"] = dpg.add_input_text(hint="synthetic 'default' preset", width=-1, parent=parent)
        t["method"] = dpg.add_combo(("mip", "3dgs"), label="method", default_value="mip", width=120, parent=parent)
        t["preset"] = dpg.add_combo(("cpu_small", "test_tiny", "paper"), label="preset", default_value="cpu_small",
                                    width=120, parent=parent)
        t["train"] = dpg.add_button(label="Train", width=-1, parent=parent, callback=lambda: self.start_training())
        dpg.add_text("The view follows the live model while the job runs; Cancel keeps the last checkpoint.",
                     parent=parent, wrap=OPTIONS_WIDTH - 20, color=(160, 160, 170))

    def _on_dialog(self, sender, app_data) -> None:
        path = (app_data or {}).get("file_path_name")
        if path:
            self.open_ply(path)

    def read_options(self) -> dict[str, Any]:
        t = self.tags
        white = bool(dpg.get_value(t["white"]))
        opts = {"filter": dpg.get_value(t["filter"]), "use_3d_filter": bool(dpg.get_value(t["filter3d"])),
                "mode": dpg.get_value(t["render_mode"]), "sh_degree": int(dpg.get_value(t["sh"])),
                "background": (1.0, 1.0, 1.0) if white else (0.0, 0.0, 0.0), "gt_view": dpg.get_value(t["gt_view"])}
        if self.trainer is not None and not self._trainer_finished():
            # Re-render the live model on a clock: at most every max(1 s, 3x the last render), so drawing the
            # model never takes more than about a third of the CPU away from training it.
            period = max(1.0, 3.0 * (self.worker.last_full_seconds or 0.0))
            opts["revision"] = int(time.monotonic() / period)
        return opts

    # ----- ground truth ---------------------------------------------------------------------------------------
    def set_dataset(self, root: str | Path, white_background: bool) -> None:
        """Associate a multi-scale dataset: its focal becomes zoom 1 and its test views become selectable."""
        try:
            self.gt = DatasetGT(Path(root), white_background)
            base = self.gt.at(self.train_scale)
        except Exception as e:  # noqa: BLE001
            self.studio.notify(f"no ground truth from {root}: {e}")
            self.gt = None
            return
        self.base_focal = base.cameras[0].fx
        self.center_point, self.radius = np.zeros(3), float(np.linalg.norm(base.cameras[0].position))
        items = [FREE] + [f"test view {i}" for i in range(len(base.cameras))]
        dpg.configure_item(self.tags["gt_view"], items=items)
        dpg.set_value(self.tags["white"], white_background)
        self.reset_camera()

    def _gt_index(self) -> int | None:
        v = dpg.get_value(self.tags["gt_view"]) if "gt_view" in self.tags else FREE
        return None if v == FREE or self.gt is None else int(v.rsplit(" ", 1)[1])

    def make_request(self, width: int, height: int, preview: bool) -> RenderRequest:
        k = self._gt_index()
        if k is None:
            return super().make_request(width, height, preview)
        scale = self.gt.nearest_scale(self.train_scale * self.zoom)
        cam = self.gt.at(scale).cameras[k]
        return RenderRequest(width=cam.width, height=cam.height, zoom=scale / self.train_scale, camera=cam,
                             options=RenderRequest.pack_options({**self.read_options(), "gt_scale": scale}),
                             preview=False)

    def _gt_lookup(self, request: RenderRequest):
        from methods.gaussians.live_source import GroundTruth

        k, scale = self._gt_index(), request.option("gt_scale")
        if k is None or scale is None or self.gt is None:
            return None
        return GroundTruth(self.gt.at(scale).images[k])

    def handle_input(self, inp, has_focus: bool) -> bool:
        changed = super().handle_input(inp, has_focus)
        if changed and self._gt_index() is not None:
            dpg.set_value(self.tags["gt_view"], FREE)  # moving the camera leaves the ground-truth view
        return changed

    # ----- training ---------------------------------------------------------------------------------------------
    def start_training(self, **overrides):
        """Start a training job on the chosen dataset; the view follows its live model (under the trainer's lock)."""
        from methods.gaussians.train import TrainConfig
        from methods.gaussians.train_job import TrainGaussiansJob

        t = self.tags
        dataset = overrides.pop("dataset", None) or dpg.get_value(t["dataset"]).strip()
        preset = overrides.pop("preset", None) or dpg.get_value(t["preset"])
        method = overrides.pop("method", None) or dpg.get_value(t["method"])
        try:
            cfg = TrainConfig.preset(preset, method=method, **overrides)
        except (ValueError, TypeError) as e:
            self.studio.notify(f"cannot start training: {e}")
            return None
        self.train_job = TrainGaussiansJob(config=cfg, dataset=dataset)
        self.trainer = None
        self.train_handle = self.studio.jobs.submit(self.train_job)
        return self.train_handle

    def _hook_trainer(self) -> None:
        """Main thread: once the job has built its trainer, show its live model and its dataset's ground truth."""
        job = getattr(self, "train_job", None)
        if job is None or job.trainer is None or self.trainer is job.trainer:
            return
        trainer = self.trainer = job.trainer
        cfg = trainer.config
        self._source.set_model(trainer.model, trainer.lock)
        self.model_label = f"training {cfg.method} ({cfg.name})"
        self.train_scale = cfg.train_scale
        self.set_dataset(job.root, cfg.white_background)
        dpg.set_value(self.tags["filter"], cfg.spec.filter)
        dpg.set_value(self.tags["filter3d"], cfg.spec.use_3d_filter)
        self.last_request = None

    def update(self, inp, has_focus: bool) -> None:
        self._hook_trainer()
        super().update(inp, has_focus)

    def _trainer_finished(self) -> bool:
        handle = getattr(self, "train_handle", None)
        return handle is None or handle.finished

    # ----- info ---------------------------------------------------------------------------------------------
    def info(self) -> str:
        fin = self.worker.latest()
        aux = fin.frame.aux if fin is not None else {}
        psnr = aux.get("psnr")
        if "psnr" in self.tags:
            dpg.set_value(self.tags["psnr"], f"PSNR {psnr:.2f} dB vs GT x{fin.request.option('gt_scale'):g}"
                          if psnr is not None else "")
        n = aux.get("n_gaussians")
        return f"{self.model_label}" + (f" · {n:,} Gaussians" if n is not None else "")
