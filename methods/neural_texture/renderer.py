"""One renderer for every texture mode of the walkthrough (the view, ``walk``, ``render``/``eval walkthrough``).

GL modes draw the textured fish with a hardware filter (render/mesh_renderer.py). The NGSSF mode draws the UV
G-buffer instead and asks the neural texture for each covered pixel's colour **once**, with that pixel's own
footprint covariance Σ = (w/2)²·J·Jᵀ (render/uv_footprint.py), then applies the same lighting term the GL modes
use. ``reference`` is the N×N supersampled GL frame (bilinear samples box-averaged).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from methods.field import evaluate_points
from methods.neural_texture.modes import BOX_MATCHED_WIDTH, MODES
from render.camera import Camera
from render.mesh_renderer import MeshRenderer
from render.uv_footprint import footprint_covariance, uv_jacobian, uv_to_field

GL_FILTERS = {"nearest": "nearest", "bilinear": "bilinear", "trilinear": "trilinear", "aniso16": "anisotropic"}
BACKGROUND = (0.08, 0.09, 0.11)


@dataclass
class ModeFrame:
    image: np.ndarray  # (H, W, 3) float32 in [0, 1]
    seconds: float
    queries: int = 0  # NGSSF field queries (covered pixels)


def box_downsample(img: np.ndarray, k: int) -> np.ndarray:
    """Average k×k blocks (the K×K supersampled reference's last step)."""
    h, w = img.shape[0] // k, img.shape[1] // k
    return img[:h * k, :w * k].reshape(h, k, w, k, -1).mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


class WalkthroughRenderer:
    """Renders the fish in any texture mode. ``field`` is the calibrated neural texture (None: NGSSF unavailable)."""

    def __init__(self, mesh, field=None, texture_size: int | None = None, renderer: MeshRenderer | None = None,
                 supersample: int = 4) -> None:
        self.mesh, self.field = mesh, field
        self.texture_size = (texture_size or mesh.texture.shape[1],) * 2
        self.renderer = renderer or MeshRenderer()
        self.supersample = int(supersample)

    def render(self, camera: Camera, mode: str, *, filter_width: float = BOX_MATCHED_WIDTH, lighting: bool = True,
               background: tuple[float, float, float] = BACKGROUND) -> ModeFrame:
        t0 = time.perf_counter()
        if mode == "ngssf":
            img, n = self._ngssf(camera, filter_width, lighting, background)
            return ModeFrame(img, time.perf_counter() - t0, n)
        if mode == "reference":
            img = self._supersampled(camera, self.supersample, lighting, background)
        elif mode in GL_FILTERS:
            img = self.renderer.render([self.mesh], camera, filter=GL_FILTERS[mode], background=(*background, 1.0),
                                       lighting=lighting)[..., :3]
        else:
            raise ValueError(f"unknown texture mode '{mode}'; choose one of {', '.join(MODES)}")
        return ModeFrame(np.ascontiguousarray(img, dtype=np.float32), time.perf_counter() - t0)

    def _supersampled(self, camera: Camera, n: int, lighting: bool, background) -> np.ndarray:
        """N×N bilinear samples per pixel: the frame at N× size (same field of view), box-averaged."""
        big = camera.scaled(n)
        img = self.renderer.render([self.mesh], big, filter="bilinear", background=(*background, 1.0),
                                   lighting=lighting)[..., :3]
        return box_downsample(img, n)

    def _ngssf(self, camera: Camera, filter_width: float, lighting: bool, background) -> tuple[np.ndarray, int]:
        if self.field is None:
            raise ValueError("no neural texture is loaded; run `python3 main.py train neural_texture`")
        g = self.renderer.render_uv([self.mesh], camera, lighting=lighting)
        out = np.empty((camera.height, camera.width, 3), np.float32)
        out[:] = background
        n = int(g.mask.sum())
        if n:
            coords = uv_to_field(g.uv, self.texture_size)
            cov = footprint_covariance(uv_jacobian(coords, g.chart), filter_width)
            vals = evaluate_points(self.field, coords[g.mask], cov[g.mask])[:, :3]
            rgb = np.clip((vals + 1.0) * 0.5, 0.0, 1.0)  # the field's [-1, 1] value range
            out[g.mask] = rgb * g.shade[g.mask, None]
        return out, n
