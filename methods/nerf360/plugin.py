"""The mip-NeRF 360 family: ``train nerf360``, ``eval nerf360``, the Jobs-panel training job and the NeRF view's
source (a progressive renderer with the sampler probe)."""
from __future__ import annotations

from dataclasses import dataclass

from methods.nerf360 import cli
from methods.plugin import Command, Family, JobSpec, SourceSpec, lazy
from render.options import option


@dataclass(frozen=True)
class TrainNerf360Options:
    dataset: str = option("", label="dataset folder",
                          help="ours (transforms.json), the real Mip-NeRF 360 layout or a COLMAP text model; empty = "
                               "the generated unbounded scene")
    scene: str = option("default", choices=cli.scene_preset_names(), label="generated scene",
                        help="which generated scene when no folder is given")
    preset: str = option("cpu", choices=cli.preset_names(), help="model size and schedule")
    steps: int = option(0, label="steps (0 = preset)", min=0, max=10_000_000, help="training steps")
    out_dir: str = option("", label="output folder", help="checkpoint folder; empty = <cache>/runs/...")


def _train_job(o: TrainNerf360Options):
    import os

    from methods.nerf360.config import TRAIN_PRESETS
    from methods.nerf360.train_job import TrainNerf360Job

    cfg = TRAIN_PRESETS[o.preset]
    if o.steps:
        cfg = cfg.with_(steps=o.steps)
    dataset = os.path.expanduser(o.dataset.strip())
    if dataset and not os.path.isdir(dataset):
        raise ValueError(f"dataset folder {dataset!r} not found")
    return TrainNerf360Job(cfg, dataset, o.scene, os.path.expanduser(o.out_dir.strip()))


FAMILY = Family(
    name="nerf360",
    title="Mip-NeRF 360",
    commands=(
        Command(("train", "nerf360"), "train mip-NeRF 360 (proposal sampler, contraction, IPE) on an unbounded scene",
                cli.add_train_arguments, cli.run_train),
        Command(("eval", "nerf360"), "PSNR/SSIM at every test scale and the proposal sampler's saving over uniform "
                "sampling", cli.add_eval_arguments, cli.run_eval),
    ),
    jobs=(JobSpec("Train Mip-NeRF 360", TrainNerf360Options, _train_job,
                  help="loss terms recon / prop / dist and held-out PSNR stream to the Jobs panel"),),
    sources=(SourceSpec("nerf360", "NeRF (Mip-NeRF 360)", lazy("methods.nerf360.live_source", "demo_source"),
                        is_3d=True, order=40,
                        help="a mip-NeRF 360 model rendered progressively; zoom sets the cone radius; click a pixel "
                             "for the sampler probe"),),
    order=40,
)
