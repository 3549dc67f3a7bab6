"""Training 3D Gaussian Splatting and Mip-Splatting as a cancellable Job (research notes §1.7, §2.1–§2.4).

One loop serves both methods; a :class:`MethodSpec` says which 2D screen filter the rasterizer uses and whether
Mip-Splatting's 3D smoothing filter is kept up to date, so there is no branching on method names in the loop.
Schedules come from dataclass presets (:data:`TRAIN_PRESETS`): ``paper`` is the reference 30k-iteration recipe,
``cpu_small`` and ``test_tiny`` compress it for CPU runs on small images.

Sharing the live model with a renderer: :attr:`GaussianTrainer.lock` is held for the whole of every optimisation
step (render, backward, densification, optimizer step, 3D-filter refresh) and while checkpoints are written. A GUI
thread that renders :attr:`GaussianTrainer.model` must hold the same lock for the duration of its render, because
densification swaps the model's Parameters (and changes N) between steps; outside the lock it may see a model
whose tensors disagree in length.
"""
from __future__ import annotations

import math
import os
import random
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from methods.datasets import Dataset, load_nerf_synthetic
from methods.gaussians.config import INITS, METHODS, TRAIN_PRESETS, MethodSpec, TrainConfig  # noqa: F401 (re-exported)
from methods.gaussians.densify import (
    DensifyStats,
    densify_and_prune,
    make_optimizer,
    reset_opacity,
    update_position_lr,
)
from methods.gaussians.filter3d import compute_3d_filter
from methods.gaussians.model import GaussianModel
from methods.gaussians.ply import save_ply
from methods.io import CheckpointError, load_checkpoint, save_checkpoint
from methods.live_training import SnapshotPublisher
from methods.jobs import Progress, ProgressFn, StopFn, torch_threads
from methods.metrics import dssim, psnr, ssim
from render.camera import Camera
from render.device import compute_device
from render.tensors import to_numpy

__all__ = ["MethodSpec", "METHODS", "TrainConfig", "TRAIN_PRESETS", "GaussianTrainer", "scene_extent",
           "load_trained_model", "evaluate_model", "CHECKPOINT_KIND", "CHECKPOINT_VERSION"]

CHECKPOINT_KIND = "gaussians-train"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
PLY_NAME = "point_cloud.ply"
BAKED_PLY_NAME = "point_cloud_baked.ply"


# ----------------------------------------------------------------------------------------------------------------
def scene_extent(cameras: Sequence[Camera]) -> float:
    """1.1 × the largest distance from a camera centre to the mean centre (3DGS ``getNerfppNorm``); it scales the
    position learning rate and the clone/split/prune size thresholds, so they are in units of the scene."""
    if not cameras:
        raise ValueError("scene_extent needs at least one camera")
    c = np.stack([cam.position for cam in cameras])
    radius = float(np.linalg.norm(c - c.mean(axis=0), axis=1).max())
    return 1.1 * (radius if radius > 0 else 1.0)


def _read_points(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """xyz (N,3) and rgb (N,3) in [0,1] from a point-cloud PLY (``x y z`` + optional ``red green blue``)."""
    from plyfile import PlyData

    if not path.is_file():
        raise ValueError(f"{path}: point cloud not found (init='points' needs a PLY with x, y, z[, red, green, blue])")
    try:
        v = PlyData.read(str(path))["vertex"]
    except Exception as e:  # noqa: BLE001 - plyfile raises many types
        raise ValueError(f"{path}: unreadable point cloud ({' '.join(str(e).split())})") from None
    names = v.data.dtype.names or ()
    if not all(k in names for k in ("x", "y", "z")):
        raise ValueError(f"{path}: point cloud lacks x/y/z properties")
    xyz = np.stack([v["x"], v["y"], v["z"]], -1).astype(np.float32)
    if all(k in names for k in ("red", "green", "blue")):
        rgb = np.stack([v["red"], v["green"], v["blue"]], -1).astype(np.float32)
        rgb = rgb / 255.0 if rgb.max() > 1.0 else rgb
    else:
        rgb = np.full_like(xyz, 0.5)
    return xyz, rgb


def resolve_device(name: str) -> torch.device:
    """The torch device of a ``TrainConfig.device``: "auto" is CUDA when torch sees a GPU; asking for "cuda" without
    one is a clear error, not a silent CPU run."""
    if name == "auto":
        return compute_device()
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA GPU; use --device cpu (or auto)")
    return torch.device(name)


def _to_tensor_images(ds: Dataset) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(ds.images, dtype=np.float32))


def _image_loss(pred: torch.Tensor, gt: torch.Tensor, lambda_dssim: float, kind: str = "l1_dssim") -> torch.Tensor:
    """(1-λ)·L1 + λ·(1-SSIM) on HxWx3 tensors (the 3DGS photometric loss), or plain MSE (``kind="l2"``)."""
    if kind == "l2":
        return ((pred - gt) ** 2).mean()
    l1 = torch.abs(pred - gt).mean()
    if lambda_dssim == 0.0:
        return l1
    return (1.0 - lambda_dssim) * l1 + lambda_dssim * dssim(pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None])


@torch.no_grad()
def evaluate_model(model: GaussianModel, spec: MethodSpec, dataset: Dataset, *,
                   max_views: int = 0, should_stop: StopFn | None = None) -> dict[str, float]:
    """Mean PSNR/SSIM of ``model`` over the views of ``dataset`` (per-image PSNR averaged, as in §1.8)."""
    n = len(dataset) if max_views <= 0 else min(max_views, len(dataset))
    ps, ss = [], []
    for i in range(n):
        if should_stop is not None and should_stop():
            break
        out = model.render(dataset.cameras[i], filter=spec.filter, use_3d_filter=spec.use_3d_filter,
                           background=dataset.background)
        pred = to_numpy(out.color.clamp(0.0, 1.0))
        ps.append(float(psnr(pred, dataset.images[i])))
        ss.append(float(ssim(pred, dataset.images[i])))
    return {"psnr": float(np.mean(ps)) if ps else float("nan"), "ssim": float(np.mean(ss)) if ss else float("nan"),
            "views": len(ps)}


def load_trained_model(path: str | os.PathLike) -> tuple[GaussianModel, TrainConfig, int]:
    """(model, config, iteration) from a training checkpoint written by :class:`GaussianTrainer`."""
    payload = load_checkpoint(path, kind=CHECKPOINT_KIND, max_version=CHECKPOINT_VERSION,
                              expected_keys=("model", "config", "iteration"))
    model = GaussianModel.from_payload(payload["model"])
    try:
        cfg = TrainConfig.from_dict(payload["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: invalid training config ({e})") from None
    return model, cfg, int(payload["iteration"])


# ----------------------------------------------------------------------------------------------------------------
class GaussianTrainer:
    """The training Job. Construct from datasets (or :meth:`from_path`) and call ``run(progress, should_stop)``.

    ``model`` is the live model and ``lock`` guards it (see the module docstring). ``iteration`` is the number of
    finished optimisation steps. ``run`` returns a summary dict: ``psnr``/``ssim`` on the held-out views (absent
    when cancelled), ``train_psnr``, ``seconds``, ``iterations``, ``n_gaussians``, ``cancelled`` and the written
    ``checkpoint``/``ply``/``ply_baked`` paths.
    """

    def __init__(self, config: TrainConfig, train: Dataset, held_out: Dataset | None = None, *,
                 name: str = "", resume: str | os.PathLike | None = None, init_model: GaussianModel | None = None
                 ) -> None:
        if len(train) == 0:
            raise ValueError("training set is empty")
        self.config = config
        self.spec = config.spec
        self.train_set = train
        self.held_out = held_out
        self.name = name or f"train {self.spec.label} ({config.name}, {train.width}x{train.height})"
        self.lock = threading.Lock()
        self.out_dir = Path(config.out_dir) if config.out_dir else self._default_out_dir()
        self.extent = scene_extent(train.cameras)
        self.iteration = 0
        self.device = resolve_device(config.device)
        self._images = _to_tensor_images(train).to(self.device)
        self._bg = tuple(float(v) for v in train.background)
        self._rng = random.Random(config.seed)
        self._gen = torch.Generator().manual_seed(config.seed)
        self._stack: list[int] = []
        self.last_densify: dict[str, int] = {}
        self.history: dict[str, list[float]] = {"n_gaussians": []}
        if init_model is not None and resume is None:  # finetuning: a copy of a trained model, fresh optimiser
            self.model = init_model.to(self.device) if init_model.device != self.device else init_model.clone()
            if self.spec.use_3d_filter:
                self._refresh_3d_filter()  # bounded by *these* cameras' sampling rate
            self.optimizer = make_optimizer(self.model, self.extent, config.lr)
        elif resume is not None:
            self.model, self.optimizer = self._resume(resume)
        else:
            self.model = self._init_model().to(self.device)
            if self.spec.use_3d_filter:
                self._refresh_3d_filter()
            self.optimizer = make_optimizer(self.model, self.extent, config.lr)
        self.stats = DensifyStats.zeros(self.model.num_gaussians, self.device)
        if resume is not None:
            self._restore_state(self._resumed_state)
        # views render snapshots (copied under the lock once per revision), never the live model
        self.live = SnapshotPublisher(lambda: self.model, self.lock, clone=lambda m: m.clone(), info_fn=lambda: {
            "step": self.iteration, "method": config.method, "preset": config.name,
            "train_scale": config.train_scale, "white_background": config.white_background,
            "filter": self.spec.filter, "use_3d_filter": self.spec.use_3d_filter})

    # ----- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_path(cls, root: str | os.PathLike, config: TrainConfig, **kw: Any) -> "GaussianTrainer":
        """Load the train split (at ``config.train_scale``) and the held-out split of a nerf_synthetic dataset."""
        train = load_nerf_synthetic(root, "train", scale=config.train_scale,
                                    white_background=config.white_background)
        held = None
        if config.eval_split:
            held = load_nerf_synthetic(root, config.eval_split, scale=config.train_scale,
                                       white_background=config.white_background,
                                       max_frames=config.max_eval_views or None)
        if config.init == "points" and not config.points_path:
            config = config.with_(points_path=str(Path(root) / "points3d.ply"))
        return cls(config, train, held, **kw)

    def _default_out_dir(self) -> Path:
        from assets.cache import cache_dir

        stamp = time.strftime("%Y%m%d-%H%M%S")
        return cache_dir() / "runs" / f"gaussians-{self.config.method}-{stamp}"

    def _init_model(self) -> GaussianModel:
        cfg = self.config
        if cfg.init == "random":
            return GaussianModel.random_in_box(cfg.n_init_points, -cfg.init_box, cfg.init_box, seed=cfg.seed,
                                               sh_degree=cfg.sh_degree)
        xyz, rgb = _read_points(Path(cfg.points_path))
        return GaussianModel.from_points(xyz, rgb, sh_degree=cfg.sh_degree)

    def _resume(self, path: str | os.PathLike) -> tuple[GaussianModel, torch.optim.Optimizer]:
        payload = load_checkpoint(path, kind=CHECKPOINT_KIND, max_version=CHECKPOINT_VERSION,
                                  expected_keys=("model", "optimizer", "iteration"))
        model = GaussianModel.from_payload(payload["model"], device=self.device)
        opt = make_optimizer(model, self.extent, self.config.lr)
        try:
            opt.load_state_dict(payload["optimizer"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"{path}: optimizer state does not fit the model ({e})") from None
        self.iteration = int(payload["iteration"])
        self._resumed_state = payload.get("state") if isinstance(payload.get("state"), dict) else None
        return model, opt

    def _state(self) -> dict[str, Any]:
        """Everything besides model and optimiser that the next steps depend on, so a resumed run continues exactly
        as an uninterrupted one: the view order (shuffle RNG and the epoch's remaining views), densification's
        generator and gradient statistics, and the history."""
        return {"rng": self._rng.getstate(), "gen": self._gen.get_state(), "stack": list(self._stack),
                "stats": {k: getattr(self.stats, k).detach().cpu().clone() for k in ("grad_accum", "count",
                                                                                      "max_radii")},
                "history": {k: list(v) for k, v in self.history.items()}, "last_densify": dict(self.last_densify)}

    def _restore_state(self, state: dict[str, Any] | None) -> None:
        if not state:  # a checkpoint from before the state was saved: resumes with fresh statistics and order
            return
        try:
            self._rng.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["rng"]))
            self._gen.set_state(state["gen"])
            self._stack = [int(i) for i in state["stack"]]
            for k in ("grad_accum", "count", "max_radii"):
                setattr(self.stats, k, state["stats"][k].to(self.device))
            self.history = {k: list(v) for k, v in state["history"].items()}
            self.last_densify = dict(state["last_densify"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"training state in the checkpoint is damaged ({e}); start a new run") from None
        if len(self.stats) != self.model.num_gaussians:
            raise CheckpointError("training state in the checkpoint does not match its model; start a new run")

    # ----- one step -----------------------------------------------------------------------------------------------
    def _next_view(self) -> int:
        """One training camera per step, each used once per epoch (a shuffled stack, as in the reference)."""
        if not self._stack:
            self._stack = list(range(len(self.train_set)))
            self._rng.shuffle(self._stack)
        return self._stack.pop()

    def _refresh_3d_filter(self) -> None:
        self.model.filter_3d = compute_3d_filter(self.model.means, self.train_set.cameras)

    def step(self) -> dict[str, float]:
        """One optimisation step under :attr:`lock`; returns its metrics (loss, psnr on the view, n_gaussians)."""
        cfg, spec, dcfg = self.config, self.spec, self.config.densify
        with self.lock:
            it = self.iteration + 1
            update_position_lr(self.optimizer, it, self.extent, cfg.lr)
            if cfg.sh_interval > 0 and it % cfg.sh_interval == 0:
                self.model.oneup_sh_degree()
            idx = self._next_view()
            cam, gt = self.train_set.cameras[idx], self._images[idx]
            out = self.model.render(cam, filter=spec.filter, use_3d_filter=spec.use_3d_filter, background=self._bg,
                                    backend=cfg.backend or None)
            loss = _image_loss(out.color, gt, cfg.lambda_dssim, cfg.loss)
            loss.backward()
            with torch.no_grad():
                if it < dcfg.until_iter:
                    self.stats.update(out.means2d.grad, out.radii, cam.width, cam.height)
                    if dcfg.should_densify(it):
                        self.last_densify = densify_and_prune(self.model, self.stats, self.optimizer, dcfg,
                                                              self.extent, it, generator=self._gen)
                        if spec.use_3d_filter:
                            self._refresh_3d_filter()
                    if dcfg.should_reset_opacity(it, cfg.white_background):
                        reset_opacity(self.model, self.optimizer, spec.use_3d_filter)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                if (spec.use_3d_filter and cfg.filter3d_interval > 0 and it >= dcfg.until_iter
                        and it % cfg.filter3d_interval == 0 and it < cfg.iterations - cfg.filter3d_interval):
                    self._refresh_3d_filter()
            self.iteration = it
            n = self.model.num_gaussians
            self.live.bump()
        return {"loss": float(loss.detach()), "psnr": float(psnr(out.color.detach().clamp(0, 1), gt)),
                "n_gaussians": float(n)}

    # ----- outputs ------------------------------------------------------------------------------------------------
    def preview(self) -> np.ndarray:
        """The live model rendered from the fixed held-out view (or the first training view), HxWx3 in [0,1]."""
        ds = self.held_out if self.held_out is not None and len(self.held_out) else self.train_set
        with self.lock, torch.no_grad():
            out = self.model.render(ds.cameras[0], filter=self.spec.filter, use_3d_filter=self.spec.use_3d_filter,
                                    background=self._bg)
        return to_numpy(out.color.clamp(0.0, 1.0))

    def save_checkpoint(self) -> Path:
        """Atomically write model, optimizer state, iteration and config to ``out_dir/checkpoint.pt``."""
        with self.lock:
            payload = {"model": self.model.to_payload(), "optimizer": self.optimizer.state_dict(),
                       "iteration": self.iteration, "config": self.config.to_dict(), "extent": self.extent,
                       "state": self._state()}
            return save_checkpoint(self.out_dir / CHECKPOINT_NAME, payload, kind=CHECKPOINT_KIND,
                                   version=CHECKPOINT_VERSION)

    def save_plys(self) -> dict[str, str]:
        """The standard PLY (with ``filter_3D`` for mip) and, for mip, a baked 62-property PLY for plain viewers."""
        with self.lock:
            paths = {"ply": str(save_ply(self.model, self.out_dir / PLY_NAME))}
            if self.spec.use_3d_filter and self.model.filter_3d is not None:
                paths["ply_baked"] = str(save_ply(self.model, self.out_dir / BAKED_PLY_NAME, bake_3d_filter=True))
        return paths

    # ----- the Job ------------------------------------------------------------------------------------------------
    def run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        with torch_threads(self.config.threads):
            return self._run(progress, should_stop)

    def _run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        cfg = self.config
        t0 = time.perf_counter()
        last_preview = -math.inf
        metrics: dict[str, float] = {}
        cancelled = False
        while self.iteration < cfg.iterations:
            if should_stop():
                cancelled = True
                break
            metrics = self.step()
            it = self.iteration
            now = time.perf_counter()
            preview = None
            if now - last_preview >= cfg.preview_interval_s or it == cfg.iterations:
                preview, last_preview = self.preview(), time.perf_counter()
            msg = ""
            if cfg.densify.should_densify(it) and self.last_densify:
                d = self.last_densify
                msg = f"densify: +{d['cloned']} cloned, {d['split']} split, -{d['pruned']} pruned"
            if cfg.checkpoint_every > 0 and it % cfg.checkpoint_every == 0 and it < cfg.iterations:
                self.save_checkpoint()
                msg = msg or f"checkpoint at {it}"
            self.history["n_gaussians"].append(metrics["n_gaussians"])
            progress(Progress(it, cfg.iterations, metrics, preview, msg))
        summary: dict[str, Any] = {"method": cfg.method, "config": cfg.name, "iterations": self.iteration,
                                   "cancelled": cancelled, "train_psnr": metrics.get("psnr", float("nan")),
                                   "n_gaussians": self.model.num_gaussians}
        summary["checkpoint"] = str(self.save_checkpoint())
        summary.update(self.save_plys())
        if not cancelled and self.held_out is not None and len(self.held_out):
            progress(Progress(self.iteration, cfg.iterations, metrics, None, "evaluating held-out views"))
            with self.lock:
                ev = evaluate_model(self.model, self.spec, self.held_out, max_views=cfg.max_eval_views,
                                    should_stop=should_stop)
            summary.update(psnr=ev["psnr"], ssim=ev["ssim"], eval_views=ev["views"], eval_split=self.held_out.split)
        summary["seconds"] = time.perf_counter() - t0
        summary["out_dir"] = str(self.out_dir)
        return summary
