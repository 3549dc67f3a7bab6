"""NGSSF training schedules and their presets — pure dataclasses (no torch), so the CLI's choices and the Jobs
panel's combos come from :data:`TRAIN_PRESETS` without loading the trainer (:mod:`methods.ngssf.train` re-exports
everything here).

Presets: ``paper`` is the paper's schedule (3×1024, batch 100k, 100k iterations, lr 5e-4, a pool of 10⁷
covariances); ``cpu`` trains a 256² picture in about ten minutes on two CPU cores; ``test_tiny`` is for tests.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["TrainConfig", "TRAIN_PRESETS", "train_preset", "MODALITY_NAMES"]

# What a field can be trained on; :data:`methods.ngssf.modalities.MODALITIES` maps each name to its loader
# (tests/test_plugins.py checks the two agree).
MODALITY_NAMES: tuple[str, ...] = ("picture", "texture", "ackley", "mesh")


@dataclass(frozen=True)
class TrainConfig:
    """One training schedule. ``field`` names a :data:`methods.ngssf.neural_field.FIELD_PRESETS` entry."""

    name: str
    field: str
    iterations: int
    batch: int
    lr: float = 5e-4
    lr_final_ratio: float = 1.0    # exponential decay to lr·ratio at the last iteration (the paper: none)
    image_size: int = 256          # pictures are resized to this (square) before training
    freq_var: float = 0.0          # σ²_a override (0: the modality's, e.g. 2000 for pictures); tiny images need less
    pool_size: int = 1_000_000     # random SPD covariances drawn once (the paper: 10⁷)
    seed: int = 0
    calibrate: bool = True
    preview_every_s: float = 2.0   # a preview image for the Jobs panel at most this often
    checkpoint_every: int = 500    # iterations between checkpoints (0: only at the end)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


TRAIN_PRESETS: dict[str, TrainConfig] = {
    "paper": TrainConfig("paper", field="paper", iterations=100_000, batch=100_000, image_size=1024,
                         pool_size=10_000_000, checkpoint_every=5000),
    "cpu": TrainConfig("cpu", field="cpu", iterations=800, batch=16384, lr=3e-3, lr_final_ratio=0.1,
                       image_size=256, checkpoint_every=100),
    "test_tiny": TrainConfig("test_tiny", field="tiny", iterations=300, batch=2048, lr=3e-3, lr_final_ratio=0.1,
                             image_size=64, freq_var=200.0, pool_size=20_000, calibrate=False,
                             checkpoint_every=0),
}


def train_preset(name: str, **changes: Any) -> TrainConfig:
    if name not in TRAIN_PRESETS:
        raise ValueError(f"unknown NGSSF preset '{name}'; choose one of {', '.join(TRAIN_PRESETS)}")
    return TRAIN_PRESETS[name].replace(**changes)
