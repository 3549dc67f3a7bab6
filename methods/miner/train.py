"""Training MINER as a cancellable Job, coarse to fine (research sr_miner.md B1/B2/B4).

Per level j (J-1 first): the target is the residual R_j = I_j - UP2(Î_{j+1}) against the *estimate* so far (so a
coarse level's error is corrected by the next); blocks whose residual mean square is <= ``active_threshold`` never
train (their residual stays 0); the others train jointly, a cache-sized chunk at a time (memory is bounded by the
chunk, not the image: a 4096² image trains in a few GB); every ``check_every`` epochs the blocks whose MSE reached
the stop threshold are pruned: their parameters go to the level's bank, their rows and optimiser moments are
dropped, so later epochs cost only what is still learning. A level ends when its epochs run out or nothing is left
to learn; its checkpoint is written (atomically) before the next level starts, and ``resume`` continues from the
first level not finished.

The reported PSNR is that of the full-resolution reconstruction so far (the current level's estimate upsampled),
against the original; ``seconds`` counts training only (the PSNR reports are excluded), so time-to-PSNR figures
compare like with like."""
from __future__ import annotations

import math
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
from methods.miner import blocks as B
from methods.miner.config import MinerConfig
from methods.miner.model import Level, MinerModel
from methods.miner.pyramid import from_blocks, gaussian_pyramid, local_coords, pad_to_multiple, to_blocks, up2

CHECKPOINT_KIND = "miner"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "miner.pt"
PREVIEW_SIDE = 384


def psnr_of(est: torch.Tensor, ref: torch.Tensor) -> float:
    """PSNR (dB) of an estimate clamped to the displayable [0, 1] range."""
    return float(psnr(est.clamp(0.0, 1.0), ref))


def upsample_to(img: torch.Tensor, levels: int) -> torch.Tensor:
    for _ in range(levels):
        img = up2(img)
    return img


def largest_levels(h: int, w: int, block: int) -> int:
    """The most levels an h x w image supports with b x b blocks (the coarsest level at least one block)."""
    j = 1
    while min(h, w) >= block * 2 ** j:
        j += 1
    return j


class MinerTrainer:
    """The training Job for one image (H, W, C) in [0, 1]."""

    def __init__(self, config: MinerConfig, image: np.ndarray | torch.Tensor, *, label: str = "image",
                 resume: str | Path | None = None, name: str = "", source: str = "") -> None:
        img = torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32)
        if img.ndim != 3 or img.shape[2] not in (1, 3) or min(img.shape[:2]) < 1:
            raise ValueError(f"{label}: need an (H, W, 1 or 3) image, got shape {tuple(img.shape)}")
        if not bool(torch.isfinite(img).all()):
            raise ValueError(f"{label}: the image contains NaN or inf values")
        fits = largest_levels(img.shape[0], img.shape[1], config.block)
        if config.levels > fits:
            raise ValueError(f"{label}: {img.shape[1]}x{img.shape[0]} is too small for {config.levels} levels of "
                             f"{config.block}² blocks; use --levels {fits} or smaller blocks (--block)")
        self.config, self.label = config, label
        self.source = source      # how to load the image again (a path, photo or mosaic spec; the view's original)
        self.name = name or f"train MINER ({config.name}) on {label}"
        self.image = img
        padded, size = pad_to_multiple(img, config.multiple())
        self.padded_note = (f"padded {size[1]}x{size[0]} to {padded.shape[1]}x{padded.shape[0]} (a multiple of "
                            f"{config.multiple()}); the padding is cropped from every output"
                            if padded.shape[:2] != img.shape[:2] else "")
        self.pyramid = gaussian_pyramid(padded, config.levels)
        self.model = MinerModel(config, size, (padded.shape[0], padded.shape[1]), img.shape[2])
        self.estimate: dict[int, torch.Tensor] = {}       # level -> its finished estimate (padded size)
        self.lock = threading.Lock()
        self.seconds = 0.0
        self.history: dict[str, list[float]] = {"seconds": [], "level": [], "psnr": [], "training": [], "epoch": []}
        self.out_dir = Path(config.out_dir) if config.out_dir else self._default_out_dir()
        self._preview_state: tuple[int, torch.Tensor, torch.Tensor] | None = None
        # bumped when a level is finished (its blocks never change again): the MINER view shows it. The snapshot is
        # the model itself: readers only touch finished levels.
        self.live = SnapshotPublisher(lambda: self.model, self.lock, clone=lambda m: m)
        self.finished = False
        if resume:
            self._resume(resume)

    def _default_out_dir(self) -> Path:
        from assets.cache import cache_dir

        return cache_dir() / "runs" / f"miner-{self.config.name}-{time.strftime('%Y%m%d-%H%M%S')}"

    # ----- helpers --------------------------------------------------------------------------------------------------
    def _upsampled_estimate(self, j: int) -> torch.Tensor:
        return up2(self.estimate[j + 1]) if j + 1 < self.config.levels else torch.zeros_like(self.pyramid[j])

    def _report_psnr(self, j: int, level_est: torch.Tensor) -> float:
        h, w = self.model.size
        return psnr_of(upsample_to(level_est, j)[:h, :w], self.image)

    def _init_level(self, j: int, n: int, generator: torch.Generator) -> B.Params:
        cfg = self.config
        parent = self.model.levels.get(j + 1)
        if cfg.weight_share and parent is not None and j + 1 < cfg.levels - 1:  # same width: share
            return B.share_from_parent(parent.params, self.model.grid(j + 1))
        return B.init_params(cfg, j, n, self.model.channels, generator)

    def _lr(self, epoch: int, epochs: int) -> float:
        cfg = self.config
        if cfg.schedule == "cosine":
            lo = cfg.lr / 30.0
            return lo + 0.5 * (cfg.lr - lo) * (1.0 + math.cos(math.pi * epoch / max(1, epochs)))
        return cfg.lr * 0.999 ** epoch

    # ----- one level ------------------------------------------------------------------------------------------------
    def train_level(self, j: int, progress: ProgressFn, should_stop: StopFn) -> bool:
        """Train level j; False if cancelled (its partial blocks stay in the model for the reconstruction, but the
        checkpoint holds finished levels only, so a resume redoes it from its start)."""
        cfg, b = self.config, self.config.block
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + j)
        up = self._upsampled_estimate(j)
        blocks_t = to_blocks(self.pyramid[j] - up, b)                       # (n, b², C) residual targets
        n = blocks_t.shape[0]
        energy = blocks_t.pow(2).mean((1, 2))
        active = energy > cfg.active_threshold
        params = self._init_level(j, n, gen)
        scale = blocks_t.abs().amax((1, 2))[:, None, None] if cfg.output == "lightning" else None
        level = Level(self.model.grid(j), params, active, scale, pruned=torch.full((n,), -1, dtype=torch.long))
        with self.lock:
            self.model.levels[j] = level
        train_ids = torch.nonzero(active).flatten()
        trainable = {k: v[train_ids].clone() for k, v in params.items()}
        opt = B.RowAdam(trainable, cfg.lr, cfg.optimizer)
        targets = blocks_t[train_ids]
        thr = cfg.stop_mse * (energy[train_ids] if cfg.stop_relative else torch.ones(len(train_ids)))
        current = torch.zeros_like(blocks_t)                                  # latest outputs, for reports
        block_mse = energy[train_ids].clone()                                 # latest MSE of every active block
        prev_loss = math.inf
        x_all = local_coords(b)[None]
        epochs = cfg.epochs_at(cfg.levels - 1 - j)
        pix = b * b
        steps = 1 if not cfg.pixels_per_step else max(1, pix // cfg.pixels_per_step)
        chunk, full_chunk = cfg.chunk(j, min(pix, cfg.pixels_per_step)), cfg.chunk(j)
        t_last = time.perf_counter()

        def finish_rows(mask: torch.Tensor) -> None:
            """Write the rows in ``mask`` to the bank (they are done)."""
            with torch.no_grad(), self.lock:
                for k in params:
                    params[k][train_ids[mask]] = opt.params[k][mask].detach()

        for epoch in range(epochs):
            if len(train_ids) == 0:
                break
            if should_stop():  # keep what was learnt for the reconstruction; the checkpoint has finished levels only
                finish_rows(torch.ones(len(train_ids), dtype=torch.bool))
                return False
            opt.lr = self._lr(epoch, epochs)
            last_mse = torch.zeros(len(train_ids))
            for _ in range(steps):
                opt.tick()
                pos = None if not cfg.pixels_per_step else torch.randperm(pix, generator=gen)[:cfg.pixels_per_step]
                x = x_all if pos is None else x_all[:, pos]
                for c0 in range(0, len(train_ids), chunk):
                    c1 = min(len(train_ids), c0 + chunk)
                    pc = {k: v[c0:c1].detach().requires_grad_(True) for k, v in opt.params.items()}
                    sc = scale[train_ids[c0:c1]] if scale is not None else None
                    out = B.forward(cfg, j, pc, x, sc)
                    tgt = targets[c0:c1] if pos is None else targets[c0:c1][:, pos]
                    mse = (out - tgt).pow(2).mean((1, 2))
                    loss = (mse / (mse.detach() + 1e-8)).sum() if cfg.loss_weighting == "inv_mse" else mse.sum()
                    grads = torch.autograd.grad(loss, list(pc.values()))
                    opt.step(dict(zip(pc, grads)), slice(c0, c1))
                    if pos is None:
                        last_mse[c0:c1] = mse.detach()
                        current[train_ids[c0:c1]] = out.detach()
            last = epoch == epochs - 1
            if (epoch + 1) % cfg.check_every and not last:
                continue
            if cfg.pixels_per_step:  # the per-block MSE on every pixel (full-batch epochs have it already)
                with torch.no_grad():
                    for c0 in range(0, len(train_ids), full_chunk):
                        c1 = min(len(train_ids), c0 + full_chunk)
                        p = {k: v[c0:c1] for k, v in opt.params.items()}
                        out = B.forward(cfg, j, p, x_all, scale[train_ids[c0:c1]] if scale is not None else None)
                        last_mse[c0:c1] = (out - targets[c0:c1]).pow(2).mean((1, 2))
                        current[train_ids[c0:c1]] = out
            block_mse[torch.searchsorted(torch.nonzero(active).flatten(), train_ids)] = last_mse
            loss = float(block_mse.mean()) if len(block_mse) else 0.0
            converged = cfg.switch_mse > 0 and abs(prev_loss - loss) / cfg.check_every < cfg.switch_mse
            prev_loss = loss
            done = last_mse <= thr
            if bool(done.any()):
                finish_rows(done)
                level.pruned[train_ids[done]] = epoch + 1
                keep = ~done
                opt.keep(keep)
                train_ids, targets, thr = train_ids[keep], targets[keep], thr[keep]
            self.seconds += time.perf_counter() - t_last
            est = up + from_blocks(current, *self.pyramid[j].shape[:2])
            psnr = self._report_psnr(j, est)
            self._record(j, epoch + 1, psnr, len(train_ids))
            self._preview_state = (j, est, train_ids.clone())
            progress(self._progress(j, epoch + 1, epochs, psnr, int(active.sum()), len(train_ids), last_mse))
            t_last = time.perf_counter()
            if converged:  # the official switch_thres: this level has stopped improving
                break
        finish_rows(torch.ones(len(train_ids), dtype=torch.bool))
        self.seconds += time.perf_counter() - t_last
        with self.lock:
            level.done = True
            self.estimate[j] = up + from_blocks(self.model.block_outputs(j, torch.arange(n)), *up.shape[:2])
        self.live.bump()
        return True

    def _record(self, j: int, epoch: int, psnr: float, training: int) -> None:
        for k, v in (("seconds", self.seconds), ("level", j), ("psnr", psnr), ("training", training),
                     ("epoch", epoch)):
            self.history[k].append(float(v))

    def _progress(self, j: int, epoch: int, epochs: int, psnr: float, active: int, training: int,
                  mse: torch.Tensor) -> Progress:
        cfg = self.config
        done_levels = cfg.levels - 1 - j
        total = sum(cfg.epochs_at(i) for i in range(cfg.levels))
        step = sum(cfg.epochs_at(i) for i in range(done_levels)) + epoch
        msg = (f"level {j} ({self.model.level_size(j)[1]}x{self.model.level_size(j)[0]}): epoch {epoch}/{epochs}, "
               f"{training}/{active} blocks learning, PSNR so far {psnr:.2f} dB")
        metrics = {"psnr": psnr, "learning blocks": float(training), "level": float(j)}
        if len(mse):
            metrics["block mse (median)"] = float(mse.median())
        return Progress(step, total, metrics, self.preview(), msg)

    # ----- preview --------------------------------------------------------------------------------------------------
    def preview(self) -> np.ndarray | None:
        """The reconstruction so far at <= PREVIEW_SIDE px, blocks still learning tinted red, pruned ones green."""
        if self._preview_state is None:
            return None
        j, est, learning = self._preview_state
        lv = self.model.levels[j]
        h, w = est.shape[:2]
        gh, gw = lv.grid
        state = torch.zeros(gh * gw)
        state[lv.active] = 1.0             # pruned (or finished)
        state[learning] = 2.0              # still learning
        img = est.clamp(0, 1)
        if img.shape[2] == 1:
            img = img.expand(-1, -1, 3)
        step = max(1, math.ceil(max(h, w) / PREVIEW_SIDE))
        img = img[::step, ::step]
        cell = state.reshape(gh, gw).repeat_interleave(h // gh, 0).repeat_interleave(w // gw, 1)[::step, ::step]
        tint = torch.zeros_like(img)
        tint[..., 0] = (cell == 2).float()
        tint[..., 1] = (cell == 1).float()
        mix = 0.25 * (cell > 0).float()[..., None]
        out = img * (1 - mix) + tint * mix
        oh, ow = math.ceil(self.model.size[0] / 2 ** j / step), math.ceil(self.model.size[1] / 2 ** j / step)
        return out[:oh, :ow].numpy()

    # ----- checkpoints ----------------------------------------------------------------------------------------------
    def payload(self) -> dict[str, Any]:
        levels = {j: {"params": {k: v.detach().clone() for k, v in lv.params.items()}, "active": lv.active.clone(),
                      "scale": lv.scale, "done": lv.done, "pruned": lv.pruned}
                  for j, lv in self.model.levels.items() if lv.done}
        return {"config": self.config.to_dict(), "size": list(self.model.size), "padded": list(self.model.padded),
                "channels": self.model.channels, "levels": levels, "history": self.history, "seconds": self.seconds,
                "label": self.label, "source": self.source}

    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        with self.lock:
            payload = self.payload()
        return save_checkpoint(path or self.out_dir / CHECKPOINT_NAME, payload, kind=CHECKPOINT_KIND,
                               version=CHECKPOINT_VERSION)

    def _resume(self, path: str | Path) -> None:
        payload = load_checkpoint(path, kind=CHECKPOINT_KIND, max_version=CHECKPOINT_VERSION,
                                  expected_keys=("config", "size", "levels"))
        if tuple(payload["size"]) != self.model.size or int(payload.get("channels", 3)) != self.model.channels:
            raise CheckpointError(f"{path}: trained on a {payload['size'][1]}x{payload['size'][0]} image, not this "
                                  f"{self.model.size[1]}x{self.model.size[0]} one; resume with the same image")
        saved = MinerConfig.from_dict(payload["config"])
        runtime = {"out_dir": "", "threads": 0, "chunk_blocks": 1}   # how it runs, not what it learns
        if saved.with_(**runtime) != self.config.with_(**runtime):
            raise CheckpointError(f"{path}: trained with another configuration ({saved.name}); resume with "
                                  f"--preset {saved.name} and the same options")
        model = model_from_payload(payload, path)
        self.model.levels = model.levels
        for j in sorted(model.levels, reverse=True):
            up = self._upsampled_estimate(j)
            n = model.levels[j].active.shape[0]
            self.estimate[j] = up + from_blocks(model.block_outputs(j, torch.arange(n)), *up.shape[:2])
        self.history = payload.get("history", self.history)
        self.seconds = float(payload.get("seconds", 0.0))

    # ----- the Job --------------------------------------------------------------------------------------------------
    def run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        try:
            with torch_threads(self.config.threads):
                return self._run(progress, should_stop)
        finally:
            self.finished = True
            self.live.bump()

    def _run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        cfg = self.config
        cancelled = False
        path = None
        for j in range(cfg.levels - 1, -1, -1):
            if j in self.model.levels and self.model.levels[j].done:
                continue
            if not self.train_level(j, progress, should_stop):
                cancelled = True
                break
            path = self.save_checkpoint()
        if path is None:
            path = self.save_checkpoint()
        final = min(self.model.levels) if self.model.levels else cfg.levels
        h, w = self.model.size
        psnr = psnr_of(upsample_to(self.model.reconstruct(final, crop=False), final)[:h, :w], self.image) \
            if final < cfg.levels else float("nan")
        return {"preset": cfg.name, "cancelled": cancelled, "seconds": self.seconds, "psnr": psnr,
                "levels_done": cfg.levels - self.model.finest_done(), "params": self.model.parameter_count(),
                "checkpoint": str(path), "note": self.padded_note}


def model_from_payload(payload: dict, path: str | Path = "checkpoint") -> MinerModel:
    try:
        cfg = MinerConfig.from_dict(payload["config"])
        model = MinerModel(cfg, tuple(payload["size"]), tuple(payload["padded"]), int(payload.get("channels", 3)))
        for j, d in payload["levels"].items():
            j = int(j)
            grid = model.grid(j)
            lv = Level(grid, {k: v.float() for k, v in d["params"].items()}, d["active"].bool(),
                       None if d.get("scale") is None else d["scale"].float(), bool(d.get("done", True)),
                       d.get("pruned"))
            if lv.active.shape[0] != grid[0] * grid[1] or any(v.shape[0] != lv.active.shape[0]
                                                             for v in lv.params.values()):
                raise ValueError(f"level {j} holds {lv.active.shape[0]} blocks, the image needs {grid[0] * grid[1]}")
            model.levels[j] = lv
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a usable MINER checkpoint ({' '.join(str(e).split())[:200]})") from None
    return model


def load_miner(path: str | Path) -> tuple[MinerModel, dict[str, Any]]:
    """(model, payload) from a checkpoint written by :class:`MinerTrainer`; another family's is one clear error."""
    payload = load_checkpoint(path, kind=CHECKPOINT_KIND, max_version=CHECKPOINT_VERSION,
                              expected_keys=("config", "size", "levels"))
    return model_from_payload(payload, path), payload
