"""A training job that also prepares its data: generating the bundled dataset or loading a folder can take a
minute, so it happens in the job thread (with progress), never in the caller's (the UI's) thread."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from methods.gaussians.train import GaussianTrainer, TrainConfig
from methods.jobs import Progress, ProgressFn, StopFn
from methods.live_training import LiveTraining


@dataclass
class TrainGaussiansJob:
    """``dataset``: a nerf_synthetic folder, or "" for the bundled synthetic scene (generated on first use).
    ``trainer`` appears once the data is loaded; views follow :attr:`live` (snapshots of the model being trained)."""

    config: TrainConfig
    dataset: str = ""
    preset: str = "default"
    name: str = ""
    trainer: GaussianTrainer | None = field(default=None, init=False)
    root: str = field(default="", init=False)

    def __post_init__(self) -> None:
        self.name = self.name or f"train Gaussians ({self.config.method}, {self.config.name})"

    @property
    def live(self) -> LiveTraining | None:
        """The running trainer's snapshot publisher (None until the data is loaded)."""
        return None if self.trainer is None else self.trainer.live

    def run(self, progress: ProgressFn, should_stop: StopFn) -> Any:
        if self.dataset:
            self.root = self.dataset
        else:
            from methods.datasets.generate import ensure_dataset

            def data_progress(p: Progress) -> None:
                progress(Progress(0, self.config.iterations, message=f"preparing data: {p.message}",
                                  preview=p.preview))

            self.root = str(ensure_dataset(self.preset, progress=data_progress, should_stop=should_stop))
        progress(Progress(0, self.config.iterations, message=f"loading {self.root}"))
        self.trainer = GaussianTrainer.from_path(self.root, self.config)
        return self.trainer.run(progress, should_stop)
