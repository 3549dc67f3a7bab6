"""Mip-NeRF 360 losses (report §2): Charbonnier reconstruction, proposal (online distillation), distortion.

Histograms are (edges (..., m+1), weights (..., m)) in normalized s-space, weights summing to 1 per ray
(see :func:`methods.nerf360.sampling.volume_weights`).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["CHARB_EPS", "charbonnier", "outer_measure", "proposal_loss_per_interval", "proposal_loss",
           "interlevel_loss", "distortion_per_ray", "distortion_loss"]

Tensor = torch.Tensor

#: Charbonnier padding of the 360 preset (``charb_padding``).
CHARB_EPS: float = 1e-3


def charbonnier(pred: Tensor, target: Tensor, eps: float = CHARB_EPS) -> Tensor:
    """mean(sqrt((pred − target)² + eps²)) over rays and channels: L1-like for outliers, smooth at 0.

    Applied to the final (NeRF) level only; proposal levels have no colour (§9)."""
    return torch.sqrt((pred - target) ** 2 + eps ** 2).mean()


def _searchsorted(sorted_seq: Tensor, values: Tensor, right: bool) -> Tensor:
    lead = torch.broadcast_shapes(sorted_seq.shape[:-1], values.shape[:-1])
    a = sorted_seq.expand(*lead, sorted_seq.shape[-1]).reshape(-1, sorted_seq.shape[-1]).contiguous()
    v = values.expand(*lead, values.shape[-1]).reshape(-1, values.shape[-1]).contiguous()
    return torch.searchsorted(a, v, right=right).reshape(*lead, values.shape[-1])


def outer_measure(query_edges: Tensor, ref_edges: Tensor, ref_weights: Tensor) -> Tensor:
    """For every query interval, the total reference weight of the reference intervals overlapping it (..., n).

    It is the largest mass that any distribution with the reference's per-bin masses could put inside the query
    interval, hence the bound the proposal must respect. Overlap means positive length; computed in
    O(n log m) as a difference of the reference's cumulative weights at searchsorted positions."""
    lead = torch.broadcast_shapes(query_edges.shape[:-1], ref_edges.shape[:-1], ref_weights.shape[:-1])
    cum = torch.cat([torch.zeros_like(ref_weights[..., :1]), torch.cumsum(ref_weights, -1)], -1)
    cum = cum.expand(*lead, cum.shape[-1])
    a, b = query_edges[..., :-1], query_edges[..., 1:]
    # reference interval j = [ŝ_j, ŝ_{j+1}) overlaps [a, b) iff ŝ_{j+1} > a and ŝ_j < b
    first = _searchsorted(ref_edges[..., 1:], a, right=True)
    last = _searchsorted(ref_edges[..., :-1], b, right=False) - 1
    upper = torch.gather(cum, -1, (last + 1).clamp(0, cum.shape[-1] - 1))
    lower = torch.gather(cum, -1, first.clamp(0, cum.shape[-1] - 1))
    return (upper - lower).clamp_min(0)


def proposal_loss_per_interval(nerf_edges: Tensor, nerf_weights: Tensor, prop_edges: Tensor, prop_weights: Tensor,
                               eps: float | None = None) -> Tensor:
    """ℓ_i = max(0, w_i − bound_i)² / (w_i + eps) per NeRF interval (..., n), bound = outer measure of the proposal.

    One-sided: only a proposal that *under*-covers the NeRF mass is penalized, so it learns an upper envelope and
    the resampler never misses surfaces. The NeRF side is detached (this loss must not shape the NeRF); the 1/w
    scaling keeps the gradient from vanishing where the bound is 0. ``eps`` defaults to the dtype's epsilon."""
    w = nerf_weights.detach()
    if eps is None:
        eps = torch.finfo(w.dtype).eps
    bound = outer_measure(nerf_edges.detach(), prop_edges.detach(), prop_weights)
    return torch.clamp_min(w - bound, 0) ** 2 / (w + eps)


def proposal_loss(nerf_edges: Tensor, nerf_weights: Tensor, prop_edges: Tensor, prop_weights: Tensor,
                  eps: float | None = None) -> Tensor:
    """Scalar proposal loss of one proposal level: the mean of :func:`proposal_loss_per_interval` over rays and
    intervals (the official code's reduction of the paper's per-ray sum)."""
    return proposal_loss_per_interval(nerf_edges, nerf_weights, prop_edges, prop_weights, eps).mean()


def interlevel_loss(nerf_edges: Tensor, nerf_weights: Tensor, proposals: Sequence[tuple[Tensor, Tensor]],
                    eps: float | None = None) -> Tensor:
    """Σ over proposal levels (edges, weights) of :func:`proposal_loss`: the proposal MLP's only training signal."""
    total = nerf_weights.new_zeros(())
    for edges, weights in proposals:
        total = total + proposal_loss(nerf_edges, nerf_weights, edges, weights, eps)
    return total


def distortion_per_ray(s_edges: Tensor, weights: Tensor) -> Tensor:
    """Distortion ∬ p(u)p(v)|u − v| du dv of the step function p = w/Δs, per ray (...,), in O(n).

    Closed form Σ_{i,j} w_i w_j |m_i − m_j| + ⅓ Σ_i w_i² Δ_i (midpoints m, widths Δ). The pairwise term is
    2 Σ_i w_i (m_i·W_<i − (wm)_<i) with exclusive prefix sums, valid because midpoints are sorted. Minimizing it
    pulls each ray's mass into one compact interval (kills floaters and background haze). Use normalized s."""
    mids = 0.5 * (s_edges[..., 1:] + s_edges[..., :-1])
    widths = s_edges[..., 1:] - s_edges[..., :-1]
    wm = weights * mids
    w_before = torch.cumsum(weights, -1) - weights
    wm_before = torch.cumsum(wm, -1) - wm
    inter = 2.0 * (weights * (mids * w_before - wm_before)).sum(-1)
    intra = (weights ** 2 * widths).sum(-1) / 3.0
    return inter + intra


def distortion_loss(s_edges: Tensor, weights: Tensor) -> Tensor:
    """Mean over rays of :func:`distortion_per_ray` (the 360 preset multiplies it by 0.01)."""
    return distortion_per_ray(s_edges, weights).mean()
