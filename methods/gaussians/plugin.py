"""The Gaussian splatting family (3DGS, Mip-Splatting): its headless commands and its Jobs-panel job."""
from __future__ import annotations

from dataclasses import dataclass

from methods.gaussians import cli
from methods.gaussians.config import METHODS, TRAIN_PRESETS
from methods.gaussians.mipmap import POSE_SETS, POSITION_LR, SOURCES, pseudo_gt_names
from methods.plugin import Command, Family, JobSpec, SourceSpec, lazy
from render.options import option


@dataclass(frozen=True)
class TrainGaussiansOptions:
    dataset: str = option("", label="dataset folder",
                          help="a nerf_synthetic-format folder; empty = the generated synthetic 'default' scene "
                               "(made on first use)")
    method: str = option("mip", choices=tuple(METHODS), labels=tuple(m.label for m in METHODS.values()),
                         help="3DGS, or Mip-Splatting (3D smoothing filter + 2D Mip filter)")
    preset: str = option(cli.DEFAULT_CONFIG, choices=tuple(TRAIN_PRESETS), help="training schedule")
    iterations: int = option(0, label="iterations (0 = preset)", min=0, max=1_000_000,
                             help="train this many iterations, the preset's schedule scaled to match")
    out_dir: str = option("", label="output folder", help="where checkpoints and PLYs go; empty = <cache>/runs/...")


@dataclass(frozen=True)
class FinetuneStackOptions:
    base_ply: str = option("", label="base model (.ply)", help="a trained 3DGS or Mip-Splatting PLY")
    dataset: str = option("", label="dataset folder",
                          help="its nerf_synthetic-format dataset (poses; true images for the oracle); empty = the "
                               "generated synthetic 'default' scene")
    scales: str = option("1/8,1/4,1/2", help="target scales relative to the base's training rate, 1/8..8")
    base_scale: float = option(1.0, min=0.125, max=1.0, label="base trained at scale",
                               help="dataset scale the base was trained at (1 for zoom-out, 0.125 for zoom-in)")
    method: str = option("3dgs", choices=tuple(METHODS), help="how the levels render and train")
    pseudo_gt_out: str = option("bilinear", choices=pseudo_gt_names(zoom_in=False), label="zoom-out pseudo-GT",
                                help="bilinear as released, area = box filter, oracle = true images")
    pseudo_gt_in: str = option("bicubic", choices=pseudo_gt_names(zoom_in=True), label="zoom-in pseudo-GT",
                               help="bicubic super-resolution, oracle = true images")
    poses: str = option("test", choices=POSE_SETS,
                        help="test views (the paper), training views, or training views + new poses around")
    source: str = option("render", choices=SOURCES, label="pseudo-GT from",
                         help="the base's renders, or the training images where the poses have them (train/free)")
    position_lr: str = option("released", choices=POSITION_LR, label="position LR",
                              help="released = positions move only by densification; schedule = 3DGS decay")
    iterations: int = option(1000, min=1, max=100_000, help="finetuning steps per level")
    densify: bool = option(True, label="densify (as released)",
                           help="the release densifies every 100 steps; off measured better on small levels")
    opacity_reset: bool = option(False, label="opacity reset at step 2 (quirk)",
                                 help="the release resets opacities once at step 2 on white backgrounds")
    out_dir: str = option("", label="output folder", help="empty = <cache>/runs/mipmap-<time>")
    resume: bool = option(False, label="continue in the output folder",
                          help="a cancelled job with the same settings: keep its finished levels and continue the "
                               "running one from its checkpoint")


def _finetune_job(o: FinetuneStackOptions):
    import argparse
    import os
    import time

    from methods.gaussians.mipmap import FinetuneStackJob, MipmapVariant

    if not o.base_ply.strip() or not os.path.isfile(os.path.expanduser(o.base_ply.strip())):
        raise ValueError(f"base model {o.base_ply!r}: no such .ply file")
    try:
        scales = cli.parse_scales(o.scales)
    except argparse.ArgumentTypeError as e:
        raise ValueError(str(e)) from None
    from assets.cache import cache_dir

    root = os.path.expanduser(o.dataset.strip()) if o.dataset.strip() else ""
    if not root:
        from methods.datasets import ensure_dataset

        root = str(ensure_dataset("default"))
    out = os.path.expanduser(o.out_dir.strip()) or str(cache_dir() / "runs" / time.strftime("mipmap-%Y%m%d-%H%M%S"))
    variant = MipmapVariant(base=o.method, pseudo_out=o.pseudo_gt_out, pseudo_in=o.pseudo_gt_in, poses=o.poses,
                            source=o.source, position_lr=o.position_lr, densify=o.densify,
                            opacity_reset=o.opacity_reset, iterations=o.iterations)
    if o.resume and not o.out_dir.strip():
        raise ValueError("continue in the output folder: name the output folder of the job to continue")
    return FinetuneStackJob(os.path.expanduser(o.base_ply.strip()), root, out, scales=scales, variant=variant,
                            base_scale=o.base_scale, resume=o.resume)


def _train_job(o: TrainGaussiansOptions):
    import os

    from methods.gaussians.config import TrainConfig
    from methods.gaussians.train_job import TrainGaussiansJob

    out_dir = os.path.expanduser(o.out_dir.strip())
    cfg = TrainConfig.preset(o.preset, method=o.method, **({"out_dir": out_dir} if out_dir else {}))
    if o.iterations:
        cfg = cfg.scaled_to(o.iterations)
    dataset = os.path.expanduser(o.dataset.strip()) if o.dataset.strip() else ""
    return TrainGaussiansJob(config=cfg, dataset=dataset)


FAMILY = Family(
    name="gaussians",
    title="Gaussian splatting",
    commands=(
        Command(("train", "gaussians"), "train 3DGS or Mip-Splatting on a dataset (progress bar, checkpoints, PLY)",
                cli.add_train_arguments, cli.run_train),
        Command(("eval", "gaussians"), "stmt benchmark: single-scale training, multi-scale testing (3DGS vs "
                "Mip-Splatting)", cli.add_eval_arguments, cli.run_eval),
        Command(("render", "gaussians"), "render a 3D Gaussian .ply along the cameras of a transforms file",
                cli.add_render_arguments, cli.run_render),
        Command(("finetune", "gaussians"), "Mipmap-GS: finetune a trained model at each target scale into a mip "
                "stack (levels/*.ply + mipmap.json)", cli.add_finetune_arguments, cli.run_finetune),
        Command(("edit", "gaussians"), "replay a recorded edit list (select, delete, crop, recolour, transform) on "
                "a PLY and write the edited PLY", cli.add_edit_arguments, cli.run_edit),
        Command(("export-demo-ply",), "write the bundled demo Gaussian scene (the Splat view's), or a synthetic "
                "N-Gaussian one (--gaussians), as a PLY file", cli.add_export_arguments, cli.run_export),
    ),
    jobs=(
        JobSpec("Train Gaussian splatting (3DGS / Mip-Splatting)", TrainGaussiansOptions, _train_job,
                help="the Splat view follows the live model while it trains"),
        JobSpec("Finetune Mipmap-GS stack", FinetuneStackOptions, _finetune_job,
                help="one finetuned copy of the base per scale; open the mipmap.json in the Splat view"),
    ),
    sources=(SourceSpec("splat", "Splat (3DGS / Mip-Splatting)",
                        lazy("methods.gaussians.live_source", "demo_source"), is_3d=True, order=5,
                        help="a 3D Gaussian scene (.ply or the bundled demo), or the live model of a training job"),),
    order=30,
)
