"""Random covariances: the training distribution (report §2.2) and a fixed evaluation benchmark (§4.2).

Training draws eigenvalues 10^U(−12, 2) independently with Haar-random eigenvectors, so damping is exercised from
"no blur" to "flat" and in every orientation. The benchmark's matrices are not published with the paper, so
:func:`benchmark_covariances` makes a documented, bit-reproducible stand-in.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["haar_orthogonal", "random_spd", "random_variances", "CovariancePool", "benchmark_covariances",
           "BENCHMARK_VARIANCES"]

#: The isotropic benchmark variances of the paper (σ ≈ 10, 32, 102, 324 px on a 2048² grid).
BENCHMARK_VARIANCES: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)


def haar_orthogonal(n: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, dim, dim) Haar-distributed orthogonal matrices: QR of a Gaussian matrix with R's diagonal made positive
    (without that sign fix QR's output is not uniformly distributed)."""
    g = torch.randn(n, dim, dim, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    s = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    s = torch.where(s == 0, torch.ones_like(s), s)
    return q * s[:, None, :]


def random_spd(n: int, dim: int, generator: torch.Generator | None = None,
               log10_range: tuple[float, float] = (-12.0, 2.0), dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(n, dim, dim) symmetric positive-definite Σ = QΛQᵀ, λ_i = 10^U(log10_range) i.i.d., Q Haar-random.

    Built in float64 and symmetrised; note float32 cannot resolve eigenvalue ratios beyond ~1e7, so ask for
    float64 when the tiny eigenvalues themselves matter."""
    lo, hi = log10_range
    u = torch.rand(n, dim, generator=generator, dtype=torch.float64)
    lam = 10.0 ** (lo + (hi - lo) * u)
    q = haar_orthogonal(n, dim, generator)
    s = (q * lam[:, None, :]) @ q.transpose(-1, -2)
    return (0.5 * (s + s.transpose(-1, -2))).to(dtype)


def random_variances(n: int, generator: torch.Generator | None = None,
                     log10_range: tuple[float, float] = (-12.0, 2.0)) -> torch.Tensor:
    """(n,) isotropic variances 10^U(log10_range): the fresh per-sample draw of isotropic-only fields (Ackley)."""
    lo, hi = log10_range
    return 10.0 ** (lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)).float()


class CovariancePool:
    """A pool of ``size`` random SPD matrices drawn once (seeded); :meth:`sample` picks entries with replacement.

    Mirrors the reference's 10⁷-entry pool: drawing fresh Haar rotations every step would dominate small batches."""

    def __init__(self, size: int, dim: int, seed: int = 0, log10_range: tuple[float, float] = (-12.0, 2.0),
                 chunk: int = 1 << 20):
        g = torch.Generator().manual_seed(int(seed))
        self.dim = dim
        self.pool = torch.cat([random_spd(min(chunk, size - s), dim, g, log10_range)
                               for s in range(0, size, chunk)]) if size > 0 else torch.empty(0, dim, dim)
        if self.pool.shape[0] == 0:
            raise ValueError("CovariancePool: size must be ≥ 1")

    def __len__(self) -> int:
        return self.pool.shape[0]

    def sample(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(batch, dim, dim) pool entries chosen uniformly with replacement."""
        idx = torch.randint(0, self.pool.shape[0], (int(batch),), generator=generator)
        return self.pool[idx]


def benchmark_covariances(dim: int = 2, count: int = 100, seed: int = 2024) -> torch.Tensor:
    """A FIXED set of ``count`` (dim, dim) float64 covariances for the anisotropic benchmark.

    How they are made: numpy's PCG64(seed) draws, per matrix, dim log10-eigenvalues U(−4, −1) (the isotropic
    benchmark's range 1e-4…1e-1) and a dim×dim standard-normal matrix whose classical Gram–Schmidt
    orthonormalisation (≡ QR with positive diag(R), hence Haar) gives the eigenvectors; Σ = Σ_i λ_i q_i q_iᵀ.
    Only elementwise numpy arithmetic is used (no BLAS/LAPACK), so the values are identical on every platform and
    independent of the torch version."""
    rng = np.random.Generator(np.random.PCG64(seed))
    out = np.empty((count, dim, dim))
    for k in range(count):
        lam = 10.0 ** rng.uniform(-4.0, -1.0, size=dim)
        g = rng.standard_normal((dim, dim))
        cols: list[np.ndarray] = []
        for j in range(dim):
            v = g[:, j].copy()
            for q in cols:
                v = v - float(np.sum(q * v)) * q
            cols.append(v / np.sqrt(float(np.sum(v * v))))
        s = np.zeros((dim, dim))
        for lam_i, q in zip(lam, cols):
            s = s + lam_i * (q[:, None] * q[None, :])
        out[k] = 0.5 * (s + s.T)
    return torch.from_numpy(out)
