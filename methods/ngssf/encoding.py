"""Random Fourier features with stratified frequencies, and the NGSSF per-frequency damping.

The frequency vectors A (m, d) are in cycles per unit. Their directions and lengths are stratified: scrambled Sobol
points in the cube are carried into the unit ball by a volume-preserving map (Griepentrog et al. 2008), then each
point's radius r is warped so that the length |a| = F⁻¹_{|N(0, σ²_a)|}(r²) follows a half-normal (exactly in 2D,
where r² is uniform; the reference uses r² in 3D too, where r³ is the uniform one, and so do we).
"""
from __future__ import annotations

import math

import torch
from torch import nn

_MAX_SOBOL_TRIES = 64


def _safe(den: torch.Tensor) -> torch.Tensor:
    """Replace exact zeros so the branch of a ``torch.where`` that is *not* taken stays finite (and its grads)."""
    return torch.where(den == 0, torch.ones_like(den), den)


def square_to_disk(p: torch.Tensor) -> torch.Tensor:
    """Griepentrog's 2D map [-1,1]² → unit disk, (..., 2) → (..., 2); radius = max(|ξ|, |η|), area scaled by π/4."""
    xi, eta = p[..., 0], p[..., 1]
    first = eta * eta <= xi * xi
    big = torch.where(first, xi, eta)
    small = torch.where(first, eta, xi)
    ang = (math.pi / 4.0) * small / _safe(big)
    c, s = big * torch.cos(ang), big * torch.sin(ang)
    # |η| ≤ |ξ|: (ξ cos(πη/4ξ), ξ sin(πη/4ξ));  otherwise (η sin(πξ/4η), η cos(πξ/4η)).
    return torch.stack([torch.where(first, c, s), torch.where(first, s, c)], dim=-1)


def cube_to_ball(p: torch.Tensor) -> torch.Tensor:
    """Volume-preserving map of points in [-1,1]^d to the unit ball for d = 2 or 3 (vectorised closed forms).

    3D: the first two coordinates go through :func:`square_to_disk` (cube → cylinder), then the cylinder is
    folded onto the ball; the radius is the cube's ∞-norm, so uniform cube points give uniform ball points."""
    d = p.shape[-1]
    if d == 2:
        return square_to_disk(p)
    if d != 3:
        raise ValueError(f"cube_to_ball has closed forms for d = 2 or 3 only, got d = {d}")
    xi = square_to_disk(p[..., :2])
    eta = p[..., 2]
    n2 = (xi * xi).sum(-1)
    first = eta * eta <= n2
    f1 = torch.sqrt((1.0 - 4.0 * eta * eta / (9.0 * _safe(n2))).clamp_min(0.0))
    f2 = torch.sqrt((2.0 / 3.0 - n2 / (9.0 * _safe(eta * eta))).clamp_min(0.0))
    e1 = 2.0 * eta / 3.0
    e2 = eta - n2 / (3.0 * _safe(eta))
    scale = torch.where(first, f1, f2)
    return torch.cat([xi * scale[..., None], torch.where(first, e1, e2)[..., None]], dim=-1)


def _sobol(d: int, n: int, seed: int) -> torch.Tensor:
    """n scrambled Sobol points in [-1,1]^d (float64), none exactly at the origin (its direction is undefined)."""
    for attempt in range(_MAX_SOBOL_TRIES):
        eng = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed + 7919 * attempt)
        pts = eng.draw(n, dtype=torch.float64) * 2.0 - 1.0
        if not bool((pts == 0).all(dim=-1).any()):
            return pts
    raise RuntimeError("could not draw Sobol points without an exact zero")  # pragma: no cover


def ball_points(d: int, n: int, seed: int = 0) -> torch.Tensor:
    """n stratified points in the unit ball of R^d (float64): cube-to-ball for d ≤ 3, rejection for d > 3."""
    if d < 1:
        raise ValueError(f"dimension must be ≥ 1, got {d}")
    if d == 1:
        return _sobol(1, n, seed)
    if d <= 3:
        return cube_to_ball(_sobol(d, n, seed))
    kept: list[torch.Tensor] = []
    count, attempt = 0, 0
    while count < n:  # keep the first n Sobol points inside the ball, drawing more if 2^(d-1) per point fell short
        pts = _sobol(d, n * 2 ** (d - 1), seed + 104729 * attempt)
        inside = pts[pts.norm(dim=-1) < 1.0]
        kept.append(inside)
        count += inside.shape[0]
        attempt += 1
    return torch.cat(kept)[:n]


def sample_frequencies(d: int, m: int = 512, freq_var: float = 2000.0, seed: int = 0) -> torch.Tensor:
    """(m, d) frequency vectors in cycles per unit: direction p/|p|, length HalfNormal(√freq_var).icdf(|p|²)."""
    if m < 1 or freq_var <= 0:
        raise ValueError(f"need m ≥ 1 and freq_var > 0, got m = {m}, freq_var = {freq_var}")
    p = ball_points(d, m, seed)
    r = p.norm(dim=-1, keepdim=True)
    u = (r * r).clamp(max=1.0 - 1e-12)  # r = 1 exactly would give an infinite length
    length = torch.distributions.HalfNormal(torch.tensor(math.sqrt(freq_var), dtype=torch.float64)).icdf(u)
    return (p / r * length).to(torch.float32)


class FourierEncoding(nn.Module):
    """γ(x) = [cos(2πAx) | sin(2πAx)], (B, d) → (B, 2m). A is a buffer, so it travels with the state dict."""

    A: torch.Tensor

    def __init__(self, dim: int, frequencies: int = 512, freq_var: float = 2000.0, seed: int = 0):
        super().__init__()
        self.dim, self.frequencies, self.freq_var = dim, frequencies, freq_var
        self.register_buffer("A", sample_frequencies(dim, frequencies, freq_var, seed))

    @property
    def out_features(self) -> int:
        return 2 * self.frequencies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phase = x @ (2.0 * math.pi * self.A).t()
        if phase.requires_grad:  # e.g. gradients w.r.t. x (SDF normals): out= variants are not differentiable
            return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)
        m = self.frequencies
        out = phase.new_empty(phase.shape[0], 2 * m)  # writing in place avoids two temporaries and a copy
        torch.cos(phase, out=out[:, :m])
        torch.sin(phase, out=out[:, m:])
        return out


# Weights below this are set to exactly 0: exp(−√q) for the large training covariances (eigenvalues up to 100) would
# otherwise produce float32 denormals, and denormal inputs made the first layer's matmuls ~15x slower on x86
# (measured: 427 ms vs 25 ms for one 8192×1024 backward GEMM). 1e-30 is far below anything the 1-Lipschitz MLP
# can resolve, so the field's values do not change.
DAMPING_FLOOR = 1e-30


def modulation(A: torch.Tensor, cov: torch.Tensor | None) -> torch.Tensor | None:
    """Per-frequency damping w_i = exp(−sqrt(max(a_iᵀ Σ a_i, 0))), (B, m); ``None`` when ``cov`` is None.

    This is NGSSF's Cauchy-like damping (not the Gaussian exp(−2π² aᵀΣa)); calibration maps it to true variances.
    The quadratic forms of all frequencies come from one (B, d²) @ (d², m) product, no (B, d, m) intermediate."""
    if cov is None:
        return None
    d = A.shape[1]
    outer = (A[:, :, None] * A[:, None, :]).reshape(A.shape[0], d * d)  # a_i a_iᵀ flattened, (m, d²)
    q = cov.reshape(cov.shape[0], d * d).to(A.dtype) @ outer.t()
    if q.requires_grad:
        w = torch.exp(-torch.sqrt(q.clamp_min(0.0)))
        return w.masked_fill(w < DAMPING_FLOOR, 0.0)
    w = q.clamp_min_(0.0).sqrt_().neg_().exp_()
    return w.masked_fill_(w < DAMPING_FLOOR, 0.0)
