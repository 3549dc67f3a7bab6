"""Training GaussianSR / LIIF as a cancellable Job (research sr_miner.md A3): one scale per batch, L1 on normalised
values, Adam with step decay, validation PSNR at x2/x3/x4 on a held-out photo, a preview, atomic checkpoints that
resume exactly where they stopped (weights, optimiser, step, the sampler's and torch's random state)."""
from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from methods.gaussiansr.config import ModelConfig, TrainConfig
from methods.gaussiansr.data import CropSampler, training_images
from methods.gaussiansr.evaluate import degrade, resize, sr_psnr
from methods.gaussiansr.model import SRModel, build_model, upscale
from methods.io import CheckpointError, load_checkpoint, save_checkpoint
from methods.jobs import Progress, ProgressFn, StopFn, checked_loss, torch_threads

CHECKPOINT_KIND = "gaussiansr"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
VAL_SCALES = (2.0, 3.0, 4.0)
VAL_SIZE = 192          # the held-out photo's centre crop used for validation (HR side)


def model_from_payload(payload: dict, path: str | Path = "checkpoint") -> SRModel:
    try:
        mc = dict(payload["model_config"])
        mc["sigma_range"] = tuple(mc.get("sigma_range", ModelConfig().sigma_range))
        model = build_model(ModelConfig(**mc))
        state = {k: v.float() for k, v in payload["state"].items()}
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a usable GaussianSR/LIIF model ({' '.join(str(e).split())[:200]})") \
            from None
    return model.eval()


def load_sr_model(path: str | Path) -> tuple[SRModel, dict[str, Any]]:
    """(model in eval mode, payload info: step, config, history) from a checkpoint written by :class:`SRTrainer`
    (or the bundled one). A checkpoint of another family is one clear :class:`CheckpointError`."""
    payload = load_checkpoint(path, kind=CHECKPOINT_KIND, max_version=CHECKPOINT_VERSION,
                              expected_keys=("model_config", "state", "step"))
    return model_from_payload(payload, path), payload


def validation_pairs(photo: np.ndarray) -> dict[float, tuple[torch.Tensor, torch.Tensor]]:
    """scale -> (HR, LR) from the held-out photo's centre crop (VAL_SIZE², divisible by 2, 3 and 4)."""
    h, w = photo.shape[:2]
    side = min(VAL_SIZE, h, w) // 12 * 12
    y0, x0 = (h - side) // 2, (w - side) // 2
    hr = torch.as_tensor(np.ascontiguousarray(photo[y0:y0 + side, x0:x0 + side]), dtype=torch.float32)
    return {s: degrade(hr, s) for s in VAL_SCALES}


class SRTrainer:
    """The training Job. ``images``: (label, HxWx3 float array) to train on (default: the preset's photos)."""

    def __init__(self, config: TrainConfig, images: list[tuple[str, np.ndarray]] | None = None, *,
                 resume: str | Path | None = None, name: str = "") -> None:
        from assets.photos import load_photo

        self.config = config
        self.name = name or f"train {config.model.kind} ({config.name})"
        if images is None:
            if not config.photos:
                raise ValueError("no training images: give a folder of photos or use a preset with photos")
            images = [(p, load_photo(p)) for p in config.photos]
        self.image_labels = [label for label, _ in images]
        self.lock = threading.Lock()
        torch.manual_seed(config.seed)
        self.model = build_model(config.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.sampler = CropSampler(training_images([im for _, im in images], round(config.lr_size * config.scale_max)),
                                   config.lr_size, config.samples, (config.scale_min, config.scale_max), config.seed)
        self.val = validation_pairs(load_photo(config.val_photo)) if config.val_photo else {}
        self.step_count = 0
        self.seconds = 0.0
        self.history: dict[str, list[float]] = {"loss": [], "val_step": [], **{f"val_x{s:g}": [] for s in VAL_SCALES}}
        self.out_dir = Path(config.out_dir) if config.out_dir else self._default_out_dir()
        if resume:
            self._resume(resume)

    def _default_out_dir(self) -> Path:
        from assets.cache import cache_dir

        return cache_dir() / "runs" / f"{self.config.model.kind}-{self.config.name}-{time.strftime('%Y%m%d-%H%M%S')}"

    # ----- steps ---------------------------------------------------------------------------------------------------
    def learning_rate(self, step: int) -> float:
        return self.config.lr * self.config.gamma ** (step // self.config.decay_every)

    def step(self) -> float:
        """One Adam step on a fresh batch; returns the L1 loss (normalised range, as released)."""
        cfg = self.config
        b = self.sampler(cfg.batch)
        for g in self.optimizer.param_groups:
            g["lr"] = self.learning_rate(self.step_count)
        with self.lock:
            self.model.train()
            pred = self.model(b.lr, b.coords, b.cell)
            loss = (pred - b.target).abs().mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.model.eval()
        value = checked_loss(loss, "SR", self.step_count, cfg.lr)
        self.step_count += 1
        self.history["loss"].append(value)
        return value

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """RGB PSNR (shave s + 6) at x2/x3/x4 on the held-out photo's crop; bicubic for reference."""
        out = {}
        with self.lock:
            for s, (hr, lr) in self.val.items():
                sr = upscale(self.model, lr, hr.shape[0], hr.shape[1])
                out[f"val_x{s:g}"] = sr_psnr(sr, hr, s, "rgb_psnr")
                out[f"bicubic_x{s:g}"] = sr_psnr(resize(lr, hr.shape[0], hr.shape[1]), hr, s, "rgb_psnr")
        return out

    @torch.no_grad()
    def preview(self) -> np.ndarray | None:
        """bicubic | model | ground truth at x4 on the held-out crop, side by side."""
        if 4.0 not in self.val:
            return None
        hr, lr = self.val[4.0]
        with self.lock:
            sr = upscale(self.model, lr, hr.shape[0], hr.shape[1])
        return torch.cat([resize(lr, hr.shape[0], hr.shape[1]), sr, hr], 1).numpy()

    # ----- checkpoints ---------------------------------------------------------------------------------------------
    def payload(self, *, for_release: bool = False) -> dict[str, Any]:
        state = {k: (v.detach().half() if for_release and v.is_floating_point() else v.detach().clone())
                 for k, v in self.model.state_dict().items()}
        p: dict[str, Any] = {"model_config": asdict(self.config.model), "state": state, "step": self.step_count,
                             "config": self.config.to_dict(), "history": self.history, "seconds": self.seconds,
                             "images": self.image_labels}
        if not for_release:
            p["optimizer"] = self.optimizer.state_dict()
            p["sampler_rng"] = self.sampler.rng.bit_generator.state
            p["torch_rng"] = torch.get_rng_state()
        return p

    def save_checkpoint(self, path: str | Path | None = None, *, for_release: bool = False) -> Path:
        with self.lock:
            payload = self.payload(for_release=for_release)
        return save_checkpoint(path or self.out_dir / CHECKPOINT_NAME, payload, kind=CHECKPOINT_KIND,
                               version=CHECKPOINT_VERSION)

    def _resume(self, path: str | Path) -> None:
        payload = load_checkpoint(path, kind=CHECKPOINT_KIND, max_version=CHECKPOINT_VERSION,
                                  expected_keys=("model_config", "state", "step", "optimizer"))
        if payload["model_config"] != asdict(self.config.model):
            raise CheckpointError(f"{path}: trained with another model configuration; resume with the preset it was "
                                  f"trained with ({payload.get('config', {}).get('name', '?')})")
        try:
            self.model.load_state_dict(payload["state"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.sampler.rng.bit_generator.state = payload["sampler_rng"]
            torch.set_rng_state(payload["torch_rng"])
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise CheckpointError(f"{path}: cannot resume ({' '.join(str(e).split())[:200]})") from None
        self.step_count = int(payload["step"])
        self.seconds = float(payload.get("seconds", 0.0))
        self.history = payload.get("history", self.history)

    # ----- the Job -------------------------------------------------------------------------------------------------
    def run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        with torch_threads(self.config.threads):
            return self._run(progress, should_stop)

    def _run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        cfg = self.config
        t_start = time.perf_counter() - self.seconds
        last_preview = -math.inf
        val: dict[str, float] = {}
        cancelled = False
        while self.step_count < cfg.iterations:
            if should_stop():
                cancelled = True
                break
            loss = self.step()
            it = self.step_count
            self.seconds = time.perf_counter() - t_start
            metrics = {"loss": loss}
            msg = ""
            if self.val and (it % cfg.val_every == 0 or it == cfg.iterations):
                val = self.validate()
                self.history["val_step"].append(it)
                for s in VAL_SCALES:
                    self.history[f"val_x{s:g}"].append(val[f"val_x{s:g}"])
                metrics.update({k: v for k, v in val.items() if k.startswith("val_")})
                msg = "held-out " + ", ".join(f"x{s:g} {val[f'val_x{s:g}']:.2f} dB (bicubic "
                                              f"{val[f'bicubic_x{s:g}']:.2f})" for s in VAL_SCALES)
            if cfg.checkpoint_every > 0 and it % cfg.checkpoint_every == 0 and it < cfg.iterations:
                self.save_checkpoint()
            preview = None
            now = time.perf_counter()
            if now - last_preview >= cfg.preview_interval_s or it == cfg.iterations:
                preview, last_preview = self.preview(), time.perf_counter()
            progress(Progress(it, cfg.iterations, metrics, preview, msg))
        self.seconds = time.perf_counter() - t_start
        path = self.save_checkpoint()
        summary: dict[str, Any] = {"model": cfg.model.kind, "preset": cfg.name, "steps": self.step_count,
                                   "seconds": self.seconds, "cancelled": cancelled, "checkpoint": str(path),
                                   "loss": self.history["loss"][-1] if self.history["loss"] else float("nan")}
        if self.val and not cancelled:
            summary.update(val or self.validate())
        return summary
