"""Benchmark metrics for smoothed pictures (report §4.3) and the plain-text table ``main.py eval ngssf`` prints.

Both images are clamped to [-1, 1] and lose ceil(3σ·res/2) cells per side first: near the border the ground truth
depends on the padding convention, which the neural field only learns approximately.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence, Union

import numpy as np
import torch

from methods.field import CovLike, border_crop, max_variance
from methods.metrics import psnr, ssim
from render.tensors import to_numpy

__all__ = ["compare_images", "format_table"]

ArrayLike = Union[np.ndarray, torch.Tensor]


def compare_images(pred: ArrayLike, gt: ArrayLike, variance: CovLike) -> dict[str, float]:
    """PSNR and SSIM (:mod:`methods.metrics`, data range 2) of HxW or HxWxC images after clamping and the border crop.

    ``variance`` is σ² or a 2×2 covariance (its largest eigenvalue is used). Returns psnr (inf when identical),
    ssim (scikit-image's default 7×7 uniform window, shrunk to the largest odd size that fits; NaN when fewer than
    3 pixels remain per side) and crop (cells dropped per side along rows / columns)."""
    p = np.clip(to_numpy(pred).astype(np.float64), -1.0, 1.0)
    g = np.clip(to_numpy(gt).astype(np.float64), -1.0, 1.0)
    if p.shape != g.shape or p.ndim not in (2, 3):
        raise ValueError(f"compare_images: need equal HxW or HxWxC shapes, got {p.shape} and {g.shape}")
    var = max_variance(variance, 2)
    ch, cw = border_crop(p.shape[0], var), border_crop(p.shape[1], var)
    p = p[ch:p.shape[0] - ch, cw:p.shape[1] - cw]
    g = g[ch:g.shape[0] - ch, cw:g.shape[1] - cw]
    if p.size == 0:
        return {"psnr": math.nan, "ssim": math.nan, "crop": ch, "crop_cols": cw}
    return {"psnr": float(psnr(g, p, max_val=2.0)), "ssim": ssim(g, p, max_val=2.0, gaussian=False),
            "crop": ch, "crop_cols": cw}


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.4g}" if (v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5)) else f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def format_table(rows: Sequence[Union[Mapping[str, Any], Sequence[Any]]],
                 columns: Sequence[Union[str, tuple[str, str]]]) -> str:
    """A markdown table. ``columns`` are keys or (key, header) pairs; each row is a mapping (missing keys print
    '-') or a sequence of cells in column order. Floats get 4 decimals (or 4 significant digits when tiny/huge),
    strings are printed as given."""
    cols = [(c, c) if isinstance(c, str) else (c[0], c[1]) for c in columns]
    body = []
    for r in rows:
        if isinstance(r, Mapping):
            body.append([_fmt(r[k]) if k in r else "-" for k, _ in cols])
        else:
            cells = list(r)
            if len(cells) != len(cols):
                raise ValueError(f"format_table: row has {len(cells)} cells for {len(cols)} columns")
            body.append([_fmt(c) for c in cells])
    widths = [max([len(h)] + [len(b[i]) for b in body]) for i, (_, h) in enumerate(cols)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [line([h for _, h in cols]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(b) for b in body]
    return "\n".join(out)
