"""Real spherical harmonics up to degree 3, in the 3DGS coefficient order and sign convention.

Splat colours are stored as SH coefficients so that a Gaussian can look different from different sides; the
renderer evaluates them along the viewing direction. The basis order and signs must match the ones in trained
3DGS/Mip-Splatting .ply files, or imported scenes would come out with the wrong view-dependent tint.
"""
from __future__ import annotations

import torch

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
         1.445305721320277, -0.5900435899266435)
MAX_SH_DEGREE = 3


def num_sh_bases(degree: int) -> int:
    """Coefficients per channel for a given degree: (d + 1)²."""
    return (degree + 1) ** 2


def sh_basis(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """The (…, (degree+1)²) real SH basis at unit directions ``dirs`` (…, 3), in 3DGS order.

    Built as a list of columns so autograd sees plain arithmetic (the view direction depends on the means).
    """
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise ValueError(f"sh_degree must be in 0..{MAX_SH_DEGREE}, got {degree}")
    x, y, z = dirs.unbind(-1)
    cols = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        cols += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        cols += [SH_C2[0] * x * y, SH_C2[1] * y * z, SH_C2[2] * (2.0 * zz - xx - yy), SH_C2[3] * x * z,
                 SH_C2[4] * (xx - yy)]
    if degree >= 3:
        cols += [SH_C3[0] * y * (3.0 * xx - yy), SH_C3[1] * x * y * z, SH_C3[2] * y * (4.0 * zz - xx - yy),
                 SH_C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy), SH_C3[4] * x * (4.0 * zz - xx - yy),
                 SH_C3[5] * z * (xx - yy), SH_C3[6] * x * (xx - 3.0 * yy)]
    return torch.stack(cols, dim=-1)


def eval_sh(coeffs: torch.Tensor, dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """Raw SH value (N, C) from coefficients (N, K, C) along unit ``dirs`` (N, 3), using bands ≤ ``degree``.

    This is the value *before* the 3DGS "+0.5 then clamp ≥ 0" activation (see :func:`sh_to_rgb`).
    """
    k = num_sh_bases(degree)
    if coeffs.shape[-2] < k:
        raise ValueError(f"degree {degree} needs {k} SH coefficients per channel, got {coeffs.shape[-2]}")
    basis = sh_basis(dirs, degree)
    return torch.einsum("nk,nkc->nc", basis, coeffs[:, :k])


def sh_to_rgb(coeffs: torch.Tensor, dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """3DGS colour activation: SH value + 0.5, clamped at 0 (the clamp also zeroes the gradient there)."""
    return torch.clamp_min(eval_sh(coeffs, dirs, degree) + 0.5, 0.0)
