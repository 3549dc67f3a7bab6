"""Resample a 2D image for a zoomable viewport: the 2D counterpart of a camera.

Which image position each screen pixel looks at is :class:`render.viewport.Viewport`'s one mapping (pixel centres
at +0.5, ``center`` in image pixels from the image centre): zoom 1 means one image pixel per screen pixel (the
training sampling rate) and zoom 1/8 packs 8×8 image pixels into each screen pixel. Sampling modes show what
happens at each rate: ``nearest`` and ``bilinear`` alias when zoom < 1; ``prefiltered`` first blurs with a Gaussian
of σ = 0.5/zoom source pixels (the classic anti-aliasing prefilter), which is the reference the neural
scale-space methods are compared with.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from render.live import Frame, RenderRequest
from render.options import option
from render.tensors import to_numpy
from render.viewport import Viewport, to_grid

SAMPLING_MODES = ("nearest", "bilinear", "prefiltered")


def viewport_grid(center: tuple[float, float], zoom: float, width: int, height: int,
                  image_size: tuple[int, int]) -> torch.Tensor:
    """(1, H, W, 2) ``grid_sample`` positions (align_corners=False) of a viewport; ``image_size`` is (w, h)."""
    uv = Viewport(center, zoom, width, height, image_size).pixel_coords()
    return torch.from_numpy(to_grid(uv, image_size).astype(np.float32))[None]


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (1, C, H, W) with reflect padding; σ in pixels (≤ 0 returns the input)."""
    if sigma <= 1e-3:
        return img
    r = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-r, r + 1, dtype=img.dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = (k / k.sum()).to(img)
    c = img.shape[1]
    h, w = img.shape[-2:]
    pad_mode = "reflect" if r < min(h, w) else "replicate"
    out = F.conv2d(F.pad(img, (r, r, 0, 0), mode=pad_mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(out, (0, 0, r, r), mode=pad_mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def sample_image(image: np.ndarray | torch.Tensor, center: tuple[float, float], zoom: float, width: int,
                 height: int, mode: str = "bilinear", background: float = 0.0) -> np.ndarray:
    """Render HxWxC ``image`` into a width×height viewport; outside the image is ``background``."""
    if mode not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling mode '{mode}'; choose one of {', '.join(SAMPLING_MODES)}")
    img = torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32).permute(2, 0, 1)[None]
    ih, iw = img.shape[-2:]
    if mode == "prefiltered":
        img = gaussian_blur(img, 0.5 / zoom if zoom < 1 else 0.0)
    grid = viewport_grid(center, zoom, width, height, (iw, ih))
    out = F.grid_sample(img - background, grid, mode="nearest" if mode == "nearest" else "bilinear",
                        padding_mode="zeros", align_corners=False) + background
    return to_numpy(out[0].permute(1, 2, 0))


@dataclass(frozen=True)
class ImageOptions:
    mode: str = option("nearest", choices=SAMPLING_MODES, widget="radio", label="sampling",
                       help="nearest/bilinear alias when zoomed out; prefiltered blurs by σ = 0.5/zoom first")
    background: float = 0.1


@dataclass
class ImageSource:
    """LiveSource over a fixed image (``request.center``: image pixels from the image centre)."""

    image: np.ndarray
    Options = ImageOptions
    _blurred: object = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        img = np.asarray(self.image, dtype=np.float32)
        if img.ndim != 3 or img.shape[2] not in (1, 3, 4) or not np.all(np.isfinite(img)):
            raise ValueError(f"image must be a finite HxWx{{1,3,4}} array, got shape {img.shape}")
        self.image = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., :3]
        self._blurred = lru_cache(maxsize=8)(self._blur)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]

    def _blur(self, zoom: float) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(self.image)).permute(2, 0, 1)[None]
        return to_numpy(gaussian_blur(t, 0.5 / zoom)[0].permute(1, 2, 0))

    def render(self, request: RenderRequest) -> Frame:
        t0 = time.perf_counter()
        o: ImageOptions = request.options
        zoom = request.effective_zoom
        src, smode = self.image, o.mode
        if o.mode == "prefiltered" and zoom < 1:  # blur once per zoom level, not per frame
            src, smode = self._blurred(round(zoom, 6)), "bilinear"
        img = sample_image(src, request.center, zoom, request.width, request.height, smode, background=o.background)
        return Frame(np.clip(img, 0, 1), timings={"render": time.perf_counter() - t0})
