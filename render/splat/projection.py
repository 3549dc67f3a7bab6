"""EWA projection of 3D Gaussians to screen-space ellipses, exactly as 3DGS does it (research notes §1.4, §2.2).

Kept as its own stage, with every intermediate returned, so a CUDA backend can be checked against it piece by
piece (2D means, covariances, conics, radii, tile rectangles) before comparing whole images.

Conventions (see :mod:`render.camera`): OpenCV world-to-camera ``viewmat``, pixel centres at +0.5, and
u = fx·x/z + cx. Everything here is differentiable through torch autograd except the integer outputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# 3DGS constants: near-plane cull distance, frustum clamp factor for the Jacobian, radius = 3σ, and the floor on
# the eigenvalue discriminant used for the radius.
NEAR_PLANE = 0.2
FRUSTUM_CLAMP = 1.3
RADIUS_SIGMAS = 3.0
DISCRIMINANT_FLOOR = 0.1
# Largest pixel radius we represent; keeps float->int conversions defined for absurd inputs.
_MAX_RADIUS = 2**24


@dataclass(frozen=True)
class ScreenFilter:
    """A screen-space low-pass applied to each projected Gaussian.

    ``dilation`` is added to both diagonal entries of the 2D covariance (pixels²). With ``compensate`` the
    opacity is scaled by sqrt(det Σ / det(Σ + dilation·I)) so the splat keeps its integrated mass (Mip-Splatting's
    2D Mip filter); without it small splats get brighter as they shrink below a pixel (3DGS).
    """

    name: str
    dilation: float
    compensate: bool
    description: str

    def apply(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
              opacity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Filtered covariance entries (a', b, c') and opacity for raw entries Σ = [[a, b], [b, c]]."""
        k = self.dilation
        a1, c1 = a + k, c + k
        if not self.compensate:
            return a1, b, c1, opacity
        # Mip-Splatting's clamps verbatim: both determinants floored at 1e-6, and a degenerate one zeroes the splat.
        det0_raw = a * c - b * b
        det1_raw = a1 * c1 - b * b
        det0 = torch.clamp_min(det0_raw, 1e-6)
        det1 = torch.clamp_min(det1_raw, 1e-6)
        coef = torch.sqrt(det0 / (det1 + 1e-6) + 1e-6)
        coef = torch.where((det0_raw <= 1e-6) | (det1_raw <= 1e-6), torch.zeros_like(coef), coef)
        return a1, b, c1, opacity * coef


FILTERS: dict[str, ScreenFilter] = {f.name: f for f in (
    ScreenFilter("3dgs", 0.3, False, "3DGS dilation: +0.3 px² on the 2D covariance, opacity unchanged"),
    ScreenFilter("mip", 0.1, True, "Mip-Splatting 2D Mip filter: +0.1 px² with opacity compensation"),
    ScreenFilter("none", 0.0, False, "no screen-space filter (aliases when splats are smaller than a pixel)"),
)}


@dataclass
class Projection:
    """Per-Gaussian screen-space quantities; rows with ``radii == 0`` are culled and must not be drawn."""

    means2d: torch.Tensor     # (N, 2) pixels; zero for Gaussians behind the near plane
    depths: torch.Tensor      # (N,) camera z
    cov2d: torch.Tensor       # (N, 3) filtered 2D covariance (a, b, c) = [[a, b], [b, c]]
    cov2d_raw: torch.Tensor   # (N, 3) the same before the screen filter (J W Σ Wᵀ Jᵀ)
    conics: torch.Tensor      # (N, 3) inverse of the filtered covariance, (a', b', c')
    opacities: torch.Tensor   # (N,) opacity after the filter's compensation
    radii: torch.Tensor       # (N,) int32 pixel radius
    tile_min: torch.Tensor    # (N, 2) int64 first touched tile (x, y)
    tile_max: torch.Tensor    # (N, 2) int64 one past the last touched tile (x, y)


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """(N, 4) wxyz quaternions, normalised here, to (N, 3, 3) rotation matrices."""
    q = quats / torch.linalg.vector_norm(quats, dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
    return torch.stack(rows, dim=-1).reshape(*quats.shape[:-1], 3, 3)


def rotmat_to_quat(R: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) rotation matrices -> (N, 4) unit wxyz quaternions with w ≥ 0, the inverse of
    :func:`quat_to_rotmat` (branch on the largest diagonal term so no division by a tiny number)."""
    R = R.to(torch.float64)
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    tr = m00 + m11 + m22
    a, b, c = R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]  # 4w·(x,y,z)
    d, e, f = R[..., 0, 1] + R[..., 1, 0], R[..., 0, 2] + R[..., 2, 0], R[..., 1, 2] + R[..., 2, 1]  # 4xy, 4xz, 4yz
    # Four candidate solutions (each 4·pivot·q), each stable when its pivot is the largest.
    cands = torch.stack([
        torch.stack([1 + tr, a, b, c], -1),
        torch.stack([a, 1 + m00 - m11 - m22, d, e], -1),
        torch.stack([b, d, 1 - m00 + m11 - m22, f], -1),
        torch.stack([c, e, f, 1 - m00 - m11 + m22], -1),
    ], dim=-2)
    pivot = torch.stack([tr, m00, m11, m22], -1).argmax(-1)
    q = torch.gather(cands, -2, pivot[..., None, None].expand(pivot.shape + (1, 4))).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def covariance3d(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Σ = R S Sᵀ Rᵀ (N, 3, 3) from wxyz quaternions and activated scales."""
    m = quat_to_rotmat(quats) * scales[..., None, :]
    return m @ m.transpose(-1, -2)


def camera_position(viewmat: torch.Tensor) -> torch.Tensor:
    """World-space camera centre −Rᵀt of a world-to-camera matrix (used for SH view directions)."""
    rot, t = viewmat[:3, :3], viewmat[:3, 3]
    return -(rot.transpose(0, 1) @ t)


def project_gaussians(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                      viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, *,
                      filter: ScreenFilter | str = "3dgs", near: float = NEAR_PLANE,
                      tile_size: int = 16) -> Projection:
    """EWA-project Gaussians into a ``width``×``height`` image and bin them to ``tile_size`` tiles.

    Steps follow 3DGS: near cull (z ≤ ``near``); clamp x/z, y/z to the frustum widened by 30% before building the
    Jacobian (the clamped coordinate gets no gradient, as in the 3DGS backward pass); Σ₂D = J W Σ Wᵀ Jᵀ; screen
    filter; conic; radius = ceil(3·sqrt(λmax)); tiles touched by the square mean ± radius.
    """
    filt = FILTERS[filter] if isinstance(filter, str) else filter
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    rot, trans = viewmat[:3, :3], viewmat[:3, 3]
    p = means @ rot.transpose(0, 1) + trans
    x, y, z = p.unbind(-1)
    in_front = z > near
    zs = torch.where(in_front, z, torch.ones_like(z))  # culled rows get harmless values (and no gradient)

    # Frustum clamp. The limits are ±1.3·tan(fov/2) when the principal point is centred (3DGS); an off-centre
    # principal point shifts them so the clamp never bites on a Gaussian that is actually on screen.
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    slack = FRUSTUM_CLAMP - 1.0
    lim_xp, lim_xn = (width - cx) / fx + slack * tan_x, cx / fx + slack * tan_x
    lim_yp, lim_yn = (height - cy) / fy + slack * tan_y, cy / fy + slack * tan_y
    rx, ry = x / zs, y / zs
    tx = torch.where((rx > lim_xp) | (rx < -lim_xn), torch.clamp(rx, -lim_xn, lim_xp).detach() * zs.detach(), x)
    ty = torch.where((ry > lim_yp) | (ry < -lim_yn), torch.clamp(ry, -lim_yn, lim_yp).detach() * zs.detach(), y)

    zero = torch.zeros_like(zs)
    jac = torch.stack([fx / zs, zero, -fx * tx / (zs * zs),
                       zero, fy / zs, -fy * ty / (zs * zs)], dim=-1).reshape(-1, 2, 3)
    tmat = jac @ rot  # (N, 2, 3): camera Jacobian times the world-to-camera rotation
    cov2 = tmat @ covariance3d(quats, scales) @ tmat.transpose(-1, -2)
    a, b, c = cov2[:, 0, 0], cov2[:, 0, 1], cov2[:, 1, 1]
    af, bf, cf, opac = filt.apply(a, b, c, opacities)

    det = af * cf - bf * bf
    ok = in_front & (det > 0)
    det_s = torch.where(ok, det, torch.ones_like(det))
    conics = torch.stack([cf / det_s, -bf / det_s, af / det_s], dim=-1)

    means2d = torch.stack([fx * x / zs + cx, fy * y / zs + cy], dim=-1)
    means2d = torch.where(in_front[:, None], means2d, torch.zeros_like(means2d))

    with torch.no_grad():
        mid = 0.5 * (af + cf)
        lam = mid + torch.sqrt(torch.clamp_min(mid * mid - det, DISCRIMINANT_FLOOR))
        radius = torch.ceil(RADIUS_SIGMAS * torch.sqrt(torch.clamp_min(lam, 0.0)))
        radius = torch.where(ok & torch.isfinite(radius), radius, torch.zeros_like(radius)).clamp(0, _MAX_RADIUS)
        grid = torch.tensor([(width + tile_size - 1) // tile_size, (height + tile_size - 1) // tile_size],
                            dtype=means2d.dtype, device=means2d.device)
        m2 = means2d.detach()
        r = radius[:, None]
        lo = torch.floor((m2 - r) / tile_size)
        hi = torch.ceil((m2 + r) / tile_size)
        lo = torch.minimum(torch.clamp_min(lo, 0.0), grid)
        hi = torch.minimum(torch.clamp_min(hi, 0.0), grid)
        lo = torch.nan_to_num(lo, nan=0.0).to(torch.int64)
        hi = torch.nan_to_num(hi, nan=0.0).to(torch.int64)
        visible = (radius > 0) & ((hi - lo) > 0).all(dim=-1)
        radii = torch.where(visible, radius, torch.zeros_like(radius)).to(torch.int32)
        lo = torch.where(visible[:, None], lo, torch.zeros_like(lo))
        hi = torch.where(visible[:, None], hi, torch.zeros_like(hi))

    return Projection(means2d=means2d, depths=z, cov2d=torch.stack([af, bf, cf], dim=-1),
                      cov2d_raw=torch.stack([a, b, c], dim=-1), conics=conics, opacities=opac, radii=radii,
                      tile_min=lo, tile_max=hi)
