"""MINER configurations as dataclass presets (no torch here, so CLI choices and Jobs-panel combos are cheap).

``paper`` follows the paper and its official code (research sr_miner.md B1/B2): sine activations (omega0 150) with
the scale-dependent SIREN init, a 4x wider coarsest level, children initialised from their parent block / 2, Adam
5e-4 x 0.999^epoch, full-batch epochs, blocks active when their residual's mean square exceeds 5e-4 and stopped at
an MSE of 1e-4 x the block's target mean square, a level ending early once its loss falls by less than 5e-7 per
epoch (the official switch_thres). ``lightning`` follows kwea123's version (B4): Gaussian
activations with a learned width, a sigmoid output at the coarsest level and a scaled sine at finer ones,
positional encoding, per-block 1/MSE loss weighting, RAdam 3e-2 with cosine decay, 256 random positions per step,
an absolute stop threshold, no weight sharing. Both share one implementation: only these fields differ.

Deliberate choice (both presets): a block's local coordinates are its pixel *centres* in [-1, 1]
(-1 + (2i + 1) / b), not linspace(-1, 1, b), so neighbouring blocks tile [-1, 1] without overlap and a continuous
query anywhere inside a block stays inside the range the block was trained on.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

ACTIVATIONS = ("sine", "gauss")
OUTPUTS = ("linear", "lightning")
OPTIMIZERS = ("adam", "radam")
SCHEDULES = ("exp", "cosine")
WEIGHTINGS = ("mse", "inv_mse")


@dataclass(frozen=True)
class MinerConfig:
    name: str = "paper"
    levels: int = 4                  # J pyramid levels (0 = full resolution)
    block: int = 32                  # b: a block is b x b pixels at every level
    hidden: int = 18                 # F: hidden features of a block MLP
    hidden_layers: int = 2           # hidden F -> F layers after the first (2 -> 795 parameters per RGB block)
    coarse_width: int = 4            # the coarsest level's MLPs are this many times wider
    activation: str = "sine"         # "sine": sin(omega0 z); "gauss": exp(-z^2 / (2 a^2)), a learned per block
    omega0: float = 150.0
    output: str = "linear"           # "linear"; "lightning": sigmoid at the coarsest level, a x |residual| sine finer
    pe_freqs: int = 0                # positional encoding [sin(2^k x), cos(2^k x)], k < pe_freqs (0 = raw x)
    weight_share: bool = True        # finer blocks start from their parent's parameters / 2 (same width only)
    loss_weighting: str = "mse"      # "inv_mse": each block's MSE / its detached value (optimises log-MSE)
    optimizer: str = "adam"
    lr: float = 5e-4
    schedule: str = "exp"            # "exp": lr x 0.999^epoch; "cosine": lr -> lr / 30 over the level's epochs
    epochs: tuple[int, ...] = (500,)  # per level, coarse to fine; the last value repeats for the remaining levels
    pixels_per_step: int = 0         # 0: every pixel of every block each step (full batch); else random positions
    active_threshold: float = 5e-4   # a block whose residual's mean square is at most this never trains
    stop_mse: float = 1e-4           # a block stops (pruned) when its MSE <= this (x its target's mean square if
    stop_relative: bool = True       # stop_relative)
    check_every: int = 10            # epochs between pruning checks (and PSNR reports)
    switch_mse: float = 5e-7         # a level ends when its mean block MSE falls by less than this per epoch (0: off)
    chunk_blocks: int = 64           # blocks per forward/backward at width ``hidden`` on all b² pixels (see chunk)
    seed: int = 0
    threads: int = 0                 # torch threads (0 = leave as is)
    out_dir: str = ""

    def __post_init__(self) -> None:
        checks = ((self.activation, ACTIVATIONS, "activation"), (self.output, OUTPUTS, "output"),
                  (self.optimizer, OPTIMIZERS, "optimizer"), (self.schedule, SCHEDULES, "schedule"),
                  (self.loss_weighting, WEIGHTINGS, "loss_weighting"))
        for value, valid, what in checks:
            if value not in valid:
                raise ValueError(f"unknown MINER {what} {value!r}; valid: {', '.join(valid)}")
        if self.levels < 1 or self.block < 2 or self.hidden < 1 or self.hidden_layers < 0 or self.coarse_width < 1:
            raise ValueError("MINER needs levels >= 1, block >= 2, hidden >= 1, hidden_layers >= 0, coarse_width >= 1")
        if not self.epochs or min(self.epochs) < 0:
            raise ValueError("epochs must list at least one non-negative count per level")
        if not (self.lr > 0 and math.isfinite(self.lr)) or self.pixels_per_step < 0 or self.chunk_blocks < 1:
            raise ValueError("lr must be > 0, pixels_per_step >= 0 and chunk_blocks >= 1")
        if self.active_threshold < 0 or self.stop_mse < 0 or self.switch_mse < 0 or self.check_every < 1:
            raise ValueError("active_threshold, stop_mse and switch_mse must be >= 0 and check_every >= 1")

    def epochs_at(self, coarse_index: int) -> int:
        """Epochs of the level ``coarse_index`` steps from the coarsest (0 = coarsest)."""
        return self.epochs[min(coarse_index, len(self.epochs) - 1)]

    def width(self, level: int) -> int:
        return self.hidden * (self.coarse_width if level == self.levels - 1 else 1)

    def chunk(self, level: int, pixels: int = 0) -> int:
        """Blocks per forward/backward at ``level`` with ``pixels`` positions per block (0: all b²). The chunk's
        activations stay near ``chunk_blocks`` x hidden x b² values whatever the width and batch, so they fit in
        cache and memory is bounded for any image size: on 2 cores 64 blocks of 32² train 2.4x faster per block
        than 1024 (bench/miner.py), and the 4x wider coarsest level is fastest with a quarter of that."""
        pix = pixels or self.block * self.block
        return max(1, self.chunk_blocks * self.hidden * self.block * self.block // (self.width(level) * pix))

    def multiple(self) -> int:
        """Image sides must be multiples of this (b x 2^(J-1)); other sizes are padded."""
        return self.block * 2 ** (self.levels - 1)

    def with_(self, **changes: Any) -> "MinerConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "MinerConfig":
        d = {k: v for k, v in d.items() if k in MinerConfig.__dataclass_fields__}
        if "epochs" in d:
            d["epochs"] = tuple(d["epochs"])
        return MinerConfig(**d)


PRESETS: dict[str, MinerConfig] = {
    "paper": MinerConfig(),
    "lightning": MinerConfig(name="lightning", hidden=20, hidden_layers=1, coarse_width=1, activation="gauss",
                             output="lightning", pe_freqs=4, weight_share=False, loss_weighting="inv_mse",
                             optimizer="radam", lr=3e-2, schedule="cosine", epochs=(50, 50, 50, 200),
                             pixels_per_step=256, stop_mse=1e-4, stop_relative=False, switch_mse=0.0),
    # 2 CPU cores: the paper's model with fewer epochs per level
    "cpu": MinerConfig(name="cpu", epochs=(200, 200, 150, 150), check_every=10),
    # unit tests: a 128² image, 3 levels of 16² blocks, seconds on 2 cores
    "test_tiny": MinerConfig(name="test_tiny", levels=3, block=16, hidden=16, omega0=60.0, lr=1e-3, epochs=(150,),
                             check_every=10),
}


def preset(name: str, **changes: Any) -> MinerConfig:
    try:
        base = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown MINER preset {name!r}; valid: {', '.join(PRESETS)}") from None
    return base.with_(**changes) if changes else base
