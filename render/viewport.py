"""The one 2D viewport mapping: which image position each screen pixel of a zoomable 2D view looks at.

Pixel convention (screen and image alike): pixel k covers [k, k+1) and its centre is at k + 0.5. A viewport of
W×H screen pixels shows an iw×ih image at ``zoom`` screen pixels per image pixel, its centre ``center`` image
pixels away from the image centre::

    u = iw/2 + center_x + (x − W/2) / zoom      (x: continuous screen coordinate; pixel centres at j + 0.5)

so dragging the mouse by d screen pixels pans ``center`` by −d/zoom and the picture sticks to the cursor at every
zoom. Consumers convert image coordinates to their own normalisation with :func:`to_grid` (``grid_sample``,
align_corners=False: ±1 on the image *edges*) or :func:`to_field` (a field's [-1, 1]: ±1 on the border pixel
*centres*, methods/field.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Viewport:
    center: tuple[float, float]  # view centre minus image centre, in image pixels
    zoom: float  # screen pixels per image pixel of this render (zoom × render_scale)
    width: int
    height: int
    image_size: tuple[int, int]  # (iw, ih)

    def __post_init__(self) -> None:
        if not self.zoom > 0:
            raise ValueError(f"zoom must be positive, got {self.zoom}")

    def to_image(self, x, y):
        """Screen → image coordinates (continuous, both with pixel centres at +0.5)."""
        iw, ih = self.image_size
        u = iw / 2.0 + self.center[0] + (np.asarray(x, np.float64) - self.width / 2.0) / self.zoom
        v = ih / 2.0 + self.center[1] + (np.asarray(y, np.float64) - self.height / 2.0) / self.zoom
        return u, v

    def to_screen(self, u, v):
        """Image → screen coordinates (inverse of :meth:`to_image`)."""
        iw, ih = self.image_size
        x = (np.asarray(u, np.float64) - iw / 2.0 - self.center[0]) * self.zoom + self.width / 2.0
        y = (np.asarray(v, np.float64) - ih / 2.0 - self.center[1]) * self.zoom + self.height / 2.0
        return x, y

    def pixel_coords(self) -> np.ndarray:
        """(H, W, 2) image coordinates (u, v) of every screen pixel centre."""
        u, _ = self.to_image(np.arange(self.width) + 0.5, 0.0)
        _, v = self.to_image(0.0, np.arange(self.height) + 0.5)
        gv, gu = np.meshgrid(v, u, indexing="ij")
        return np.stack([gu, gv], axis=-1)

    def scaled(self, render_scale: float) -> "Viewport":
        """The same region at a different pixel count (previews: render_scale < 1)."""
        return Viewport(self.center, self.zoom * render_scale, max(1, round(self.width * render_scale)),
                        max(1, round(self.height * render_scale)), self.image_size)


def to_grid(uv: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Image coordinates → ``grid_sample`` coordinates with align_corners=False (±1 on the image edges)."""
    size = np.asarray(image_size, np.float64)
    return np.asarray(uv, np.float64) * (2.0 / size) - 1.0


def to_field(uv: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Image coordinates → field units (±1 on the border pixel centres, methods/field.py)."""
    span = np.maximum(np.asarray(image_size, np.float64) - 1.0, 1.0)
    return (np.asarray(uv, np.float64) - 0.5) * (2.0 / span) - 1.0


def from_field(xy: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Field units → image coordinates (inverse of :func:`to_field`)."""
    span = np.maximum(np.asarray(image_size, np.float64) - 1.0, 1.0)
    return (np.asarray(xy, np.float64) + 1.0) * (span / 2.0) + 0.5
