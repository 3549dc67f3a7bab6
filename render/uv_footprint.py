"""A screen pixel's footprint in texture space: the UV Jacobian of a G-buffer and the Gaussian it implies.

A pixel is modelled as an isotropic screen-space Gaussian of σ = ½ pixel (times a user "filter width" w). Pushed
through the local linear map J = ∂(texture)/∂(screen pixel) it becomes the texture-space Gaussian

    Σ = (w/2)² · J · Jᵀ        (NGSSF research §6.2: J·Jᵀ, not the reference code's Jᵀ·J)

in the texture field's units (methods/field.py: ±1 on the border texel centres, coordinate 0 along columns, 1 along
rows — so OpenGL's v, which points up, is flipped). J's columns are the screen axes (x right, y down).

Finite differences never cross the silhouette or a UV seam: a difference is used only between two pixels of the same
UV chart (the G-buffer stores each pixel's chart; background is −1). With both neighbours valid the central
difference is used, with one the one-sided difference toward it; where the two one-sided differences still disagree
by more than ``seam_ratio`` (an occlusion inside one chart) the smaller one.
"""
from __future__ import annotations

import numpy as np

from render.viewport import to_field


def uv_to_field(uv: np.ndarray, texture_size: tuple[int, int]) -> np.ndarray:
    """OpenGL UVs (u right, v up, [0, 1] over the texture's edges) → field units of a (w, h) texture."""
    w, h = texture_size
    uv = np.asarray(uv, np.float64)
    pix = np.stack([uv[..., 0] * w, (1.0 - uv[..., 1]) * h], axis=-1)  # image pixels, rows down, centres +0.5
    return to_field(pix, texture_size)


def _axis_difference(f: np.ndarray, chart: np.ndarray, axis: int, seam_ratio: float) -> np.ndarray:
    """∂f along ``axis`` (1 = columns/x, 0 = rows/y) per pixel, from neighbours of the same chart only."""
    mask = chart >= 0
    fwd = np.zeros_like(f)
    bwd = np.zeros_like(f)
    ok_f = np.zeros(mask.shape, bool)
    ok_b = np.zeros(mask.shape, bool)
    same = lambda a, b: (a == b) & (a >= 0)  # noqa: E731
    if axis == 1:
        fwd[:, :-1] = f[:, 1:] - f[:, :-1]
        ok_f[:, :-1] = same(chart[:, 1:], chart[:, :-1])
        bwd[:, 1:] = f[:, 1:] - f[:, :-1]
        ok_b[:, 1:] = same(chart[:, 1:], chart[:, :-1])
    else:
        fwd[:-1] = f[1:] - f[:-1]
        ok_f[:-1] = same(chart[1:], chart[:-1])
        bwd[1:] = f[1:] - f[:-1]
        ok_b[1:] = same(chart[1:], chart[:-1])
    nf = np.linalg.norm(fwd, axis=-1)
    nb = np.linalg.norm(bwd, axis=-1)
    both = ok_f & ok_b
    seam_f = both & (nf > seam_ratio * nb + 1e-12)  # the forward neighbour lies across a seam
    seam_b = both & (nb > seam_ratio * nf + 1e-12)
    use_f = (ok_f & ~ok_b) | seam_b
    use_b = (ok_b & ~ok_f) | seam_f
    central = both & ~seam_f & ~seam_b
    out = np.zeros_like(f)
    out[central] = 0.5 * (fwd[central] + bwd[central])
    out[use_f] = fwd[use_f]
    out[use_b] = bwd[use_b]
    out[~mask] = 0.0
    return out


def uv_jacobian(coords: np.ndarray, chart: np.ndarray, seam_ratio: float = 4.0) -> np.ndarray:
    """(H, W, 2, 2) Jacobian of texture coordinates (H, W, 2) per screen pixel; column 0 = ∂/∂x (right), column
    1 = ∂/∂y (down). ``chart`` is the G-buffer's per-pixel UV chart (−1 = background), or a boolean coverage mask
    (one chart). Zero on background and on pixels with no same-chart neighbour along an axis."""
    coords = np.asarray(coords, np.float64)
    chart = np.asarray(chart)
    if chart.dtype == bool:
        chart = np.where(chart, 0, -1)
    dx = _axis_difference(coords, chart, 1, seam_ratio)
    dy = _axis_difference(coords, chart, 0, seam_ratio)
    return np.stack([dx, dy], axis=-1)


def footprint_covariance(jacobian: np.ndarray, filter_width: float = 1.0) -> np.ndarray:
    """Σ = (w/2)²·J·Jᵀ per pixel, (H, W, 2, 2): the texture-space Gaussian of a σ = w/2 pixel footprint."""
    j = np.asarray(jacobian, np.float64)
    return (0.5 * float(filter_width)) ** 2 * np.einsum("...ik,...jk->...ij", j, j)
