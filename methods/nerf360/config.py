"""Mip-NeRF 360 model and training configuration (report research/mipnerf360.md §1, §3): frozen dataclasses + presets.

Pure dataclasses (no torch), so a CLI or the Jobs panel can list presets without loading the trainer. Presets are a
dict of instances (:data:`TRAIN_PRESETS`); a variation is ``TrainConfig.preset(name, **changes)``.

``ModelConfig.samples`` is the level schedule: one interval count per round, the last one being the NeRF round and
every earlier one a proposal round, so (64, 64, 32) is the paper's two proposal rounds + NeRF and (N,) is plain
uniform-in-s sampling with N NeRF samples and no proposal at all (the baseline a sampler-efficiency view compares
against).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["ModelConfig", "TrainConfig", "SceneView", "TRAIN_PRESETS", "DENSITY_ACTIVATIONS", "DELTA_SPACES",
           "IPE_BASIS_NAMES"]

#: names understood by the model (kept here so configs validate without importing torch)
DENSITY_ACTIVATIONS = ("softplus", "exp", "relu")
DELTA_SPACES = ("metric", "contracted")
IPE_BASIS_NAMES = ("axes", "icosahedron")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and sampler. Defaults are the paper's 360 configuration (report §1.4, §1.7, §3.1)."""

    prop_width: int = 256               # PropMLP 4 x 256, density only, shared by every proposal round
    prop_depth: int = 4
    nerf_width: int = 1024              # NerfMLP 8 x 1024
    nerf_depth: int = 8
    skip_every: int = 4                 # the input is concatenated again before layer i when i % skip_every == 0, i > 0
    bottleneck_width: int = 256         # linear bottleneck feeding the view-dependent colour branch
    view_width: int = 128               # colour branch: view_depth x view_width ReLU layers, then 3 sigmoid outputs
    view_depth: int = 1
    samples: tuple[int, ...] = (64, 64, 32)
    ipe_basis: str = "icosahedron"      # 21 directions (504 features at 12 octaves); "axes" = 3 (72 features)
    ipe_min_deg: int = 0
    ipe_max_deg: int = 12               # octaves 2^0 … 2^11
    view_deg: int = 4                   # view-direction PE octaves 2^0 … 2^3 plus the raw direction: 27 dims
    dilation_bias: float = 0.0025       # ε_k = bias + mult / ∏_{j<k} n_j (s units)
    dilation_mult: float = 0.5
    anneal_slope: float = 10.0          # a = slope·x / ((slope − 1)·x + 1), x = training fraction
    resample_padding: float = 0.0
    density_bias: float = -1.0          # σ = activation(raw + bias): softplus(x − 1) as in the paper
    density_activation: str = "softplus"  # "exp" is exp(min(x, 15)): NGP's truncated exponential
    # the interval length Δ in σΔ: "metric" (the paper: Δt·‖d‖) or "contracted" (the chord between the contracted
    # edge points — the space the MLP lives in; identical inside the unit ball). With metric Δ the far intervals
    # (tens to hundreds of scene radii) are opaque from the first step, and a small MLP on a short schedule settles
    # on painting the whole scene onto that far shell instead of learning the foreground (see the cpu preset).
    delta_space: str = "metric"
    rgb_padding: float = 0.001          # sigmoid rescaled to [−p, 1 + p] so 0 and 1 stay reachable

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples", tuple(int(n) for n in self.samples))
        if not self.samples or any(n < 1 for n in self.samples):
            raise ValueError(f"samples must be one or more counts >= 1, got {self.samples}")
        for k in ("prop_width", "prop_depth", "nerf_width", "nerf_depth", "skip_every", "bottleneck_width",
                  "view_width", "view_deg"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(self, k)}")
        if self.view_depth < 0:
            raise ValueError(f"view_depth must be >= 0, got {self.view_depth}")
        if not 0 <= self.ipe_min_deg < self.ipe_max_deg:
            raise ValueError(f"need 0 <= ipe_min_deg < ipe_max_deg, got {self.ipe_min_deg}, {self.ipe_max_deg}")
        if self.ipe_basis not in IPE_BASIS_NAMES:
            raise ValueError(f"unknown IPE basis {self.ipe_basis!r}; valid: {', '.join(IPE_BASIS_NAMES)}")
        if self.delta_space not in DELTA_SPACES:
            raise ValueError(f"unknown delta space {self.delta_space!r}; valid: {', '.join(DELTA_SPACES)}")
        if self.density_activation not in DENSITY_ACTIVATIONS:
            raise ValueError(f"unknown density activation {self.density_activation!r}; "
                             f"valid: {', '.join(DENSITY_ACTIVATIONS)}")

    @property
    def proposal_rounds(self) -> int:
        return len(self.samples) - 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["samples"] = list(self.samples)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "ModelConfig":
        known = ModelConfig.__dataclass_fields__
        return ModelConfig(**{k: (tuple(v) if k == "samples" else v) for k, v in d.items() if k in known})


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on (report §2.4, §3.2–3.3). ``steps`` count optimisation steps from 1.

    Learning rate: log-linear ``lr_init`` → ``lr_final`` over ``steps``, times the warm-up multiplier
    lr_delay_mult + (1 − lr_delay_mult)·sin(π/2·min(step/lr_delay_steps, 1)). Gradients are clipped per MLP to a
    global norm of ``grad_max_norm`` (0 = off). Loss = charbonnier(NeRF) + prop_loss_mult·interlevel +
    distortion_loss_mult·distortion.
    """

    name: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 250_000
    batch_rays: int = 16_384
    lr_init: float = 2e-3
    lr_final: float = 2e-5
    lr_delay_steps: int = 512
    lr_delay_mult: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-6
    grad_max_norm: float = 1e-3
    prop_loss_mult: float = 1.0
    distortion_loss_mult: float = 0.01
    charb_eps: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 25_000      # 0 = only at the end (and on cancel)
    out_dir: str = ""                   # "" = <cache>/runs/nerf360-<preset>-<time>
    image_scale: float = 1.0            # training images are loaded at this dataset scale
    eval_split: str = "test"            # held-out views (always evaluated at scale 1)
    eval_views: int = 0                 # 0 = every held-out view
    preview_interval_s: float = 5.0
    preview_max_side: int = 128         # the preview renders the held-out camera scaled down to at most this side
    chunk: int = 4096                   # rays per forward pass when rendering whole images
    threads: int = 0                    # torch intra-op threads for the run; 0 = leave as is

    def __post_init__(self) -> None:
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"model must be a ModelConfig, got {type(self.model).__name__}")
        for k in ("steps", "batch_rays", "chunk", "preview_max_side"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(self, k)}")
        if not (0 < self.lr_final <= self.lr_init and math.isfinite(self.lr_init)):
            raise ValueError(f"need 0 < lr_final <= lr_init, got {self.lr_final}, {self.lr_init}")
        if not 0 < self.lr_delay_mult <= 1:
            raise ValueError(f"lr_delay_mult must be in (0, 1], got {self.lr_delay_mult}")
        if not (math.isfinite(self.image_scale) and self.image_scale > 0):
            raise ValueError(f"image_scale must be a positive number, got {self.image_scale}")
        if self.grad_max_norm < 0 or self.checkpoint_every < 0 or self.eval_views < 0:
            raise ValueError("grad_max_norm, checkpoint_every and eval_views must be >= 0")

    def with_(self, **changes: Any) -> "TrainConfig":
        """A copy with fields changed; ``model`` may be a dict of ModelConfig field changes."""
        if isinstance(changes.get("model"), dict):
            changes["model"] = replace(self.model, **changes["model"])
        return replace(self, **changes)

    @staticmethod
    def preset(name: str, **changes: Any) -> "TrainConfig":
        """A named preset, optionally changed; unknown names are one clear error."""
        try:
            base = TRAIN_PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown nerf360 training preset {name!r}; valid: {', '.join(TRAIN_PRESETS)}") from None
        return base.with_(**changes) if changes else base

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        d["model"] = ModelConfig.from_dict(d.get("model", {}))
        known = TrainConfig.__dataclass_fields__
        return TrainConfig(**{k: v for k, v in d.items() if k in known})


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # report §3.1/§3.2: PropMLP 4x256 + NerfMLP 8x1024 on the 21-direction IPE, 64/64/32 samples, 250k steps of
    # 16384 rays, Adam 2e-3 -> 2e-5 with a 512-step warm-up at 0.01, per-MLP clipping at 1e-3. GPU-scale only.
    "paper": TrainConfig(),
    # report §3.3: debug.gin-sized MLPs (2x64 / 4x128) on the 3-axis IPE (72-d), 48/48/24 samples, 1024 rays per
    # step, 3000 steps at 128x96 (the default unbounded dataset at scale 1). The lr is 2.5x the paper's with a short
    # warm-up: a 3k-step run cannot afford debug.gin's 10x smaller one. Clipping stays the paper's 1e-3 per MLP (with
    # Adam it changed nothing measurable on the tiny scene: 22.80 vs 22.11 dB unclipped). Δ in contracted space and
    # exp density: with the paper's metric Δ + softplus this model learned no foreground at all (median depth 6-9 m
    # where the truth is 1.4-4 m: everything painted on a far shell); with both changes the ground lands at its true
    # depth within a few hundred steps (neither change alone does).
    "cpu": TrainConfig(
        name="cpu", model=ModelConfig(prop_width=64, prop_depth=2, nerf_width=128, nerf_depth=4, bottleneck_width=64,
                                      view_width=64, samples=(48, 48, 24), ipe_basis="axes",
                                      density_activation="exp", delta_space="contracted"),
        steps=3000, batch_rays=1024, lr_init=5e-3, lr_final=5e-5, lr_delay_steps=100, lr_delay_mult=0.1,
        checkpoint_every=500, eval_views=4, preview_interval_s=10.0, preview_max_side=64),
    # unit tests: the cpu recipe shrunk further (32/32/16 samples, 512 rays) for ~20 s on 2 cores on the 32x24 tiny
    # scene; the PSNR it reaches is stated in tests/test_nerf360_model.py
    "test_tiny": TrainConfig(
        name="test_tiny", model=ModelConfig(prop_width=32, prop_depth=2, nerf_width=64, nerf_depth=3,
                                            bottleneck_width=32, view_width=32, samples=(32, 32, 16),
                                            ipe_basis="axes", ipe_max_deg=8),
        steps=300, batch_rays=512, lr_init=1e-2, lr_final=1e-3, lr_delay_steps=20, lr_delay_mult=0.1,
        checkpoint_every=0, preview_interval_s=2.0, chunk=2048),
}


@dataclass(frozen=True)
class SceneView:
    """How a trained model wants to be looked at, stored in its checkpoint (and a live trainer's snapshot info).

    ``focal`` is the training images' focal length in pixels — zoom 1 in a view, so the zoom slider keeps meaning
    "sampling rate relative to training" and a view's cone radii compare with the training ones; ``eye`` is a held-out
    camera's position and ``center`` the point the cameras look at; ``near``/``far`` the depth range rays use."""

    focal: float
    width: int
    height: int
    near: float
    far: float
    eye: tuple[float, float, float]
    center: tuple[float, float, float]

    def __post_init__(self) -> None:
        vals = (self.focal, self.near, self.far, *self.eye, *self.center)
        if not all(math.isfinite(float(v)) for v in vals):
            raise ValueError("scene view values must be finite")
        if not (self.focal > 0 and 0 < self.near < self.far):
            raise ValueError(f"need focal > 0 and 0 < near < far, got {self.focal}, {self.near}, {self.far}")

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "SceneView":
        return SceneView(focal=float(d["focal"]), width=int(d["width"]), height=int(d["height"]),
                         near=float(d["near"]), far=float(d["far"]),
                         eye=tuple(float(v) for v in d["eye"]), center=tuple(float(v) for v in d["center"]))
