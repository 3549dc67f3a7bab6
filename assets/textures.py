"""Deterministic procedural textures with energy up to the Nyquist rate: what aliasing looks like on purpose.

Every generator has the signature ``generator(size, seed) -> float32 (size, size, 3)`` in [0, 1] and is listed in
:data:`TEXTURES`. Generators that ignore ``seed`` (the checkerboard and the zone plate are canonical test
patterns) are left out of :data:`SEEDED_TEXTURES`. Patterns with hard edges are box-filtered at generation time
(``ss``×``ss`` samples per texel) so the texture itself is not already aliased; the zone plate is point-sampled
on purpose because its definition is "a chirp that reaches Nyquist at the edge".
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

TextureGenerator = Callable[[int, int], np.ndarray]

_CHUNK_SAMPLES = 1 << 21  # samples evaluated at once, bounds peak memory for 1024²+ textures


def _check_size(size: int, what: str = "size") -> int:
    if int(size) != size or size < 4:
        raise ValueError(f"texture {what} must be an integer >= 4, got {size!r}")
    return int(size)


def _evaluate(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], height: int, width: int, ss: int) -> np.ndarray:
    """Average ``fn(x, y) -> (..., C)`` over ss×ss stratified samples per texel; x, y in texel units, row 0 top."""
    offs = (np.arange(ss) + 0.5) / ss
    rows_per_chunk = max(1, _CHUNK_SAMPLES // max(1, width * ss * ss))
    out = None
    for r0 in range(0, height, rows_per_chunk):
        r1 = min(height, r0 + rows_per_chunk)
        y = (np.arange(r0, r1)[:, None] + offs[None, :]).reshape(-1)          # (rows*ss,)
        x = (np.arange(width)[:, None] + offs[None, :]).reshape(-1)           # (width*ss,)
        xx, yy = np.meshgrid(x, y)
        val = fn(xx, yy)                                                      # (rows*ss, width*ss, C)
        val = val.reshape(r1 - r0, ss, width, ss, -1).mean(axis=(1, 3))
        if out is None:
            out = np.empty((height, width, val.shape[-1]), np.float32)
        out[r0:r1] = val
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _hash01(seed: int, *keys: np.ndarray) -> np.ndarray:
    """Deterministic per-integer-key uniform values in [0, 1): per-scale colour jitter without a global RNG."""
    h = np.full(np.broadcast(*keys).shape, (seed * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF, dtype=np.uint64)
    for k in keys:
        h = (h ^ (np.asarray(k).astype(np.int64).astype(np.uint64) & 0xFFFFFFFF)) * np.uint64(0x27D4EB2F)
        h &= np.uint64(0xFFFFFFFF)
        h ^= h >> np.uint64(15)
        h = (h * np.uint64(0x85EBCA6B)) & np.uint64(0xFFFFFFFF)
        h ^= h >> np.uint64(13)
    return (h.astype(np.float64) / 2.0 ** 32).astype(np.float32)


def _grey3(v: np.ndarray) -> np.ndarray:
    return np.repeat(v[..., None], 3, axis=-1)


# ----- generators ---------------------------------------------------------------------------------------------
def checkerboard(size: int = 512, seed: int = 0, *, cells: int = 64) -> np.ndarray:
    """Black/white checkerboard with ``cells`` squares per side (unseeded): the simplest aliasing target."""
    size = _check_size(size)
    if cells < 1:
        raise ValueError(f"checkerboard cells must be >= 1, got {cells}")
    cs = size / cells
    ss = 1 if size % cells == 0 else 4  # integer cells land on texel edges: point samples are exact

    def fn(x, y):
        return _grey3(((np.floor(x / cs) + np.floor(y / cs)) % 2).astype(np.float32))

    return _evaluate(fn, size, size, ss)


def zone_plate(size: int = 512, seed: int = 0) -> np.ndarray:
    """Radial chirp 0.5+0.5·cos(π r²/size): local frequency r/size cycles/texel, = Nyquist (0.5) at the edge.

    Any resampling that is not properly low-passed shows spurious rings (moiré) — the classic filter test.
    Point-sampled on purpose; unseeded.
    """
    size = _check_size(size)
    c = size / 2.0

    def fn(x, y):
        r2 = (x - c) ** 2 + (y - c) ** 2
        return _grey3((0.5 + 0.5 * np.cos(np.pi * r2 / size)).astype(np.float32))

    return _evaluate(fn, size, size, 1)


def stripes(size: int = 512, seed: int = 0, *, period: float | None = None) -> np.ndarray:
    """Two-colour square-wave stripes, 3–6 texels per period; the seed picks angle, period and colours."""
    size = _check_size(size)
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, math.pi)
    p = float(period) if period is not None else rng.uniform(3.0, 6.0)
    if not p > 0:
        raise ValueError(f"stripes period must be positive, got {period}")
    c0 = rng.uniform(0.0, 0.35, 3).astype(np.float32)
    c1 = rng.uniform(0.65, 1.0, 3).astype(np.float32)
    ca, sa = math.cos(angle), math.sin(angle)

    def fn(x, y):
        t = ((x * ca + y * sa) / p) % 1.0
        m = (t < 0.5).astype(np.float32)[..., None]
        return c0 * m + c1 * (1.0 - m)

    return _evaluate(fn, size, size, 4)


def fish_scales(size: int = 512, seed: int = 0, *, height: int | None = None, scales: float = 40.0,
                ss: int = 2) -> np.ndarray:
    """Overlapping fish scales with fine concentric ridges, coloured dorsal → belly → dorsal from top to bottom.

    Layout matches the fish's UV unwrap: x = body length (head at the left), y = around the body with the back
    at the top and bottom rows and the belly in the middle row; scales repeat exactly in y so the seam is
    invisible. Each scale's exposed rounded edge faces +x (toward the tail), anterior scales overlapping
    posterior ones. ``scales`` ≈ scale rows per ``size`` texels; ridges are ~3 texels apart, so minification
    aliases quickly. The seed jitters per-scale colours.
    """
    width = _check_size(size)
    height = _check_size(height if height is not None else size, "height")
    if not scales > 0:
        raise ValueError(f"fish_scales: scales must be positive, got {scales}")
    rows = max(2, int(round(height / (width / scales))))
    pitch = height / rows               # scale spacing around the body (texels); exact tiling in y
    col = 0.75 * pitch                  # spacing along the body: scales overlap like roof tiles
    radius = 0.62 * pitch               # > circumradius of the centre lattice (0.54·pitch): no gaps
    ridge = 3.0                          # circuli spacing in texels
    dorsal = np.array([0.04, 0.20, 0.42], np.float32)
    flank = np.array([0.30, 0.62, 0.38], np.float32)
    band = np.array([0.95, 0.42, 0.45], np.float32)
    belly = np.array([0.96, 0.90, 0.70], np.float32)
    tail_tint = np.array([0.25, 0.05, 0.30], np.float32)

    def fn(x, y):
        m = np.floor(x / col).astype(np.int64)
        best_k = np.full(x.shape, np.iinfo(np.int64).max, np.int64)
        best_j = np.zeros(x.shape, np.int64)
        best_dx = np.zeros(x.shape, np.float64)
        best_dy = np.zeros(x.shape, np.float64)
        for dk in (1, 0, -1):  # later (smaller k) candidates win: anterior scales lie on top
            k = m + dk
            off = (k % 2) * 0.5 * pitch
            j = np.round((y - off) / pitch)
            dx = x - k * col
            dy = y - (j * pitch + off)
            inside = dx * dx + dy * dy < radius * radius
            best_k = np.where(inside, k, best_k)
            best_j = np.where(inside, j.astype(np.int64) % rows, best_j)
            best_dx = np.where(inside, dx, best_dx)
            best_dy = np.where(inside, dy, best_dy)
        rho = np.sqrt(best_dx ** 2 + best_dy ** 2) / radius
        # colour by position around the body: 0 at the back (top/bottom rows), 1 at the belly (middle row)
        t = 1.0 - np.abs(2.0 * y / height - 1.0)
        w_flank = np.clip(t / 0.45, 0, 1)
        base = dorsal + (flank - dorsal) * w_flank[..., None]
        w_band = np.exp(-((t - 0.52) / 0.09) ** 2)
        base = base + (band - base) * (0.75 * w_band)[..., None]
        w_belly = np.clip((t - 0.62) / 0.3, 0, 1)
        base = base + (belly - base) * w_belly[..., None]
        base = base + tail_tint * (0.6 * np.clip(x / width - 0.55, 0, None))[..., None]
        jitter = _hash01(seed, best_k, best_j)[..., None]
        hue = _hash01(seed + 1, best_k, best_j)[..., None]
        colour = base * (0.8 + 0.35 * jitter) + 0.08 * (hue - 0.5) * np.array([1.0, -0.5, -0.5], np.float32)
        shade = 0.62 + 0.38 * (1.0 - rho ** 2)                    # darker toward the exposed edge
        ridges = 0.82 + 0.18 * np.cos(2 * np.pi * rho * radius / ridge)
        rim = 1.0 - 0.75 * np.clip((rho - 0.86) / 0.1, 0, 1)       # dark outline arc
        sheen = 0.25 * np.clip(1.0 - rho, 0, 1) ** 3                # silvery highlight at the scale's root
        out = colour * (shade * ridges * rim)[..., None] + sheen[..., None]
        return out.astype(np.float32)

    return _evaluate(fn, height, width, ss)


TEXTURES: dict[str, TextureGenerator] = {
    "checkerboard": checkerboard,
    "zone_plate": zone_plate,
    "stripes": stripes,
    "fish_scales": fish_scales,
}
SEEDED_TEXTURES: frozenset[str] = frozenset({"stripes", "fish_scales"})


def list_textures() -> list[str]:
    """Names accepted by :func:`make_texture`."""
    return sorted(TEXTURES)


def make_texture(name: str, size: int = 512, seed: int = 0) -> np.ndarray:
    """Generate the named texture as float32 (size, size, 3) in [0, 1]; same arguments → identical pixels."""
    gen = TEXTURES.get(name)
    if gen is None:
        raise ValueError(f"unknown texture {name!r}; valid names: {', '.join(list_textures())}")
    return gen(size, seed)
