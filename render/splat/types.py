"""The result type shared by every rasterizer backend (kept apart so backends need not import the dispatcher)."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RasterOutput:
    """One rendered view plus the per-Gaussian by-products a trainer and the studio's debug views need."""

    color: torch.Tensor      # (H, W, 3) composited over the background
    alpha: torch.Tensor      # (H, W) 1 − final transmittance
    depth: torch.Tensor      # (H, W) Σ wᵢ zᵢ (alpha-weighted camera z); divide by alpha for the mean depth
    means2d: torch.Tensor    # (N, 2) projected means in pixels; .grad is filled by backward when inputs need grad
    radii: torch.Tensor      # (N,) int32 pixel radius, 0 = culled
    n_contrib: torch.Tensor  # (H, W) int32 number of Gaussians composited into each pixel
