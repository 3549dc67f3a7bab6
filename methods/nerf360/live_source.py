"""LiveSource of the NeRF view: a mip-NeRF 360 model rendered progressively, its sampler read out per pixel, and the
sampler probe — everything the view shows, without any GUI code.

**Zoom is the cone.** A request's camera is the view's zoom-1 camera (the training focal, :class:`SceneView`)
zoomed and, for coarse passes, scaled; rays are cast from *that* camera, so their cone radius ṙ = (2/√12)/f_px
follows the zoom (×8 at zoom 1/8: each pixel integrates the scene over its whole footprint, which is how mip-NeRF
anti-aliases) and the coarse passes are prefiltered, not aliased (research/mipnerf360.md §5).

**Progressive.** :meth:`NerfSource.render_progressive` yields frames: a first pass at a resolution chosen from the
measured seconds per ray so it lands within ~0.25 s, then passes at twice the resolution until full size, each
painted over the previous one chunk by chunk. The render worker stops iterating when a newer request arrives, so a
new camera cancels the old pass within one chunk.

**Render modes** read the same forward pass: colour, NeRF median depth, accumulation (opacity before the opaque
background bin), the median depth of each proposal round, the per-pixel proposal loss Σ_rounds Σ_i max(0, w_i −
bound_i)²/w_i (where the proposal misses NeRF mass), the distortion loss (how spread the weights are) and a cost map
(how many NeRF intervals hold 95 % of the weight). Depths are shown on a log scale between near and far (near = bright),
losses on fixed log scales, so frames and passes compare.

**The probe** (:meth:`NerfSource.probe`, methods/nerf360/probe.py) re-runs the sampler on one pixel's ray with the
probe knobs (dilation scale, anneal exponent, samples per round).
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from methods.live_training import LiveTraining, ModelSlot
from methods.nerf360.config import SceneView
from methods.nerf360.losses import distortion_per_ray, proposal_loss_per_interval
from methods.nerf360.model import Nerf360, Rays, camera_rays
from methods.nerf360.probe import ProbeKnobs, ProbeResult, pixel_camera, probe_ray
from methods.nerf360.sampling import s_to_t, weighted_percentile
from render.camera import Camera
from render.colormap import colormap
from render.live import Frame, Framing, RenderRequest
from render.options import option

__all__ = ["MODES", "NerfOptions", "NerfSource", "ray_values", "mode_image", "cone_radius_at_focal",
           "mass_intervals", "proposal_loss_per_ray", "demo_source"]

Tensor = torch.Tensor

MODES = ("rgb", "depth", "accumulation", "depth round 1", "depth round 2", "proposal loss", "distortion", "cost")
LEGENDS = {
    "depth": "NeRF median depth, log scale from near (bright) to far (dark)",
    "accumulation": "opacity before the background bin (white = the scene explains the ray)",
    "depth round 1": "median depth of proposal round 1, log scale (near bright)",
    "depth round 2": "median depth of proposal round 2, log scale (near bright)",
    "proposal loss": "per-ray proposal loss, log10 from -4 (dark) to 0 (bright)",
    "distortion": "per-ray distortion loss in s, log10 from -4 (dark) to -0.5 (bright)",
    "cost": "NeRF intervals holding 95% of the weight, 0 (dark) to all (bright)",
}
LOG_RANGES = {"proposal loss": (-4.0, 0.0), "distortion": (-4.0, -0.5)}
CONE_FACTOR = 2.0 / math.sqrt(12.0)  # ṙ = CONE_FACTOR × pixel pitch at unit depth (research §5)


@dataclass(frozen=True)
class NerfOptions:
    mode: str = option("rgb", choices=MODES, label="render",
                       help="colour, depths (NeRF / each proposal round), accumulation, or where the sampler works: "
                            "proposal-loss, distortion and cost heat maps")
    progressive: bool = option(True, label="progressive",
                               help="a coarse image first (~0.25 s), refined in passes while the camera is still")


# ---------------------------------------------------------------------------------------------------------------------
# per-ray read-outs
# ---------------------------------------------------------------------------------------------------------------------

def mass_intervals(weights: Tensor, fraction: float = 0.95) -> Tensor:
    """How many intervals, heaviest first, it takes to hold ``fraction`` of each ray's weight (..., ) — a sample-cost
    read-out: 1 for a hard surface, all of them for a ray the sampler could not focus."""
    w = weights.clamp_min(0)
    total = w.sum(-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    cum = torch.cumsum(torch.sort(w / total, -1, descending=True).values, -1)
    return (cum < fraction - 1e-6).sum(-1) + 1


def proposal_loss_per_ray(out) -> Tensor:
    """Σ over proposal rounds and NeRF intervals of the proposal-loss integrand, per ray (B,)."""
    nerf_edges, nerf_w = out.history[-1]
    total = torch.zeros_like(nerf_w[..., 0])
    for edges, w in out.history[:-1]:
        total = total + proposal_loss_per_interval(nerf_edges, nerf_w, edges, w).sum(-1)
    return total


@torch.no_grad()
def ray_values(model: Nerf360, rays: Rays, mode: str) -> Tensor:
    """The quantity ``mode`` shows, per ray: (B, 3) colour for "rgb", else (B, 1)."""
    out = model(rays, train=False)
    if mode == "rgb":
        return out.rgb.clamp(0, 1)
    if mode == "accumulation":
        v = out.acc
    elif mode == "depth":
        v = out.depth
    elif mode.startswith("depth round"):
        k = min(int(mode.rsplit(" ", 1)[1]), len(out.history)) - 1  # a model with fewer rounds: its last one
        edges, w = out.history[k]
        v = s_to_t(weighted_percentile(edges, w, [0.5])[..., 0], out.near[..., 0], out.far[..., 0])
    elif mode == "proposal loss":
        v = proposal_loss_per_ray(out)
    elif mode == "distortion":
        v = distortion_per_ray(*out.history[-1])
    elif mode == "cost":
        v = mass_intervals(out.history[-1][1]).to(out.rgb.dtype) / out.nerf_evals_per_ray
    else:
        raise ValueError(f"unknown render mode {mode!r}; valid: {', '.join(MODES)}")
    return v[..., None]


def mode_image(mode: str, values: np.ndarray, near: float = 0.1, far: float = 1000.0) -> np.ndarray:
    """Colours of an (H, W, C) array of :func:`ray_values` on fixed scales (so passes and frames compare); depths
    on log(t/near)/log(far/near), which spreads an unbounded scene's near, middle and far content evenly."""
    if mode == "rgb":
        return np.clip(values, 0.0, 1.0)
    v = values[..., 0]
    if mode == "accumulation":
        return np.repeat(np.clip(v, 0, 1)[..., None], 3, -1)
    if mode == "cost":
        return colormap(v, 0.0, 1.0)
    if mode in LOG_RANGES:
        lo, hi = LOG_RANGES[mode]
        return colormap(np.log10(np.maximum(v, 1e-12)), lo, hi)
    log_depth = np.log(np.maximum(v, near) / near) / math.log(far / near)
    return colormap(1.0 - log_depth, 0.0, 1.0)  # near bright


def cone_radius_at_focal(focal: float) -> float:
    """The base cone radius ṙ of the central pixel of a camera with this focal (pixels): (2/√12)/f."""
    return CONE_FACTOR / float(focal)


# ---------------------------------------------------------------------------------------------------------------------
# the source
# ---------------------------------------------------------------------------------------------------------------------

class NerfSource:
    """A mip-NeRF 360 model (a checkpoint, the bundled demo, or a training job's snapshots) as a live 3D source."""

    Options = NerfOptions
    first_pass_s = 0.25    # the first (coarse) pass should land within this
    chunk = 1024           # rays per forward: the granularity of progress and of cancelling
    yield_every_s = 0.1    # at most this often a partly refined frame goes out

    def __init__(self, model: Nerf360 | None = None, view: SceneView | None = None, label: str = "") -> None:
        self.slot = ModelSlot(model)
        self.view = view
        self.label = label or ("no model" if model is None else "model")
        self.seconds_per_ray = 2e-4  # updated from every chunk rendered
        self.step: int | None = None

    # ----- what is shown ------------------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str) -> "NerfSource":
        src = cls()
        src.open_checkpoint(path)
        return src

    def open_checkpoint(self, path: str) -> None:
        """Show a ``train nerf360`` checkpoint (one-line CheckpointError if it is not one)."""
        from pathlib import Path

        from methods.nerf360.train import load_nerf360_scene

        model, cfg, view = load_nerf360_scene(path)
        self.set_model(model, view, f"{Path(path).name} ({cfg.name})")

    def set_model(self, model: Nerf360, view: SceneView | None, label: str) -> None:
        self.slot.show(model)
        self.view, self.label, self.step = view, label, None

    def follow(self, live: LiveTraining) -> dict[str, Any]:
        """Show a running training job's snapshots; its scene view frames the camera. Returns the snapshot info."""
        snap = self.slot.follow(live)
        info = dict(snap.info)
        if isinstance(info.get("view"), dict):
            self.view = SceneView.from_dict(info["view"])
        self.label = f"training ({info.get('preset', '?')})"
        return info

    @property
    def model(self) -> Nerf360 | None:
        return self.slot.get()[0]

    def framing(self) -> Framing:
        v = self.view
        if v is None:
            return Framing(radius=1.0, focal=100.0, near=0.05)
        c, e = np.asarray(v.center), np.asarray(v.eye)
        d = e - c
        dist = float(np.linalg.norm(d))
        return Framing(center=tuple(float(x) for x in c), radius=max(0.05 * dist, 1e-3), focal=float(v.focal),
                       direction=tuple(float(x) for x in d / max(dist, 1e-9)), min_distance=dist,
                       near=float(v.near))

    def near_far(self, camera: Camera) -> tuple[float, float]:
        if self.view is not None:
            return self.view.near, self.view.far
        return float(camera.near), float(camera.far)

    def rays(self, camera: Camera) -> Rays:
        """The cones of every pixel of ``camera`` (H, W): the request camera's own pixel footprint."""
        near, far = self.near_far(camera)
        return camera_rays(camera, near=near, far=far)

    def train_cone_radius(self) -> float | None:
        return cone_radius_at_focal(self.view.focal) if self.view is not None else None

    def describe(self) -> str:
        step = f" · step {self.step}" if self.step is not None else ""
        return f"{self.label}{step}"

    # ----- rendering ----------------------------------------------------------------------------------------
    def pass_scales(self, n_pixels: int) -> list[float]:
        """Resolution scales of the passes: the largest power-of-two fraction whose estimated time fits
        ``first_pass_s`` first, then doubling up to 1."""
        first = 1.0 / 16
        for s in (1.0, 0.5, 0.25, 0.125):
            if n_pixels * s * s * self.seconds_per_ray <= self.first_pass_s:
                first = s
                break
        scales = [first]
        while scales[-1] < 1.0:
            scales.append(min(1.0, scales[-1] * 2))
        return scales

    def render(self, request: RenderRequest) -> Frame:
        """The finished frame (all passes; what the CLI and tests use)."""
        frame = None
        for frame in self.render_progressive(request, progressive=False):
            pass
        return frame

    def render_progressive(self, request: RenderRequest, progressive: bool | None = None) -> Iterator[Frame]:
        """Frames of increasing resolution for one request; stop iterating to cancel (see the module docstring)."""
        cam = request.camera
        if cam is None:
            raise ValueError("the NeRF view needs a 3D camera")
        o: NerfOptions = request.options
        model, info = self.slot.get(request.revision)
        if "step" in info:
            self.step = int(info["step"])
        if model is None:
            yield Frame(np.full((cam.height, cam.width, 3), 0.1, np.float32), aux={"empty": True})
            return
        H, W = cam.height, cam.width
        progressive = o.progressive if progressive is None else progressive
        scales = self.pass_scales(H * W) if progressive else [1.0]
        canvas: np.ndarray | None = None
        t_start = time.perf_counter()
        for k, s in enumerate(scales):
            pcam = cam if s == 1.0 else cam.scaled(s)
            h, w = pcam.height, pcam.width
            rays = self.rays(pcam)
            cone = float(rays.radii[h // 2, w // 2, 0])
            flat = rays.flatten()
            rows = np.minimum(((np.arange(H) + 0.5) * h / H).astype(np.int64), h - 1)
            cols = np.minimum(((np.arange(W) + 0.5) * w / W).astype(np.int64), w - 1)
            buf: np.ndarray | None = None
            last_yield = time.perf_counter()
            for start in range(0, h * w, self.chunk):
                t0 = time.perf_counter()
                vals = ray_values(model, flat[start:start + self.chunk], o.mode).numpy()
                n = vals.shape[0]
                self.seconds_per_ray = 0.7 * self.seconds_per_ray + 0.3 * (time.perf_counter() - t0) / n
                if buf is None:
                    buf = np.zeros((h * w, vals.shape[1]), np.float32)
                    if canvas is None:
                        canvas = np.zeros((H, W, vals.shape[1]), np.float32)
                buf[start:start + n] = vals
                end = start + n
                finished = end == h * w
                if not finished and time.perf_counter() - last_yield < self.yield_every_s:
                    continue
                last_yield = time.perf_counter()
                sel = rows < (end // w)  # full-size rows whose coarse row is complete
                canvas[sel] = buf.reshape(h, w, -1)[rows[sel]][:, cols]
                ratio = self.train_cone_radius()
                aux = {"pass": k + 1, "passes": len(scales), "pass_scale": s, "complete": finished and s == 1.0,
                       "pass_size": (w, h), "cone_radius": cone, "mode": o.mode, "legend": LEGENDS.get(o.mode, ""),
                       "cone_ratio": cone / ratio if ratio else None, "nerf_evals_per_ray": model.config.samples[-1]}
                yield Frame(mode_image(o.mode, canvas, *self.near_far(cam)), aux=aux,
                            timings={"render": time.perf_counter() - t_start})

    # ----- the probe ----------------------------------------------------------------------------------------
    def probe(self, camera: Camera, x: float, y: float, knobs: ProbeKnobs = ProbeKnobs(),
              revision: int = 0) -> ProbeResult:
        """The sampler of the ray through pixel (x, y) of ``camera`` (the camera of the frame on screen)."""
        if not (0 <= x < camera.width and 0 <= y < camera.height):
            raise ValueError(f"pixel ({x:.0f}, {y:.0f}) is outside the {camera.width}x{camera.height} image")
        model, _ = self.slot.get(revision)
        if model is None:
            raise ValueError("no model to probe: open a checkpoint or start training")
        return probe_ray(model, self.rays(pixel_camera(camera, x, y)), knobs, (int(x), int(y)))


def demo_source() -> NerfSource:
    """The NeRF view's source on the bundled model; without it, an empty source that says how to make one."""
    from methods.nerf360.demo import demo_checkpoint

    try:
        return NerfSource.from_checkpoint(str(demo_checkpoint()))
    except Exception as e:  # noqa: BLE001 - the view still opens; it can train or open a checkpoint
        src = NerfSource()
        src.label = f"no model ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        return src
