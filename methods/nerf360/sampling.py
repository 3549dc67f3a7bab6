"""Ray-distance warp, proposal resampling and alpha compositing for mip-NeRF 360 (report §1.3–1.4, §9).

Conventions (one ray per leading index ``...``):

* a *histogram* is a pair ``(edges (..., m+1), weights (..., m))`` with sorted edges and non-negative weights; its
  density is the step function ``weights / diff(edges)``;
* ``s`` is the normalized ray distance in [0, 1] (uniform in s = linear in disparity); every resampling decision is
  made in s, the MLPs see metric ``t`` via :func:`s_to_t`.

All new sample edges are returned detached: gradients never flow through sample positions (§1.4 step 4).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["t_to_s", "s_to_t", "anneal_exponent", "dilation_schedule", "uniform_s_edges", "sample_intervals",
           "max_dilate", "resample", "volume_weights", "weighted_percentile", "median_depth", "mean_depth"]

Tensor = torch.Tensor


# ---------------------------------------------------------------------------------------------------------------------
# s-space (§1.3): g(x) = 1/x, s = (g(t) - g(near)) / (g(far) - g(near))
# ---------------------------------------------------------------------------------------------------------------------

def t_to_s(t: Tensor, near: Tensor | float, far: Tensor | float) -> Tensor:
    """Metric distance -> normalized s in [0, 1] with g = 1/x; near/far broadcast against ``t`` (e.g. (..., 1)).

    Uniform steps in s are uniform in disparity, which matches the contraction's 1/r compression far away."""
    gn, gf = 1.0 / torch.as_tensor(near, dtype=t.dtype, device=t.device), 1.0 / torch.as_tensor(far, dtype=t.dtype,
                                                                                             device=t.device)
    return (1.0 / t - gn) / (gf - gn)


def s_to_t(s: Tensor, near: Tensor | float, far: Tensor | float) -> Tensor:
    """Inverse of :func:`t_to_s`: t = g⁻¹(s·g(far) + (1 − s)·g(near)); s = 0 is ``near`` and s = 1 is ``far``."""
    gn, gf = 1.0 / torch.as_tensor(near, dtype=s.dtype, device=s.device), 1.0 / torch.as_tensor(far, dtype=s.dtype,
                                                                                             device=s.device)
    return 1.0 / (s * gf + (1.0 - s) * gn)


# ---------------------------------------------------------------------------------------------------------------------
# schedules (§1.4 steps 1-2)
# ---------------------------------------------------------------------------------------------------------------------

def anneal_exponent(train_frac: float, slope: float = 10.0) -> float:
    """Annealing exponent a = slope·x / ((slope − 1)·x + 1) (Schlick bias), x = step / max_steps clipped to [0, 1].

    a = 0 at the start (flat resampling), ≈0.53 at 10 %, ≈0.91 at 50 %, 1 at the end: early proposals are unreliable,
    so the sampler trusts them progressively."""
    x = min(max(float(train_frac), 0.0), 1.0)
    return slope * x / ((slope - 1.0) * x + 1.0)


def dilation_schedule(samples_per_level: Sequence[int], bias: float = 0.0025, mult: float = 0.5) -> list[float]:
    """Dilation ε_k = bias + mult / ∏_{j<k} n_j for every level k ≥ 1 (level 0 starts from the flat histogram).

    For 64/64/32 this gives [0.0103125, 0.0026221]: coarser histograms get wider max-pooling because their bins
    are wider, which keeps the proposal an over-estimate when the camera moves."""
    out, prod = [], 1
    for n in list(samples_per_level)[:-1]:
        prod *= int(n)
        out.append(bias + mult / prod)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# step-function helpers
# ---------------------------------------------------------------------------------------------------------------------

def _searchsorted(sorted_seq: Tensor, values: Tensor, right: bool) -> Tensor:
    """torch.searchsorted with broadcast leading dims (it needs identical, contiguous ones)."""
    lead = torch.broadcast_shapes(sorted_seq.shape[:-1], values.shape[:-1])
    a = sorted_seq.expand(*lead, sorted_seq.shape[-1]).reshape(-1, sorted_seq.shape[-1]).contiguous()
    v = values.expand(*lead, values.shape[-1]).reshape(-1, values.shape[-1]).contiguous()
    return torch.searchsorted(a, v, right=right).reshape(*lead, values.shape[-1])


def _gather(x: Tensor, idx: Tensor) -> Tensor:
    lead = torch.broadcast_shapes(x.shape[:-1], idx.shape[:-1])
    return torch.gather(x.expand(*lead, x.shape[-1]), -1, idx.expand(*lead, idx.shape[-1]))


def _invert_cdf(edges: Tensor, weights: Tensor, u: Tensor) -> Tensor:
    """Points x with CDF(x) = u for the piecewise-linear CDF of the histogram (edges, weights).

    Weights are normalized here; an all-zero histogram falls back to uniform over its domain so that sampling
    never produces NaN."""
    widths = (edges[..., 1:] - edges[..., :-1]).clamp_min(0)
    total = weights.sum(-1, keepdim=True)
    fallback = widths / widths.sum(-1, keepdim=True).clamp_min(torch.finfo(widths.dtype).tiny)
    w = torch.where(total > 0, weights / total.clamp_min(torch.finfo(weights.dtype).tiny), fallback)
    cdf = torch.cat([torch.zeros_like(w[..., :1]), torch.cumsum(w, -1).clamp(max=1.0)], -1)
    cdf = torch.cat([cdf[..., :-1], torch.ones_like(cdf[..., -1:])], -1)
    m = w.shape[-1]
    idx = (_searchsorted(cdf, u, right=True) - 1).clamp(0, m - 1)
    c0, c1 = _gather(cdf, idx), _gather(cdf, idx + 1)
    e0, e1 = _gather(edges, idx), _gather(edges, idx + 1)
    denom = c1 - c0
    frac = torch.where(denom > 0, (u - c0) / torch.where(denom > 0, denom, torch.ones_like(denom)), 0.0)
    return e0 + frac.clamp(0.0, 1.0) * (e1 - e0)


def sample_intervals(edges: Tensor, weights: Tensor, n: int, *, train: bool,
                     generator: torch.Generator | None = None) -> Tensor:
    """Draw ``n`` interval centres from the histogram and return the (..., n+1) edges between them (detached).

    Centres are inverse-CDF samples at u_i = i/n + ξ with ONE ξ ~ U[0, 1/n) per ray in training (stratified, so the
    edges stay well spread) and u_i = (i + ½)/n at test (deterministic). Edges are the midpoints between consecutive
    centres; the outer two mirror the neighbouring midpoint about the first/last centre, and everything is clamped
    to the histogram's domain (report §1.4 step 3: sample centres, then build edges)."""
    edges, weights = edges.detach(), weights.detach()
    if n < 1:
        raise ValueError("n must be >= 1")
    lead = torch.broadcast_shapes(edges.shape[:-1], weights.shape[:-1])
    base = torch.arange(n, device=edges.device, dtype=edges.dtype) / n
    if train:
        xi = torch.rand(*lead, 1, generator=generator, device=edges.device, dtype=edges.dtype) / n
        # keep u strictly below 1 even when rounding pushes (n-1)/n + ξ up
        u = (base + xi).clamp(max=1.0 - torch.finfo(edges.dtype).eps)
    else:
        u = (base + 0.5 / n).expand(*lead, n)
    centres = _invert_cdf(edges, weights, u)
    if n == 1:
        inner = centres[..., :0]
        first, last = edges[..., :1].expand_as(centres), edges[..., -1:].expand_as(centres)
    else:
        inner = 0.5 * (centres[..., 1:] + centres[..., :-1])
        first = 2.0 * centres[..., :1] - inner[..., :1]
        last = 2.0 * centres[..., -1:] - inner[..., -1:]
    out = torch.cat([first, inner, last], -1)
    lo, hi = edges[..., :1].expand(*lead, 1), edges[..., -1:].expand(*lead, 1)
    return torch.minimum(torch.maximum(out, lo), hi).detach()


def uniform_s_edges(n: int, batch_shape: Sequence[int] = (), *, train: bool = False,
                    generator: torch.Generator | None = None, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """Level-0 edges (…, n+1): :func:`sample_intervals` applied to the flat histogram on [0, 1].

    At test this is exactly linspace(0, 1, n+1); in training the whole comb shifts by one per-ray jitter in
    [−1/2n, 1/2n) and is clamped to [0, 1] (so up to half a bin at one end goes unsampled on that step), i.e. the
    same code path as every later level."""
    edges = torch.tensor([0.0, 1.0], device=device, dtype=dtype).expand(*batch_shape, 2)
    weights = torch.ones(*batch_shape, 1, device=device, dtype=dtype)
    return sample_intervals(edges, weights, n, train=train, generator=generator)


# ---------------------------------------------------------------------------------------------------------------------
# dilation (§1.4 step 1)
# ---------------------------------------------------------------------------------------------------------------------

def _range_max(values: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """max(values[..., lo:hi+1]) per query via a sparse table (O(m log m) build, O(1) query); 0 for empty ranges.

    ``values`` must be non-negative (0 is used as padding)."""
    m = values.shape[-1]
    levels, span = [values], 1
    while 2 * span <= m:
        prev = levels[-1]
        shifted = torch.cat([prev[..., span:], torch.zeros_like(prev[..., :span])], -1)
        levels.append(torch.maximum(prev, shifted))
        span *= 2
    table = torch.stack(levels, -2).flatten(-2)  # (..., K*m), row k = max over windows of length 2^k
    valid = hi >= lo
    length = (hi - lo + 1).clamp_min(1)
    k = torch.floor(torch.log2(length.to(torch.float64))).long()
    k = k + ((2 ** (k + 1)) <= length).long() - ((2 ** k) > length).long()  # guard log2 rounding
    lo_c, hi_c = lo.clamp(0, m - 1), hi.clamp(0, m - 1)
    left = _gather(table, k * m + lo_c)
    right = _gather(table, k * m + (hi_c - 2 ** k + 1).clamp(0, m - 1))
    return torch.where(valid, torch.maximum(left, right), torch.zeros_like(left))


def max_dilate(edges: Tensor, weights: Tensor, dilation: float) -> tuple[Tensor, Tensor]:
    """Max-pool the histogram's density over a window of ±``dilation`` (in edge units); returns (edges', weights').

    The dilated density at x is the max density of every bin within distance ``dilation`` of x. Its breakpoints are
    {s_i, s_i ± ε}, so the new edge set is their sorted union clipped to the domain: (..., 3(m+1)) edges,
    3m+2 bins, degenerate bins carry zero weight. Weights are renormalized to sum to 1. Support only grows, which
    makes the proposal a conservative over-estimate (anti-aliasing under camera motion)."""
    edges, weights = edges.detach(), weights.detach()
    if dilation <= 0:
        return edges, weights
    lead = torch.broadcast_shapes(edges.shape[:-1], weights.shape[:-1])
    edges, weights = edges.expand(*lead, edges.shape[-1]), weights.expand(*lead, weights.shape[-1])
    widths = edges[..., 1:] - edges[..., :-1]
    pdf = torch.where(widths > 0, weights.clamp_min(0) / torch.where(widths > 0, widths, torch.ones_like(widths)),
                      torch.zeros_like(widths))
    new_edges = torch.sort(torch.cat([edges, edges - dilation, edges + dilation], -1), -1).values
    new_edges = torch.minimum(torch.maximum(new_edges, edges[..., :1]), edges[..., -1:])
    mid = 0.5 * (new_edges[..., 1:] + new_edges[..., :-1])
    # bin i covers x iff s_i - ε <= x < s_{i+1} + ε; the covering bins form the index range [lo, hi]
    hi = _searchsorted(edges[..., :-1], mid + dilation, right=True) - 1
    lo = _searchsorted(edges[..., 1:], mid - dilation, right=True)
    new_pdf = _range_max(pdf, lo, hi)
    new_w = new_pdf * (new_edges[..., 1:] - new_edges[..., :-1])
    total = new_w.sum(-1, keepdim=True)
    new_w = torch.where(total > 0, new_w / total.clamp_min(torch.finfo(new_w.dtype).tiny), new_w)
    return new_edges, new_w


# ---------------------------------------------------------------------------------------------------------------------
# the resampling step (§1.4 steps 1-4)
# ---------------------------------------------------------------------------------------------------------------------

def resample(s_edges: Tensor, weights: Tensor, n: int, *, dilation: float = 0.0, anneal: float = 1.0,
             train: bool = False, generator: torch.Generator | None = None, padding: float = 0.0) -> Tensor:
    """One proposal round: dilate, anneal (w^a), then draw ``n`` intervals; returns detached (..., n+1) s-edges.

    ``anneal`` is the exponent a itself (see :func:`anneal_exponent`); it acts on bin *weights*, not densities, so
    a = 0 gives every non-degenerate bin equal mass (the report's w^a, renormalized). ``padding`` is added to the
    weights before annealing (0 for the 360 preset). Zero-width bins always get zero mass."""
    edges, w = resampling_histogram(s_edges, weights, dilation=dilation, anneal=anneal, padding=padding)
    return sample_intervals(edges, w, n, train=train, generator=generator)


def resampling_histogram(s_edges: Tensor, weights: Tensor, *, dilation: float = 0.0, anneal: float = 1.0,
                         padding: float = 0.0) -> tuple[Tensor, Tensor]:
    """The histogram a proposal round actually draws from: dilated, padded, raised to ``anneal``, renormalized.

    Returns detached (edges (..., m'+1), weights (..., m') summing to 1); what :func:`resample` inverts and what a
    sampler probe plots next to the learned proposal histogram."""
    s_edges, weights = max_dilate(s_edges, weights, dilation)
    widths = s_edges[..., 1:] - s_edges[..., :-1]
    w = (weights.detach().clamp_min(0) + padding).pow(anneal)  # 0^0 = 1: a = 0 is flat per bin
    w = torch.where(widths > 0, w, torch.zeros_like(w))
    total = w.sum(-1, keepdim=True)
    return s_edges.detach(), torch.where(total > 0, w / total.clamp_min(torch.finfo(w.dtype).tiny), w)


# ---------------------------------------------------------------------------------------------------------------------
# compositing (§1.4 step 6) and depth read-outs
# ---------------------------------------------------------------------------------------------------------------------

def volume_weights(densities: Tensor, t_edges: Tensor, dir_norm: Tensor | float = 1.0, *,
                   opaque: bool = True, deltas: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Alpha-compositing weights w_i = α_i T_i and transmittances T_i (both (..., m)) for densities σ (..., m).

    Δ_i = (t_{i+1} − t_i)·‖d‖ (pass ``dir_norm`` (..., 1) for unnormalized directions). With ``opaque`` the last
    interval is treated as σΔ = ∞, written as w_last = T_last so no ∞ enters the graph: the weights then sum to 1
    per ray, which the proposal loss (1/w) and the distortion loss assume (§9). ``deltas`` (..., m) replaces the
    metric interval lengths (e.g. lengths measured in contracted space)."""
    delta = (t_edges[..., 1:] - t_edges[..., :-1]) * dir_norm if deltas is None else deltas
    tau = densities * delta
    if opaque:
        tau_head = tau[..., :-1]
        trans = torch.exp(-torch.cat([torch.zeros_like(tau[..., :1]), torch.cumsum(tau_head, -1)], -1))
        alpha_head = -torch.expm1(-tau_head)
        weights = torch.cat([alpha_head * trans[..., :-1], trans[..., -1:]], -1)
    else:
        trans = torch.exp(-torch.cat([torch.zeros_like(tau[..., :1]), torch.cumsum(tau[..., :-1], -1)], -1))
        weights = -torch.expm1(-tau) * trans
    return weights, trans


def weighted_percentile(edges: Tensor, weights: Tensor, q: Sequence[float] | Tensor) -> Tensor:
    """Quantiles (..., len(q)) of the piecewise-uniform distribution given by the histogram (edges, weights)."""
    q_t = torch.as_tensor(q, dtype=edges.dtype, device=edges.device)
    lead = torch.broadcast_shapes(edges.shape[:-1], weights.shape[:-1])
    return _invert_cdf(edges, weights, q_t.expand(*lead, q_t.shape[-1]))


def median_depth(t_edges: Tensor, weights: Tensor) -> Tensor:
    """Median of the weight distribution along the ray (..., ): robust to a spread-out tail, unlike the mean."""
    return weighted_percentile(t_edges, weights, [0.5])[..., 0]


def mean_depth(t_edges: Tensor, weights: Tensor) -> Tensor:
    """Expected depth Σ w_i t̄_i / Σ w_i over interval midpoints (..., )."""
    mids = 0.5 * (t_edges[..., 1:] + t_edges[..., :-1])
    return (weights * mids).sum(-1) / weights.sum(-1).clamp_min(torch.finfo(weights.dtype).tiny)
