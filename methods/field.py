"""The single field interface: ``field(x, cov=None)`` over points in [-1, 1]^d — a signal smoothed by a Gaussian.

Generic, not NGSSF-specific: any method family whose model answers "the signal blurred by covariance Σ" (neural
scale-space fields, exact ground-truth blurs, future prefiltered representations) implements it, so evaluation
and viewing code never cares which one it holds.

Coordinates follow ``grid_sample``: for images, coordinate 0 runs along columns (left → right) and coordinate 1
along rows (top → bottom), with ±1 on the centres of the border pixels (``align_corners=True``), so an N-pixel
axis has σ_px = σ·(N−1)/2. ``cov`` is a *true* Gaussian covariance in these units and may be

* ``None`` or 0 — the unsmoothed signal;
* a scalar variance σ², or a (B,) tensor of per-point variances (isotropic);
* a (d, d) covariance, or (B, d, d) per-point covariances (anisotropic).

:func:`normalize_cov` turns all of these into ``None`` or a (B, d, d) tensor and rejects bad input with one clear
line, so subclasses implement :meth:`Field.evaluate` for exactly those two cases.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Union

import numpy as np
import torch

CovLike = Union[None, float, int, np.ndarray, torch.Tensor]


def normalize_cov(cov: CovLike, batch: int, dim: int, *, anisotropic: bool = True,
                  device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                  name: str = "field") -> torch.Tensor | None:
    """``None`` (no smoothing) or a (batch, dim, dim) tensor of symmetric PSD covariances.

    ``anisotropic=False`` fields accept only scalar or per-point variances and raise on any matrix."""
    if cov is None:
        return None
    c = torch.as_tensor(cov, dtype=dtype, device=device)
    if not bool(torch.isfinite(c).all()):
        raise ValueError(f"{name}: covariance contains NaN or inf; pass finite variances ≥ 0")
    if c.ndim == 0 or (c.ndim == 1 and c.shape[0] == batch):
        if bool((c < 0).any()):
            raise ValueError(f"{name}: variance must be ≥ 0, got min {float(c.min()):.3g}")
        if c.ndim == 0 and float(c) == 0.0:
            return None
        v = c.expand(batch) if c.ndim == 0 else c
        return v[:, None, None] * torch.eye(dim, dtype=dtype, device=device)
    if not anisotropic:
        raise ValueError(f"{name} is isotropic only: pass a scalar variance (or one per point), "
                         f"not a covariance matrix of shape {tuple(c.shape)}")
    single = c.ndim == 2 and c.shape == (dim, dim)
    if not single and not (c.ndim == 3 and c.shape == (batch, dim, dim)):
        raise ValueError(f"{name}: covariance must be a scalar, ({batch},), ({dim},{dim}) or ({batch},{dim},{dim}); "
                         f"got shape {tuple(c.shape)}")
    _check_spd(c[None] if single else c, name)  # one check for a shared matrix, not one per point
    return c.expand(batch, dim, dim) if single else c


def _check_spd(c: torch.Tensor, name: str) -> None:
    """Symmetric and positive semi-definite, up to round-off; 2×2 in closed form (per-pixel covariances of a
    512² view would otherwise cost ~1 s of batched eigen-decompositions)."""
    scale = c.abs().amax(dim=(-2, -1)).clamp_min(1e-30)
    if bool(((c - c.transpose(-1, -2)).abs().amax(dim=(-2, -1)) > 1e-5 * scale + 1e-12).any()):
        raise ValueError(f"{name}: covariance matrices must be symmetric")
    tol = 1e-6 * scale.double()
    if c.shape[-1] == 2:
        a, b, d = c[:, 0, 0].double(), c[:, 0, 1].double(), c[:, 1, 1].double()
        bad = (a < -tol) | (d < -tol) | (a * d - b * b < -tol * scale.double())
    else:
        bad = torch.linalg.eigvalsh(c.double()).min(dim=-1).values < -tol
    if bool(bad.any()):
        raise ValueError(f"{name}: covariance matrices must be positive semi-definite")


def max_variance(cov: CovLike, dim: int) -> float:
    """Largest eigenvalue over all given covariances (0 for none): what border crops and sample counts use."""
    c = normalize_cov(cov, 1 if cov is None or torch.as_tensor(cov).ndim in (0, 2) else
                      torch.as_tensor(cov).shape[0], dim, dtype=torch.float64)
    return 0.0 if c is None else float(torch.linalg.eigvalsh(c).max())


class Field(ABC):
    """A signal R^d → R^channels that can be queried smoothed by a Gaussian.

    ``smooth_exact`` says whether :meth:`evaluate` returns the exact Gaussian convolution (analytic/grid fields
    with closed forms) or an approximation (neural fields)."""

    dim: int = 2
    channels: int = 3
    anisotropic: bool = True
    name: str = "field"

    def __call__(self, x: torch.Tensor, cov: CovLike = None) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{self.name}: points must have shape (B, {self.dim}), got {tuple(x.shape)}")
        c = normalize_cov(cov, x.shape[0], self.dim, anisotropic=self.anisotropic, device=x.device,
                          dtype=x.dtype, name=self.name)
        return self.evaluate(x, c)

    @abstractmethod
    def evaluate(self, x: torch.Tensor, cov: torch.Tensor | None) -> torch.Tensor:
        """(B, channels) values at ``x`` (B, d); ``cov`` is None or (B, d, d), already validated."""


def grid_points(shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
    """Points of a regular grid over [-1, 1]^d with nodes on ±1, in row-major order of ``shape``.

    ``shape`` is (H, W) for images (coordinate 0 = column, coordinate 1 = row) and (D, H, W) for volumes
    (coordinates x = last axis … z = first axis), so ``values.reshape(*shape, C)`` is an image/volume."""
    axes = [torch.linspace(-1.0, 1.0, n, device=device) if n > 1 else torch.zeros(1, device=device)
            for n in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in reversed(mesh)], dim=-1)


def eval_grid(field: Field, shape: tuple[int, ...], cov: CovLike = None, chunk: int = 1 << 16,
              device: torch.device | str = "cpu") -> torch.Tensor:
    """The field on :func:`grid_points` as a (*shape, channels) tensor, evaluated in chunks without gradients.

    ``cov`` may be per point only as a (N,) or (N, d, d) tensor with N = prod(shape)."""
    pts = grid_points(shape, device)
    n = pts.shape[0]
    per_point = cov is not None and torch.as_tensor(cov).ndim in (1, 3)
    out = []
    with torch.no_grad():
        for s in range(0, n, chunk):
            c = torch.as_tensor(cov)[s:s + chunk].to(device) if per_point else cov
            out.append(field(pts[s:s + chunk], c))
    return torch.cat(out).reshape(*shape, -1)


def border_crop(shape_res: int, variance: float) -> int:
    """Cells to drop on each side before comparing with ground truth: ceil(3σ·res/2) (paper's rule)."""
    return int(math.ceil(3.0 * math.sqrt(max(variance, 0.0)) * shape_res / 2.0))


def available_bytes(device: torch.device) -> int:
    """Free memory on ``device``: CUDA's own count, else the OS's MemAvailable (Linux), else 2 GiB."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2 << 30


def auto_chunk(field: Field, device: torch.device, budget: float = 0.25, lo: int = 1 << 12,
               hi: int = 1 << 18) -> int:
    """Queries per batch from free memory: a quarter of it over the bytes one query's activations take (the field's
    ``bytes_per_query``, else 4 KiB per feature/hidden unit estimate), clamped to [lo, hi]."""
    per = int(getattr(field, "bytes_per_query", 0) or 0)
    if per <= 0:
        widths = [getattr(m, "out_features", 0) for m in getattr(field, "modules", lambda: [])()]
        per = max(4096, 4 * 8 * sum(widths))  # float32, ~8 live copies per layer (input, output, grads-free temps)
    return int(np.clip(budget * available_bytes(device) / per, lo, hi))


def evaluate_points(field: Field, points: np.ndarray, cov: CovLike = None, chunk: int | None = None) -> np.ndarray:
    """(P, channels) float32 values at (P, d) points, without gradients, in chunks, on the field's device; the
    chunk size comes from free memory (:func:`auto_chunk`) unless given.

    ``cov`` is None, one (d, d) covariance (or scalar) for all points — validated once with :func:`normalize_cov` —
    or per-point (P,) variances / (P, d, d) covariances, checked only for finiteness and sign: validating P
    matrices one by one costs an eigen-decomposition each (~1 s for 512² pixels) and per-point covariances come
    from our own footprint code (J·Jᵀ is PSD by construction)."""
    pts = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
    params = list(field.parameters()) if isinstance(field, torch.nn.Module) else []
    dev = params[0].device if params else torch.device("cpu")
    chunk = int(chunk or auto_chunk(field, dev))
    d = field.dim
    per_point = cov is not None and np.ndim(cov) in (1, 3)
    if per_point:
        c_all = torch.as_tensor(np.asarray(cov), dtype=torch.float32)
        if len(c_all) != len(pts):
            raise ValueError(f"{field.name}: {len(c_all)} covariances for {len(pts)} points")
        if not bool(torch.isfinite(c_all).all()) or (c_all.ndim == 1 and bool((c_all < 0).any())):
            raise ValueError(f"{field.name}: per-point covariances must be finite and ≥ 0")
        if c_all.ndim == 1:
            c_all = c_all[:, None, None] * torch.eye(d)
    else:
        c_one = normalize_cov(cov, 1, d, anisotropic=field.anisotropic, name=field.name)
    out = []
    with torch.no_grad():
        for s in range(0, len(pts), chunk):
            x = pts[s:s + chunk]
            c = c_all[s:s + chunk] if per_point else (None if c_one is None else c_one.expand(len(x), d, d))
            out.append(field.evaluate(x.to(dev), None if c is None else c.to(dev)).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, field.channels), np.float32)
