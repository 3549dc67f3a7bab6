"""The bundled mip-NeRF 360 model the NeRF view opens with (``cpu`` preset, trained on the generated ``garden360``).

A demo file is an ordinary ``train nerf360`` checkpoint without the optimizer state (a third of the size), with
the scene view (training focal, eye, near/far) the view frames it by. Rebuild it with
``python main.py train nerf360 --bundle`` (about 15 minutes on 2 cores).
"""
from __future__ import annotations

import os
from pathlib import Path

from methods.io import load_checkpoint, save_checkpoint

DEMO_PATH = Path(__file__).resolve().parents[2] / "assets" / "nerf360" / "garden360_cpu.pt"


def demo_checkpoint() -> Path:
    """The bundled checkpoint; a one-line error naming the command that makes it when it is missing."""
    if not DEMO_PATH.is_file():
        raise ValueError(f"no bundled mip-NeRF 360 model at {DEMO_PATH}; make it with: "
                         f"python main.py train nerf360 --bundle")
    return DEMO_PATH


def bundle_demo(checkpoint: str | os.PathLike, dataset_root: str | os.PathLike,
                path: str | os.PathLike = DEMO_PATH) -> Path:
    """Write ``checkpoint`` (of ``train nerf360``) as the demo: weights, config, step and scene view, no optimizer.

    The scene view comes from the checkpoint, or — for one written before views were stored — from the dataset it
    was trained on."""
    from methods.nerf360.config import TrainConfig
    from methods.nerf360.dataset import load_unbounded
    from methods.nerf360.train import CHECKPOINT_KIND, CHECKPOINT_VERSION, scene_view

    p = load_checkpoint(checkpoint, kind=CHECKPOINT_KIND, max_version=CHECKPOINT_VERSION,
                        expected_keys=("model", "config", "iteration"))
    view = p.get("view")
    if not isinstance(view, dict):
        cfg = TrainConfig.from_dict(p["config"])
        train = load_unbounded(dataset_root, "train", scale=cfg.image_scale)
        held = load_unbounded(dataset_root, cfg.eval_split, scale=1.0) if cfg.eval_split else None
        view = scene_view(train, held).to_dict()
    payload = {"model": p["model"], "config": p["config"], "iteration": p["iteration"], "view": view,
               "nan_steps": p.get("nan_steps", 0)}
    return save_checkpoint(path, payload, kind=CHECKPOINT_KIND, version=CHECKPOINT_VERSION)
