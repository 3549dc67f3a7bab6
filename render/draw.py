"""Overlays drawn into float HxWx3 frames on the render thread (ellipses, outlines, split lines): numpy only, so
sources can mark up their frames without GUI calls."""
from __future__ import annotations

import math

import numpy as np


def ellipse_points(cov_px: np.ndarray, k: float = 2.0, n: int | None = None) -> np.ndarray:
    """(n, 2) offsets (x right, y down) of the k-sigma ellipse of a 2x2 covariance given in screen pixels²."""
    vals, vecs = np.linalg.eigh(np.asarray(cov_px, dtype=np.float64))
    axes = k * np.sqrt(np.clip(vals, 0, None))
    if n is None:
        n = int(np.clip(4 * math.pi * float(axes.max()), 24, 4000))
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return (vecs @ (axes[:, None] * np.stack([np.cos(t), np.sin(t)]))).T


def draw_outline(img: np.ndarray, pts: np.ndarray, color: tuple[float, float, float], closed: bool = True,
                 thick: bool = True) -> None:
    """Plot a polyline (x, y) into an HxWx3 image (2 px thick unless ``thick`` is False); points off the image are
    skipped."""
    h, w = img.shape[:2]
    p = np.concatenate([pts, pts[:1]]) if closed else np.asarray(pts)
    seg = np.linspace(0, 1, 4)[:, None, None]
    dense = (p[:-1][None] * (1 - seg) + p[1:][None] * seg).reshape(-1, 2)
    for dx, dy in ((0, 0), (1, 0), (0, 1)) if thick else ((0, 0),):
        x = np.floor(dense[:, 0] - 0.5).astype(int) + dx
        y = np.floor(dense[:, 1] - 0.5).astype(int) + dy
        ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        img[y[ok], x[ok]] = color


def draw_ellipses(img: np.ndarray, centres: np.ndarray, covs: np.ndarray, k: float, colors: np.ndarray) -> None:
    """k-sigma outlines of many ellipses at once: centres (N, 2) screen pixels, covs (N, 2, 2) screen pixels²,
    colors (N, 3). One pixel thick, points off the image skipped."""
    if len(centres) == 0:
        return
    vals, vecs = np.linalg.eigh(np.asarray(covs, dtype=np.float64))
    axes = k * np.sqrt(np.clip(vals, 0, None))                                   # (N, 2)
    n = int(np.clip(2 * math.pi * float(axes.max()) * 1.5, 16, 2000))
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    circle = np.stack([np.cos(t), np.sin(t)])                                     # (2, n)
    pts = np.einsum("nij,nj,jt->nti", vecs, axes, circle) + np.asarray(centres)[:, None, :]
    x = np.floor(pts[..., 0] - 0.5).astype(int)
    y = np.floor(pts[..., 1] - 0.5).astype(int)
    h, w = img.shape[:2]
    ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    rows = np.broadcast_to(np.arange(len(centres))[:, None], ok.shape)
    img[y[ok], x[ok]] = np.asarray(colors)[rows[ok]]
