"""Cancel at a random step, resume from the checkpoint the cancel wrote, and the run continues exactly like an
uninterrupted one: the same loss at every later step and bit-identical final weights (CPU, fixed thread count).
GaussianSR's parity is checked in test_gaussiansr.py (bit-exact); the neural texture trains through the NGSSF trainer
tested here. The 3DGS / Mip-Splatting case failed before its checkpoints carried the view order, the densification
generator and gradient statistics."""
from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch


def _cancel_at(step: int):
    """A progress function that records losses and a stop function that fires once ``step`` is done."""
    losses: dict[int, float] = {}
    state = {"stop": False}

    def progress(p) -> None:
        if "loss" in p.metrics:
            losses[p.step] = p.metrics["loss"]
        if p.step >= step:
            state["stop"] = True
    return losses, progress, lambda: state["stop"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from assets.synthetic_scene import SceneSpec
    from methods.datasets import GenerateSyntheticDataset

    out = tmp_path_factory.mktemp("parity") / "tiny"
    GenerateSyntheticDataset(out, SceneSpec.preset("tiny")).run(lambda p: None, lambda: False)
    return out


@pytest.mark.parametrize("method", ["3dgs", "mip"])
def test_gaussians_cancel_and_resume_equal_an_uninterrupted_run(scene, tmp_path, method):
    from methods.gaussians.config import TRAIN_PRESETS
    from methods.gaussians.train import GaussianTrainer

    base = TRAIN_PRESETS["test_tiny"]
    cfg = replace(base, method=method, iterations=60, n_init_points=300, preview_interval_s=1e9, threads=1,
                  densify=replace(base.densify, from_iter=10, until_iter=50, interval=10),
                  lr=replace(base.lr, position_max_steps=60), sh_interval=20, filter3d_interval=10)
    k = random.Random(method).randrange(12, 48)   # a step between densifications, after the first
    full_losses, full_progress, never = _cancel_at(10 ** 9)
    straight = GaussianTrainer.from_path(scene, replace(cfg, out_dir=str(tmp_path / "a")))
    straight.run(full_progress, never)

    losses, progress, stop = _cancel_at(k)
    first = GaussianTrainer.from_path(scene, replace(cfg, out_dir=str(tmp_path / "b")))
    summary = first.run(progress, stop)
    assert summary["cancelled"] and summary["iterations"] == k
    resumed = GaussianTrainer.from_path(scene, replace(cfg, out_dir=str(tmp_path / "b")),
                                        resume=summary["checkpoint"])
    rest, progress2, never2 = _cancel_at(10 ** 9)
    resumed.run(progress2, never2)
    assert {**losses, **rest} == full_losses                      # the whole loss curve, step by step
    assert resumed.model.num_gaussians == straight.model.num_gaussians
    for name, p in straight.model.params().items():
        assert torch.equal(p, resumed.model.params()[name]), name
    assert resumed.history == straight.history


def test_nerf360_cancel_and_resume_equal_an_uninterrupted_run(tmp_path):
    from methods.nerf360.config import TrainConfig
    from methods.nerf360.dataset import ensure_unbounded_dataset
    from methods.nerf360.train import Nerf360Trainer

    root = ensure_unbounded_dataset("tiny")
    cfg = TrainConfig.preset("test_tiny", steps=24, eval_views=0, threads=1, preview_interval_s=1e9)
    k = random.Random("nerf").randrange(5, 20)
    full, full_progress, never = _cancel_at(10 ** 9)
    straight = Nerf360Trainer(cfg, root, tmp_path / "a")
    straight.run(full_progress, never)
    losses, progress, stop = _cancel_at(k)
    first = Nerf360Trainer(cfg, root, tmp_path / "b")
    summary = first.run(progress, stop)
    assert summary["cancelled"] and summary["iterations"] == k
    resumed = Nerf360Trainer(cfg, root, tmp_path / "b", resume=summary["checkpoint"])
    rest, progress2, never2 = _cancel_at(10 ** 9)
    resumed.run(progress2, never2)
    assert {**losses, **rest} == full
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_ngssf_cancel_and_resume_equal_an_uninterrupted_run(tmp_path):
    from methods.ngssf.config import train_preset
    from methods.ngssf.modalities import picture_signal
    from methods.ngssf.train import NGSSFTrainer

    cfg = train_preset("test_tiny", iterations=30, batch=256, preview_every_s=1e9, checkpoint_every=0)
    sig = picture_signal("chelsea", size=32)
    k = random.Random("ngssf").randrange(3, 27)
    straight = NGSSFTrainer(sig, cfg, out_dir=tmp_path / "a")
    straight.run(lambda p: None, lambda: False)
    first = NGSSFTrainer(sig, cfg, out_dir=tmp_path / "b")
    _, progress, stop = _cancel_at(k)
    first.run(progress, stop)
    assert first.step_count == k
    resumed = NGSSFTrainer(sig, cfg, out_dir=tmp_path / "b", resume=tmp_path / "b" / "checkpoint.pt")
    resumed.run(lambda p: None, lambda: False)
    assert resumed.losses == straight.losses                         # the loss curve, every step
    for (name, a), b in zip(straight.field.state_dict().items(), resumed.field.state_dict().values()):
        assert torch.equal(a, b), name


def test_miner_cancel_and_resume_equal_an_uninterrupted_run(tmp_path):
    """MINER checkpoints hold finished levels; a level cancelled midway is redone from its start with the same
    seed, so the final pyramid is the uninterrupted one's."""
    from assets.photos import load_photo
    from methods.miner.config import preset
    from methods.miner.train import MinerTrainer

    img = load_photo("astronaut", 128)
    cfg = preset("test_tiny", out_dir=str(tmp_path / "a"))
    straight = MinerTrainer(cfg, img)
    straight.run(lambda p: None, lambda: False)
    first = MinerTrainer(preset("test_tiny", out_dir=str(tmp_path / "b")), img)
    k = random.Random("miner").randrange(40, 300)
    _, progress, stop = _cancel_at(k)
    r = first.run(progress, stop)
    assert r["cancelled"]
    resumed = MinerTrainer(preset("test_tiny", out_dir=str(tmp_path / "b")), img, resume=tmp_path / "b" / "miner.pt")
    resumed.run(lambda p: None, lambda: False)
    for j in straight.model.levels:
        assert torch.equal(straight.model.reconstruct(j), resumed.model.reconstruct(j)), j
