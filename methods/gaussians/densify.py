"""Adaptive density control (3DGS §5.2) and the optimizer it has to keep in step with.

Densification changes N, so every Parameter is replaced and the Adam moments follow row for row: kept Gaussians
keep their moments (restarting them would jolt the optimisation), new ones start at zero, pruned ones are dropped.
Optimizer param groups are named after the model attributes (``PARAM_NAMES``) so the two can be matched up.

Reference behaviour reproduced deliberately:
- the gradient statistic is the norm of the 2D-mean gradient in NDC units (pixel gradient × (W/2, H/2)); the
  2e-4 threshold is defined in those units;
- rows are ordered [kept originals, clones, split children (all first samples, then all second samples)];
- the reference zeroes the max-2D-radius statistic when it appends clones, *before* its prune test, so its
  screen-size criterion never fires; ``DensifyConfig.screen_size_prune`` (off by default) applies it as intended.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from methods.gaussians.config import DENSIFY_PRESETS, DensifyConfig, LearningRates  # noqa: F401 (re-exported)
from methods.gaussians.model import PARAM_NAMES, GaussianModel, quat_to_rotmat

__all__ = [
    "LearningRates",
    "make_optimizer",
    "position_lr",
    "update_position_lr",
    "DensifyConfig",
    "DENSIFY_PRESETS",
    "DensifyStats",
    "densify_and_prune",
    "reset_opacity",
    "RESET_OPACITY",
]

RESET_OPACITY = 0.01
_MOMENT_KEYS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


# ----- optimizer --------------------------------------------------------------------------------------------------
def make_optimizer(model: GaussianModel, extent: float, lr_cfg: LearningRates | None = None) -> torch.optim.Adam:
    """Adam with one named group per attribute and eps 1e-15 (the reference value: the default 1e-8 is large
    next to the tiny second moments of the position gradients and would damp them)."""
    lrs = (lr_cfg or LearningRates()).group_lrs(extent)
    groups = [{"params": [p], "lr": lrs[name], "name": name} for name, p in model.params().items()]
    return torch.optim.Adam(groups, lr=0.0, eps=1e-15)


def position_lr(step: int, extent: float, lr_init: float = 1.6e-4, lr_final: float = 1.6e-6,
                max_steps: int = 30_000) -> float:
    """Position learning rate at ``step``: log-linear from lr_init·extent (step 0) to lr_final·extent (max_steps),
    constant afterwards; 0 before step 0."""
    if step < 0 or (lr_init == 0.0 and lr_final == 0.0):
        return 0.0
    t = min(max(step / max_steps, 0.0), 1.0)
    return extent * math.exp(math.log(lr_init) * (1.0 - t) + math.log(lr_final) * t)


def update_position_lr(optimizer: torch.optim.Optimizer, step: int, extent: float,
                       lr_cfg: LearningRates | None = None) -> float:
    """Set the ``means`` group's learning rate for ``step``; returns it."""
    c = lr_cfg or LearningRates()
    lr = position_lr(step, extent, c.position_init, c.position_final, c.position_max_steps)
    for group in optimizer.param_groups:
        if group.get("name") == "means":
            group["lr"] = lr
    return lr


# ----- statistics -------------------------------------------------------------------------------------------------
@dataclass
class DensifyStats:
    """Per-Gaussian accumulators between refinements."""

    grad_accum: torch.Tensor            # (N,) sum of NDC-space 2D-mean gradient norms
    count: torch.Tensor                 # (N,) number of views in which the Gaussian was visible
    max_radii: torch.Tensor             # (N,) largest screen radius seen (px)

    @classmethod
    def zeros(cls, n: int, device: str | torch.device = "cpu") -> "DensifyStats":
        z = lambda: torch.zeros(n, dtype=torch.float32, device=device)  # noqa: E731
        return cls(z(), z(), z())

    def __len__(self) -> int:
        return int(self.grad_accum.shape[0])

    def reset(self, n: int | None = None) -> None:
        """Zero all statistics (for ``n`` Gaussians, default: the current count)."""
        fresh = DensifyStats.zeros(len(self) if n is None else n, self.grad_accum.device)
        self.grad_accum, self.count, self.max_radii = fresh.grad_accum, fresh.count, fresh.max_radii

    @torch.no_grad()
    def update(self, means2d_grad: torch.Tensor | None, radii: torch.Tensor, width: int, height: int) -> None:
        """Accumulate one rendered view: ``means2d_grad`` (N,2) is d loss / d pixel position, ``radii`` (N,) the
        screen radii (0 = not rendered). Pixel gradients become NDC gradients by × (W/2, H/2)."""
        if means2d_grad is None:
            raise ValueError("DensifyStats.update: means2d has no gradient; call backward() first and make sure the "
                             "rasterizer retains the grad of means2d")
        n = len(self)
        if tuple(means2d_grad.shape[:1]) != (n,) or tuple(radii.shape) != (n,):
            raise ValueError(f"DensifyStats.update: expected ({n},2) gradients and ({n},) radii, got "
                             f"{tuple(means2d_grad.shape)} and {tuple(radii.shape)}")
        dev = self.grad_accum.device
        visible = radii.to(dev) > 0
        g = means2d_grad.detach()[:, :2].to(dev, torch.float32)
        scale = torch.tensor([width * 0.5, height * 0.5], dtype=torch.float32, device=dev)
        norm = torch.linalg.vector_norm(g * scale, dim=-1)
        self.grad_accum += torch.where(visible, norm, torch.zeros_like(norm))
        self.count += visible.to(torch.float32)
        self.max_radii = torch.where(visible, torch.maximum(self.max_radii, radii.to(dev, torch.float32)),
                                     self.max_radii)

    def mean_grad(self) -> torch.Tensor:
        """Average gradient per visible view; never-visible Gaussians get 0."""
        return torch.nan_to_num(self.grad_accum / self.count, nan=0.0)


# ----- row surgery shared by model and optimizer ------------------------------------------------------------------
def _groups_by_name(optimizer: torch.optim.Optimizer | None, model: GaussianModel) -> dict[str, dict]:
    if optimizer is None:
        return {}
    groups = {g.get("name"): g for g in optimizer.param_groups}
    for name in PARAM_NAMES:
        g = groups.get(name)
        if g is not None and (len(g["params"]) != 1 or g["params"][0] is not getattr(model, name)):
            raise ValueError(f"optimizer group {name!r} does not hold the model's {name} Parameter; "
                             "build the optimizer with make_optimizer(model, ...) after the last model swap")
    return groups


def _append_and_select(model: GaussianModel, optimizer: torch.optim.Optimizer | None,
                       extra: dict[str, torch.Tensor], keep: torch.Tensor) -> None:
    """For every parameter: rows = cat(old, extra)[keep]; Adam moments the same with zeros for the extra rows."""
    groups = _groups_by_name(optimizer, model)
    for name in PARAM_NAMES:
        old = getattr(model, name)
        new = torch.nn.Parameter(torch.cat([old.detach(), extra[name].detach()])[keep].contiguous(),
                                 requires_grad=old.requires_grad)
        group = groups.get(name)
        if group is not None:
            state = optimizer.state.pop(old, None)
            if state:
                for key in _MOMENT_KEYS:
                    if key in state:
                        state[key] = torch.cat([state[key], torch.zeros_like(extra[name])])[keep].contiguous()
                optimizer.state[new] = state
            group["params"][0] = new
        setattr(model, name, new)


# ----- densification ----------------------------------------------------------------------------------------------
@torch.no_grad()
def densify_and_prune(model: GaussianModel, stats: DensifyStats, optimizer: torch.optim.Optimizer | None,
                      cfg: DensifyConfig, extent: float, it: int, *,
                      generator: torch.Generator | None = None) -> dict[str, int]:
    """Clone small high-gradient Gaussians, split large ones, prune transparent (and, after the first opacity
    reset, oversized) ones; then replace the model's Parameters, remap the optimizer and reset ``stats``.

    ``filter_3d`` rows are carried along (children inherit their parent's value) so the model stays consistent,
    but the caller should recompute it from the training cameras, as Mip-Splatting does after every refinement.
    Returns counts: cloned, split (parents), pruned, before, after.
    """
    n0 = model.num_gaussians
    if len(stats) != n0:
        raise ValueError(f"densify stats track {len(stats)} Gaussians but the model has {n0}")
    dev = model.device
    grads = stats.mean_grad().to(dev)
    scales = model.scales.detach()
    max_scale = scales.max(dim=1).values
    high = grads >= cfg.grad_threshold
    small = max_scale <= cfg.percent_dense * extent
    clone_mask = high & small
    split_mask = high & ~small
    k = cfg.split_n

    params = {name: p.detach() for name, p in model.params().items()}
    clones = {name: t[clone_mask] for name, t in params.items()}
    children = {name: t[split_mask].repeat((k,) + (1,) * (t.ndim - 1))
                for name, t in params.items()}
    if int(split_mask.sum()):
        stds = scales[split_mask].repeat(k, 1)
        noise = torch.randn(stds.shape, generator=generator, device="cpu", dtype=stds.dtype).to(dev)
        rot = quat_to_rotmat(params["quats"][split_mask]).repeat(k, 1, 1)
        offsets = torch.bmm(rot, (noise * stds).unsqueeze(-1)).squeeze(-1)
        children["means"] = params["means"][split_mask].repeat(k, 1) + offsets
        children["log_scales"] = torch.log(stds / cfg.split_scale_div)
    extra = {name: torch.cat([clones[name], children[name]]) for name in PARAM_NAMES}

    n_clone, n_child = int(clone_mask.sum()), int(split_mask.sum()) * k
    is_split_parent = torch.cat([split_mask, torch.zeros(n_clone + n_child, dtype=torch.bool, device=dev)])
    full = {name: torch.cat([params[name], extra[name]]) for name in PARAM_NAMES}
    prune = torch.sigmoid(full["logit_opacities"]) < cfg.min_opacity
    if cfg.prunes_big(it):
        prune |= torch.exp(full["log_scales"]).max(dim=1).values > cfg.max_world_frac * extent
        if cfg.screen_size_prune:
            radii = torch.cat([stats.max_radii.to(dev), stats.max_radii.to(dev)[clone_mask],
                               torch.zeros(n_child, device=dev)])
            prune |= radii > cfg.max_screen_size
    keep = ~is_split_parent & ~prune
    n_pruned = int((prune & ~is_split_parent).sum())

    if model.filter_3d is not None:
        f = model.filter_3d
        model.filter_3d = torch.cat([f, f[clone_mask], f[split_mask].repeat(k)])[keep].contiguous()
    _append_and_select(model, optimizer, extra, keep)
    stats.reset(model.num_gaussians)
    return {"cloned": n_clone, "split": int(split_mask.sum()), "pruned": n_pruned, "before": n0,
            "after": model.num_gaussians}


@torch.no_grad()
def reset_opacity(model: GaussianModel, optimizer: torch.optim.Optimizer | None, use_3d_filter: bool = True) -> None:
    """Cap the *rendered* opacity at 0.01 so floaters must re-earn their opacity; with the 3D filter the cap
    applies to the filtered opacity and is divided back by the filter coefficient. The opacity group's Adam
    moments are zeroed (its step count is kept). The Parameter is updated in place."""
    _, eff = model.effective(use_3d_filter)
    target = torch.clamp(eff, max=RESET_OPACITY)
    if use_3d_filter and model.filter_3d is not None:
        target = target / model.filter_coefficients()[1]
    model.logit_opacities.copy_(torch.log(target) - torch.log1p(-target))
    group = _groups_by_name(optimizer, model).get("logit_opacities")
    if group is not None:
        state = optimizer.state.get(group["params"][0])
        for key in _MOMENT_KEYS:
            if state and key in state:
                state[key].zero_()
