"""Ground-truth Gaussian smoothing: an exact FFT blur for grids and a Monte-Carlo estimator for any field.

Both use the field's own units (a covariance over [-1, 1]^d, coordinate 0 = columns/x, 1 = rows/y, 2 = depth/z)
and the same border rule as :class:`~methods.ngssf.signals.GridField`: reflection about the border pixel centres
(``grid_sample(padding_mode="reflection", align_corners=True)``), so the two agree and the neural field, which is
trained on points in [-1.2, 1.2]^d, is compared against the same mirrored signal.
"""
from __future__ import annotations

import math
from typing import Union

import numpy as np
import scipy.fft
import torch

from methods.field import CovLike, Field, normalize_cov
from render.tensors import to_numpy

ArrayLike = Union[np.ndarray, torch.Tensor]

__all__ = ["gaussian_blur_exact", "mirror_extend", "MonteCarloBlurField", "mc_sample_count"]


def _spatial_dims(arr: ArrayLike) -> int:
    """HxW → 2, HxWxC → 2, DxHxWxC → 3 (a volume must carry its channel axis)."""
    if arr.ndim == 2:
        return 2
    if arr.ndim in (3, 4):
        return arr.ndim - 1
    raise ValueError(f"expected HxW, HxWxC or DxHxWxC, got shape {tuple(arr.shape)}")


def mirror_extend(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Whole-sample symmetric extension ``a b c d → a b c d c b`` along ``axes`` (period 2(N−1)).

    This is exactly grid_sample's reflection about the border pixel centres (align_corners=True): its infinite
    repetition is the reflected signal, so a circular convolution over one period is the blur of that signal with
    any (also rotated, or wider-than-the-image) kernel — no extra padding or repeated mirroring is needed."""
    for ax in axes:
        n = a.shape[ax]
        if n > 2:
            inner = np.flip(np.take(a, np.arange(1, n - 1), axis=ax), axis=ax)
            a = np.concatenate([a, inner], axis=ax)
    return a


def gaussian_blur_exact(image: ArrayLike, cov: CovLike, bounds: float = 1.0) -> ArrayLike:
    """The image/volume convolved with N(0, Σ), Σ given in field units over [-bounds, bounds]^d.

    ``image`` is HxW, HxWxC or DxHxWxC (numpy or torch; the result has the same kind, dtype and device). ``cov`` is
    a variance σ² or a d×d covariance (axis 0 = x/columns, 1 = y/rows, 2 = z/depth; off-diagonals rotate the blur;
    rank-deficient matrices give 1-D blurs). σ_px = σ·(N−1)/(2·bounds) per axis.

    Method: the image is mirror-extended (see :func:`mirror_extend`) and its DFT multiplied by the Gaussian's Fourier
    transform exp(−2π² fᵀΣf) (f in cycles per field unit). This is the exact blur of the band-limited (trigonometric)
    interpolant of the reflected samples: a sampled cosine of a DFT frequency is damped by exactly its Gaussian
    factor, and arbitrarily large σ just wraps around the mirrored period. It differs from blurring the *bilinear*
    interpolant (what a Monte-Carlo estimate over a GridField converges to) only by that interpolation kernel
    (≈1/6 px² extra variance): negligible once σ_px ≳ 1. For σ_px ≲ 0.5 the response is a truncated Gaussian, so
    sharp edges may ring slightly. Variance 0 returns an unchanged copy."""
    d = _spatial_dims(image)
    is_torch = isinstance(image, torch.Tensor)
    a = to_numpy(image)
    c = normalize_cov(cov, 1, d, dtype=torch.float64, name="gaussian_blur_exact")
    if c is None or float(c.abs().max()) == 0.0:
        out = a.copy()
    else:
        out = _fft_blur(a, to_numpy(c[0]), d, bounds)
    if is_torch:
        return torch.from_numpy(np.ascontiguousarray(out)).to(device=image.device, dtype=image.dtype)
    return out.astype(a.dtype, copy=False) if np.issubdtype(a.dtype, np.floating) else out


def _fft_blur(a: np.ndarray, cov: np.ndarray, d: int, bounds: float) -> np.ndarray:
    squeeze = a.ndim == d
    x = a[..., None] if squeeze else a
    spatial = x.shape[:d]
    axes = tuple(range(d))
    # Gaussian transfer function on the mirrored period; array axis k holds field coordinate d−1−k.
    ext_shape = tuple(max(2 * (n - 1), 1) for n in spatial)
    freqs = []
    for k, (n, m) in enumerate(zip(spatial, ext_shape)):
        f = np.fft.rfftfreq(m) if k == d - 1 else np.fft.fftfreq(m)  # cycles per pixel
        scale = (n - 1) / (2.0 * bounds) if n > 1 else 0.0            # pixels per field unit
        shape = [1] * d
        shape[k] = f.size
        freqs.append((f * scale).reshape(shape))                       # cycles per field unit
    quad = 0.0
    for i in range(d):
        for j in range(d):
            if cov[i, j] != 0.0:
                quad = quad + cov[i, j] * freqs[d - 1 - i] * freqs[d - 1 - j]
    transfer = np.exp(-2.0 * math.pi**2 * np.maximum(quad, 0.0))
    out = np.empty(x.shape, dtype=np.float64)
    for ch in range(x.shape[-1]):  # one channel at a time keeps the complex spectrum small (2048² → ~130 MB)
        ext = mirror_extend(x[..., ch].astype(np.float64), axes)
        spec = scipy.fft.rfftn(ext, axes=axes, workers=-1)
        spec *= transfer
        full = scipy.fft.irfftn(spec, s=ext.shape, axes=axes, workers=-1)
        out[..., ch] = full[tuple(slice(0, n) for n in spatial)]
    return out[..., 0] if squeeze else out


def mc_sample_count(eigenvalues: Union[float, np.ndarray, torch.Tensor], dim: int) -> Union[int, torch.Tensor]:
    """The reference's Monte-Carlo sample count: round(20·sqrt(Π_i clamp(1e5·λ_i, 10, 1000))).

    A scalar is an isotropic variance (all d eigenvalues equal): 200…20,000 samples in 2D, 632…632,456 in 3D.
    An (..., d) array of eigenvalues gives one count per row (an int for a single row)."""
    ev = torch.as_tensor(eigenvalues, dtype=torch.float64)
    if ev.ndim == 0:
        ev = ev.expand(dim)
    if ev.shape[-1] != dim:
        raise ValueError(f"mc_sample_count: expected {dim} eigenvalues per row, got shape {tuple(ev.shape)}")
    q = torch.prod(torch.clamp(1e5 * ev, 10.0, 1000.0), dim=-1)
    n = torch.round(20.0 * torch.sqrt(q)).to(torch.int64)
    return int(n) if n.ndim == 0 else n


class MonteCarloBlurField(Field):
    """mean_k field(x + ε_k, None), ε_k ~ N(0, Σ(x)): the ground truth for signals without a closed-form blur.

    Unbiased for any field and any (per-point, rank-deficient) covariance: ε = Q·sqrt(max(λ, 0))·z from the
    eigen-decomposition, so singular matrices give lower-dimensional blurs without regularisation. ``samples=None``
    uses :func:`mc_sample_count` (max over the batch); an int overrides it. A fresh generator seeded with ``seed``
    per call makes queries reproducible; points and samples are chunked so at most ``budget`` inner evaluations are
    alive at once."""

    def __init__(self, field: Field, samples: int | None = None, seed: int = 0, budget: int = 1 << 20):
        self.field = field
        self.dim, self.channels = field.dim, field.channels
        self.anisotropic = True  # any covariance can be sampled, even for isotropic-only signals
        self.name = f"mc({field.name})"
        self.samples, self.seed, self.budget = samples, seed, max(int(budget), 1)

    def evaluate(self, x: torch.Tensor, cov: torch.Tensor | None) -> torch.Tensor:
        if cov is None:
            return self.field(x, None)
        evals, evecs = torch.linalg.eigh(cov.double())
        evals = evals.clamp_min(0.0)
        n = int(self.samples) if self.samples is not None else int(mc_sample_count(evals, self.dim).max())
        n = max(n, 1)
        root = (evecs * evals.sqrt()[:, None, :]).to(x.dtype)  # (B, d, d), root·rootᵀ = Σ
        gen = torch.Generator(device="cpu").manual_seed(int(self.seed))
        b, d = x.shape
        acc = torch.zeros(b, self.channels, dtype=torch.float64, device=x.device)
        pts_chunk = max(1, self.budget // n)
        smp_chunk = min(n, self.budget)
        with torch.no_grad():
            for p0 in range(0, b, pts_chunk):
                xp, rp = x[p0:p0 + pts_chunk], root[p0:p0 + pts_chunk]
                for s0 in range(0, n, smp_chunk):
                    s = min(smp_chunk, n - s0)
                    z = torch.randn(xp.shape[0], s, d, generator=gen, dtype=x.dtype).to(x.device)
                    q = xp[:, None, :] + torch.einsum("pij,psj->psi", rp, z)
                    y = self.field(q.reshape(-1, d), None).reshape(xp.shape[0], s, self.channels)
                    acc[p0:p0 + xp.shape[0]] += y.double().sum(dim=1)
        return (acc / n).to(x.dtype)
