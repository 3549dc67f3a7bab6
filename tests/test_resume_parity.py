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


def test_mipmap_finetune_cancel_and_resume_equal_an_uninterrupted_job(scene, tmp_path):
    """The stack job: cancelled inside its second level, resumed in the same folder (the first level kept, the
    second continued from its checkpoint); the levels equal an uninterrupted job's, and the losses step by step."""
    from methods.gaussians.config import TRAIN_PRESETS
    from methods.gaussians.mipmap import FinetuneStackJob, MipmapVariant, MipStack
    from methods.gaussians.ply import load_ply, save_ply
    from methods.gaussians.train import GaussianTrainer
    from methods.jobs import JobCancelled, torch_threads

    base = GaussianTrainer.from_path(scene, replace(TRAIN_PRESETS["test_tiny"], method="mip", iterations=30,
                                                    out_dir=str(tmp_path / "base"), threads=1))
    base.run(lambda p: None, lambda: False)
    ply = save_ply(base.model, tmp_path / "base.ply")
    variant = MipmapVariant(base="mip", iterations=30)          # densifies (scaled to 30 steps), 3D filter on
    k = 30 + random.Random("mipmap").randrange(5, 25)             # a global step inside the second level

    def job(out: str, resume: bool = False) -> FinetuneStackJob:
        return FinetuneStackJob(str(ply), str(scene), str(tmp_path / out), scales=(0.25, 0.5), variant=variant,
                                resume=resume)
    with torch_threads(1):
        full, full_progress, never = _cancel_at(10 ** 9)
        job("a").run(full_progress, never)
        losses, progress, stop = _cancel_at(k)
        with pytest.raises(JobCancelled):
            job("b").run(progress, stop)
        assert [lv.scale for lv in MipStack.read(tmp_path / "b" / "mipmap.json").levels] == [0.25]
        rest, progress2, never2 = _cancel_at(10 ** 9)
        resumed = job("b", resume=True)
        resumed.run(progress2, never2)
    assert [lv.scale for lv in resumed.stack.levels] == [0.25, 0.5]    # the kept level and the continued one
    assert min(rest) > k and {**losses, **rest} == full   # nothing redone, and the same loss at every step
    for name in ("levels/x1_4.ply", "levels/x1_2.ply"):
        a, b = load_ply(tmp_path / "a" / name), load_ply(tmp_path / "b" / name)
        assert a.num_gaussians == b.num_gaussians, name
        for key, p in a.params().items():
            assert torch.equal(p, b.params()[key]), (name, key)


def test_mipmap_finetune_resume_refuses_other_settings_and_a_folder_without_a_job(scene, tmp_path):
    import main

    out = tmp_path / "stack"
    rc = main.main(["finetune", "gaussians", "--ply", str(tmp_path / "x.ply"), "--dataset", str(scene), "--out",
                    str(out), "--resume"])
    assert rc == 1
    from methods.gaussians.mipmap import FinetuneStackJob, MipmapVariant
    from methods.gaussians.model import GaussianModel
    from methods.gaussians.ply import save_ply

    ply = save_ply(GaussianModel.random_in_box(50, -0.5, 0.5, seed=0), tmp_path / "b.ply")
    with pytest.raises(ValueError, match="holds no finetune.json"):
        FinetuneStackJob(str(ply), str(scene), str(out), scales=(0.5,), resume=True).run(lambda p: None, lambda: False)
    FinetuneStackJob(str(ply), str(scene), str(out), scales=(0.5,),
                     variant=MipmapVariant(iterations=2, densify=False)).run(lambda p: None, lambda: False)
    with pytest.raises(ValueError, match="other scales, variant"):
        FinetuneStackJob(str(ply), str(scene), str(out), scales=(0.25,), resume=True).run(lambda p: None,
                                                                                          lambda: False)
