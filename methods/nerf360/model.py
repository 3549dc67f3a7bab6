"""The mip-NeRF 360 network and renderer (report §1.4–1.7, §3.1, §5), built on the math core of this package.

One loop over levels treats proposal and NeRF rounds alike: resample s-edges (dilated, annealed) from the previous
level's histogram, map them to metric t with the per-ray near/far, cast conical frustums, contract the Gaussians,
encode them with IPE and evaluate an MLP — the shared proposal MLP (density only) for every round but the last, the
NeRF MLP (density + view-dependent colour) for the last. Each level's (s_edges, weights) goes to the history the
losses and a sampler probe read.

Conventions:

* rays come from :func:`camera_rays` in the project's OpenCV camera convention (x right, y down, +z forward, pixel
  centres at +0.5); directions are **not** normalized — camera-space (x, y, 1) rotated to world — so t is the
  camera z-depth, near/far are depths, and a ray's base cone radius ṙ is its pixel footprint at t = 1;
* rays and depths are in world units; the model maps them into its normalized scene (cameras within the unit ball,
  report §1.1) with the ``scene_center`` / ``scene_radius`` buffers, so the contraction sees what it expects;
* the background is opaque: the last interval of every level absorbs the remaining transmittance, so weights sum to
  1 per ray and whatever the NeRF MLP says there is the "background" colour (unbounded scene, no fixed colour).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from methods.nerf360.config import ModelConfig
from methods.nerf360.geometry import cast_cones, contract, ipe_basis, ipe_features, pixel_cone_radii, pos_enc
from methods.nerf360.sampling import (
    dilation_schedule,
    median_depth,
    resample,
    s_to_t,
    uniform_s_edges,
    volume_weights,
)
from render.camera import Camera

__all__ = ["Rays", "RenderOutput", "ImageRender", "MLP", "Nerf360", "camera_rays", "contracted_deltas",
           "uniform_samples"]

Tensor = torch.Tensor

_DENSITY_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "softplus": F.softplus, "exp": lambda x: torch.exp(x.clamp(max=15.0)), "relu": F.relu}


def uniform_samples(n: int) -> tuple[int]:
    """The ``samples`` override for plain uniform-in-s sampling: ``n`` NeRF samples, no proposal rounds."""
    return (int(n),)


# ---------------------------------------------------------------------------------------------------------------------
# rays
# ---------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rays:
    """A bundle of cones, any leading shape ``...``, world units.

    origins/directions (..., 3) (directions unnormalized: t is camera depth), radii (..., 1) the base cone radius
    ṙ (radius at t = 1), near/far (..., 1) depths bounding the ray."""

    origins: Tensor
    directions: Tensor
    radii: Tensor
    near: Tensor
    far: Tensor

    @property
    def shape(self) -> torch.Size:
        return self.origins.shape[:-1]

    def map(self, fn: Callable[[Tensor], Tensor]) -> "Rays":
        """Apply ``fn`` to every field (reshape, slice, device move): the fields share their leading shape."""
        return Rays(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def flatten(self) -> "Rays":
        return self.map(lambda x: x.reshape(-1, x.shape[-1]))

    def __getitem__(self, idx: Any) -> "Rays":
        return self.map(lambda x: x[idx])

    def __len__(self) -> int:
        return int(self.origins.shape[0])


def camera_rays(camera: Camera, *, near: float | None = None, far: float | None = None,
                dtype: torch.dtype = torch.float32) -> Rays:
    """Rays (H, W) through every pixel centre of ``camera``; near/far default to the camera's own.

    The cone radius comes from the spacing of neighbouring directions of *this* camera
    (:func:`methods.nerf360.geometry.pixel_cone_radii`), so rendering a zoomed or rescaled camera automatically
    changes the footprint (report §5: never reuse the training radii). The grid is built one pixel larger than the
    image so every pixel, even in a 1-pixel-wide image, has real neighbours."""
    h, w = camera.height, camera.width
    j, i = np.meshgrid(np.arange(w + 1) + 0.5, np.arange(h + 1) + 0.5)
    d_cam = np.stack([(j - camera.cx) / camera.fx, (i - camera.cy) / camera.fy, np.ones_like(j)], -1)
    c2w = camera.cam_to_world
    dirs = torch.from_numpy(d_cam @ c2w[:3, :3].T)
    radii = pixel_cone_radii(dirs)[:h, :w]
    dirs = dirs[:h, :w]
    n = float(camera.near if near is None else near)
    f = float(camera.far if far is None else far)
    if not 0 < n < f:
        raise ValueError(f"need 0 < near < far, got near={n}, far={f}")
    full = torch.ones(h, w, 1, dtype=torch.float64)
    origins = torch.from_numpy(np.asarray(c2w[:3, 3], np.float64)).expand(h, w, 3)
    return Rays(origins.to(dtype).contiguous(), dirs.to(dtype).contiguous(), radii.to(dtype).contiguous(),
                (full * n).to(dtype), (full * f).to(dtype))


def contracted_deltas(origins: Tensor, directions: Tensor, t_edges: Tensor) -> Tensor:
    """Interval lengths (B, n) measured in contracted space: the chords between the contracted edge points
    contract(o + t_i d) (model-space rays). Equal to the metric Δt·‖d‖ inside the unit ball; beyond it they shrink
    with the contraction, so far intervals are not opaque merely for being long (ModelConfig.delta_space)."""
    pts = contract(origins[:, None, :] + t_edges[..., None] * directions[:, None, :])
    return torch.linalg.norm(pts[:, 1:] - pts[:, :-1], dim=-1)


# ---------------------------------------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------------------------------------

@dataclass
class RenderOutput:
    """What one forward pass returns (per ray, leading shape of the input rays flattened to (B,)).

    ``history`` holds (s_edges (B, n_k+1), weights (B, n_k)) per level, proposal rounds first, NeRF last: the input
    of the losses and of a sampler probe (map s to metric depth with :func:`methods.nerf360.sampling.s_to_t` and
    ``near``/``far``). ``acc`` is the opacity *before* the opaque last interval (1 − its weight): how much of the ray
    the scene explains without the catch-all background bin. ``depth`` is the median depth of the NeRF weights."""

    rgb: Tensor                          # (B, 3)
    acc: Tensor                          # (B,)
    depth: Tensor                        # (B,)
    history: list[tuple[Tensor, Tensor]]
    t_edges: Tensor                      # (B, n+1) NeRF-level edges in depth units
    near: Tensor                         # (B, 1)
    far: Tensor                          # (B, 1)
    nerf_evals_per_ray: int
    prop_evals_per_ray: int
    sample_rgb: Tensor | None = None     # (B, n, 3) colour of every NeRF interval (what the probe colours bins by)


@dataclass
class ImageRender:
    """A whole camera rendered by :meth:`Nerf360.render_image` (H, W leading dims) and the radii it used."""

    rgb: Tensor                          # (H, W, 3)
    acc: Tensor                          # (H, W)
    depth: Tensor                        # (H, W)
    radii: Tensor                        # (H, W) base cone radius ṙ of every pixel (world units at t = 1)
    samples: tuple[int, ...]
    nerf_evals_per_ray: int
    prop_evals_per_ray: int


# ---------------------------------------------------------------------------------------------------------------------
# networks
# ---------------------------------------------------------------------------------------------------------------------

def _dense(n_in: int, n_out: int) -> nn.Linear:
    """He-uniform weights, zero bias (report §3.1): keeps ReLU activations at unit scale through the trunk."""
    layer = nn.Linear(n_in, n_out)
    nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
    nn.init.zeros_(layer.bias)
    return layer


class MLP(nn.Module):
    """ReLU trunk with input skips, a density head and (``rgb``) a view-dependent colour branch (report §3.1).

    The encoded input is concatenated again before layer i whenever i % skip_every == 0 and i > 0. Colour: a linear
    bottleneck of the trunk feature, concatenated with the view-direction encoding, through ``view_depth`` ReLU
    layers to a sigmoid — so colour can depend on the view while density cannot."""

    def __init__(self, in_dim: int, width: int, depth: int, skip_every: int, *, rgb: bool = False,
                 view_dim: int = 0, bottleneck_width: int = 0, view_width: int = 0, view_depth: int = 0) -> None:
        super().__init__()
        self.skip_every = int(skip_every)
        layers, n = [], in_dim
        for i in range(depth):
            n_in = n + (in_dim if i > 0 and i % self.skip_every == 0 else 0)
            layers.append(_dense(n_in, width))
            n = width
        self.trunk = nn.ModuleList(layers)
        self.density = _dense(width, 1)
        self.has_rgb = bool(rgb)
        if rgb:
            self.bottleneck = _dense(width, bottleneck_width)
            view, n = [], bottleneck_width + view_dim
            for _ in range(view_depth):
                view.append(_dense(n, view_width))
                n = view_width
            self.view = nn.ModuleList(view)
            self.rgb = _dense(n, 3)

    def forward(self, x: Tensor, view_enc: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(raw density (...,), rgb logits (..., 3) or None). ``view_enc`` (..., view_dim) broadcasts over samples."""
        inputs, h = x, x
        for i, layer in enumerate(self.trunk):
            if i > 0 and i % self.skip_every == 0:
                h = torch.cat([h, inputs], -1)
            h = F.relu(layer(h))
        raw_density = self.density(h)[..., 0]
        if not self.has_rgb:
            return raw_density, None
        b = self.bottleneck(h)
        v = view_enc.expand(*b.shape[:-1], view_enc.shape[-1])
        h = torch.cat([b, v], -1)
        for layer in self.view:
            h = F.relu(layer(h))
        return raw_density, self.rgb(h)


class Nerf360(nn.Module):
    """Mip-NeRF 360: ONE proposal MLP shared by every proposal round + the NeRF MLP (report §1.4, §3.1).

    ``scene_center`` / ``scene_radius`` define the normalization world → model space (x − c)/R; they are buffers, so
    checkpoints carry them."""

    def __init__(self, config: ModelConfig, scene_center: Sequence[float] = (0.0, 0.0, 0.0),
                 scene_radius: float = 1.0) -> None:
        super().__init__()
        if not (math.isfinite(scene_radius) and scene_radius > 0):
            raise ValueError(f"scene_radius must be a positive number, got {scene_radius}")
        self.config = config
        self.register_buffer("basis", ipe_basis(config.ipe_basis), persistent=False)
        self.register_buffer("scene_center", torch.as_tensor(scene_center, dtype=torch.float32).reshape(3).clone())
        self.register_buffer("scene_radius", torch.tensor(float(scene_radius), dtype=torch.float32))
        in_dim = 2 * self.basis.shape[0] * (config.ipe_max_deg - config.ipe_min_deg)
        view_dim = 3 + 6 * config.view_deg
        self.prop_mlp = MLP(in_dim, config.prop_width, config.prop_depth, config.skip_every)
        self.nerf_mlp = MLP(in_dim, config.nerf_width, config.nerf_depth, config.skip_every, rgb=True,
                            view_dim=view_dim, bottleneck_width=config.bottleneck_width,
                            view_width=config.view_width, view_depth=config.view_depth)
        self._density_act = _DENSITY_ACTIVATIONS[config.density_activation]

    def mlp_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters per top-level MLP: gradient clipping is done per group (report §3.2)."""
        return {"prop": list(self.prop_mlp.parameters()), "nerf": list(self.nerf_mlp.parameters())}

    # ----- one level ----------------------------------------------------------------------------------------------
    def _encode(self, t_edges: Tensor, origins: Tensor, directions: Tensor, radii: Tensor) -> Tensor:
        mean, cov = cast_cones(t_edges, origins, directions, radii)
        cfg = self.config
        return ipe_features(mean, cov, self.basis, cfg.ipe_min_deg, cfg.ipe_max_deg)

    def forward(self, rays: Rays, train: bool = False, anneal: float = 1.0,
                generator: torch.Generator | None = None, samples: Sequence[int] | None = None,
                dilations: Sequence[float] | None = None) -> RenderOutput:
        """Render a bundle of rays (flattened to (B,)).

        ``train`` draws one jitter per ray per level (stratified, from ``generator``); at test the sample positions
        are deterministic. ``anneal`` is the exponent a applied to the resampling histograms (1 = as learned; the
        trainer passes :func:`methods.nerf360.sampling.anneal_exponent` of the training fraction). ``samples``
        overrides the level schedule, e.g. :func:`uniform_samples` for proposal-free uniform sampling; ``dilations``
        the max-pool half-width ε_k of every resampling round (one per proposal round; default the config's
        :func:`methods.nerf360.sampling.dilation_schedule`) — the sampler probe's knobs."""
        cfg = self.config
        sched = tuple(int(n) for n in (cfg.samples if samples is None else samples))
        if not sched or any(n < 1 for n in sched):
            raise ValueError(f"samples must be one or more counts >= 1, got {tuple(sched)}")
        rays = rays.flatten()
        b = len(rays)
        radius = self.scene_radius
        origins = (rays.origins - self.scene_center) / radius
        directions = rays.directions / radius
        radii = rays.radii / radius
        dir_norm = torch.linalg.norm(directions, dim=-1, keepdim=True)
        viewdirs = rays.directions / torch.linalg.norm(rays.directions, dim=-1, keepdim=True)
        view_enc = pos_enc(viewdirs, 0, cfg.view_deg)[:, None, :]
        if dilations is None:
            dilations = dilation_schedule(sched, cfg.dilation_bias, cfg.dilation_mult)
        if len(dilations) != len(sched) - 1:
            raise ValueError(f"need one dilation per proposal round ({len(sched) - 1}), got {len(dilations)}")
        dilations = [0.0, *(float(e) for e in dilations)]
        history: list[tuple[Tensor, Tensor]] = []
        s_edges = weights = t_edges = rgb_samples = None
        for k, n in enumerate(sched):
            if k == 0:
                s_edges = uniform_s_edges(n, (b,), train=train, generator=generator, device=origins.device,
                                          dtype=origins.dtype)
            else:
                s_edges = resample(s_edges, weights, n, dilation=dilations[k], anneal=anneal, train=train,
                                   generator=generator, padding=cfg.resample_padding)
            t_edges = s_to_t(s_edges, rays.near, rays.far)
            enc = self._encode(t_edges, origins, directions, radii)
            last = k == len(sched) - 1
            raw, rgb_logits = (self.nerf_mlp(enc, view_enc) if last else self.prop_mlp(enc))
            density = self._density_act(raw + cfg.density_bias)
            deltas = contracted_deltas(origins, directions, t_edges) if cfg.delta_space == "contracted" else None
            weights, _ = volume_weights(density, t_edges, dir_norm, opaque=True, deltas=deltas)
            history.append((s_edges, weights))
            if last:
                p = cfg.rgb_padding
                rgb_samples = torch.sigmoid(rgb_logits) * (1.0 + 2.0 * p) - p
        rgb = (weights[..., None] * rgb_samples).sum(-2)
        return RenderOutput(rgb=rgb, acc=1.0 - weights[..., -1], depth=median_depth(t_edges, weights),
                            history=history, t_edges=t_edges, near=rays.near, far=rays.far,
                            nerf_evals_per_ray=sched[-1], prop_evals_per_ray=int(sum(sched[:-1])),
                            sample_rgb=rgb_samples)

    # ----- whole images -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def render_image(self, camera: Camera, chunk: int = 4096, *, samples: Sequence[int] | None = None,
                     near: float | None = None, far: float | None = None) -> ImageRender:
        """Render every pixel of ``camera`` in chunks of ``chunk`` rays, deterministically (test-mode sampling).

        Cone radii come from this camera's own pixel footprint (:func:`camera_rays`), so ``camera.scaled(0.5)``
        renders with twice the radii of ``camera`` and a zoomed camera with proportionally smaller ones."""
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        dev, dt = self.scene_center.device, self.scene_center.dtype
        rays = camera_rays(camera, near=near, far=far, dtype=dt).map(lambda x: x.to(dev))
        h, w = camera.height, camera.width
        flat = rays.flatten()
        rgb, acc, depth = [], [], []
        out = None
        for start in range(0, h * w, chunk):
            out = self(flat[start:start + chunk], train=False, samples=samples)
            rgb.append(out.rgb)
            acc.append(out.acc)
            depth.append(out.depth)
        sched = tuple(int(n) for n in (self.config.samples if samples is None else samples))
        return ImageRender(rgb=torch.cat(rgb).reshape(h, w, 3), acc=torch.cat(acc).reshape(h, w),
                           depth=torch.cat(depth).reshape(h, w), radii=rays.radii[..., 0], samples=sched,
                           nerf_evals_per_ray=sched[-1], prop_evals_per_ray=int(sum(sched[:-1])))
