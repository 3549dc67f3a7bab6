"""Training mip-NeRF 360 as a cancellable Job (report §2, §3.2–3.3, §9).

Every step draws ``batch_rays`` random pixels across all training images, renders them with training-mode sampling
(one jitter per ray per level, annealing from the step fraction) and minimizes

    charbonnier(NeRF colour) + prop_loss_mult · interlevel(proposal rounds vs detached NeRF weights)
                             + distortion_loss_mult · distortion(NeRF level, in s).

One Adam covers both MLPs; the stop-gradients in the sampler and in the proposal loss keep their objectives apart
(the proposal MLP learns only from the proposal loss). Gradients are clipped per MLP; a step whose gradients are
not finite is skipped (no optimizer update) and counted in ``nan_steps`` instead of poisoning the weights.

Sharing the live model: :attr:`Nerf360Trainer.lock` is held for every step and checkpoint; views should render
snapshots from :attr:`Nerf360Trainer.live` (a :class:`SnapshotPublisher`), never the live model.
"""
from __future__ import annotations

import copy
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from methods.io import CheckpointError, load_checkpoint, save_checkpoint
from methods.jobs import Progress, ProgressFn, StopFn, torch_threads
from methods.live_training import SnapshotPublisher
from methods.metrics import psnr
from methods.nerf360.config import TRAIN_PRESETS, ModelConfig, SceneView, TrainConfig
from methods.nerf360.dataset import UnboundedDataset, load_unbounded
from methods.nerf360.losses import charbonnier, distortion_loss, interlevel_loss
from methods.nerf360.model import Nerf360, Rays, camera_rays
from methods.nerf360.sampling import anneal_exponent

__all__ = ["Nerf360Trainer", "load_nerf360", "load_nerf360_scene", "scene_view", "learning_rate", "evaluate_nerf360",
           "TrainConfig", "ModelConfig", "TRAIN_PRESETS", "CHECKPOINT_KIND", "CHECKPOINT_VERSION", "CHECKPOINT_NAME"]

CHECKPOINT_KIND = "nerf360-train"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"


def learning_rate(step: int, config: TrainConfig) -> float:
    """Learning rate of (1-based) ``step``: log-linear lr_init → lr_final over ``steps``, times a sine warm-up from
    ``lr_delay_mult`` to 1 over ``lr_delay_steps`` (report §3.2): early steps on random weights are kept small."""
    frac = min(max((step - 1) / max(config.steps - 1, 1), 0.0), 1.0)
    lr = math.exp((1.0 - frac) * math.log(config.lr_init) + frac * math.log(config.lr_final))
    if config.lr_delay_steps > 0:
        ramp = min(max((step - 1) / config.lr_delay_steps, 0.0), 1.0)
        lr *= config.lr_delay_mult + (1.0 - config.lr_delay_mult) * math.sin(0.5 * math.pi * ramp)
    return lr


@torch.no_grad()
def evaluate_nerf360(model: Nerf360, dataset: UnboundedDataset, *, max_views: int = 0, chunk: int = 4096,
                     should_stop: StopFn | None = None) -> dict[str, float]:
    """Mean per-image PSNR of ``model`` over the views of ``dataset`` (test-mode sampling, the dataset's near/far)."""
    n = len(dataset) if max_views <= 0 else min(max_views, len(dataset))
    scores = []
    for i in range(n):
        if should_stop is not None and should_stop():
            break
        img = model.render_image(dataset.cameras[i], chunk)
        scores.append(float(psnr(img.rgb.clamp(0, 1).cpu().numpy(), dataset.images[i])))
    return {"psnr": float(np.mean(scores)) if scores else float("nan"), "views": len(scores)}


def _model_from_payload(payload: dict[str, Any], path: str | os.PathLike) -> tuple[Nerf360, TrainConfig]:
    try:
        cfg = TrainConfig.from_dict(payload["config"])
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: invalid nerf360 config ({e})") from None
    model = Nerf360(cfg.model)
    try:
        model.load_state_dict(payload["model"])
    except (RuntimeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: weights do not fit the stored config ({e})") from None
    return model, cfg


def load_nerf360(checkpoint: str | os.PathLike) -> tuple[Nerf360, TrainConfig]:
    """(model, config) from a checkpoint written by :class:`Nerf360Trainer`; every problem is a one-line
    :class:`CheckpointError`."""
    model, cfg, _ = load_nerf360_scene(checkpoint)
    return model, cfg


def load_nerf360_scene(checkpoint: str | os.PathLike) -> tuple[Nerf360, TrainConfig, SceneView | None]:
    """(model, config, scene view) — the view is None for checkpoints written before it was stored."""
    payload = load_checkpoint(checkpoint, kind=CHECKPOINT_KIND, max_version=CHECKPOINT_VERSION,
                              expected_keys=("model", "config", "iteration"))
    model, cfg = _model_from_payload(payload, checkpoint)
    model.eval()
    view = None
    if isinstance(payload.get("view"), dict):
        try:
            view = SceneView.from_dict(payload["view"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{checkpoint}: invalid scene view ({e})") from None
    return model, cfg, view


def scene_view(train_set: UnboundedDataset, held_out: UnboundedDataset | None = None) -> SceneView:
    """The :class:`SceneView` of a training run: the training focal, a held-out (else training) camera's eye, the
    cameras' look-at centre and their median near/far."""
    ref = held_out if held_out is not None and len(held_out) else train_set
    cam = ref.cameras[0]
    return SceneView(focal=float(train_set.cameras[0].fx), width=train_set.width, height=train_set.height,
                     near=float(np.median(train_set.near)), far=float(np.median(train_set.far)),
                     eye=tuple(float(v) for v in cam.position), center=tuple(float(v) for v in train_set.scene_center))


def _ray_table(ds: UnboundedDataset) -> tuple[Rays, torch.Tensor]:
    """Every pixel of every image as one flat ray bundle + its colour; per-camera near/far come with the rays."""
    bundles = [camera_rays(cam, near=float(n), far=float(f)).flatten()
               for cam, n, f in zip(ds.cameras, ds.near, ds.far)]
    rays = Rays(**{k: torch.cat([getattr(b, k) for b in bundles]) for k in
                   ("origins", "directions", "radii", "near", "far")})
    rgb = torch.from_numpy(np.ascontiguousarray(ds.images, dtype=np.float32)).reshape(-1, 3)
    return rays, rgb


class Nerf360Trainer:
    """The training Job: ``Nerf360Trainer(config, dataset_root, out_dir).run(progress, should_stop)``.

    Loads the train split at ``config.image_scale`` and ``config.eval_split`` at scale 1 (held-out PSNR and the
    preview). ``resume`` continues from a checkpoint of the same preset and architecture (anything else is a one-line
    :class:`CheckpointError`). ``run`` returns ``iterations``, ``seconds``, ``steps_per_s``, held-out ``psnr``
    (absent when cancelled), ``train_psnr``, ``checkpoint``, ``nan_steps``, ``cancelled`` and ``out_dir``.
    """

    def __init__(self, config: TrainConfig, dataset_root: str | os.PathLike,
                 out_dir: str | os.PathLike | None = None, *, resume: str | os.PathLike | None = None,
                 name: str = "") -> None:
        self.config = config
        self.root = Path(dataset_root)
        self.train_set = load_unbounded(self.root, "train", scale=config.image_scale)
        if len(self.train_set) == 0:
            raise ValueError(f"{self.root}: training split is empty")
        self.held_out = load_unbounded(self.root, config.eval_split, scale=1.0) if config.eval_split else None
        self.name = name or f"train mip-NeRF 360 ({config.name}, {self.train_set.width}x{self.train_set.height})"
        out = out_dir or config.out_dir
        self.out_dir = Path(out) if out else self._default_out_dir()
        self.lock = threading.Lock()
        self.iteration = 0
        self.nan_steps = 0
        torch.manual_seed(config.seed)  # weight init
        self.model = Nerf360(config.model, self.train_set.scene_center, self.train_set.scene_radius)
        self._gen = torch.Generator().manual_seed(config.seed)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr_init,
                                          betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_eps)
        self._rays, self._rgb = _ray_table(self.train_set)
        if resume is not None:
            self._resume(resume)
        self.view = scene_view(self.train_set, self.held_out)
        self.live = SnapshotPublisher(lambda: self.model, self.lock, clone=copy.deepcopy, info_fn=lambda: {
            "step": self.iteration, "method": "mipnerf360", "preset": config.name,
            "image_scale": config.image_scale, "samples": list(config.model.samples), "view": self.view.to_dict()})

    def _default_out_dir(self) -> Path:
        from assets.cache import cache_dir

        return cache_dir() / "runs" / f"nerf360-{self.config.name}-{time.strftime('%Y%m%d-%H%M%S')}"

    def _resume(self, path: str | os.PathLike) -> None:
        payload = load_checkpoint(path, kind=CHECKPOINT_KIND, max_version=CHECKPOINT_VERSION,
                                  expected_keys=("model", "config", "iteration", "optimizer"))
        theirs = payload["config"] if isinstance(payload["config"], dict) else {}
        if theirs.get("name") != self.config.name:
            raise CheckpointError(f"{path}: checkpoint was trained with preset {theirs.get('name')!r}, this run uses "
                                  f"{self.config.name!r}; resume with the same preset or start a new run")
        if theirs.get("model") != self.config.model.to_dict():
            raise CheckpointError(f"{path}: checkpoint's model config differs from preset {self.config.name!r}; "
                                  f"resume with the config it was trained with or start a new run")
        model, _ = _model_from_payload(payload, path)
        self.model = model
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.config.lr_init,
                                          betas=(self.config.adam_beta1, self.config.adam_beta2),
                                          eps=self.config.adam_eps)
        try:
            self.optimizer.load_state_dict(payload["optimizer"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"{path}: optimizer state does not fit the model ({e})") from None
        self.iteration = int(payload["iteration"])
        self.nan_steps = int(payload.get("nan_steps", 0))
        gen_state = payload.get("generator")
        if isinstance(gen_state, torch.Tensor):
            self._gen.set_state(gen_state)

    # ----- one step -----------------------------------------------------------------------------------------------
    def sample_batch(self) -> tuple[Rays, torch.Tensor]:
        """``batch_rays`` pixels drawn uniformly from all training images (report §3.2 'all_images')."""
        idx = torch.randint(len(self._rgb), (self.config.batch_rays,), generator=self._gen)
        return self._rays[idx], self._rgb[idx]

    def _clip_gradients(self) -> bool:
        """Clip each MLP's gradients to ``grad_max_norm``; False (and nothing changed) if any gradient is not
        finite, so the caller skips the update."""
        groups = []
        for params in self.model.mlp_groups().values():
            params = [p for p in params if p.grad is not None]
            if not params:
                continue
            norm = torch.nn.utils.get_total_norm([p.grad for p in params])
            if not bool(torch.isfinite(norm)):
                return False
            groups.append((params, norm))
        if self.config.grad_max_norm > 0:
            for params, norm in groups:
                torch.nn.utils.clip_grads_with_norm_(params, self.config.grad_max_norm, norm)
        return True

    def step(self, batch: tuple[Rays, torch.Tensor] | None = None) -> dict[str, float]:
        """One optimisation step under :attr:`lock` on ``batch`` (rays, target colours) or a random one; returns
        its metrics. A step with non-finite gradients changes nothing but the iteration and ``nan_steps``."""
        cfg = self.config
        with self.lock:
            it = self.iteration + 1
            lr = learning_rate(it, cfg)
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            anneal = anneal_exponent((it - 1) / max(cfg.steps - 1, 1), cfg.model.anneal_slope)
            rays, target = batch if batch is not None else self.sample_batch()
            out = self.model(rays, train=True, anneal=anneal, generator=self._gen)
            nerf_s, nerf_w = out.history[-1]
            recon = charbonnier(out.rgb, target, cfg.charb_eps)
            prop = interlevel_loss(nerf_s, nerf_w, out.history[:-1])
            dist = distortion_loss(nerf_s, nerf_w)
            loss = recon + cfg.prop_loss_mult * prop + cfg.distortion_loss_mult * dist
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            ok = bool(torch.isfinite(loss)) and self._clip_gradients()
            if ok:
                self.optimizer.step()
            else:
                self.nan_steps += 1
            self.optimizer.zero_grad(set_to_none=True)
            self.iteration = it
            self.live.bump()
        with torch.no_grad():
            mse = float(((out.rgb.detach().clamp(0, 1) - target) ** 2).mean())
        return {"recon": float(recon.detach()), "prop": float(prop.detach()), "dist": float(dist.detach()),
                "psnr": 10.0 * math.log10(1.0 / mse) if mse > 0 else float("inf"), "lr": lr,
                "nan_steps": float(self.nan_steps), "skipped": float(not ok)}

    # ----- outputs ------------------------------------------------------------------------------------------------
    def preview(self) -> np.ndarray:
        """The first held-out view (or training view), scaled to at most ``preview_max_side`` px, HxWx3 in [0,1]."""
        ds = self.held_out if self.held_out is not None and len(self.held_out) else self.train_set
        cam = ds.cameras[0]
        s = min(1.0, self.config.preview_max_side / max(cam.width, cam.height))
        with self.lock:
            img = self.model.render_image(cam.scaled(s) if s < 1.0 else cam, self.config.chunk)
        return img.rgb.clamp(0, 1).cpu().numpy()

    def evaluate(self, should_stop: StopFn | None = None) -> dict[str, float]:
        """Held-out PSNR at scale 1 over ``eval_views`` views (all when 0)."""
        if self.held_out is None or not len(self.held_out):
            return {"psnr": float("nan"), "views": 0}
        with self.lock:
            return evaluate_nerf360(self.model, self.held_out, max_views=self.config.eval_views,
                                    chunk=self.config.chunk, should_stop=should_stop)

    def save_checkpoint(self) -> Path:
        """Atomically write model, optimizer, iteration, nan count, RNG state and config to
        ``out_dir/checkpoint.pt``."""
        with self.lock:
            payload = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                       "iteration": self.iteration, "nan_steps": self.nan_steps,
                       "generator": self._gen.get_state(), "config": self.config.to_dict(),
                       "view": self.view.to_dict()}
            return save_checkpoint(self.out_dir / CHECKPOINT_NAME, payload, kind=CHECKPOINT_KIND,
                                   version=CHECKPOINT_VERSION)

    # ----- the Job ------------------------------------------------------------------------------------------------
    def run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        with torch_threads(self.config.threads):
            return self._run(progress, should_stop)

    def _run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        cfg = self.config
        t0 = time.perf_counter()
        start_it = self.iteration
        last_preview = -math.inf
        metrics: dict[str, float] = {}
        cancelled = False
        train_s = 0.0
        while self.iteration < cfg.steps:
            if should_stop():
                cancelled = True
                break
            ts = time.perf_counter()
            metrics = self.step()
            train_s += time.perf_counter() - ts
            it = self.iteration
            msg = "skipped a step with non-finite gradients" if metrics["skipped"] else ""
            if cfg.checkpoint_every > 0 and it % cfg.checkpoint_every == 0 and it < cfg.steps:
                self.save_checkpoint()
                msg = msg or f"checkpoint at {it}"
            preview = None
            now = time.perf_counter()
            if now - last_preview >= cfg.preview_interval_s or it == cfg.steps:
                preview, last_preview = self.preview(), time.perf_counter()
            progress(Progress(it, cfg.steps, {k: metrics[k] for k in ("recon", "prop", "dist", "psnr")}, preview,
                              msg))
        done = self.iteration - start_it
        summary: dict[str, Any] = {"method": "mipnerf360", "config": cfg.name, "iterations": self.iteration,
                                   "cancelled": cancelled, "nan_steps": self.nan_steps,
                                   "train_psnr": metrics.get("psnr", float("nan")),
                                   "steps_per_s": done / train_s if train_s > 0 else float("nan")}
        summary["checkpoint"] = str(self.save_checkpoint())
        if not cancelled and self.held_out is not None and len(self.held_out):
            shown = {k: metrics[k] for k in ("recon", "prop", "dist", "psnr") if k in metrics}
            progress(Progress(self.iteration, cfg.steps, shown, None, "evaluating held-out views"))
            ev = self.evaluate(should_stop)
            summary.update(psnr=ev["psnr"], eval_views=ev["views"], eval_split=self.held_out.split)
        summary["seconds"] = time.perf_counter() - t0
        summary["out_dir"] = str(self.out_dir)
        return summary
