"""GaussianSR / LIIF configurations as dataclass presets (no torch here, so CLI choices and Jobs-panel combos can be
built from them cheaply).

Units and conventions (research sr_miner.md A2/A8), chosen deliberately:
- coordinates are pixel centres in [-1, 1] (LIIF's ``make_coord``); LR pixel j's Gaussian is centred on pixel j's
  centre (the released code centres it on the cell's top-left corner: ``faithful`` reproduces that);
- Gaussian sizes are in LR pixels, so a Gaussian covers the same part of the image at every scale (the released
  code draws a fixed 5x5-HR-pixel kernel, i.e. narrower in the image as the scale grows);
- ``faithful`` also averages the per-pixel Gaussian parameters over the batch and over 7x7-tile positions, and
  clamps splatted features to [0, 1], as the released code does.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

MODEL_KINDS = ("gaussiansr", "liif")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture. ``kind`` picks GaussianSR or the LIIF baseline; both share the EDSR-baseline encoder."""

    kind: str = "gaussiansr"
    n_resblocks: int = 16                 # EDSR-baseline: 16 blocks of 64 features, no upsampler
    n_feats: int = 64
    # GaussianSR
    splat_channels: int = 8               # features splatted by the Gaussians; the rest are upsampled bicubically
    bank_size: int = 100                  # learnable Gaussian bank (a 10x10 grid of sigma_x, sigma_y at init)
    sigma_range: tuple[float, float] = (0.12, 1.2)  # init range of the bank's sigmas, LR pixels (code: 0.2..3 / 2.5)
    neighbours: int = 5                   # each HR point sums the Gaussians of its KxK nearest LR pixels
    decoder_kernel: int = 3               # LTE's coef/freq convolutions on the HR feature map (3 = 3x3, 1 = 1x1)
    n_freq: int = 128                     # LTE: frequencies (basis = 2 * n_freq)
    faithful: bool = False                # released code: batch-averaged parameters, corner-centred, [0,1] clamp
    # both
    hidden: int = 256
    layers: int = 4                       # hidden layers of the MLP (GaussianSR 4 with GELU; LIIF 4 with ReLU)
    rgb_skip: bool = False                # predict a residual over the bicubic upsampling (neither paper does)
    eval_choice: str = "argmax"           # bank choice at eval: "argmax" (deterministic one-hot) or "expectation"

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown SR model {self.kind!r}; valid: {', '.join(MODEL_KINDS)}")
        if not 0 < self.splat_channels <= self.n_feats:
            raise ValueError(f"splat_channels must be in 1..n_feats ({self.n_feats}), got {self.splat_channels}")
        if self.neighbours < 1 or self.neighbours % 2 == 0:
            raise ValueError(f"neighbours must be odd and >= 1, got {self.neighbours}")
        if self.decoder_kernel not in (1, 3):
            raise ValueError(f"decoder_kernel must be 1 or 3, got {self.decoder_kernel}")
        if self.eval_choice not in ("argmax", "expectation"):
            raise ValueError(f"eval_choice must be 'argmax' or 'expectation', got {self.eval_choice!r}")
        if self.bank_size < 1 or self.hidden < 1 or self.layers < 1 or self.n_freq < 1 or self.n_resblocks < 0:
            raise ValueError("bank_size, hidden, layers and n_freq must be >= 1 and n_resblocks >= 0")

    def with_(self, **changes: Any) -> "ModelConfig":
        return replace(self, **changes)


@dataclass(frozen=True)
class TrainConfig:
    """A training run (research A3): random HR crops, LR = antialiased bicubic resize to ``lr_size``², one scale
    s ~ U(scale_min, scale_max) per batch, ``samples`` random HR pixels per crop, L1, Adam, step decay."""

    name: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    iterations: int = 2_000_000           # 2000 epochs x 1000 iterations
    batch: int = 16
    lr_size: int = 48
    samples: int = 2304                   # HR pixels per crop (= 48²)
    scale_min: float = 1.0
    scale_max: float = 4.0
    lr: float = 1e-4
    decay_every: int = 200_000            # halve the learning rate every this many iterations
    gamma: float = 0.5
    photos: tuple[str, ...] = ()          # bundled photos to train on ("" = a folder given at run time)
    val_photo: str = "chelsea"            # held out: validation PSNR at x2/x3/x4 and the preview
    val_every: int = 1000
    checkpoint_every: int = 10_000
    preview_interval_s: float = 2.0
    seed: int = 0
    threads: int = 0                      # torch threads for the run; 0 = leave as is
    out_dir: str = ""

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.batch < 1 or self.samples < 1 or self.lr_size < 4:
            raise ValueError("iterations, batch and samples must be >= 1 and lr_size >= 4")
        if not (1.0 <= self.scale_min <= self.scale_max and math.isfinite(self.scale_max)):
            raise ValueError(f"need 1 <= scale_min <= scale_max, got {self.scale_min}..{self.scale_max}")
        if not self.lr > 0 or self.decay_every < 1 or not 0 < self.gamma <= 1:
            raise ValueError("lr must be > 0, decay_every >= 1 and gamma in (0, 1]")

    def with_(self, **changes: Any) -> "TrainConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        m = dict(d.get("model", {}))
        if "sigma_range" in m:
            m["sigma_range"] = tuple(m["sigma_range"])
        d["model"] = ModelConfig(**{k: v for k, v in m.items() if k in ModelConfig.__dataclass_fields__})
        d["photos"] = tuple(d.get("photos", ()))
        return TrainConfig(**{k: v for k, v in d.items() if k in TrainConfig.__dataclass_fields__})


# Bundled training photos for the cpu preset; the validation photo (chelsea) and everything in the eval are held out.
CPU_PHOTOS = ("astronaut", "coffee", "rocket", "hubble", "ihc", "retina", "camera", "coins", "brick", "gravel")

_CPU_MODEL = ModelConfig(n_resblocks=8, n_feats=32, splat_channels=8, hidden=128, layers=3, n_freq=64,
                         decoder_kernel=3, rgb_skip=True)

TRAIN_PRESETS: dict[str, TrainConfig] = {
    # research A3: DIV2K (give the folder), batch 16, Adam 1e-4 halved every 200 epochs of 1000 iterations
    "paper": TrainConfig(),
    # ~20 minutes on 2 CPU cores: a smaller encoder and decoder on the bundled photos
    # (lr 1e-3 rather than 4e-4: +0.17 dB at x4 on unseen photos after 1000 steps; 48 features instead of 32: +0.10
    # dB for 36 % more time per step)
    "cpu": TrainConfig(name="cpu", model=_CPU_MODEL, iterations=3500, batch=8, samples=1024, lr=1e-3,
                       decay_every=1000, photos=CPU_PHOTOS, val_every=250, checkpoint_every=500),
    # unit tests: ~45 s on 2 cores (+0.48 dB over bicubic at x2 on the held-out photo). Fewer steps or a smaller
    # model stay at bicubic; textures (brick, gravel) teach sharpening much faster than smooth photos.
    "test_tiny": TrainConfig(name="test_tiny", model=_CPU_MODEL.with_(n_resblocks=4), iterations=200, batch=4,
                             lr_size=32, samples=512, scale_min=1.5, scale_max=3.0, lr=1e-3, decay_every=150,
                             photos=("brick", "gravel", "camera", "astronaut"), val_every=200, checkpoint_every=0,
                             preview_interval_s=0.5),
}


def preset(name: str, **changes: Any) -> TrainConfig:
    try:
        base = TRAIN_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown GaussianSR preset {name!r}; valid: {', '.join(TRAIN_PRESETS)}") from None
    return base.with_(**changes) if changes else base
