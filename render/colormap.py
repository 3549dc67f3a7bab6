"""Scalar fields to colours for depth, Gaussian-count and error views.

A perceptually ordered dark-blue → purple → orange → yellow ramp (piecewise linear through fixed control points),
so larger values always read as brighter — what a heat map of errors or counts needs.
"""
from __future__ import annotations

import numpy as np

_STOPS = np.array([
    [0.00, 0.02, 0.02, 0.10],
    [0.25, 0.28, 0.07, 0.47],
    [0.50, 0.73, 0.21, 0.40],
    [0.75, 0.98, 0.55, 0.16],
    [1.00, 0.99, 0.98, 0.64],
], dtype=np.float32)


def colormap(values: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Map an HxW array to HxWx3 float32 colours; ``lo``/``hi`` default to the finite min/max. NaN → black."""
    v = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(v)
    if lo is None:
        lo = float(v[finite].min()) if finite.any() else 0.0
    if hi is None:
        hi = float(v[finite].max()) if finite.any() else 1.0
    t = np.clip((v - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    t = np.where(finite, t, 0.0)
    out = np.stack([np.interp(t, _STOPS[:, 0], _STOPS[:, c]) for c in (1, 2, 3)], axis=-1).astype(np.float32)
    out[~finite] = 0.0
    return out
