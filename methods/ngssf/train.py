"""Self-supervised training of a neural scale-space field (paper §2): regress the *unfiltered* signal while the
encoding is damped by a random covariance per point. No blurred target is ever computed — the 1-Lipschitz MLP
cannot undo damped features, so damping turns into smoothing; calibration (after training) ties the pseudo
covariance to true Gaussian variances.

Presets are dataclasses (``TRAIN_PRESETS``): ``paper`` is the paper's schedule (3×1024, batch 100k, 100k
iterations, lr 5e-4, a pool of 10⁷ covariances); ``cpu`` is sized so a 256² picture trains in about ten minutes on
two CPU cores (with an lr decay, which short runs need); ``test_tiny`` (a 64² picture, σ²_a scaled down to the
image's bandwidth) is for tests.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from methods.io import CheckpointError, load_checkpoint, save_checkpoint
from methods.jobs import Progress, ProgressFn, StopFn, checked_loss
from methods.live_training import SnapshotPublisher
from methods.metrics import psnr
from methods.ngssf.config import TRAIN_PRESETS, TrainConfig, train_preset  # noqa: F401 (re-exported)
from methods.ngssf.modalities import TrainingSignal
from render.tensors import to_numpy

CHECKPOINT_KIND = "ngssf"
CHECKPOINT_VERSION = 1
VARIANCE_LOG10_RANGE = (-12.0, 2.0)  # eigenvalues of the random training covariances: 10^U(−12, 2)
_PREVIEW_PSNR_CAP = 10.0 * math.log10(4.0 / 1e-12)  # dB at MSE 1e-12 for values in [-1, 1]


def random_isotropic(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """(n, d, d) = v·I with v = 10^U(−12, 2): the isotropic-only modalities (Ackley)."""
    lo, hi = VARIANCE_LOG10_RANGE
    v = 10.0 ** (lo + (hi - lo) * torch.rand(n, generator=generator))
    return v[:, None, None] * torch.eye(dim)


def inference_copy(field: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of a field for rendering: eval mode, no grads, inference caches rebuilt for its weights."""
    snap = copy.deepcopy(field)
    snap.eval()
    snap.requires_grad_(False)
    mlp = getattr(snap, "mlp", None)
    if hasattr(mlp, "invalidate_cache"):
        mlp.invalidate_cache()
    return snap


class NGSSFTrainer:
    """Owns the field and its optimiser; ``lock`` guards the field for viewers (held during each step)."""

    def __init__(self, signal: TrainingSignal, config: TrainConfig, out_dir: str | Path | None = None,
                 resume: str | Path | None = None) -> None:
        from methods.ngssf.covariances import CovariancePool
        from methods.ngssf.neural_field import NeuralField, field_config

        self.signal = signal
        self.config = config
        self.out_dir = Path(out_dir) if out_dir else None
        self.lock = threading.Lock()
        self.generator = torch.Generator().manual_seed(config.seed)
        torch.manual_seed(config.seed)
        fcfg = field_config(config.field, signal.modality, dim=signal.dim, channels=signal.channels,
                            **({"freq_var": config.freq_var} if config.freq_var else {}))
        self.field = NeuralField(fcfg)
        self.optimizer = torch.optim.Adam(self.field.parameters(), lr=config.lr)
        self.pool = (CovariancePool(config.pool_size, signal.dim, seed=config.seed) if signal.anisotropic
                     else None)
        self.step_count = 0
        self.losses: list[float] = []
        self.calibration: dict[str, Any] | None = None
        self.seconds = 0.0
        if resume:
            self.load(resume)
        # views render snapshots (an inference copy taken under the lock once per revision), never the live field
        self.live = SnapshotPublisher(lambda: self.field, self.lock, clone=inference_copy,
                                      info_fn=lambda: {"step": self.step_count,
                                                       "image": getattr(self.signal, "image", None)})

    # ----- one iteration ---------------------------------------------------------------------------------------
    def draw_covariances(self, n: int) -> torch.Tensor:
        if self.pool is not None:
            return self.pool.sample(n, self.generator)
        return random_isotropic(n, self.signal.dim, self.generator)

    def step(self) -> float:
        """One Adam step on a fresh batch with fresh covariances; returns the channel-summed MSE."""
        x, y = self.signal.sample(self.config.batch, self.generator)
        cov = self.draw_covariances(self.config.batch)
        lr = self.config.lr * self.config.lr_final_ratio ** (self.step_count / max(1, self.config.iterations - 1))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.lock:
            self.field.train()
            pred = self.field.forward(x, cov)
            loss = ((pred - y) ** 2).sum(dim=1).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.live.bump()
            self.field.eval()
        value = checked_loss(loss, "NGSSF", self.step_count, self.config.lr)
        self.step_count += 1
        self.losses.append(value)
        return value

    # ----- the Job -----------------------------------------------------------------------------------------------
    def preview(self, size: int = 96) -> tuple[np.ndarray | None, dict[str, float]]:
        """Pictures: the field at σ² = 0 | 1e-3 side by side (HxWx3 in [0, 1]) for the Jobs panel, and the PSNR
        of the unsmoothed field against the signal on that grid — the training loss mixes in heavily damped
        samples that no field can fit, so it says little about sharpness."""
        if self.signal.channels != 3 or self.signal.dim != 2:
            return None, {}
        from methods.field import eval_grid, grid_points

        with self.lock:
            sharp = eval_grid(self.field, (size, size))
            blurred = eval_grid(self.field, (size, size), 1e-3)
        with torch.no_grad():
            target = self.signal.field(grid_points((size, size))).reshape(size, size, -1)
        # values in [-1, 1]: range 2; capped at MSE 1e-12 so the Jobs panel's plot never receives inf
        sharp_psnr = min(float(psnr(sharp.clamp(-1, 1), target, max_val=2.0)), _PREVIEW_PSNR_CAP)
        img = torch.cat([sharp, blurred], dim=1).clamp(-1, 1).add(1).mul(0.5)
        return to_numpy(img).astype(np.float32), {"sharp_psnr": sharp_psnr}

    def run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        cfg = self.config
        total = cfg.iterations
        t_start = time.perf_counter() - self.seconds
        last_preview = -1e9
        cancelled = False
        while self.step_count < total:
            if should_stop():
                cancelled = True
                break
            loss = self.step()
            now = time.perf_counter()
            preview, metrics = None, {"loss": loss}
            if now - last_preview >= cfg.preview_every_s or self.step_count == total:
                last_preview = now
                preview, extra = self.preview()
                metrics.update(extra)
            self.seconds = now - t_start
            progress(Progress(self.step_count, total, metrics, preview=preview))
            if self.out_dir and cfg.checkpoint_every and self.step_count % cfg.checkpoint_every == 0:
                self.save(self.out_dir / "checkpoint.pt")
        if not cancelled and cfg.calibrate and self.calibration is None:
            self.run_calibration(progress, should_stop)
        result: dict[str, Any] = {"iterations": self.step_count, "seconds": self.seconds, "cancelled": cancelled,
                                  "final_loss": float(np.mean(self.losses[-20:])) if self.losses else math.nan,
                                  "calibration": (self.calibration or {}).get("factor", 1.0)}
        if self.out_dir:
            result["checkpoint"] = str(self.save(self.out_dir / "checkpoint.pt"))
        return result

    def run_calibration(self, progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> float:
        """Paper §3 on the trained field: afterwards the field takes true variances."""
        from methods.ngssf.calibrate import CALIBRATION_PRESETS, calibrate

        if progress:
            progress(Progress(self.step_count, self.config.iterations, message="calibrating"))
        with self.lock:
            res = calibrate(self.field, **CALIBRATION_PRESETS.get(self.signal.modality, {}))
        self.calibration = {"factor": float(res.factor)}
        return float(res.factor)

    # ----- checkpoints -----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        with self.lock:
            payload = {
                "field": self.field.to_checkpoint(),
                "optimizer": self.optimizer.state_dict(),
                "step": self.step_count,
                "seconds": self.seconds,
                "losses": torch.tensor(self.losses, dtype=torch.float32),
                "config": dataclasses.asdict(self.config),
                "modality": self.signal.modality,
                "label": self.signal.label,
                "source": str(self.signal.meta.get("source", self.signal.label)),
                "calibration": dict(self.calibration or {}),
                "generator": self.generator.get_state(),
            }
        return save_checkpoint(path, payload, kind=CHECKPOINT_KIND, version=CHECKPOINT_VERSION)

    def load(self, path: str | Path) -> None:
        """Resume: field, optimiser, step, RNG and loss history (the schedule comes from the current config)."""
        from methods.ngssf.neural_field import NeuralField

        p = load_checkpoint(path, kind=CHECKPOINT_KIND, max_version=CHECKPOINT_VERSION,
                            expected_keys=("field", "optimizer", "step", "modality"))
        if p["modality"] != self.signal.modality:
            raise CheckpointError(f"{path}: a {p['modality']} field cannot resume training on a "
                                  f"{self.signal.modality} signal")
        field = NeuralField.from_checkpoint(p["field"])
        if dataclasses.asdict(field.config) != dataclasses.asdict(self.field.config):
            raise CheckpointError(f"{path}: field architecture differs from preset '{self.config.name}'; "
                                  f"resume with the preset it was trained with")
        self.field = field
        self.optimizer = torch.optim.Adam(self.field.parameters(), lr=self.config.lr)
        self.optimizer.load_state_dict(p["optimizer"])
        self.step_count = int(p["step"])
        self.seconds = float(p.get("seconds", 0.0))
        self.losses = [float(v) for v in p.get("losses", torch.zeros(0)).tolist()]
        self.calibration = dict(p["calibration"]) if p.get("calibration") else None
        if "generator" in p:
            self.generator.set_state(p["generator"])


def load_field(path: str | Path):
    """The (calibrated) NeuralField stored in a training checkpoint, plus its metadata."""
    from methods.ngssf.neural_field import NeuralField

    p = load_checkpoint(path, kind=CHECKPOINT_KIND, max_version=CHECKPOINT_VERSION,
                        expected_keys=("field", "modality"))
    field = NeuralField.from_checkpoint(p["field"])
    field.eval()
    meta = {k: p.get(k) for k in ("modality", "label", "source", "step", "config", "calibration")}
    return field, meta
