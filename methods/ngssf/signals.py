"""Concrete signals: grid images/volumes, the Ackley test function and mesh signed-distance fields.

Each is a :class:`~methods.field.Field`; smoothed queries return the ground truth the neural field is
judged against (exact FFT blur for grids, Monte Carlo for Ackley), so the benchmark treats them all alike.
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

from methods.field import Field, eval_grid
from methods.ngssf.ground_truth import MonteCarloBlurField, gaussian_blur_exact
from render.tensors import to_numpy

__all__ = ["GridField", "AckleyField", "SDFField", "mesh_sdf", "normalize_mesh", "extract_mesh", "export_mesh"]

ArrayLike = Union[np.ndarray, torch.Tensor]


# ---------------------------------------------------------------------------------------------------- grid fields
class GridField(Field):
    """Bilinear (2D) / trilinear (3D) lookups of an HxWxC image or DxHxWxC volume over [-bounds, bounds]^d.

    Padding is ``reflection`` with ``align_corners=True`` (±bounds on the border pixel centres), as in the paper's
    picture sampler, so points in [-1.2, 1.2]^d see a mirrored border. Smoothed queries (``cov`` not None) bilinearly
    sample the EXACT blurred grid (:func:`gaussian_blur_exact`, cached for the last ``cache_size`` distinct
    covariances); when one batch holds more than ``max_exact`` distinct covariances (spatially varying blur) it falls
    back to the unbiased Monte-Carlo estimator (:class:`MonteCarloBlurField`, ``mc_samples``/``seed``)."""

    def __init__(self, image: ArrayLike, bounds: float = 1.0, name: str = "grid", cache_size: int = 4,
                 max_exact: int = 4, mc_samples: int | None = None, seed: int = 0):
        t = image.detach().cpu() if isinstance(image, torch.Tensor) else torch.from_numpy(np.asarray(image))
        t = t.to(torch.float32)
        if t.ndim == 2:
            t = t[..., None]
        if t.ndim not in (3, 4):
            raise ValueError(f"GridField expects HxW, HxWxC or DxHxWxC, got shape {tuple(t.shape)}")
        self.dim, self.channels = t.ndim - 1, t.shape[-1]
        self.bounds, self.name = float(bounds), name
        self.cache_size, self.max_exact = cache_size, max_exact
        self._data = self._to_nc(t)                       # (1, C, [D,] H, W), what grid_sample reads
        self._cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self._mc = MonteCarloBlurField(self, samples=mc_samples, seed=seed)

    @property
    def values(self) -> torch.Tensor:
        """The samples as (H, W, C) or (D, H, W, C) (a view)."""
        return self._data[0].permute(*range(1, self.dim + 1), 0)

    @staticmethod
    def _to_nc(t: torch.Tensor) -> torch.Tensor:
        return t.permute(-1, *range(t.ndim - 1)).unsqueeze(0).contiguous()  # (1, C, [D,] H, W)

    def _sample(self, data: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        g = (x / self.bounds).to(data.dtype).reshape(1, *([1] * (self.dim - 1)), -1, self.dim)
        out = F.grid_sample(data, g, mode="bilinear", padding_mode="reflection", align_corners=True)
        return out.reshape(self.channels, -1).t()

    def blurred(self, cov: torch.Tensor) -> torch.Tensor:
        """The (1, C, [D,] H, W) grid blurred exactly by one (d, d) covariance, memoised (LRU)."""
        key = np.round(to_numpy(cov.double()), 15).tobytes()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        data = self._to_nc(gaussian_blur_exact(self.values, cov.double(), bounds=self.bounds))
        self._cache[key] = data
        while len(self._cache) > max(self.cache_size, 1):
            self._cache.popitem(last=False)
        return data

    def evaluate(self, x: torch.Tensor, cov: torch.Tensor | None) -> torch.Tensor:
        if cov is None:
            return self._sample(self._data, x)
        if bool((cov == cov[:1]).all()):  # the common case: one covariance for the whole batch
            c = cov[0]
            return self._sample(self._data if bool((c == 0).all()) else self.blurred(c), x).to(x.dtype)
        uniq, inverse = torch.unique(cov.reshape(cov.shape[0], -1), dim=0, return_inverse=True)
        if uniq.shape[0] > self.max_exact:
            return self._mc.evaluate(x, cov)
        out = torch.empty(x.shape[0], self.channels, dtype=x.dtype, device=x.device)
        for k in range(uniq.shape[0]):
            sel = inverse == k
            c = uniq[k].reshape(self.dim, self.dim)
            data = self._data if bool((c == 0).all()) else self.blurred(c)
            out[sel] = self._sample(data, x[sel]).to(x.dtype)
        return out


# ------------------------------------------------------------------------------------------------------- Ackley
class AckleyField(Field):
    """Ackley's function / 10 with z = 4x (the paper's test function), isotropic smoothing only.

    f = (−20·exp(−0.2·sqrt(0.5·|z|²)) − exp(0.5·Σ cos(2π z_i)) + e + 20) / 10, f(0) = 0. The cosine sum alone has a
    closed-form blur (cos(8πx)·exp(−(8π)²σ²/2)), but the exp(·) around it does not, so smoothed values are Monte-Carlo
    estimates (:class:`MonteCarloBlurField`: the reference's sample-count rule unless ``mc_samples`` is given)."""

    dim, channels, anisotropic, name = 2, 1, False, "ackley"

    def __init__(self, mc_samples: int | None = None, seed: int = 0):
        self._mc = MonteCarloBlurField(_AckleyRaw(), samples=mc_samples, seed=seed)

    @staticmethod
    def formula(x: torch.Tensor) -> torch.Tensor:
        z = 4.0 * x
        r = torch.sqrt(0.5 * (z * z).sum(dim=-1))
        c = 0.5 * torch.cos(2.0 * math.pi * z).sum(dim=-1)
        return ((-20.0 * torch.exp(-0.2 * r) - torch.exp(c) + math.e + 20.0) / 10.0)[:, None]

    def evaluate(self, x: torch.Tensor, cov: torch.Tensor | None) -> torch.Tensor:
        return self.formula(x) if cov is None else self._mc.evaluate(x, cov)


class _AckleyRaw(Field):
    """The unsmoothed Ackley function as a field that accepts any covariance argument shape (for the MC wrapper)."""

    dim, channels, name = 2, 1, "ackley"

    def evaluate(self, x: torch.Tensor, cov: torch.Tensor | None) -> torch.Tensor:
        return AckleyField.formula(x)


# ---------------------------------------------------------------------------------------------- mesh distances
def normalize_mesh(mesh):
    """A copy centred on its bounding-box centre and scaled so its longest bbox side spans [-1, 1]."""
    m = mesh.copy()
    lo, hi = m.bounds
    m.apply_translation(-(lo + hi) / 2.0)
    m.apply_scale(2.0 / float(np.max(hi - lo)))
    return m


def _pseudo_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(F, 7, 3) angle-weighted pseudo-normals per face feature: [face, vertex a, b, c, edge ab, ac, bc].

    Bærentzen & Aanæs (2005): the sign of (p − closest)·pseudo-normal is the inside/outside sign for closed,
    consistently oriented meshes, wherever on the triangle (face, edge or corner) the closest point lies."""
    tri = v[f]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    vn = np.zeros_like(v)
    for k in range(3):
        e1 = tri[:, (k + 1) % 3] - tri[:, k]
        e2 = tri[:, (k + 2) % 3] - tri[:, k]
        cosang = (e1 * e2).sum(1) / np.maximum(np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1), 1e-30)
        np.add.at(vn, f[:, k], n * np.arccos(np.clip(cosang, -1.0, 1.0))[:, None])
    pairs = [(0, 1), (0, 2), (1, 2)]
    keys = np.concatenate([np.sort(f[:, [i, j]], axis=1) for i, j in pairs])       # (3F, 2)
    _, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    en = np.zeros((inv.max() + 1, 3))
    np.add.at(en, inv, np.tile(n, (3, 1)))
    edge_n = en[inv].reshape(3, len(f), 3).transpose(1, 0, 2)
    return np.concatenate([n[:, None], vn[f], edge_n], axis=1)


def _closest_on_triangles(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor):
    """Closest points q and feature codes (0 face, 1–3 vertex a/b/c, 4–6 edge ab/ac/bc) for broadcast p vs abc.

    Ericson, Real-Time Collision Detection §5.1.5, vectorised: each Voronoi region only picks barycentric weights
    (v, w) with ``where`` in reverse precedence order, and q = a + v·ab + w·ac is formed once."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    d3, d4 = d1 - (ab * ab).sum(-1), d2 - (ac * ab).sum(-1)      # ab·(p−b), ac·(p−b)
    d5, d6 = d1 - (ab * ac).sum(-1), d2 - (ac * ac).sum(-1)      # ab·(p−c), ac·(p−c)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2

    def safe(x: torch.Tensor) -> torch.Tensor:
        return torch.where(x.abs() < 1e-30, torch.full_like(x, 1e-30), x)

    den = safe(va + vb + vc)
    v, w = vb / den, vc / den
    code = torch.zeros(v.shape, dtype=torch.int8, device=v.device)
    zero, one = torch.zeros_like(v), torch.ones_like(v)
    regions = [  # lowest precedence first
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), 6, None, (d4 - d3) / safe((d4 - d3) + (d5 - d6))),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), 5, zero, d2 / safe(d2 - d6)),
        ((d6 >= 0) & (d5 <= d6), 3, zero, one),
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), 4, d1 / safe(d1 - d3), zero),
        ((d3 >= 0) & (d4 <= d3), 2, one, zero),
        ((d1 <= 0) & (d2 <= 0), 1, zero, zero),
    ]
    for mask, k, rv, rw in regions:
        if rv is None:  # edge bc: b + t(c − b) = a + (1−t)·ab + t·ac
            rv = 1.0 - rw
        v, w = torch.where(mask, rv, v), torch.where(mask, rw, w)
        code = torch.where(mask, torch.full_like(code, k), code)
    q = a + ab * v[..., None] + ac * w[..., None]
    return q, code.long()


def _nearest_on(p: torch.Tensor, tri_idx: torch.Tensor, tri_t: torch.Tensor, pn: torch.Tensor):
    """Per pair (point p_i, triangle tri_idx_i): unsigned distance and the pseudo-normal sign (±1)."""
    t = tri_t[tri_idx]                                                          # (..., 3, 3)
    q, code = _closest_on_triangles(p, t[..., 0, :], t[..., 1, :], t[..., 2, :])
    diff = p - q
    sgn = torch.sign((diff * pn[tri_idx, code]).sum(-1))
    return diff.norm(dim=-1), torch.where(sgn == 0, torch.ones_like(sgn), sgn)


def mesh_sdf(mesh, points: ArrayLike, pair_budget: int = 1 << 19, point_chunk: int = 1 << 16) -> np.ndarray:
    """Exact signed distance (NEGATIVE inside) from ``points`` (N, 3) to a closed triangle mesh, as float64.

    Distance: exact point–triangle distances (float32) to every triangle whose centroid lies within d_c + r_max of
    the point (d_c = distance to the nearest centroid, a surface point, so an upper bound of the answer; r_max = the
    largest centroid-to-corner radius). That set provably contains the nearest triangle, so the result equals brute
    force at ~tens of pairs per point (more near medial axes). Sign: angle-weighted pseudo-normals (exact for
    watertight, consistently oriented meshes; open meshes get a sign relative to the nearest face's orientation).
    Written here because trimesh's own queries need the optional ``rtree``/``embree`` packages."""
    from scipy.spatial import cKDTree

    p_all = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, dtype=np.float64)
    p_all = p_all.reshape(-1, 3)
    v = np.asarray(mesh.vertices, dtype=np.float64)
    f = np.asarray(mesh.faces, dtype=np.int64)
    tri = v[f]
    cen = tri.mean(axis=1)
    r_max = float(np.linalg.norm(tri - cen[:, None], axis=2).max())
    slack = 1e-5 * (1.0 + float(np.abs(v).max()) + (float(np.abs(p_all).max()) if len(p_all) else 0.0))
    pn = torch.from_numpy(_pseudo_normals(v, f)).float()
    tri_t = torch.from_numpy(tri).float()
    tree = cKDTree(cen)
    out = np.empty(len(p_all))
    for c0 in range(0, len(p_all), point_chunk):
        pts = p_all[c0:c0 + point_chunk]
        d_c, _ = tree.query(pts, k=1)
        lists = tree.query_ball_point(pts, d_c + r_max + slack)
        lengths = np.fromiter((len(c) for c in lists), dtype=np.int64, count=len(lists))
        flat = np.concatenate([np.asarray(c, dtype=np.int64) for c in lists])
        ends = np.cumsum(lengths)
        g0 = 0
        while g0 < len(pts):  # groups of whole points with ≲ pair_budget pairs
            start = ends[g0] - lengths[g0]
            g1 = max(g0 + 1, int(np.searchsorted(ends, start + pair_budget, side="right")))
            seg = torch.from_numpy(np.repeat(np.arange(g1 - g0), lengths[g0:g1]))
            dist, sgn = _nearest_on(torch.from_numpy(pts[g0:g1]).float()[seg],
                                    torch.from_numpy(flat[start:ends[g1 - 1]]), tri_t, pn)
            dmin = torch.full((g1 - g0,), float("inf")).scatter_reduce(0, seg, dist, reduce="amin")
            is_best = dist == dmin[seg]
            signed = torch.empty(g1 - g0)
            signed[seg[is_best]] = (dist * sgn)[is_best]  # ties: any nearest feature gives the same sign
            out[c0 + g0:c0 + g1] = to_numpy(signed.double())
            g0 = g1
    return out


# ---------------------------------------------------------------------------------------------------- SDF field
class SDFField(Field):
    """Signed distance to a normalised mesh (negative inside), precomputed once on a res³ grid over [-bounds, bounds]³.

    Queries are trilinear lookups of that grid (a :class:`GridField` volume, reflection at ±bounds; smoothed queries
    are exact FFT blurs of the grid). Accuracy trade-off: trilinear interpolation of an SDF is exact on flat regions
    and errs by ≈ h²·κ/8 near curved surfaces and up to ≈ h/2 at medial-axis kinks (h = 2·bounds/(res−1): 0.038 at
    res 64, 0.019 at 128); precomputation costs res³ exact distance queries (≈5–15 s at 64³ for a 5k-face mesh on
    2 CPU cores, ~8× that at 128³).
    Beyond ±bounds the grid is reflected, so very wide blurs (σ ≳ bounds − 1) see a mirrored rather than growing
    distance near the box faces; raise ``bounds`` (the reference's ground truth used [-2, 2]) for such benchmarks.
    Exact training targets come from :meth:`sample_training_points`' pool instead of the grid."""

    dim, channels, name = 3, 1, "sdf"

    def __init__(self, mesh, res: int = 64, bounds: float = 1.2, pool_size: int = 1 << 18, seed: int = 0):
        self.mesh, self.res, self.bounds = mesh, int(res), float(bounds)
        self.pool_size, self.seed = int(pool_size), int(seed)
        pts = _grid_points_np(self.res, self.bounds)
        vol = mesh_sdf(mesh, pts).reshape(self.res, self.res, self.res, 1)
        self.grid = GridField(vol.astype(np.float32), bounds=self.bounds, name="sdf-grid")
        self._pool: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def from_mesh(cls, mesh_or_path, **kwargs) -> "SDFField":
        """From a trimesh mesh or a mesh file (a Scene is flattened); the mesh is normalised to [-1, 1]^3 first."""
        import trimesh

        mesh = mesh_or_path
        if isinstance(mesh_or_path, (str, os.PathLike)):
            mesh = trimesh.load(str(mesh_or_path), force="mesh")
        if len(mesh.faces) == 0:
            raise ValueError("SDFField: the mesh has no faces")
        return cls(normalize_mesh(mesh), **kwargs)

    def evaluate(self, x: torch.Tensor, cov: torch.Tensor | None) -> torch.Tensor:
        return self.grid.evaluate(x, cov)

    def exact(self, points: ArrayLike) -> torch.Tensor:
        """Exact (ungridded) signed distances, (N, 1) float32 — slow; for checks and training targets."""
        return torch.from_numpy(mesh_sdf(self.mesh, points)).float()[:, None]

    def _build_pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Report §5: 25% scrambled-Sobol uniform in [-1.2, 1.2]³ with exact SDF; 75% area-uniform surface samples,
        half jittered by N(0, 0.1²) with exact SDF, half left on the surface with target 0."""
        import trimesh
        from scipy.stats import qmc

        n = self.pool_size
        n_uni = n // 4
        n_surf = n - n_uni
        n_jit = n_surf // 2
        rng = np.random.default_rng(self.seed)
        sob = qmc.Sobol(3, scramble=True, seed=rng).random_base2(max(0, math.ceil(math.log2(max(n_uni, 1)))))
        uni = (sob[:n_uni] * 2.0 - 1.0) * 1.2
        surf, _ = trimesh.sample.sample_surface(self.mesh, n_surf, seed=int(rng.integers(1 << 31)))
        surf = np.asarray(surf, dtype=np.float64)
        jit = surf[:n_jit] + rng.normal(0.0, 0.1, size=(n_jit, 3))
        on = surf[n_jit:]
        pts_exact = np.concatenate([uni, jit])
        sdf = np.concatenate([mesh_sdf(self.mesh, pts_exact), np.zeros(len(on))])
        pts = np.concatenate([pts_exact, on])
        return torch.from_numpy(pts).float(), torch.from_numpy(sdf).float()[:, None]

    def sample_training_points(self, n: int, generator: torch.Generator | None = None) \
            -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` (points (n, 3), sdf (n, 1)) drawn with replacement from a pool built once (lazily, seeded)."""
        if self._pool is None:
            self._pool = self._build_pool()
        pts, sdf = self._pool
        idx = torch.randint(0, pts.shape[0], (int(n),), generator=generator)
        return pts[idx], sdf[idx]


def _grid_points_np(res: int, bounds: float) -> np.ndarray:
    """(res³, 3) points in (z, y, x) row-major order with columns (x, y, z), matching ``grid_points``."""
    ax = np.linspace(-bounds, bounds, res)
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    return np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)


# ------------------------------------------------------------------------------------------------ mesh extraction
def extract_mesh(field: Field, res: int = 128, cov=None, chunk: int = 1 << 16):
    """Zero level set of a 3D field over [-1, 1]³ by marching cubes on a res³ grid; an empty mesh if none.

    The grid is stored (z, y, x), so vertices are reversed to (x, y, z), scaled by 2/(res−1) and shifted by −1;
    faces are oriented outward (positive volume for a closed surface, i.e. negative values inside)."""
    import trimesh
    from skimage.measure import marching_cubes

    if field.dim != 3:
        raise ValueError(f"extract_mesh needs a 3D field, got dim {field.dim}")
    vol = to_numpy(eval_grid(field, (res, res, res), cov, chunk=chunk)[..., 0].double())
    if not (vol.min() <= 0.0 <= vol.max()) or vol.min() == vol.max():
        return trimesh.Trimesh(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), dtype=np.int64))
    h = 2.0 / (res - 1)
    verts, faces, _, _ = marching_cubes(vol, level=0.0, spacing=(h, h, h))
    verts = verts[:, ::-1] - 1.0
    mesh = trimesh.Trimesh(vertices=verts, faces=faces, process=False)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def export_mesh(mesh, path: Union[str, os.PathLike]) -> Path:
    """Write ``mesh`` as .ply or .obj (by suffix) atomically (:func:`assets.cache.atomic_open`)."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("ply", "obj"):
        raise ValueError(f"export_mesh: unsupported suffix {path.suffix!r} for {path.name}; use .ply or .obj")
    from assets.cache import atomic_open

    with atomic_open(path, "wb", parents=True) as fh:
        mesh.export(file_obj=fh, file_type=kind)
    return path
