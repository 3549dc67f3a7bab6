"""Result and error types shared by every rasterizer backend (apart, so backends need not import the dispatcher)."""
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
    n_contrib: torch.Tensor | None  # (H, W) int32 Gaussians composited per pixel; None if asked not to count
    backend: str = "torch"   # the backend that produced it (set by the dispatcher)
    note: str = ""           # one line when a requested backend was unavailable and another one was used


class BackendUnavailable(RuntimeError):
    """A backend cannot render this call (no GL 4.3 compute, scene over a driver limit, no GPU, …); the
    dispatcher then falls back to the next backend and reports the reason in one line."""
