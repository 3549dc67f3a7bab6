"""A small procedural Gaussian-splat scene, so the Splat view has something to show before anything is trained.

A tilted torus with a rainbow hue, 24 dark stripes and a checker around its tube, around a sphere shell with a
16×8 checkerboard, built from ~4300 flat Gaussians lying in the surface (two tangent scales ≈ 0.6 × the sample
spacing so neighbours overlap into a closed surface, a thin normal scale). The stripes and checkers are a few
Gaussians wide on purpose: zoomed out they alias, zoomed in the 3D filter matters — the point of the studio.
Band-1 SH terms make the surface a little brighter seen head-on than at grazing angles, so the SH path is
exercised. The 3D filter is computed for :func:`demo_cameras` and stored as the Mip-Splatting ``filter_3D``
property.

Fully deterministic (no random numbers); written once into the asset cache as a standard 3DGS PLY. It lives with
the Gaussian family, not in ``assets``, because it is built from the family's model (assets sit below methods).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from assets.cache import cached
from methods.gaussians.filter3d import compute_3d_filter
from methods.gaussians.model import GaussianModel, num_sh_coeffs, rgb_to_sh_dc, rotmat_to_quat
from methods.gaussians.ply import save_ply
from render.camera import Camera
from render.splat.sh import SH_C1

__all__ = ["SPLAT_DEMO_VERSION", "big_scene", "demo_cameras", "demo_model", "demo_ply_path"]

SPLAT_DEMO_VERSION = 1
TORUS_MAJOR, TORUS_MINOR, TORUS_TILT_DEG = 0.8, 0.22, 25.0
TORUS_NU, TORUS_NV = 96, 28       # samples around the ring / around the tube
SPHERE_RADIUS, SPHERE_N = 0.45, 1600
OVERLAP = 0.6                     # tangent std / sample spacing
THIN = 0.1                        # normal std / tangent std
OPACITY = 0.95
VIEW_DARKENING = 0.15             # band-1 SH amplitude along the normal


def demo_cameras(n: int = 16, size: int = 512) -> list[Camera]:
    """Cameras on two rings (above and below the equator) looking at the origin: the demo's 'training' views."""
    cams = []
    for i in range(n):
        az = 2 * math.pi * i / n
        el = math.radians(25.0 if i % 2 == 0 else -15.0)
        eye = 3.2 * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        cams.append(Camera.look_at(eye, (0.0, 0.0, 0.0), fov_x=math.radians(45.0), width=size, height=size))
    return cams


def _hsv_to_rgb(h: np.ndarray, s: float, v: np.ndarray) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0])[None, :] + h[:, None] * 6.0) % 6.0
    return v[:, None] - v[:, None] * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _rot_x(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _torus() -> tuple[np.ndarray, ...]:
    u, v = np.meshgrid(2 * np.pi * (np.arange(TORUS_NU) + 0.5) / TORUS_NU,
                       2 * np.pi * (np.arange(TORUS_NV) + 0.5) / TORUS_NV, indexing="ij")
    u, v = u.ravel(), v.ravel()
    ring = TORUS_MAJOR + TORUS_MINOR * np.cos(v)
    p = np.stack([ring * np.cos(u), ring * np.sin(u), TORUS_MINOR * np.sin(v)], -1)
    normal = np.stack([np.cos(v) * np.cos(u), np.cos(v) * np.sin(u), np.sin(v)], -1)
    t1 = np.stack([-np.sin(u), np.cos(u), np.zeros_like(u)], -1)
    s_u = OVERLAP * 2 * np.pi * ring / TORUS_NU
    s_v = np.full_like(u, OVERLAP * 2 * np.pi * TORUS_MINOR / TORUS_NV)
    stripes = (np.floor(u / (2 * np.pi) * 24) % 2 == 0) & (np.floor(v / (2 * np.pi) * 8) % 2 == 0)
    rgb = _hsv_to_rgb(u / (2 * np.pi), 0.8, np.where(stripes, 0.35, 0.95))
    tilt = _rot_x(TORUS_TILT_DEG)
    return p @ tilt.T, normal @ tilt.T, t1 @ tilt.T, np.stack([s_u, s_v], -1), rgb


def _sphere() -> tuple[np.ndarray, ...]:
    i = np.arange(SPHERE_N) + 0.5
    z = 1.0 - 2.0 * i / SPHERE_N
    phi = np.pi * (3.0 - math.sqrt(5.0)) * i  # golden-angle spiral: even coverage, no poles clumping
    r = np.sqrt(1.0 - z * z)
    normal = np.stack([r * np.cos(phi), r * np.sin(phi), z], -1)
    t1 = np.cross(np.array([0.0, 0.0, 1.0]), normal)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    spacing = math.sqrt(4 * math.pi * SPHERE_RADIUS**2 / SPHERE_N)
    lon = np.arctan2(normal[:, 1], normal[:, 0]) + np.pi
    lat = np.arcsin(np.clip(z, -1.0, 1.0)) + np.pi / 2
    checker = (np.floor(lon / (2 * np.pi) * 16) + np.floor(lat / np.pi * 8)) % 2 == 0
    rgb = np.where(checker[:, None], [[0.95, 0.93, 0.85]], [[0.10, 0.18, 0.45]])
    return SPHERE_RADIUS * normal, normal, t1, np.full((SPHERE_N, 2), OVERLAP * spacing), rgb


def demo_model() -> GaussianModel:
    """The demo scene as a :class:`GaussianModel` (SH degree 3, with a 3D filter for :func:`demo_cameras`)."""
    parts = [_torus(), _sphere()]
    p, normal, t1, s_t, rgb = (np.concatenate(x) for x in zip(*parts))
    t2 = np.cross(normal, t1)  # (t1, t2, n) is right-handed, so the rotation has det +1
    R = torch.from_numpy(np.stack([t1, t2, normal], axis=-1))  # columns: local x, y, z axes in world space
    scales = np.concatenate([s_t, THIN * s_t.min(axis=1, keepdims=True)], axis=1)
    n = p.shape[0]
    sh_rest = torch.zeros(n, num_sh_coeffs(3) - 1, 3)
    # colour += C1·(−c1·y + c2·z − c3·x) along the view direction d; choosing (c1,c2,c3) = a·(−n_y, n_z, −n_x)
    # gives a·C1·(n·d): negative for a surface seen head-on, so with a < 0 head-on views are brighter.
    a = -VIEW_DARKENING / SH_C1 * 0.5
    nt = torch.from_numpy(normal).float()
    band1 = torch.stack([-nt[:, 1], nt[:, 2], -nt[:, 0]], dim=1) * a  # (N, 3 coeffs)
    sh_rest[:, :3, :] = band1[:, :, None]
    model = GaussianModel(
        torch.from_numpy(p).float(),
        rotmat_to_quat(R).float(),
        torch.from_numpy(np.log(scales)).float(),
        torch.full((n,), math.log(OPACITY / (1 - OPACITY))),
        rgb_to_sh_dc(torch.from_numpy(rgb).float())[:, None, :],
        sh_rest,
        max_sh_degree=3,
    )
    model.filter_3d = compute_3d_filter(model.means, demo_cameras())
    return model


def demo_ply_path() -> Path:
    """The demo scene's PLY in the asset cache (built on first use, a fraction of a second)."""
    folder = cached("splat_demo", lambda d: save_ply(demo_model(), d / "scene.ply"), SPLAT_DEMO_VERSION)
    return folder / "scene.ply"


# ----- big synthetic scenes (benchmarks, the 1M-Gaussian case) ------------------------------------------------------
GROUND_Z, GROUND_RADIUS, BACKDROP_RADIUS, BACKDROP_SHARE = -0.65, 2.5, 8.0, 0.04


def _tangent_frame(normal: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random in-plane direction t1 ⟂ normal, and t2 = n × t1."""
    a = np.where(np.abs(normal[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    u = np.cross(a, normal)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(normal, u)
    ang = rng.uniform(0.0, 2 * np.pi, (len(normal), 1))
    t1 = np.cos(ang) * u + np.sin(ang) * v
    return t1, np.cross(normal, t1)


def _surfaces(n: int, rng: np.random.Generator) -> list[tuple[np.ndarray, ...]]:
    """(points, normals, rgb, spacing) on the demo's torus and sphere, a ground disc and a backdrop sphere."""
    areas = {"torus": 4 * np.pi**2 * TORUS_MAJOR * TORUS_MINOR, "sphere": 4 * np.pi * SPHERE_RADIUS**2,
             "ground": np.pi * GROUND_RADIUS**2}
    n_back = int(round(BACKDROP_SHARE * n))
    total = sum(areas.values())
    counts = {k: int((n - n_back) * a / total) for k, a in areas.items()}
    counts["ground"] += n - n_back - sum(counts.values())  # the rounding remainder: exactly n in all
    out = []

    k = counts["torus"]  # uniform by area: keep v with probability ∝ ring radius, draw until there are k
    u, v = np.zeros(0), np.zeros(0)
    while len(u) < k:
        uu, vv = rng.uniform(0, 2 * np.pi, 2 * k + 64), rng.uniform(0, 2 * np.pi, 2 * k + 64)
        keep = rng.uniform(0, 1, len(vv)) < (TORUS_MAJOR + TORUS_MINOR * np.cos(vv)) / (TORUS_MAJOR + TORUS_MINOR)
        u, v = np.concatenate([u, uu[keep]]), np.concatenate([v, vv[keep]])
    u, v = u[:k], v[:k]
    ring = TORUS_MAJOR + TORUS_MINOR * np.cos(v)
    p = np.stack([ring * np.cos(u), ring * np.sin(u), TORUS_MINOR * np.sin(v)], -1)
    nrm = np.stack([np.cos(v) * np.cos(u), np.cos(v) * np.sin(u), np.sin(v)], -1)
    stripes = (np.floor(u / (2 * np.pi) * 24) % 2 == 0) & (np.floor(v / (2 * np.pi) * 8) % 2 == 0)
    tilt = _rot_x(TORUS_TILT_DEG)
    out.append((p @ tilt.T, nrm @ tilt.T, _hsv_to_rgb(u / (2 * np.pi), 0.8, np.where(stripes, 0.35, 0.95)),
                np.sqrt(areas["torus"] / max(k, 1))))

    k = counts["sphere"]
    nrm = rng.normal(size=(k, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    lon = np.arctan2(nrm[:, 1], nrm[:, 0]) + np.pi
    lat = np.arcsin(np.clip(nrm[:, 2], -1.0, 1.0)) + np.pi / 2
    checker = (np.floor(lon / (2 * np.pi) * 16) + np.floor(lat / np.pi * 8)) % 2 == 0
    out.append((SPHERE_RADIUS * nrm, nrm, np.where(checker[:, None], [[0.95, 0.93, 0.85]], [[0.10, 0.18, 0.45]]),
                np.sqrt(areas["sphere"] / max(k, 1))))

    k = counts["ground"]
    r, a = GROUND_RADIUS * np.sqrt(rng.uniform(0, 1, k)), rng.uniform(0, 2 * np.pi, k)
    p = np.stack([r * np.cos(a), r * np.sin(a), np.full(k, GROUND_Z)], -1)
    tiles = (np.floor(p[:, 0] / 0.25) + np.floor(p[:, 1] / 0.25)) % 2 == 0
    grey = np.where(tiles, 0.55, 0.3) + 0.05 * rng.normal(size=k)
    out.append((p, np.tile([[0.0, 0.0, 1.0]], (k, 1)), np.clip(grey[:, None] * [[1.0, 0.95, 0.85]], 0, 1),
                np.sqrt(areas["ground"] / max(k, 1))))

    k = n_back
    nrm = rng.normal(size=(k, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    sky = np.clip(0.5 + 0.5 * nrm[:, 2:3], 0, 1)
    rgb = (1 - sky) * [[0.85, 0.8, 0.7]] + sky * [[0.35, 0.55, 0.9]] + 0.03 * rng.normal(size=(k, 3))
    out.append((BACKDROP_RADIUS * nrm, -nrm, np.clip(rgb, 0, 1), np.sqrt(4 * np.pi * BACKDROP_RADIUS**2 / max(k, 1))))
    return [part for part in out if len(part[0])]


def big_scene(n: int, seed: int = 0) -> GaussianModel:
    """A synthetic scene of ``n`` Gaussians shaped like a trained one, for benchmarks and the 1M-Gaussian case.

    Flat Gaussians cover the demo's torus and sphere, a checkered ground disc and a backdrop sphere (4% of them, so
    framing by percentiles looks at the objects, not at the backdrop from outside). Density goes by area; tangent
    scales are ≈ 0.6 × the spacing with a log-normal spread and a random in-plane orientation; three quarters are
    nearly opaque, the rest semi-transparent; SH bands 1–3 are small and random. So the per-pixel overdraw stays
    realistic at any ``n`` (the splats shrink as ``n`` grows), unlike uniformly random Gaussians.
    """
    if n < 1:
        raise ValueError(f"a scene needs at least one Gaussian, got {n}")
    rng = np.random.default_rng(seed)
    parts = []
    for p, nrm, rgb, spacing in _surfaces(int(n), rng):
        k = len(p)
        t1, t2 = _tangent_frame(nrm, rng)
        s_t = OVERLAP * spacing * np.exp(0.3 * rng.normal(size=(k, 2)))
        scales = np.concatenate([s_t, THIN * s_t.min(axis=1, keepdims=True)], axis=1)
        parts.append((p, np.stack([t1, t2, nrm], axis=-1), scales, rgb))
    p, R, scales, rgb = (np.concatenate(x) for x in zip(*parts))
    m = len(p)
    opacity = np.where(rng.uniform(0, 1, m) < 0.75, rng.uniform(0.85, 0.99, m), rng.uniform(0.05, 0.6, m))
    sh_rest = 0.05 * rng.normal(size=(m, num_sh_coeffs(3) - 1, 3)) / np.arange(2, num_sh_coeffs(3) + 1)[None, :, None]
    return GaussianModel(
        torch.from_numpy(p).float(),
        rotmat_to_quat(torch.from_numpy(R)).float(),
        torch.from_numpy(np.log(scales)).float(),
        torch.from_numpy(np.log(opacity / (1 - opacity))).float(),
        rgb_to_sh_dc(torch.from_numpy(rgb).float())[:, None, :],
        torch.from_numpy(sh_rest).float(),
        max_sh_degree=3,
    )
