"""The Job protocol: long work (training, finetuning, dataset generation) as plain data in, plain data out.

A job does its work in ``run(progress, should_stop)``. It reports :class:`Progress` records through ``progress``
and polls ``should_stop()`` often (at least every ~0.2 s) so that cancelling is quick. Jobs never import the GUI:
the app runs them in a background thread (app/jobs_manager.py); the CLI runs them with a progress bar
(:func:`run_headless`).
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Progress:
    """One progress report. ``metrics`` holds scalars to plot (loss, PSNR, …); ``preview`` an optional HxWx{3,4}
    float image in [0, 1]; ``message`` a short human line (e.g. "rendering view 12/100")."""

    step: int
    total: int
    metrics: dict[str, float] = field(default_factory=dict)
    preview: np.ndarray | None = None
    message: str = ""


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


class JobCancelled(Exception):
    """Raised inside a job (optionally) to unwind when ``should_stop()`` turned true."""


@runtime_checkable
class Job(Protocol):
    """A unit of background work. ``name`` is shown in the Jobs panel; ``run`` returns a plain result (or None)."""

    name: str

    def run(self, progress: ProgressFn, should_stop: StopFn) -> Any: ...


@dataclass
class FunctionJob:
    """Adapts a plain function ``fn(progress, should_stop) -> result`` to the Job protocol."""

    name: str
    fn: Callable[[ProgressFn, StopFn], Any]

    def run(self, progress: ProgressFn, should_stop: StopFn) -> Any:
        return self.fn(progress, should_stop)


LAZY_BAR_S = 0.5


def run_headless(job: Job, *, stream=None, show_bar: bool = True) -> Any:
    """Run a job in the calling thread with a tqdm progress bar (Ctrl+C cancels cooperatively)."""
    from tqdm import tqdm

    stream = stream if stream is not None else sys.stderr
    stop = {"flag": False}
    t0 = time.monotonic()
    bars: list = []  # the bar appears at the first step, or once loading takes a moment: an input that fails at
    last = {"t": 0.0}  # once leaves its one error line alone on stderr

    def on_progress(p: Progress) -> None:
        if not bars:
            if p.step < 1 and time.monotonic() - t0 < LAZY_BAR_S:
                return
            bars.append(tqdm(total=None, desc=job.name, file=stream, disable=not show_bar, dynamic_ncols=True))
        bar = bars[0]
        if bar.total != p.total:
            bar.total = p.total
        bar.n = p.step
        now = time.monotonic()
        if now - last["t"] > 0.1 or p.step >= p.total:
            last["t"] = now
            post = {k: f"{v:.4g}" for k, v in list(p.metrics.items())[:4]}
            if p.message:
                post["info"] = p.message
            bar.set_postfix(post, refresh=False)
            bar.refresh()

    try:
        return job.run(on_progress, lambda: stop["flag"])
    except KeyboardInterrupt:
        stop["flag"] = True
        raise
    finally:
        for bar in bars:
            bar.close()


@contextlib.contextmanager
def torch_threads(n: int):
    """Run a block with ``n`` torch intra-op threads (0: leave the setting alone), restoring it afterwards: a job's
    ``threads`` option must not leak into the studio's other work."""
    import torch

    prev = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n > 0:
            torch.set_num_threads(prev)


def checked_loss(loss: Any, what: str, step: int, lr: float) -> float:
    """The loss as a float; a NaN/inf loss stops the job with one line that says what to change."""
    value = float(loss.detach())
    if not math.isfinite(value):
        raise FloatingPointError(f"{what} training diverged at step {step} (loss {value}); lower the learning rate "
                                 f"(now {lr:g})")
    return value
