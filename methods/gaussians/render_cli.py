"""Headless rendering of a Gaussian PLY along a camera path (``python main.py render gaussians``).

Zoom here is a *sampling rate*: ``--zoom z`` renders every camera with :meth:`Camera.scaled` (resolution × z, same
field of view), so the output image is z× larger and shows the same framing with z× more pixels per unit of scene.
That is what the stmt benchmark and datasets mean by "scale z" and it lets a render be compared pixel for pixel
with ground truth rendered at that scale; :meth:`Camera.zoomed` (magnify on a fixed pixel grid) is the studio
slider's meaning and would crop the view instead.

``--filter auto`` (the default) picks "mip" with the stored 3D filter when the PLY has a ``filter_3D`` column (a
Mip-Splatting file) and "3dgs" otherwise, because a PLY must be rendered with the filter it was trained with.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from render.camera import Camera

__all__ = ["RenderSettings", "RenderedView", "FILTERS", "BACKGROUNDS", "prepare_cameras",
           "resolve_filter", "render_ply"]

FILTERS = ("auto", "3dgs", "mip", "none")
BACKEND_CHOICES = ("auto", "cuda", "gl", "torch")  # = render.splat.api.BACKEND_CHOICES (kept import-light for --help)
BACKGROUNDS: dict[str, tuple[float, float, float]] = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0)}


@dataclass(frozen=True)
class RenderSettings:
    """What to render: the 2D filter, the sampling-rate zoom, an optional base size, the background colour."""

    filter: str = "auto"
    zoom: float = 1.0
    size: tuple[int, int] | None = None  # (W, H) applied before the zoom; same horizontal FOV
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    sh_degree: int | None = None
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.backend not in BACKEND_CHOICES:
            raise ValueError(f"unknown --backend {self.backend!r}; valid: {', '.join(BACKEND_CHOICES)}")
        if self.filter not in FILTERS:
            raise ValueError(f"unknown filter {self.filter!r}; valid: {', '.join(FILTERS)}")
        if not (np.isfinite(self.zoom) and self.zoom > 0):
            raise ValueError(f"--zoom must be a positive number, got {self.zoom}")
        if self.size is not None and (self.size[0] < 1 or self.size[1] < 1):
            raise ValueError(f"--size must be positive, got {self.size[0]}x{self.size[1]}")


@dataclass(frozen=True)
class RenderedView:
    """One written view: its files, size and render time (rasterization only, not encoding)."""

    index: int
    png: Path
    npy: Path
    width: int
    height: int
    seconds: float
    backend: str = "torch"


def prepare_cameras(cameras: Sequence[Camera], settings: RenderSettings) -> list[Camera]:
    """Apply ``--size`` (same horizontal FOV, centred principal point) then the sampling-rate zoom."""
    out = []
    for cam in cameras:
        if settings.size is not None:
            cam = cam.resized(*settings.size)
        out.append(cam.scaled(settings.zoom) if settings.zoom != 1.0 else cam)
    return out


def resolve_filter(model, name: str) -> tuple[str, bool]:
    """(2D filter for the rasterizer, whether to apply the model's 3D filter) for a ``--filter`` choice."""
    has_3d = getattr(model, "filter_3d", None) is not None
    if name == "auto":
        name = "mip" if has_3d else "3dgs"
    return name, name == "mip" and has_3d


def _write_npy(path: Path, array: np.ndarray) -> None:
    from methods.io import atomic_open

    with atomic_open(path, "wb") as f:
        np.save(f, array)


def render_ply(ply: str | os.PathLike, cameras_path: str | os.PathLike, out_dir: str | os.PathLike,
               settings: RenderSettings = RenderSettings(), *,
               log: Callable[[str], None] | None = None) -> list[RenderedView]:
    """Render every camera of a transforms file; write ``view_XXXX.png`` (8-bit, clamped to [0, 1], no gamma
    applied) and ``view_XXXX.npy`` (float32 (H, W, 3), the rasterizer's colour unclamped) atomically into
    ``out_dir``.

    Inputs are validated (PLY, cameras) before anything is written, so a bad file leaves ``out_dir`` untouched.
    """
    import torch

    from assets.cache import atomic_save_image
    from methods.datasets import load_transforms_cameras
    from methods.gaussians.ply import load_ply
    from render.tensors import to_numpy  # torch: loaded by the command, not by `main.py --help`

    model = load_ply(ply)
    if model.load_note:
        print(model.load_note, file=sys.stderr)
    cams = prepare_cameras(load_transforms_cameras(cameras_path), settings)
    filt, use_3d = resolve_filter(model, settings.filter)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    digits = max(4, len(str(len(cams) - 1)))
    views, noted = [], False
    for i, cam in enumerate(cams):
        t0 = time.perf_counter()
        with torch.no_grad():
            res = model.render(cam, filter=filt, use_3d_filter=use_3d, background=settings.background,
                               sh_degree=settings.sh_degree, backend=settings.backend, counts=False)
        if res.note and not noted:
            print(res.note, file=sys.stderr)
            noted = True
        rgb = to_numpy(res.color).astype(np.float32)
        dt = time.perf_counter() - t0
        stem = f"view_{i:0{digits}d}"
        png, npy = out / f"{stem}.png", out / f"{stem}.npy"
        atomic_save_image(png, np.clip(rgb, 0.0, 1.0))
        _write_npy(npy, rgb)
        views.append(RenderedView(i, png, npy, cam.width, cam.height, dt, res.backend))
        if log is not None:
            log(f"view {i + 1}/{len(cams)}: {cam.width}x{cam.height} in {dt * 1000:.0f} ms ({res.backend}) "
                f"-> {png.name}")
    return views
