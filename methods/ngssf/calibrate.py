"""Calibration: the one scalar c with F(x, c·Σ) ≈ (F₀ * G_Σ)(x), F₀ the field's own unsmoothed output.

Training ties the damping only to *some* monotone notion of scale (pseudo-variance σ̂²). Calibration needs no data:
for each target variance σ²_k it finds the pseudo-variance whose modulated output best matches a Monte-Carlo blur of
the unmodulated field, and c is the geometric mean of σ̂²/σ² over targets (a best-fit linear map).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from methods.jobs import Progress, ProgressFn
from methods.field import Field
from render.tensors import to_numpy

PointSampler = Callable[[Field, int, torch.Generator], torch.Tensor]


@dataclass
class CalibrationResult:
    """``factor`` is c; ``targets`` σ²_k and ``matched`` σ̂²_{j*(k)} are the correspondences for a log-log plot."""

    factor: float
    ratios: np.ndarray      # (K,) matched / targets
    targets: np.ndarray     # (K,) true variances σ²
    matched: np.ndarray     # (K,) best pseudo-variances σ̂²
    candidates: np.ndarray  # (J,) all pseudo-variances tried
    mse: np.ndarray         # (J, K) mean squared difference, averaged over points and channels


def uniform_points(field: Field, n: int, generator: torch.Generator) -> torch.Tensor:
    """n points uniform in [-1, 1]^d (the default for pictures and textures)."""
    return torch.rand(n, field.dim, generator=generator) * 2.0 - 1.0


def near_level_set(candidates: int = 10_000) -> PointSampler:
    """Sampler for SDF fields: of ``candidates`` uniform points keep the n with the smallest |F| (near the surface),
    where smoothing actually changes the signal."""
    def sample(field: Field, n: int, generator: torch.Generator) -> torch.Tensor:
        pts = uniform_points(field, candidates, generator)
        with torch.no_grad():
            vals = _evaluate(field, pts, None, 1 << 15)
        return pts[vals.norm(dim=-1).argsort()[:n]]
    return sample


# Per-modality arguments for :func:`calibrate` (the reference's constants); picture/texture use the defaults.
CALIBRATION_PRESETS: dict[str, dict[str, Any]] = {
    "picture": {},
    "texture": {},
    "ackley": {},
    "mesh": {"targets": np.logspace(-2, -1, 16), "point_sampler": near_level_set(10_000)},
}


def _device(field: Field) -> torch.device:
    c = getattr(field, "calibration", None)
    return c.device if isinstance(c, torch.Tensor) else torch.device("cpu")


def _set_calibration(field: Field, value: float) -> None:
    c = getattr(field, "calibration", None)
    if isinstance(c, torch.Tensor):
        with torch.no_grad():
            c.fill_(value)
    else:
        field.calibration = float(value)


def _get_calibration(field: Field) -> float:
    return float(getattr(field, "calibration", 1.0))


def _evaluate(field: Field, x: torch.Tensor, cov: torch.Tensor | None, chunk: int,
              tick: Callable[[], None] | None = None) -> torch.Tensor:
    """``field.evaluate`` over ``x`` (and per-point ``cov``) in chunks, without gradients."""
    out = []
    for s in range(0, x.shape[0], chunk):
        out.append(field.evaluate(x[s:s + chunk], None if cov is None else cov[s:s + chunk]).float())
        if tick is not None:
            tick()
    return torch.cat(out)


@torch.no_grad()
def calibrate(field: Field, points: int = 64, targets: np.ndarray | None = None,
              candidates: np.ndarray | None = None, samples: int = 2000, seed: int = 0,
              point_sampler: PointSampler | None = None, progress: ProgressFn | None = None,
              chunk: int = 1 << 14) -> CalibrationResult:
    """Find and set ``field.calibration`` (NGSSF §3). Defaults: 64 points, targets logspace(-4,-1,16),
    candidates logspace(-5,2,256), 2000 Monte-Carlo samples per point and target.

    ``field`` needs ``dim``, ``channels``, a ``calibration`` scale applied to every covariance, and
    ``evaluate(x, cov)`` taking ``None`` or (B, d, d)."""
    targets = np.logspace(-4, -1, 16) if targets is None else np.asarray(targets, dtype=np.float64)
    candidates = np.logspace(-5, 2, 256) if candidates is None else np.asarray(candidates, dtype=np.float64)
    if points < 1 or samples < 1 or targets.size == 0 or candidates.size == 0:
        raise ValueError("calibrate needs ≥ 1 point, ≥ 1 sample, and non-empty targets and candidates")
    if (targets <= 0).any() or (candidates <= 0).any():
        raise ValueError("calibration variances must be > 0")
    dev, d = _device(field), field.dim
    g = torch.Generator().manual_seed(seed)
    old = _get_calibration(field)
    _set_calibration(field, 1.0)
    try:
        x = (point_sampler or uniform_points)(field, points, g)
        J, K = candidates.size, targets.size
        n_ours = -(-J * points // chunk)
        per_target = points * samples
        total = n_ours + K * -(-per_target // chunk)
        done = [0]

        def tick() -> None:
            done[0] += 1
            if progress is not None:
                progress(Progress(done[0], total, message="calibrating"))

        # Y_ours[j, x] = F(x, diag(σ̂²_j)), all candidates in one batched pass.
        xs = x.repeat(J, 1).to(dev)
        var = torch.as_tensor(candidates, dtype=torch.float32).repeat_interleave(points).to(dev)
        eye = torch.eye(d, device=dev)
        y_ours = _evaluate(field, xs, var[:, None, None] * eye, chunk, tick).reshape(J, points, -1).double()

        # Y_gauss[k, x] = mean over ε ~ N(0, σ²_k I) of the unmodulated F(x + ε).
        y_gauss = []
        for var_k in targets:
            eps = torch.randn(samples, points, d, generator=g) * float(np.sqrt(var_k))
            pts = (x[None] + eps).reshape(-1, d).to(dev)
            vals = _evaluate(field, pts, None, chunk, tick).reshape(samples, points, -1)
            y_gauss.append(vals.double().mean(0))
        y_gauss = torch.stack(y_gauss)  # (K, points, C)

        mse = to_numpy(((y_ours[:, None] - y_gauss[None]) ** 2).mean(dim=(2, 3)))  # (J, K)
        best = mse.argmin(axis=0)
        matched = candidates[best]
        ratios = matched / targets
        factor = float(np.exp(np.log(ratios).mean()))
    except BaseException:
        _set_calibration(field, old)
        raise
    _set_calibration(field, factor)
    return CalibrationResult(factor, ratios, targets.copy(), matched, candidates.copy(), mse)
