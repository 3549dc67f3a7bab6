"""Training a scale-space field as a Job: the image/mesh is loaded in the job thread (never the UI's), the trainer
appears as ``job.trainer`` once ready so a view can show the field while it trains, and checkpoints land in the
cache (or ``out_dir``) so a cancelled run resumes."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from methods.jobs import Progress, ProgressFn, StopFn
from methods.ngssf.train import NGSSFTrainer, TrainConfig, train_preset


def default_run_dir(label: str, modality: str, preset: str) -> Path:
    from assets.cache import cache_dir

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label) or "field"
    return cache_dir() / "runs" / "ngssf" / f"{modality}-{safe}-{preset}"


@dataclass
class TrainNGSSFJob:
    """``image``: a bundled photo name or an image path (or a mesh/"ackley" with ``modality``)."""

    image: str
    preset: str = "cpu"
    modality: str = "picture"
    out_dir: str = ""
    resume: bool = True
    config: TrainConfig | None = None
    name: str = ""
    trainer: NGSSFTrainer | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.config = self.config or train_preset(self.preset)
        self.name = self.name or f"train NGSSF ({Path(self.image).name}, {self.config.name})"

    @property
    def live(self):
        """The running trainer's snapshot publisher (methods.live_training.LiveTraining; None until it exists)."""
        return None if self.trainer is None else self.trainer.live

    def run(self, progress: ProgressFn, should_stop: StopFn) -> Any:
        from methods.ngssf.modalities import make_signal

        progress(Progress(0, self.config.iterations, message=f"loading {self.image}"))
        kwargs = {"size": self.config.image_size} if self.modality in ("picture", "texture") else {}
        signal = make_signal(self.modality, self.image, **kwargs)
        out = Path(self.out_dir) if self.out_dir else default_run_dir(signal.label, self.modality, self.config.name)
        ckpt = out / "checkpoint.pt"
        self.trainer = NGSSFTrainer(signal, self.config, out_dir=out,
                                    resume=ckpt if self.resume and ckpt.is_file() else None)
        return self.trainer.run(progress, should_stop)
