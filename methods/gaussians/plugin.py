"""The Gaussian splatting family (3DGS, Mip-Splatting): its headless commands and its Jobs-panel job."""
from __future__ import annotations

from dataclasses import dataclass

from methods.gaussians import cli
from methods.gaussians.config import METHODS, TRAIN_PRESETS
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
        Command(("export-demo-ply",), "write the bundled demo Gaussian scene (the Splat view's) as a PLY file",
                cli.add_export_arguments, cli.run_export),
    ),
    jobs=(
        JobSpec("Train Gaussian splatting (3DGS / Mip-Splatting)", TrainGaussiansOptions, _train_job,
                help="the Splat view follows the live model while it trains"),
    ),
    sources=(SourceSpec("splat", "Splat (3DGS / Mip-Splatting)",
                        lazy("methods.gaussians.live_source", "demo_source"), is_3d=True, order=5,
                        help="a 3D Gaussian scene (.ply or the bundled demo), or the live model of a training job"),),
    order=30,
)
