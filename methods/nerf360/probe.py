"""The sampler probe: one pixel's ray through every round of the proposal sampler, as plot-ready series.

:func:`probe_ray` re-runs the model on one ray with the probe's knobs (:class:`ProbeKnobs`: dilation scale, anneal
exponent, samples per round) and keeps what each round saw (:class:`ProbeResult`). :func:`probe_series` turns that
into the curves of the probe plot, all on the normalized s-axis with tick labels in metric depth t
(research/mipnerf360.md §7.2):

* the learned proposal histograms of every round, as densities w/Δs (bins of different widths compare);
* the histograms the next round actually drew from: dilated by ε_k, raised to the anneal exponent, renormalized;
* the NeRF weights as bars coloured by each interval's RGB;
* the bound every proposal round puts on each NeRF interval (its outer measure) and the violation
  max(0, w − bound) shaded — the proposal loss integrand;
* sample ticks (interval centres) of every round.

GUI-free: the view's probe panel only copies these arrays into plot series.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from methods.nerf360.config import ModelConfig
from methods.nerf360.losses import distortion_per_ray, outer_measure, proposal_loss_per_interval
from methods.nerf360.model import Nerf360, Rays
from methods.nerf360.sampling import dilation_schedule, resampling_histogram, t_to_s, weighted_percentile
from render.camera import Camera

__all__ = ["ProbeKnobs", "ProbeResult", "ProbeSeries", "probe_ray", "probe_series", "pixel_camera", "step_xy",
           "depth_ticks"]


@dataclass(frozen=True)
class ProbeKnobs:
    """The probe's sampler settings; 1.0 / 0 mean "as the model was trained"."""

    dilation_scale: float = 1.0   # × the config's dilation schedule ε_k (0 = no max-pooling)
    anneal: float = 1.0           # exponent a on the resampling weights (1 = end of training, 0 = flat)
    proposal_samples: int = 0     # intervals per proposal round (0 = the model's)
    nerf_samples: int = 0         # NeRF intervals (0 = the model's)

    def schedule(self, cfg: ModelConfig) -> tuple[int, ...]:
        sched = list(cfg.samples)
        if self.proposal_samples > 0:
            sched[:-1] = [int(self.proposal_samples)] * (len(sched) - 1)
        if self.nerf_samples > 0:
            sched[-1] = int(self.nerf_samples)
        return tuple(sched)

    def dilations(self, cfg: ModelConfig, sched: tuple[int, ...]) -> tuple[float, ...]:
        scale = max(0.0, float(self.dilation_scale))
        return tuple(scale * e for e in dilation_schedule(sched, cfg.dilation_bias, cfg.dilation_mult))


@dataclass
class ProbeResult:
    """Every quantity of the probe for one ray, on the s-axis (metric depth t = s_to_t(s, near, far)).

    ``proposals[k]`` is the learned (edges, weights) histogram of proposal round k+1; ``resampling[k]`` the histogram
    the round after it drew its intervals from (round k+1 dilated, annealed, renormalized); ``bounds[k]`` the
    outer-measure bound round k+1 puts on every NeRF interval, whose excess max(0, w − bound) is the proposal loss."""

    pixel: tuple[int, int]
    near: float
    far: float
    samples: tuple[int, ...]
    dilations: tuple[float, ...]
    anneal: float
    proposals: list[tuple[np.ndarray, np.ndarray]]
    resampling: list[tuple[np.ndarray, np.ndarray]]
    nerf_edges: np.ndarray
    nerf_weights: np.ndarray
    nerf_rgb: np.ndarray            # (n, 3)
    bounds: list[np.ndarray]        # per proposal round, (n,)
    prop_loss: list[float]          # per proposal round: Σ_i max(0, w_i − bound_i)² / w_i
    distortion: float
    acc: float
    rgb: np.ndarray                 # (3,)
    depth_percentiles: tuple[float, float, float]  # t at 5 / 50 / 95 % of the NeRF weight

    @property
    def total_prop_loss(self) -> float:
        return float(sum(self.prop_loss))

    @staticmethod
    def density(edges: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """w/Δs per bin (0 for degenerate bins)."""
        widths = np.diff(edges)
        return np.where(widths > 0, weights / np.where(widths > 0, widths, 1.0), 0.0)

    def violation(self, k: int) -> np.ndarray:
        """max(0, w − bound) of proposal round k+1 on every NeRF interval."""
        return np.maximum(self.nerf_weights - self.bounds[k], 0.0)

    def summary(self) -> str:
        """One line of the per-ray numbers the probe panel prints."""
        losses = " + ".join(f"{v:.4f}" for v in self.prop_loss)
        p5, p50, p95 = self.depth_percentiles
        eps = "/".join(f"{e:.4f}" for e in self.dilations) or "-"  # ASCII: the GUI font has no Greek
        return (f"L_prop {losses} = {self.total_prop_loss:.4f} · L_dist {self.distortion:.4f} · acc {self.acc:.3f} · "
                f"depth p5/p50/p95 {p5:.2f} / {p50:.2f} / {p95:.2f} · samples "
                f"{'/'.join(str(n) for n in self.samples)} · dilation {eps} · anneal a {self.anneal:.2f}")


def pixel_camera(camera: Camera, x: float, y: float) -> Camera:
    """A 1×1 camera whose only pixel is pixel (⌊x⌋, ⌊y⌋) of ``camera``: same focal, hence the same cone."""
    i, j = int(math.floor(x)), int(math.floor(y))
    return replace(camera, cx=camera.cx - i, cy=camera.cy - j, width=1, height=1)


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float64)


@torch.no_grad()
def probe_ray(model: Nerf360, rays: Rays, knobs: ProbeKnobs = ProbeKnobs(), pixel: tuple[int, int] = (0, 0)
              ) -> ProbeResult:
    """Re-run the sampler (and the MLPs) on ONE ray with ``knobs`` and keep what every round saw."""
    if rays.flatten().origins.shape[0] != 1:
        raise ValueError("probe_ray takes exactly one ray")
    cfg = model.config
    sched = knobs.schedule(cfg)
    dil = knobs.dilations(cfg, sched)
    anneal = float(min(max(knobs.anneal, 0.0), 1.0))
    out = model(rays, train=False, anneal=anneal, samples=sched, dilations=dil)
    nerf_edges, nerf_w = out.history[-1]
    proposals, resampling, bounds, losses = [], [], [], []
    for k, (edges, w) in enumerate(out.history[:-1]):
        proposals.append((_np(edges[0]), _np(w[0])))
        re, rw = resampling_histogram(edges, w, dilation=dil[k], anneal=anneal, padding=cfg.resample_padding)
        resampling.append((_np(re[0]), _np(rw[0])))
        bounds.append(_np(outer_measure(nerf_edges, edges, w)[0]))
        losses.append(float(proposal_loss_per_interval(nerf_edges, nerf_w, edges, w).sum()))
    pct = weighted_percentile(out.t_edges, nerf_w, [0.05, 0.5, 0.95])[0]
    return ProbeResult(
        pixel=(int(pixel[0]), int(pixel[1])), near=float(out.near.reshape(-1)[0]),
        far=float(out.far.reshape(-1)[0]), samples=sched, dilations=dil, anneal=anneal, proposals=proposals,
        resampling=resampling, nerf_edges=_np(nerf_edges[0]), nerf_weights=_np(nerf_w[0]),
        nerf_rgb=_np(out.sample_rgb[0].clamp(0, 1)), bounds=bounds, prop_loss=losses,
        distortion=float(distortion_per_ray(nerf_edges, nerf_w)[0]), acc=float(out.acc[0]),
        rgb=_np(out.rgb[0].clamp(0, 1)), depth_percentiles=tuple(float(v) for v in pct))


# ---------------------------------------------------------------------------------------------------------------------
# plot series
# ---------------------------------------------------------------------------------------------------------------------

def step_xy(edges: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A piecewise-constant function as a polyline: x = e0 e1 e1 e2 e2 …, y = v0 v0 v1 v1 …"""
    e, v = np.asarray(edges, np.float64), np.asarray(values, np.float64)
    return np.repeat(e, 2)[1:-1], np.repeat(v, 2)


def depth_ticks(near: float, far: float, min_gap: float = 0.05) -> list[tuple[str, float]]:
    """(label, s) pairs at round metric depths 1-2-5 × 10^k between near and far, at least ``min_gap`` apart in s
    (s crowds far depths together, so most of them drop out)."""
    nice = [m * 10.0 ** k for k in range(-3, 7) for m in (1, 2, 5)]
    ts = [near, *[t for t in nice if near < t < far], far]
    s = t_to_s(torch.tensor(ts, dtype=torch.float64), near, far).numpy()
    out: list[tuple[str, float]] = []
    for t, v in zip(ts, s):
        if not out or v - out[-1][1] >= min_gap:
            out.append((f"{t:.3g}", float(v)))
    if out[-1][0] != f"{far:.3g}":  # the far end always gets its label
        out[-1] = (f"{far:.3g}", float(s[-1]))
    return out


@dataclass
class ProbeSeries:
    """Plot-ready arrays of one probe: ``lines`` / ``shades`` / ``ticks`` by series name (x, y[, y2]); ``bars`` an
    RGBA image of the NeRF weights coloured by RGB spanning ``bars_bounds`` ((s0, 0), (s1, y_max)) in plot space."""

    lines: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    shades: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    ticks: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    bars: np.ndarray | None = None
    bars_bounds: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (1.0, 1.0))
    y_max: float = 1.0
    x_ticks: list[tuple[str, float]] = field(default_factory=list)
    x_focus: tuple[float, float] = (0.0, 1.0)  # initial x range: where the rounds put their mass


def round_names(n_rounds: int) -> list[str]:
    """Names of what each proposal round feeds: "round 2", …, "NeRF"."""
    return [f"round {k + 2}" if k + 1 < n_rounds else "NeRF" for k in range(n_rounds)]


def probe_series(r: ProbeResult, bar_width: int = 1024, bar_height: int = 256) -> ProbeSeries:
    """Every curve of the probe plot (see the module docstring). Densities are w/Δs in s."""
    out = ProbeSeries()
    dens = ProbeResult.density
    nerf_d = dens(r.nerf_edges, r.nerf_weights)
    feeds = round_names(len(r.proposals))
    for k, (edges, w) in enumerate(r.proposals):
        out.lines[f"proposal {k + 1}"] = step_xy(edges, dens(edges, w))
    for k, (edges, w) in enumerate(r.resampling):
        out.lines[f"drawn for {feeds[k]}"] = step_xy(edges, dens(edges, w))
    for k, b in enumerate(r.bounds):
        bound_d = dens(r.nerf_edges, b)
        out.lines[f"bound {k + 1}"] = step_xy(r.nerf_edges, bound_d)
        x, lo = step_xy(r.nerf_edges, bound_d)
        _, hi = step_xy(r.nerf_edges, np.maximum(nerf_d, bound_d))
        out.shades[f"violation {k + 1}"] = (x, hi, lo)
    out.lines["NeRF weights"] = step_xy(r.nerf_edges, nerf_d)
    mids = lambda e: 0.5 * (e[1:] + e[:-1])  # noqa: E731
    for k, (edges, _) in enumerate(r.proposals):
        out.ticks[f"round {k + 1} samples"] = (mids(edges), np.full(len(edges) - 1, -(k + 2) * 0.03))
    out.ticks["NeRF samples"] = (mids(r.nerf_edges), np.full(len(r.nerf_edges) - 1, -0.03))
    out.x_focus = _focus(r)
    out.y_max = max(_visible_peak([(r.nerf_edges, r.nerf_weights), *r.proposals], out.x_focus) * 1.08, 1e-6)
    for name, (x, y) in out.ticks.items():  # tick rows sit just below 0, in units of the plot height
        out.ticks[name] = (x, y * out.y_max)
    s0, s1 = float(r.nerf_edges[0]), float(r.nerf_edges[-1])
    out.bars = _bar_image(r.nerf_edges, nerf_d, r.nerf_rgb, s0, s1, out.y_max, bar_width, bar_height)
    out.bars_bounds = ((s0, 0.0), (s1, out.y_max))
    out.x_ticks = depth_ticks(r.near, r.far)
    return out


def _visible_peak(hists: list[tuple[np.ndarray, np.ndarray]], focus: tuple[float, float]) -> float:
    """The highest density among bins at least 1/200 of the focus range wide: a sliver of a bin (the opaque last
    interval squeezed against s = 1) would otherwise flatten every other curve; it is drawn clipped instead."""
    min_w = (focus[1] - focus[0]) / 200.0
    peaks, all_peaks = [], []
    for edges, w in hists:
        d = ProbeResult.density(edges, w)
        all_peaks.append(float(d.max(initial=0.0)))
        wide = np.diff(edges) >= min_w
        if wide.any():
            peaks.append(float(d[wide].max()))
    return max(peaks) if peaks and max(peaks) > 0 else max(all_peaks, default=1.0)


def _focus(r: ProbeResult) -> tuple[float, float]:
    """An s-range showing the action: the 0.5–99.5 % mass range of the first proposal round and the NeRF support,
    widened by a quarter on each side, within [0, 1]."""
    e, w = r.proposals[0] if r.proposals else (r.nerf_edges, r.nerf_weights)
    q = weighted_percentile(torch.as_tensor(e), torch.as_tensor(w), [0.005, 0.995]).numpy()
    lo, hi = min(float(q[0]), float(r.nerf_edges[0])), max(float(q[1]), float(r.nerf_edges[-1]))
    pad = 0.25 * max(hi - lo, 0.02)
    return max(0.0, lo - pad), min(1.0, hi + pad)


def _bar_image(edges: np.ndarray, density: np.ndarray, rgb: np.ndarray, s0: float, s1: float, y_max: float,
               width: int, height: int) -> np.ndarray:
    """RGBA (height, width, 4), row 0 at the top: column c is filled up to the density of the NeRF interval under
    it, in that interval's colour. A column spanning several intervals shows the densest one, so a narrow spike
    never disappears between columns."""
    img = np.zeros((height, width, 4), np.float32)
    if s1 <= s0:
        return img
    col_edges = np.linspace(s0, s1, width + 1)
    first = np.clip(np.searchsorted(edges, col_edges[:-1], side="right") - 1, 0, len(density) - 1)
    last = np.clip(np.searchsorted(edges, col_edges[1:], side="left") - 1, 0, len(density) - 1)
    for c in range(width):
        j = first[c] + int(np.argmax(density[first[c]:last[c] + 1])) if last[c] >= first[c] else first[c]
        h = int(round(min(density[j] / y_max, 1.0) * height))
        if h > 0:
            img[height - h:, c, :3] = rgb[j]
            img[height - h:, c, 3] = 0.9
    return img
