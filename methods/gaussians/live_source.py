"""LiveSource for Gaussian splats: renders a static model (a loaded .ply) or a model being trained, under its lock.

Render modes turn the rasterizer's outputs into pictures (RGB, depth, alpha, Gaussian-count heat, error against
ground truth). When the request names a ground-truth image (a dataset test view at a dataset scale) the frame
carries its PSNR in ``aux["psnr"]``.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from render.colormap import colormap
from render.live import Frame, RenderRequest


def _rgb(out, gt):  # noqa: ARG001 - same signature for every mode
    return out.color.clamp(0, 1).numpy()


def _depth(out, gt):  # noqa: ARG001
    a = out.alpha.numpy()
    d = np.where(a > 0.05, out.depth.numpy() / np.maximum(a, 1e-6), np.nan)
    return colormap(-d) * a[..., None]  # near = bright


def _alpha(out, gt):  # noqa: ARG001
    return np.repeat(out.alpha.numpy()[..., None], 3, axis=2)


def _count(out, gt):  # noqa: ARG001
    n = out.n_contrib.numpy().astype(np.float32)
    return colormap(np.log1p(n), lo=0.0, hi=max(float(np.log1p(n).max()), 1.0))


def _error(out, gt):
    if gt is None:
        return _rgb(out, gt)
    err = np.abs(out.color.clamp(0, 1).numpy() - gt).mean(axis=2)
    return colormap(err, lo=0.0, hi=0.25)


RENDER_MODES: dict[str, Callable] = {"rgb": _rgb, "depth": _depth, "alpha": _alpha, "count": _count, "error": _error}


@dataclass
class GroundTruth:
    """A ground-truth image for the exact camera of a request (dataset test view at one scale)."""

    image: np.ndarray  # (H, W, 3) float32


class SplatSource:
    """Options read from the request: ``filter`` (3dgs|mip|none), ``use_3d_filter`` (bool), ``mode`` (see
    RENDER_MODES), ``sh_degree`` (int or None), ``background`` (RGB). ``gt_lookup(request)`` may return a
    GroundTruth for the request's camera."""

    def __init__(self, model=None, lock: threading.Lock | None = None,
                 gt_lookup: Callable[[RenderRequest], GroundTruth | None] | None = None) -> None:
        self._model, self._lock = model, lock
        self.gt_lookup = gt_lookup
        self._swap = threading.Lock()

    def set_model(self, model, lock: threading.Lock | None = None) -> None:
        """Show another model (e.g. the live model of a training job, guarded by the trainer's lock)."""
        with self._swap:
            self._model, self._lock = model, lock

    @property
    def model(self):
        return self._model

    def render(self, request: RenderRequest) -> Frame:
        if request.camera is None:
            raise ValueError("the Splat view needs a 3D camera")
        with self._swap:
            model, lock = self._model, self._lock
        if model is None:
            return Frame(np.full((request.height, request.width, 3), 0.1, np.float32), aux={"empty": True})
        mode = request.option("mode", "rgb")
        if mode not in RENDER_MODES:
            raise ValueError(f"unknown render mode '{mode}'; choose one of {', '.join(RENDER_MODES)}")
        t0 = time.perf_counter()
        with torch.no_grad():
            if lock is not None:  # a live training model: copy it under the lock (cheap), render outside it,
                with lock:        # so a slow render never stalls the optimiser
                    model = model.clone()
            sh = request.option("sh_degree", None)  # a limit: never above what the model has (yet)
            sh = model.active_sh_degree if sh is None else min(int(sh), model.active_sh_degree)
            out = model.render(request.camera, filter=request.option("filter", "mip"),
                               use_3d_filter=bool(request.option("use_3d_filter", True)),
                               background=tuple(request.option("background", (0.0, 0.0, 0.0))),
                               sh_degree=sh)
            n = int(model.num_gaussians)
        gt = self.gt_lookup(request) if self.gt_lookup is not None else None
        image = RENDER_MODES[mode](out, None if gt is None else gt.image)
        aux = {"n_gaussians": n}
        if gt is not None:
            from methods.metrics import psnr

            aux["psnr"] = float(psnr(out.color.clamp(0, 1).numpy(), gt.image))
        return Frame(image, aux=aux, timings={"render": time.perf_counter() - t0})
