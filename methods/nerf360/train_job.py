"""The Jobs-panel training job: generating the bundled unbounded scene takes ~30 s, so it happens in the job
thread (with progress), never in the caller's (the UI's) thread."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from methods.jobs import Progress, ProgressFn, StopFn
from methods.live_training import LiveTraining
from methods.nerf360.config import TrainConfig
from methods.nerf360.train import Nerf360Trainer


@dataclass
class TrainNerf360Job:
    """``dataset``: an unbounded dataset folder, or "" for the generated ``scene`` preset (made on first use)."""

    config: TrainConfig
    dataset: str = ""
    scene: str = "default"
    out_dir: str = ""
    name: str = ""
    trainer: Nerf360Trainer | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.name = self.name or f"train mip-NeRF 360 ({self.config.name})"

    @property
    def live(self) -> LiveTraining | None:
        """Snapshots of the model being trained (None until the data is loaded)."""
        return None if self.trainer is None else self.trainer.live

    def run(self, progress: ProgressFn, should_stop: StopFn) -> Any:
        root = self.dataset
        if not root:
            from methods.nerf360.dataset import ensure_unbounded_dataset

            def data_progress(p: Progress) -> None:
                progress(Progress(0, self.config.steps, message=f"preparing data: {p.message}", preview=p.preview))

            root = str(ensure_unbounded_dataset(self.scene, progress=data_progress, should_stop=should_stop))
        self.trainer = Nerf360Trainer(self.config, root, self.out_dir or None)
        return self.trainer.run(progress, should_stop)
