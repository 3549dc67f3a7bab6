"""Image quality metrics shared by every method: the one PSNR, the one evaluation SSIM and the training D-SSIM.

* :func:`psnr` accepts numpy arrays (returns a Python float, for reports and the Jobs panel) or torch tensors
  (returns a 0-dim tensor), optionally restricted to a pixel mask.
* :func:`ssim` is the evaluation SSIM and comes from scikit-image, so reported numbers are the library's, not ours.
* :func:`dssim` is a differentiable torch SSIM for the 3DGS photometric loss; a test keeps it equal to
  scikit-image's Gaussian-window SSIM, which is the form the 3DGS papers report.
"""
from __future__ import annotations

import math
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

from render.tensors import to_numpy

ArrayLike = Union[np.ndarray, torch.Tensor]

__all__ = ["mse", "psnr", "ssim", "dssim", "gaussian_window"]


def _check_pair(a: ArrayLike, b: ArrayLike) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"metric inputs differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")


def _is_torch(a: ArrayLike, b: ArrayLike) -> bool:
    return isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor)


def mse(a: ArrayLike, b: ArrayLike) -> float | torch.Tensor:
    """Mean squared error over all elements (float64 accumulation for numpy to avoid float32 round-off)."""
    _check_pair(a, b)
    if _is_torch(a, b):
        a_t, b_t = torch.as_tensor(a), torch.as_tensor(b)
        return torch.mean((a_t.float() - b_t.to(a_t.device).float()) ** 2)
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(np.mean(d * d))


def _masked_mse(a: ArrayLike, b: ArrayLike, mask: ArrayLike) -> float | torch.Tensor | None:
    """MSE over the pixels where the HxW ``mask`` is true (channels averaged first); None for an empty mask."""
    _check_pair(a, b)
    hw = tuple(a.shape[:2])
    if tuple(mask.shape) != hw or a.ndim not in (2, 3):
        raise ValueError(f"psnr mask must be HxW {hw} for HxW or HxWxC images, got mask {tuple(mask.shape)} "
                         f"for images {tuple(a.shape)}")
    if _is_torch(a, b):
        a_t, b_t = torch.as_tensor(a), torch.as_tensor(b)
        d = (a_t.float() - b_t.to(a_t.device).float()) ** 2
        m = torch.as_tensor(mask, device=d.device).bool()
        if not bool(m.any()):
            return None
        return (d.mean(dim=-1) if d.ndim == 3 else d)[m].mean()
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return None
    d = (np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2
    return float((d.mean(axis=-1) if d.ndim == 3 else d)[m].mean())


def psnr(a: ArrayLike, b: ArrayLike, max_val: float = 1.0,
         mask: ArrayLike | None = None) -> float | torch.Tensor | None:
    """Peak signal-to-noise ratio in dB, ``10·log10(max_val² / MSE)``; identical inputs give ``inf``.

    ``max_val`` is the value range (2 for images in [-1, 1]). ``mask`` (HxW bool, for HxW or HxWxC images)
    restricts the MSE to those pixels, e.g. the part of a panel a view actually drew; an empty mask returns
    ``None`` because there is nothing to score."""
    m = mse(a, b) if mask is None else _masked_mse(a, b, mask)
    if m is None:
        return None
    if isinstance(m, torch.Tensor):
        return 10.0 * torch.log10(max_val**2 / m)
    return math.inf if m <= 0.0 else 10.0 * math.log10(max_val**2 / m)


# ----- evaluation SSIM (scikit-image) -----------------------------------------------------------------------------
def ssim(a: ArrayLike, b: ArrayLike, max_val: float = 1.0, *, gaussian: bool = True,
         win_size: int | None = None) -> float:
    """Mean SSIM of two HxW or HxWxC images (numpy or torch) by ``skimage.metrics.structural_similarity``.

    ``max_val`` is the value range (skimage's ``data_range``). ``gaussian=True`` is Wang et al.'s protocol that the
    3DGS / Mip-Splatting tables use (11-tap σ=1.5 Gaussian window, population covariance); ``gaussian=False`` is
    scikit-image's default (7×7 uniform window, sample covariance), which the NGSSF tables use. The window shrinks
    to the largest odd size that fits, so tiny renders still get a score; for uniform windows that needs ≥ 3 pixels
    per side, below which the result is NaN. Channels are scored independently and averaged."""
    from skimage.metrics import structural_similarity

    _check_pair(a, b)
    x, y = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    if x.ndim not in (2, 3) or x.size == 0:
        raise ValueError(f"ssim expects non-empty HxW or HxWxC images, got shape {x.shape}")
    win = min(win_size or (11 if gaussian else 7), x.shape[0], x.shape[1])
    win -= (win + 1) % 2  # make odd
    if win < (1 if gaussian else 3):
        return math.nan
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False) if gaussian else {}
    return float(structural_similarity(x, y, data_range=float(max_val), win_size=win,
                                       channel_axis=-1 if x.ndim == 3 else None, **kw))


# ----- training D-SSIM (torch, differentiable) ------------------------------------------------------------------
def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of odd ``size``; :func:`dssim` applies it separably (rows then columns)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype)


def _to_nchw(t: torch.Tensor) -> torch.Tensor:
    if t.ndim == 2:  # HxW grayscale
        return t[None, None]
    if t.ndim == 3:  # HxWxC
        return t.permute(2, 0, 1)[None]
    if t.ndim == 4:  # NxCxHxW
        return t
    raise ValueError(f"dssim expects HxW, HxWxC or NxCxHxW, got shape {tuple(t.shape)}")


def dssim(x: torch.Tensor, y: torch.Tensor, max_val: float = 1.0, window_size: int = 11,
          sigma: float = 1.5) -> torch.Tensor:
    """Structural dissimilarity ``1 − SSIM`` as a differentiable 0-dim tensor: the λ·D-SSIM term of the 3DGS loss.

    SSIM here is Wang et al.'s with an 11-tap σ=1.5 Gaussian, C1=(0.01·L)², C2=(0.03·L)², L=max_val and 'valid'
    filtering, i.e. scikit-image's ``gaussian_weights=True, use_sample_covariance=False`` (a test holds it to
    that). Accepts torch NxCxHxW or HxWxC / HxW; channels are compared independently and averaged. Images smaller
    than the window use the largest odd window that fits. Use :func:`ssim` for reported numbers."""
    _check_pair(x, y)
    x, y = _to_nchw(torch.as_tensor(x)), _to_nchw(torch.as_tensor(y))
    dtype = x.dtype if x.is_floating_point() else torch.float32
    x, y = x.to(dtype), y.to(device=x.device, dtype=dtype)
    h, w = x.shape[-2:]
    size = min(window_size, h, w)
    size -= (size + 1) % 2  # make odd
    if size < 1:
        raise ValueError(f"dssim needs a non-empty image, got {h}x{w}")
    c = x.shape[1]
    g = gaussian_window(size, sigma, dtype).to(x.device)
    kh = g.view(1, 1, size, 1).expand(c, 1, size, 1)
    kw = g.view(1, 1, 1, size).expand(c, 1, 1, size)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return 1.0 - (num / den).mean()
