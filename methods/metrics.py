"""Image quality metrics shared by every method, for numpy arrays and torch tensors alike.

numpy inputs return Python floats (for reports and the Jobs panel); torch inputs return 0-dim tensors so the same
functions serve as differentiable losses (e.g. ``1 - ssim``) inside trainers.
"""
from __future__ import annotations

import math
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = Union[np.ndarray, torch.Tensor]

__all__ = ["mse", "psnr", "ssim", "gaussian_window"]


def _check_pair(a: ArrayLike, b: ArrayLike) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"metric inputs differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")


def mse(a: ArrayLike, b: ArrayLike) -> float | torch.Tensor:
    """Mean squared error over all elements (float64 accumulation for numpy to avoid float32 round-off)."""
    _check_pair(a, b)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a_t, b_t = torch.as_tensor(a), torch.as_tensor(b)
        return torch.mean((a_t.float() - b_t.to(a_t.device).float()) ** 2)
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(np.mean(d * d))


def psnr(a: ArrayLike, b: ArrayLike, max_val: float = 1.0) -> float | torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10·log10(max_val² / MSE)``; identical inputs give ``inf``."""
    m = mse(a, b)
    if isinstance(m, torch.Tensor):
        return 10.0 * torch.log10(max_val**2 / m)
    return math.inf if m == 0.0 else 10.0 * math.log10(max_val**2 / m)


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of odd ``size``; SSIM applies it separably (rows then columns)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype)


def _to_nchw(x: ArrayLike) -> torch.Tensor:
    t = torch.as_tensor(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if t.ndim == 2:  # HxW grayscale
        return t[None, None]
    if t.ndim == 3:  # HxWxC
        return t.permute(2, 0, 1)[None]
    if t.ndim == 4:  # NxCxHxW
        return t
    raise ValueError(f"ssim expects HxW, HxWxC or NxCxHxW, got shape {tuple(t.shape)}")


def ssim(
    a: ArrayLike,
    b: ArrayLike,
    max_val: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float | torch.Tensor:
    """Mean structural similarity (Wang et al. 2004) with an 11-tap σ=1.5 Gaussian window.

    Uses C1=(k1·L)², C2=(k2·L)² with L=max_val and 'valid' filtering (no padding), matching the reference
    implementation and scikit-image's ``gaussian_weights=True, use_sample_covariance=False``. Accepts torch
    NxCxHxW, or HxWxC / HxW (numpy or torch); channels are compared independently and averaged. Images smaller than
    the window use the largest odd window that fits, so tiny previews still get a score.
    """
    _check_pair(a, b)
    is_numpy = not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor)
    x, y = _to_nchw(a), _to_nchw(b)
    dtype = torch.float64 if is_numpy else (x.dtype if x.is_floating_point() else torch.float32)
    x, y = x.to(dtype), y.to(device=x.device, dtype=dtype)
    h, w = x.shape[-2:]
    size = min(window_size, h, w)
    size -= (size + 1) % 2  # make odd
    if size < 1:
        raise ValueError(f"ssim needs a non-empty image, got {h}x{w}")
    c = x.shape[1]
    g = gaussian_window(size, sigma, dtype).to(x.device)
    kh = g.view(1, 1, size, 1).expand(c, 1, size, 1)
    kw = g.view(1, 1, 1, size).expand(c, 1, 1, size)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    value = (num / den).mean()
    return float(value) if is_numpy else value
