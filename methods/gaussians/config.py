"""Training configuration of 3DGS / Mip-Splatting: the method registry, schedules and their presets.

Pure dataclasses (no torch), so the CLI's choices and the Jobs panel's combos are generated from
:data:`METHODS` and :data:`TRAIN_PRESETS` without loading the trainer. :mod:`methods.gaussians.train` and
:mod:`methods.gaussians.densify` re-export everything here under the names they always had.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

__all__ = ["LearningRates", "DensifyConfig", "DENSIFY_PRESETS", "MethodSpec", "METHODS", "INITS", "TrainConfig",
           "TRAIN_PRESETS", "FINETUNE_PRESETS"]


# ----- learning rates ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LearningRates:
    """3DGS per-attribute learning rates; positions are multiplied by the scene extent and decay log-linearly."""

    position_init: float = 1.6e-4
    position_final: float = 1.6e-6
    position_max_steps: int = 30_000
    sh_dc: float = 2.5e-3
    sh_rest: float = 2.5e-3 / 20.0
    opacity: float = 0.05
    scaling: float = 0.005
    rotation: float = 0.001

    def group_lrs(self, extent: float) -> dict[str, float]:
        """Initial learning rate per param-group name."""
        return {"means": self.position_init * extent, "quats": self.rotation, "log_scales": self.scaling,
                "logit_opacities": self.opacity, "sh_dc": self.sh_dc, "sh_rest": self.sh_rest}


# ----- densification schedule -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DensifyConfig:
    """When and how to densify. Defaults are the paper's (30k-step runs)."""

    grad_threshold: float = 2e-4        # mean NDC-space 2D-mean gradient norm that triggers clone/split
    percent_dense: float = 0.01         # clone if max scale ≤ this × extent, else split
    min_opacity: float = 0.005
    max_screen_size: float = 20.0       # px, only with screen_size_prune
    max_world_frac: float = 0.1         # prune if max scale > this × extent (after the first opacity reset)
    split_n: int = 2
    split_scale_div: float = 1.6        # = 0.8 · split_n in the reference
    from_iter: int = 500
    until_iter: int = 15_000
    interval: int = 100
    opacity_reset_interval: int = 3000
    screen_size_prune: bool = False     # see the module docstring
    reset_at_start: bool = True         # the reference also resets opacities once at from_iter on white backgrounds

    @classmethod
    def paper(cls) -> "DensifyConfig":
        return cls()

    @classmethod
    def cpu_small(cls) -> "DensifyConfig":
        """For ~3000-step CPU runs on small images: same thresholds, a compressed schedule that still leaves
        ≥ 50 iterations of statistics between refinements."""
        return cls(from_iter=100, until_iter=1500, interval=50, opacity_reset_interval=500)

    @classmethod
    def preset(cls, name: str) -> "DensifyConfig":
        try:
            return DENSIFY_PRESETS[name]()
        except KeyError:
            raise KeyError(f"unknown densify preset {name!r}; choose one of {', '.join(DENSIFY_PRESETS)}") from None

    def scaled(self, total_steps: int, reference_steps: int = 30_000) -> "DensifyConfig":
        """The same schedule compressed proportionally to a run of ``total_steps``."""
        f = total_steps / reference_steps
        return replace(self, from_iter=round(self.from_iter * f), until_iter=round(self.until_iter * f),
                       interval=max(1, round(self.interval * f)),
                       opacity_reset_interval=max(1, round(self.opacity_reset_interval * f)))

    def should_densify(self, it: int) -> bool:
        """Reference schedule: it > from_iter, it < until_iter, it % interval == 0 (iterations count from 1)."""
        return self.from_iter < it < self.until_iter and it % self.interval == 0

    def should_reset_opacity(self, it: int, white_background: bool = False) -> bool:
        """Every opacity_reset_interval while densifying, plus once at from_iter on white backgrounds."""
        if not 0 < it < self.until_iter:
            return False
        return it % self.opacity_reset_interval == 0 or (self.reset_at_start and white_background
                                                          and it == self.from_iter)

    def prunes_big(self, it: int) -> bool:
        """Oversized Gaussians are pruned only after the first opacity reset (reference: it > reset interval)."""
        return it > self.opacity_reset_interval


DENSIFY_PRESETS: dict[str, Callable[[], DensifyConfig]] = {
    "paper": DensifyConfig.paper,
    "cpu_small": DensifyConfig.cpu_small,
}


# ----- training runs --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MethodSpec:
    """How a method renders: the rasterizer's 2D filter and whether the model carries the 3D smoothing filter."""

    filter: str
    use_3d_filter: bool
    label: str


METHODS: dict[str, MethodSpec] = {
    "3dgs": MethodSpec(filter="3dgs", use_3d_filter=False, label="3DGS"),
    "mip": MethodSpec(filter="mip", use_3d_filter=True, label="Mip-Splatting"),
}
INITS = ("random", "points")
LOSSES = ("l1_dssim", "l2")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; presets in :data:`TRAIN_PRESETS`, changes via :meth:`with_`.

    Iterations count from 1 (as in the reference); ``lr.position_max_steps`` should equal ``iterations`` so the
    position learning rate reaches its final value on the last step (the presets do this).
    """

    name: str = "paper"
    iterations: int = 30_000
    method: str = "mip"                     # key of METHODS
    white_background: bool = True           # Blender protocol; must match how the dataset was composited
    init: str = "random"                    # "random": uniform in the init box; "points": a point-cloud PLY
    n_init_points: int = 100_000
    init_box: float = 1.3                   # random init in [-init_box, init_box]³ (the Blender recipe)
    points_path: str = ""                   # for init="points"; default <dataset>/points3d.ply
    sh_degree: int = 3
    sh_interval: int = 1000                 # one more SH band every this many iterations
    lambda_dssim: float = 0.2               # loss = (1-λ)·L1 + λ·(1-SSIM)
    loss: str = "l1_dssim"                  # or "l2": plain MSE (Mipmap-GS finetuning)
    lr: LearningRates = field(default_factory=LearningRates)
    densify: DensifyConfig = field(default_factory=DensifyConfig)
    filter3d_interval: int = 100            # mip: refresh the 3D filter this often once densification has ended
    train_scale: float = 1.0                # dataset scale the training images are loaded at
    eval_split: str = "test"                # held-out views for the preview and the final PSNR
    max_eval_views: int = 0                 # 0 = all
    seed: int = 0
    checkpoint_every: int = 0               # 0 = only at the end (and on cancel)
    preview_interval_s: float = 1.0
    out_dir: str = ""                       # "" = <cache>/runs/gaussians-<method>-<time>
    threads: int = 0                        # torch intra-op threads for the run; 0 = leave as is
    device: str = "auto"                    # "auto" (CUDA when torch sees a GPU), "cpu" or "cuda"
    backend: str = ""                       # rasterizer; "" = the best differentiable one on the device

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown Gaussian method {self.method!r}; valid: {', '.join(METHODS)}")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; valid: {', '.join(INITS)}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if self.init == "random" and self.n_init_points < 1:
            raise ValueError(f"n_init_points must be >= 1, got {self.n_init_points}")
        if not 0 <= self.sh_degree <= 3:
            raise ValueError(f"sh_degree must be 0..3, got {self.sh_degree}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}")
        if not 0.0 <= self.lambda_dssim <= 1.0:
            raise ValueError(f"lambda_dssim must be in [0, 1], got {self.lambda_dssim}")
        if not (math.isfinite(self.train_scale) and self.train_scale > 0):
            raise ValueError(f"train_scale must be a positive number, got {self.train_scale}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; valid: {', '.join(DEVICES)}")

    @property
    def spec(self) -> MethodSpec:
        return METHODS[self.method]

    @property
    def background(self) -> tuple[float, float, float]:
        return (1.0, 1.0, 1.0) if self.white_background else (0.0, 0.0, 0.0)

    def with_(self, **changes: Any) -> "TrainConfig":
        """A copy with fields changed; changing ``iterations`` also moves the position-LR horizon with it."""
        if "iterations" in changes and "lr" not in changes:
            changes["lr"] = replace(self.lr, position_max_steps=int(changes["iterations"]))
        return replace(self, **changes)

    def scaled_to(self, iterations: int) -> "TrainConfig":
        """The same recipe compressed or stretched to ``iterations``: densification window and interval, opacity
        resets, SH and 3D-filter intervals, checkpoints and the position-LR horizon all scale proportionally."""
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        f = iterations / self.iterations
        d = self.densify
        step = lambda v: max(1, round(v * f)) if v > 0 else v  # noqa: E731 - 0 keeps meaning "never"
        densify = replace(d, from_iter=round(d.from_iter * f), until_iter=round(d.until_iter * f),
                          interval=step(d.interval), opacity_reset_interval=step(d.opacity_reset_interval))
        return replace(self, iterations=int(iterations), densify=densify, sh_interval=step(self.sh_interval),
                       filter3d_interval=step(self.filter3d_interval), checkpoint_every=step(self.checkpoint_every),
                       lr=replace(self.lr, position_max_steps=int(iterations)))

    @staticmethod
    def preset(name: str, **changes: Any) -> "TrainConfig":
        """A named preset, optionally changed; unknown names are one clear error."""
        try:
            base = TRAIN_PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown training config {name!r}; valid: {', '.join(TRAIN_PRESETS)}") from None
        return base.with_(**changes) if changes else base

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        d["lr"] = LearningRates(**d.get("lr", {}))
        d["densify"] = DensifyConfig(**d.get("densify", {}))
        known = TrainConfig.__dataclass_fields__
        return TrainConfig(**{k: v for k, v in d.items() if k in known})


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # the reference recipe (§1.7): 30k iterations, densify 500..15000 every 100, reset every 3000, SH +1 every 1000
    "paper": TrainConfig(),
    # a few minutes on 2 CPU cores at ~64 px: the same schedule compressed 20x, with far fewer initial points
    "cpu_small": TrainConfig(
        name="cpu_small", iterations=1500, n_init_points=3000, sh_interval=250, filter3d_interval=50,
        lr=LearningRates(position_max_steps=1500),
        densify=DensifyConfig(from_iter=200, until_iter=1000, interval=100, opacity_reset_interval=500),
        max_eval_views=10, checkpoint_every=500),
    # unit tests: ~10-30 s on 2 CPU cores at 32 px (25 dB held-out on the 24-view tiny scene)
    "test_tiny": TrainConfig(
        name="test_tiny", iterations=600, n_init_points=1000, sh_degree=1, sh_interval=200, filter3d_interval=50,
        lr=LearningRates(position_max_steps=600),
        densify=DensifyConfig(from_iter=100, until_iter=500, interval=100, opacity_reset_interval=2000),
        preview_interval_s=0.5),
}

# Finetuning presets (not offered for training from scratch).
FINETUNE_PRESETS: dict[str, TrainConfig] = {
    # Mipmap-GS finetuning of a trained model at one target scale (research §3.4): 1000 steps of plain L2,
    # densification from step 2 to 1000 every 100, no opacity reset (the released white-background reset at step 2
    # is the `reset_at_start` switch), position learning rate 0 as released (finetune_level(position_lr="schedule")
    # is the alternative)
    "mipmap": TrainConfig(
        name="mipmap", iterations=1000, loss="l2", lambda_dssim=0.0, sh_interval=0, filter3d_interval=100,
        lr=LearningRates(position_init=0.0, position_final=0.0, position_max_steps=1000),
        densify=DensifyConfig(from_iter=2, until_iter=1000, interval=100, opacity_reset_interval=1_000_000,
                              reset_at_start=False),
        max_eval_views=0, preview_interval_s=2.0),
}
