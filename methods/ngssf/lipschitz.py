"""A 1-Lipschitz ReLU MLP: hidden layers W = U·diag(sigmoid(s))·Vᵀ with orthonormal U, V from matrix
exponentials of skew generators (so ‖W‖₂ < 1 by construction, no power iteration), and an output layer whose rows
are scaled to norm ≤ 1 (each output channel is then 1-Lipschitz in the input).

Why it matters for NGSSF: damping an input feature cannot be undone by a large weight, so damped features must
produce smooth outputs.

Speed: all generators of one size are exponentiated in one batched ``torch.matrix_exp`` call, a non-square layer's
big factor needs only a 2k×2k exponential (Stiefel trick, :func:`factor_plan`), and the built weights are cached
while no gradient is needed.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

_B_INIT_STD = 1e-3  # the lower block of a Stiefel generator starts tiny, not 0: QR's backward is undefined at B = 0


def skew_from_upper(P: torch.Tensor) -> torch.Tensor:
    """P − Pᵀ using only the strict upper triangle of P (its diagonal and lower triangle are ignored)."""
    U = P.triu(1)
    return U - U.transpose(-1, -2)


class FactorPlan(NamedTuple):
    """What one orthonormal factor needs: a square generator to exponentiate and how to turn expm(gen) into
    the (n, k) factor. Splitting it this way lets :class:`LipschitzMLP` batch all exponentials of one size."""

    generator: torch.Tensor
    finish: Callable[[torch.Tensor], torch.Tensor]


def factor_plan(P: torch.Tensor) -> FactorPlan:
    """Plan for the first k columns of expm(S), S = [[A, −Bᵀ], [B, 0]], from a parameter P of shape (n, k).

    A = skew(strict upper triangle of P[:k]), B = P[k:]. Every point of the Stiefel manifold St(n, k) is reached
    this way. For n > 2k, with the reduced QR B = Q_B R_B and D = blockdiag(I_k, Q_B) (orthonormal columns),
    S = D S' Dᵀ with S' = [[A, −R_Bᵀ], [R_B, 0]], so expm(S)[:, :k] = D·expm(S')[:, :k] exactly: only a 2k×2k
    exponential instead of an n×n one."""
    n, k = P.shape
    A = skew_from_upper(P[:k])
    if n == k:
        return FactorPlan(A, lambda E: E)
    B = P[k:]
    if n <= 2 * k:  # no saving from the QR trick: exponentiate the n×n generator directly
        S = torch.cat([torch.cat([A, -B.t()], 1), torch.cat([B, B.new_zeros(n - k, n - k)], 1)], 0)
        return FactorPlan(S, lambda E: E[:, :k])
    Q, R = torch.linalg.qr(B, mode="reduced")
    S = torch.cat([torch.cat([A, -R.t()], 1), torch.cat([R, R.new_zeros(k, k)], 1)], 0)
    return FactorPlan(S, lambda E: torch.cat([E[:k, :k], Q @ E[k:, :k]], 0))


def naive_factor(P: torch.Tensor) -> torch.Tensor:
    """expm(S)[:, :k] with the full n×n exponential: the reference :func:`factor_plan` is checked against."""
    n, k = P.shape
    S = P.new_zeros(n, n)
    S[:k, :k] = skew_from_upper(P[:k])
    S[k:, :k] = P[k:]
    S[:k, k:] = -P[k:].t()
    return torch.matrix_exp(S)[:, :k]


def _init_generator(n: int, k: int, g: torch.Generator | None) -> torch.Tensor:
    """Zero except (0,1), (2,3), … ~ U(−π, π) (block 2×2 rotations) and a tiny random lower block for n > k."""
    P = torch.zeros(n, k)
    idx = torch.arange(0, k - 1, 2)
    P[idx, idx + 1] = torch.empty(len(idx)).uniform_(-math.pi, math.pi, generator=g)
    if n > k:
        P[k:] = torch.randn(n - k, k, generator=g) * _B_INIT_STD
    return P


class SpectralLimLinear(nn.Module):
    """Linear layer W = U·diag(sigmoid(s))·Vᵀ + b, spectral norm < 1 exactly.

    U (out, k) and V (in, k), k = min(in, out), are the first k columns of matrix exponentials of skew generators
    stored in ``gen_u`` (out, k) and ``gen_v`` (in, k) (see :func:`factor_plan`)."""

    def __init__(self, in_features: int, out_features: int, generator: torch.Generator | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        k = min(in_features, out_features)
        self.gen_u = nn.Parameter(_init_generator(out_features, k, generator))
        self.gen_v = nn.Parameter(_init_generator(in_features, k, generator))
        self.sv_logit = nn.Parameter(torch.empty(k).uniform_(-5.0, 5.0, generator=generator))
        bound = 1.0 / math.sqrt(in_features)
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound, generator=generator))

    def plans(self) -> list[FactorPlan]:
        """The two factor plans (U, then V) for batched exponentiation."""
        return [factor_plan(self.gen_u), factor_plan(self.gen_v)]

    def weight_from(self, plans: list[FactorPlan], exps: list[torch.Tensor]) -> torch.Tensor:
        """(out, in) weight from the exponentials of :meth:`plans`' generators."""
        U, V = plans[0].finish(exps[0]), plans[1].finish(exps[1])
        return (U * torch.sigmoid(self.sv_logit)) @ V.t()

    def weight(self) -> torch.Tensor:
        plans = self.plans()
        return self.weight_from(plans, [torch.matrix_exp(p.generator) for p in plans])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.bias)


class NormalizedRowsLinear(nn.Module):
    """Output layer whose rows are rescaled by min(1, 1/‖row‖): each output channel is 1-Lipschitz."""

    def __init__(self, in_features: int, out_features: int, generator: torch.Generator | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)  # = nn.Linear's default kaiming_uniform(a=√5) bound, and its bias
        self.weight_raw = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound,
                                                                                       generator=generator))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound, generator=generator))

    def weight(self) -> torch.Tensor:
        return self.weight_raw / self.weight_raw.norm(dim=1, keepdim=True).clamp_min(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.bias)


class LipschitzMLP(nn.Module):
    """``layers`` × [SpectralLimLinear + ReLU], then NormalizedRowsLinear; 1-Lipschitz per output channel.

    Weights are built with one batched ``matrix_exp`` per generator size. When no gradient is needed they are
    cached and rebuilt only if a parameter changed (its identity, storage, dtype or autograd version counter —
    optimizer steps, ``load_state_dict`` and any in-place op on a parameter bump the latter). Edits through
    ``param.data`` bypass the version counter: call :meth:`invalidate_cache` after those."""

    def __init__(self, in_dim: int, hidden: int, layers: int, out_dim: int,
                 generator: torch.Generator | None = None):
        super().__init__()
        if layers < 1:
            raise ValueError(f"LipschitzMLP needs at least one hidden layer, got {layers}")
        self.hidden = nn.ModuleList([SpectralLimLinear(in_dim if i == 0 else hidden, hidden, generator)
                                     for i in range(layers)])
        self.out = NormalizedRowsLinear(hidden, out_dim, generator)
        self._cache: tuple[tuple, list[tuple[torch.Tensor, torch.Tensor]]] | None = None
        self.builds = 0  # how many times the weights were built (lets tests see cache hits)

    def invalidate_cache(self) -> None:
        self._cache = None

    def train(self, mode: bool = True) -> "LipschitzMLP":
        self.invalidate_cache()
        return super().train(mode)

    def _cache_key(self) -> tuple:
        return tuple((id(p), p.data_ptr(), p._version, p.dtype, p.device) for p in self.parameters())

    def _build(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        self.builds += 1
        plans = [layer.plans() for layer in self.hidden]
        flat = [p for pl in plans for p in pl]
        by_size: dict[int, list[int]] = {}
        for i, p in enumerate(flat):
            by_size.setdefault(p.generator.shape[0], []).append(i)
        exps: list[torch.Tensor | None] = [None] * len(flat)
        for idx in by_size.values():
            E = torch.matrix_exp(torch.stack([flat[i].generator for i in idx]))
            for j, i in enumerate(idx):
                exps[i] = E[j]
        out = []
        for li, layer in enumerate(self.hidden):
            out.append((layer.weight_from(plans[li], exps[2 * li:2 * li + 2]), layer.bias))
        out.append((self.out.weight(), self.out.bias))
        return out

    def weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """[(W, b)] of every layer, hidden first; cached when no gradient can flow to the parameters."""
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()):
            return self._build()
        key = self._cache_key()
        if self._cache is None or self._cache[0] != key:
            with torch.inference_mode(False), torch.no_grad():  # never cache inference tensors
                built = [(w.detach(), b.detach()) for w, b in self._build()]
            self._cache = (key, built)
        return self._cache[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ws = self.weights()
        for W, b in ws[:-1]:
            x = torch.relu_(F.linear(x, W, b))  # in place is safe: linear's backward does not need its output
        W, b = ws[-1]
        return F.linear(x, W, b)
