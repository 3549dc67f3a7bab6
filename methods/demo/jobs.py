"""Small real jobs for trying the Jobs panel and for tests: no data, no GPU, seconds on a CPU.

* :class:`FitImageJob` fits a Fourier-feature MLP to a procedural image and streams loss/PSNR and previews, i.e. a
  job a user can actually watch converge.
* :class:`TickJob` does nothing but report at a constant rate (predictable timing for ETA/cancel tests).
* :class:`FailingJob` raises on a chosen step, to exercise the error path.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from methods.jobs import Job, JobCancelled, Progress, ProgressFn, StopFn
from methods.metrics import psnr
from render.tensors import to_numpy

__all__ = ["procedural_image", "FitImageJob", "TickJob", "FailingJob", "DEMO_JOBS"]


def procedural_image(size: int = 64) -> np.ndarray:
    """A colourful HxWx3 image in [0, 1] with both smooth and high-frequency content (so fitting takes a while)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    r = 0.5 + 0.5 * np.sin(2 * math.pi * (3 * x + 0.5 * y))
    g = 0.5 + 0.5 * np.cos(2 * math.pi * 5 * np.hypot(x - 0.5, y - 0.5))
    b = ((np.floor(x * 8) + np.floor(y * 8)) % 2) * 0.8 + 0.1
    return np.stack([r, g, b], axis=-1).astype(np.float32)


@dataclass
class FitImageJob:
    """Fit a tiny MLP with random Fourier features to ``procedural_image(size)``; reports loss and PSNR every step
    and a preview of the current reconstruction every ``preview_every`` steps. Returns ``{"psnr", "steps"}``."""

    name: str = "fit tiny MLP to image"
    steps: int = 300
    size: int = 48
    hidden: int = 64
    features: int = 64
    lr: float = 1e-2
    preview_every: int = 10
    seed: int = 0

    def run(self, progress: ProgressFn, should_stop: StopFn) -> dict:
        gen = torch.Generator().manual_seed(self.seed)
        target_np = procedural_image(self.size)
        target = torch.from_numpy(target_np).reshape(-1, 3)
        lin = torch.linspace(0, 1, self.size)
        coords = torch.stack(torch.meshgrid(lin, lin, indexing="ij")[::-1], dim=-1).reshape(-1, 2)
        freqs = torch.randn(2, self.features, generator=gen) * 10.0
        enc = torch.cat([torch.sin(2 * math.pi * coords @ freqs), torch.cos(2 * math.pi * coords @ freqs)], dim=-1)
        torch.manual_seed(self.seed)
        model = torch.nn.Sequential(
            torch.nn.Linear(2 * self.features, self.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, self.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, 3),
            torch.nn.Sigmoid(),
        )
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        value = 0.0
        step = 0
        for step in range(1, self.steps + 1):
            if should_stop():
                break
            pred = model(enc)
            loss = torch.mean((pred - target) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = float(psnr(pred.detach(), target))
            preview = None
            if step == 1 or step % self.preview_every == 0 or step == self.steps:
                preview = to_numpy(pred.reshape(self.size, self.size, 3))
            progress(Progress(step, self.steps, {"loss": loss.item(), "psnr": value}, preview))
        return {"psnr": value, "steps": step}


@dataclass
class TickJob:
    """Reports ``steps`` steps, ``delay`` seconds apart, polling ``should_stop`` every ``poll`` seconds."""

    name: str = "tick"
    steps: int = 100
    delay: float = 0.01
    poll: float = 0.01
    preview_size: int = 0
    raise_on_cancel: bool = False

    def run(self, progress: ProgressFn, should_stop: StopFn) -> int:
        for step in range(1, self.steps + 1):
            end = time.monotonic() + self.delay
            while True:
                if should_stop():
                    if self.raise_on_cancel:
                        raise JobCancelled()
                    return step - 1
                left = end - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(self.poll, left))
            preview = None
            if self.preview_size:
                s = self.preview_size
                preview = np.full((s, s, 3), step / self.steps, dtype=np.float32)
            progress(Progress(step, self.steps, {"value": math.sin(step / 5.0)}, preview, f"tick {step}"))
        return self.steps


def _explode(step: int) -> None:
    raise RuntimeError(f"demo failure at step {step}")


@dataclass
class FailingJob:
    """Reports normally, then raises ``RuntimeError`` (from ``_explode``) on step ``fail_at``."""

    name: str = "failing job"
    steps: int = 10
    fail_at: int = 3
    delay: float = 0.0

    def run(self, progress: ProgressFn, should_stop: StopFn) -> None:
        for step in range(1, self.steps + 1):
            if should_stop():
                return None
            if step == self.fail_at:
                _explode(step)
            progress(Progress(step, self.steps, {"loss": 1.0 / step}))
            if self.delay:
                time.sleep(self.delay)
        return None


#: factories for a "Start job" menu: display name → zero-argument constructor
DEMO_JOBS: dict[str, Callable[[], Job]] = {
    "Demo: fit tiny MLP to image": lambda: FitImageJob(),
    "Demo: tick (10 s)": lambda: TickJob(name="tick (10 s)", steps=200, delay=0.05, preview_size=32),
    "Demo: failing job": lambda: FailingJob(delay=0.2),
}
