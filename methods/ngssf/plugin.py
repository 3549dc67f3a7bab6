"""The neural Gaussian scale-space field family (NGSSF): its headless commands and its Jobs-panel job."""
from __future__ import annotations

from dataclasses import dataclass

from methods.ngssf import cli
from methods.ngssf.config import MODALITY_NAMES, TRAIN_PRESETS
from methods.plugin import Command, Family, JobSpec, SourceSpec, lazy
from render.options import option


@dataclass(frozen=True)
class TrainNGSSFOptions:
    target: str = option("astronaut", label="photo name / image or mesh path",
                         help="a bundled photo name (astronaut, chelsea, ...) or an image path; a mesh path or "
                              "shape with modality 'mesh'")
    modality: str = option("picture", choices=MODALITY_NAMES, help="what the target is")
    preset: str = option(cli.DEFAULT_CONFIG, choices=tuple(TRAIN_PRESETS), help="training schedule")
    iterations: int = option(0, label="iterations (0 = preset)", min=0, max=1_000_000,
                             help="training iterations; 0 keeps the preset's")


def _train_job(o: TrainNGSSFOptions):
    from methods.ngssf.config import train_preset
    from methods.ngssf.train_job import TrainNGSSFJob

    cfg = train_preset(o.preset, **({"iterations": int(o.iterations)} if o.iterations else {}))
    return TrainNGSSFJob(o.target.strip() or "astronaut", config=cfg, modality=o.modality)


FAMILY = Family(
    name="ngssf",
    title="Neural Gaussian scale-space fields",
    commands=(
        Command(("train", "ngssf"), "train a neural scale-space field of a photo, texture, mesh or the Ackley "
                "function", cli.add_train_arguments, cli.run_train),
        Command(("eval", "ngssf"), "a scale-space field vs the exact Gaussian blur (PSNR/SSIM per variance)",
                cli.add_eval_arguments, cli.run_eval),
        Command(("render", "ngssf"), "a scale-space field at one Gaussian scale: image (2D) or smoothed mesh (3D)",
                cli.add_render_arguments, cli.run_render),
    ),
    jobs=(JobSpec("Train NGSSF scale-space field", TrainNGSSFOptions, _train_job,
                  help="the Scale space view follows the field while it trains"),),
    sources=(SourceSpec("scale_space", "Scale space (NGSSF)",
                        lazy("methods.ngssf.live_source", "demo_source"), order=30,
                        help="a scale-space field blurred by any Gaussian in one pass, or the live field of a job"),),
    order=40,
)
