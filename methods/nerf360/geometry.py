"""Cones, frustum Gaussians, the scene contraction and integrated positional encoding (report §1.5–1.7, §5).

A pixel is a cone; each sampled interval [t0, t1] of it is a conical frustum that we replace by the Gaussian with
the same mean and covariance. The Gaussian is pushed through the contraction by linearization, projected onto a
fixed set of directions and encoded with IPE, whose exp(−½·4^l·σ²) factors remove frequencies finer than the
footprint: that is the anti-aliasing. Directions are NOT normalized: t is depth along the ray parameter.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch

__all__ = ["pixel_cone_radii", "frustum_to_gaussian", "lift_frustum_gaussian", "cast_cones", "contract",
           "inv_contract", "contract_jacobian", "contract_gaussians", "geodesic_directions", "IPE_BASES",
           "ipe_basis", "lift_gaussians", "integrated_pos_enc", "pos_enc", "ipe_features"]

Tensor = torch.Tensor


# ---------------------------------------------------------------------------------------------------------------------
# cones and conical frustums (§1.2, §1.5, §5)
# ---------------------------------------------------------------------------------------------------------------------

def pixel_cone_radii(directions: Tensor) -> Tensor:
    """Base cone radius ṙ (radius at t = 1) per pixel from an (..., H, W, 3) grid of unnormalized directions.

    ṙ = (2/√12) · mean(‖d(x+1, y) − d‖, ‖d(x, y+1) − d‖): 2/√12 matches the disk's cross-section variance to a
    uniform pixel footprint. Recompute it for every render resolution / focal length (zoom), never cache it.
    Returns (..., H, W, 1); the last row/column reuse their neighbour's spacing."""
    dx = torch.linalg.norm(directions[..., :, 1:, :] - directions[..., :, :-1, :], dim=-1)
    dy = torch.linalg.norm(directions[..., 1:, :, :] - directions[..., :-1, :, :], dim=-1)
    dx = torch.cat([dx, dx[..., :, -1:]], -1) if dx.shape[-1] > 0 else torch.zeros_like(directions[..., 0])
    dy = torch.cat([dy, dy[..., -1:, :]], -2) if dy.shape[-2] > 0 else torch.zeros_like(directions[..., 0])
    return (2.0 / math.sqrt(12.0) * 0.5 * (dx + dy))[..., None]


def frustum_to_gaussian(t0: Tensor, t1: Tensor, base_radius: Tensor | float) -> tuple[Tensor, Tensor, Tensor]:
    """Moments of a uniform conical frustum [t0, t1] with radius ``base_radius``·t (mip-NeRF's stable form).

    Returns (mean_t, var_t, var_r): mean ray parameter, variance along the ray (in t units) and the per-axis
    variance perpendicular to it. Written in t_μ = (t0+t1)/2, t_δ = (t1−t0)/2 because the naive t⁵/t³ moment
    ratios cancel catastrophically in float32 for thin, distant frustums."""
    t_mu, t_delta = 0.5 * (t0 + t1), 0.5 * (t1 - t0)
    mu2, d2 = t_mu ** 2, t_delta ** 2
    denom = 3.0 * mu2 + d2
    mean_t = t_mu + 2.0 * t_mu * d2 / denom
    var_t = d2 / 3.0 - (4.0 / 15.0) * d2 ** 2 * (12.0 * mu2 - d2) / denom ** 2
    var_r = base_radius ** 2 * (mu2 / 4.0 + (5.0 / 12.0) * d2 - (4.0 / 15.0) * d2 ** 2 / denom)
    return mean_t, var_t, var_r


def lift_frustum_gaussian(origins: Tensor, directions: Tensor, mean_t: Tensor, var_t: Tensor, var_r: Tensor, *,
                          diag: bool = False) -> tuple[Tensor, Tensor]:
    """World-space Gaussian of each frustum: μ = o + μ_t d, Σ = σ_t² d dᵀ + σ_r² (I − d dᵀ/‖d‖²).

    origins/directions are (..., 3), the along-ray moments (..., n). Returns mean (..., n, 3) and covariance
    (..., n, 3, 3), or its diagonal (..., n, 3) with ``diag`` (the full one is needed before the contraction)."""
    d = directions[..., None, :]
    mean = origins[..., None, :] + mean_t[..., None] * d
    d_norm2 = (directions ** 2).sum(-1, keepdim=True).clamp_min(torch.finfo(directions.dtype).tiny)[..., None, :]
    if diag:
        d2 = d ** 2
        cov = var_t[..., None] * d2 + var_r[..., None] * (1.0 - d2 / d_norm2)
    else:
        ddt = d[..., :, None] * d[..., None, :]
        eye = torch.eye(3, dtype=directions.dtype, device=directions.device)
        cov = var_t[..., None, None] * ddt + var_r[..., None, None] * (eye - ddt / d_norm2[..., None])
    return mean, cov


def cast_cones(t_edges: Tensor, origins: Tensor, directions: Tensor, radii: Tensor | float, *,
               diag: bool = False) -> tuple[Tensor, Tensor]:
    """Gaussians of the frustums between consecutive ``t_edges`` (..., n+1) of cones (origins, directions, radii).

    ``radii`` is the base radius ṙ, (..., 1) or a scalar. See :func:`lift_frustum_gaussian` for the outputs."""
    mean_t, var_t, var_r = frustum_to_gaussian(t_edges[..., :-1], t_edges[..., 1:], radii)
    return lift_frustum_gaussian(origins, directions, mean_t, var_t, var_r, diag=diag)


# ---------------------------------------------------------------------------------------------------------------------
# contraction (§1.6)
# ---------------------------------------------------------------------------------------------------------------------

def _norm2(x: Tensor) -> Tensor:
    # clamp keeps the unused branch (and its gradient) finite at the origin
    return (x * x).sum(-1, keepdim=True).clamp_min(torch.finfo(x.dtype).eps)


def contract(x: Tensor) -> Tensor:
    """x if ‖x‖ ≤ 1 else (2 − 1/‖x‖)·x/‖x‖: maps R³ onto the open ball of radius 2, linear in disparity outside."""
    r2 = _norm2(x)
    scale = (2.0 * torch.sqrt(r2) - 1.0) / r2
    return torch.where(r2 <= 1.0, x, scale * x)


def inv_contract(z: Tensor) -> Tensor:
    """Inverse of :func:`contract` on the ball of radius 2: z if ‖z‖ ≤ 1 else z / (‖z‖(2 − ‖z‖))."""
    r2 = _norm2(z)
    r = torch.sqrt(r2)
    denom = (r * (2.0 - r)).clamp_min(torch.finfo(z.dtype).eps)
    return torch.where(r2 <= 1.0, z, z / denom)


def contract_jacobian(x: Tensor) -> Tensor:
    """Closed-form Jacobian (..., 3, 3) of :func:`contract`.

    Outside the unit ball, with r = ‖x‖ and u = x/r, J = (1/r²) u uᵀ + ((2r − 1)/r²)(I − u uᵀ): radial
    compression 1/r², tangential (2r − 1)/r². Inside it is I (both scales are 1 at r = 1, so J is continuous)."""
    r2 = _norm2(x)
    r = torch.sqrt(r2)
    outside = (r2 > 1.0)[..., None]
    tang = ((2.0 * r - 1.0) / r2)[..., None]
    rad = (1.0 / r2)[..., None]
    u = x / r
    uut = u[..., :, None] * u[..., None, :]
    eye = torch.eye(3, dtype=x.dtype, device=x.device).expand(uut.shape)
    jac = rad * uut + tang * (eye - uut)
    return torch.where(outside, jac, eye)


def contract_gaussians(mean: Tensor, cov: Tensor) -> tuple[Tensor, Tensor]:
    """Linearized push-forward through the contraction: μ' = contract(μ), Σ' = J Σ Jᵀ with J at μ.

    ``cov`` is (..., 3, 3), or a diagonal (..., 3) when it has the same rank as ``mean``; the result is always full
    because J mixes the axes. First order is accurate while the Gaussian is small relative to ‖μ‖."""
    if cov.dim() == mean.dim():
        cov = torch.diag_embed(cov)
    jac = contract_jacobian(mean)
    return contract(mean), jac @ cov @ jac.transpose(-1, -2)


# ---------------------------------------------------------------------------------------------------------------------
# IPE basis (§1.7)
# ---------------------------------------------------------------------------------------------------------------------

def _icosahedron() -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """Vertices (12, 3) and the 20 faces of the regular icosahedron.

    Vertices are the cyclic permutations of (0, ±1, ±φ) with φ the golden ratio; faces are the vertex triples that
    are pairwise at the edge length (2), so nothing beyond φ is typed in."""
    phi = (1.0 + math.sqrt(5.0)) / 2.0
    verts = []
    for a, b in itertools.product((-1.0, 1.0), (-phi, phi)):
        base = (0.0, a, b)
        for k in range(3):
            verts.append(base[-k:] + base[:-k] if k else base)
    v = torch.tensor(verts, dtype=torch.float64)
    dist = torch.cdist(v, v)
    edge = dist[dist > 1e-9].min()
    close = (dist - edge).abs() < 1e-9
    faces = [f for f in itertools.combinations(range(len(verts)), 3)
             if close[f[0], f[1]] and close[f[1], f[2]] and close[f[0], f[2]]]
    return v, faces


def _tetrahedron() -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """Vertices (4, 3) and faces of the regular tetrahedron (alternate corners of the cube)."""
    v = torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64)
    return v, list(itertools.combinations(range(4), 3))


def _octahedron() -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """Vertices (6, 3) and the 8 faces of the regular octahedron (±e_i; one vertex per axis sign per face)."""
    v = torch.cat([torch.eye(3), -torch.eye(3)]).to(torch.float64)
    faces = [(i, 1 + j, 2 + k) for i, j, k in itertools.product((0, 3), (0, 3), (0, 3))]
    return v, faces


_POLYHEDRA: dict[str, Callable[[], tuple[torch.Tensor, list[tuple[int, int, int]]]]] = {
    "icosahedron": _icosahedron, "octahedron": _octahedron, "tetrahedron": _tetrahedron}


def geodesic_directions(polyhedron: str = "icosahedron", tessellation: int = 2,
                        remove_antipodes: bool = True) -> Tensor:
    """Unit directions (K, 3, float64) of a geodesic sphere: each face split with barycentric steps 1/tessellation,
    points projected to the unit sphere, duplicates (shared edges/vertices) removed.

    With ``remove_antipodes`` one direction per ±pair is kept (u and −u give the same projected variance and a
    sign-flipped mean, so both would be redundant features). icosahedron/2 gives 42 → 21 directions,
    octahedron/1 gives the 3 axes. The order is canonical (lexicographic), so the basis is reproducible."""
    verts, faces = _POLYHEDRA[polyhedron]()
    v = int(tessellation)
    if v < 1:
        raise ValueError("tessellation must be >= 1")
    bary = torch.tensor([(i, j, v - i - j) for i in range(v + 1) for j in range(v + 1 - i)],
                        dtype=torch.float64) / v
    pts = torch.cat([bary @ verts[list(f)] for f in faces])
    pts = pts / torch.linalg.norm(pts, dim=-1, keepdim=True)
    tol = 1e-9
    kept: list[Tensor] = []
    for p in pts:
        if remove_antipodes:
            nz = p[p.abs() > tol]
            if nz[0] < 0:  # canonical sign: first non-zero coordinate positive
                p = -p
        if not any(torch.allclose(p, q, atol=1e-7) for q in kept):
            kept.append(p)
    out = torch.stack(kept)
    out = torch.where(out.abs() < tol, torch.zeros_like(out), out)
    order = sorted(range(len(out)), key=lambda i: tuple(-round(c, 9) for c in out[i].tolist()))
    return out[order]


#: name -> (polyhedron, tessellation); "axes" is the cheap CPU basis (72 IPE features at 12 octaves),
#: "icosahedron" the paper's 21-direction basis (504 features).
IPE_BASES: dict[str, tuple[str, int]] = {"axes": ("octahedron", 1), "icosahedron": ("icosahedron", 2)}


def ipe_basis(name: str = "icosahedron", *, dtype: torch.dtype = torch.float32,
              device: torch.device | str | None = None) -> Tensor:
    """The registered IPE direction set as a (K, 3) tensor of unit rows (see :data:`IPE_BASES`)."""
    if name not in IPE_BASES:
        raise KeyError(f"unknown IPE basis {name!r}; known: {sorted(IPE_BASES)}")
    poly, tess = IPE_BASES[name]
    return geodesic_directions(poly, tess).to(dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------------------------------------
# (integrated) positional encoding (§1.7)
# ---------------------------------------------------------------------------------------------------------------------

def lift_gaussians(mean: Tensor, cov: Tensor, basis: Tensor) -> tuple[Tensor, Tensor]:
    """Project Gaussians onto the basis rows b_k: means b_kᵀμ and variances b_kᵀΣb_k, each (..., K).

    ``cov`` is full (..., 3, 3) or diagonal (..., 3) (same rank as ``mean``). Only the marginal variances are kept:
    IPE treats each projected coordinate independently."""
    mu = mean @ basis.transpose(0, 1)
    if cov.dim() == mean.dim():
        var = cov @ (basis ** 2).transpose(0, 1)
    else:
        var = torch.einsum("kj,...ji,ki->...k", basis, cov, basis)
    return mu, var


def integrated_pos_enc(mean: Tensor, var: Tensor, min_deg: int = 0, max_deg: int = 12) -> Tensor:
    """E[sin], E[cos] of 2^l·x for x ~ N(mean, var) per coordinate, l = min_deg … max_deg−1.

    E[sin(ωx)] = sin(ωμ)·exp(−½ω²σ²) (same for cos), so octave l is attenuated by exp(−½·4^l·σ²): frequencies
    finer than the footprint fade out. Layout (..., 2·L·K): [sin block, cos block], each ordered (l, k) with the
    coordinate k fastest. No 2π factor and no identity passthrough (as in the paper)."""
    scales = 2.0 ** torch.arange(min_deg, max_deg, dtype=mean.dtype, device=mean.device)
    x = (mean[..., None, :] * scales[:, None]).flatten(-2)
    v = (var[..., None, :] * (scales ** 2)[:, None]).flatten(-2)
    att = torch.exp(-0.5 * v)
    return torch.cat([torch.sin(x) * att, torch.cos(x) * att], -1)


def pos_enc(x: Tensor, min_deg: int = 0, max_deg: int = 4, append_identity: bool = True) -> Tensor:
    """Plain positional encoding [x?, sin(2^l x), cos(2^l x)] (view directions: deg 0…3 + x → 27 dims for 3D).

    Same (l, k) layout as :func:`integrated_pos_enc`, i.e. it equals IPE at zero variance (plus the identity)."""
    enc = integrated_pos_enc(x, torch.zeros_like(x), min_deg, max_deg)
    return torch.cat([x, enc], -1) if append_identity else enc


def ipe_features(mean: Tensor, cov: Tensor, basis: Tensor, min_deg: int = 0, max_deg: int = 12,
                 contract_first: bool = True) -> Tensor:
    """Full point encoding of the paper: (optionally) contract the Gaussians, lift onto ``basis``, then IPE."""
    if contract_first:
        mean, cov = contract_gaussians(mean, cov)
    mu, var = lift_gaussians(mean, cov, basis)
    return integrated_pos_enc(mu, var, min_deg, max_deg)
