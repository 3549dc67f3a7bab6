"""Mip-Splatting's 3D smoothing filter: the finest detail each Gaussian could have been trained on.

A Gaussian seen by the training cameras at depth ≥ d with focal length ≤ f was never sampled more densely than
f/d pixels per unit, so any structure smaller than that is unconstrained and aliases when zoomed in. Convolving it
with an isotropic Gaussian of standard deviation (d/f)·√0.2 removes exactly that band (the paper's s = 0.2, the
3D half of 3DGS's 0.3-pixel dilation).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from render.camera import Camera

__all__ = ["compute_3d_filter", "FILTER_VARIANCE", "MIN_DEPTH", "SCREEN_MARGIN"]

FILTER_VARIANCE = 0.2   # s in the paper: the filter's variance in units of (pixel footprint)²
MIN_DEPTH = 0.2         # same near limit as the rasterizer's frustum test
SCREEN_MARGIN = 0.15    # the image is enlarged by 15% per side so Gaussians just outside still count as seen


@torch.no_grad()
def compute_3d_filter(means: torch.Tensor, cameras: Sequence[Camera]) -> torch.Tensor:
    """Per-Gaussian 3D filter standard deviation (N,) for the given **training** cameras.

    As in Mip-Splatting: a camera sees a centre if its depth z > 0.2 and its projection lies within the image
    enlarged by 15% per side; d = the smallest such z; f = the largest fx over *all* cameras; centres no camera sees
    get the largest d among the seen ones; filter = d/f·√0.2. The projection uses each camera's principal point
    (the reference assumes it at the image centre, which is what our dataset cameras have).
    """
    if len(cameras) == 0:
        raise ValueError("compute_3d_filter needs at least one camera")
    xyz = means.detach().to(torch.float64)
    n = xyz.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=means.dtype, device=means.device)
    depth = torch.full((n,), math.inf, dtype=torch.float64, device=xyz.device)
    seen = torch.zeros(n, dtype=torch.bool, device=xyz.device)
    focal = 0.0
    for cam in cameras:
        # np.array copies: the camera's matrix is read-only, which torch warns about
        w2c = torch.from_numpy(np.array(cam.world_to_cam, dtype=np.float64)).to(xyz.device)
        pc = xyz @ w2c[:3, :3].T + w2c[:3, 3]
        z = pc[:, 2]
        zc = z.clamp_min(1e-3)  # only to keep the division finite; those points fail the depth test anyway
        u = pc[:, 0] / zc * cam.fx + cam.cx
        v = pc[:, 1] / zc * cam.fy + cam.cy
        w, h = cam.width, cam.height
        valid = ((z > MIN_DEPTH)
                 & (u >= -SCREEN_MARGIN * w) & (u <= (1 + SCREEN_MARGIN) * w)
                 & (v >= -SCREEN_MARGIN * h) & (v <= (1 + SCREEN_MARGIN) * h))
        depth = torch.where(valid, torch.minimum(depth, z), depth)
        seen |= valid
        focal = max(focal, float(cam.fx))
    if not bool(seen.any()):
        raise ValueError("compute_3d_filter: no Gaussian is in front of any camera; check the camera poses "
                         "(OpenCV world-to-camera expected)")
    depth = torch.where(seen, depth, depth[seen].max())
    return (depth / focal * math.sqrt(FILTER_VARIANCE)).to(means.dtype)
