"""The GaussianSR family: ``train gaussiansr``, ``eval gaussiansr``, ``sr`` and the Jobs-panel training job."""
from __future__ import annotations

from dataclasses import dataclass

from methods.gaussiansr import cli
from methods.gaussiansr.config import MODEL_KINDS, TRAIN_PRESETS
from methods.plugin import Command, Family, JobSpec, SourceSpec, lazy
from render.options import option


@dataclass(frozen=True)
class TrainSROptions:
    folder: str = option("", label="photo folder", help="a folder of training photos; empty = the preset's bundled "
                                                        "photos (scikit-image's)")
    preset: str = option("cpu", choices=tuple(TRAIN_PRESETS), help="model size and schedule")
    model: str = option("gaussiansr", choices=MODEL_KINDS, help="GaussianSR or the LIIF baseline")
    faithful: bool = option(False, help="GaussianSR as released (batch-averaged Gaussians, corner-centred, clamp)")
    iterations: int = option(0, label="steps (0 = preset)", min=0, max=10_000_000, help="training steps")
    out_dir: str = option("", label="output folder", help="checkpoint folder; empty = <cache>/runs/...")


def _train_job(o: TrainSROptions):
    import os

    from methods.gaussiansr.config import preset
    from methods.gaussiansr.train import SRTrainer

    cfg = preset(o.preset)
    cfg = cfg.with_(model=cfg.model.with_(kind=o.model, faithful=o.faithful),
                    out_dir=os.path.expanduser(o.out_dir.strip()), **({"iterations": o.iterations}
                                                                      if o.iterations else {}))
    images = cli.load_images([os.path.expanduser(o.folder.strip())]) if o.folder.strip() else None
    return SRTrainer(cfg, images)


try:  # the zoom-in pseudo-GT provider for Mipmap-GS (only where the Gaussians family is installed too)
    from methods.gaussiansr.provider import register as _register_provider

    _register_provider()
except ImportError:
    pass

FAMILY = Family(
    name="gaussiansr",
    title="GaussianSR",
    commands=(
        Command(("train", "gaussiansr"), "train GaussianSR (or the LIIF baseline) for arbitrary-scale super-resolution",
                cli.add_train_arguments, cli.run_train),
        Command(("eval", "gaussiansr"), "bicubic / LIIF / GaussianSR PSNR at several scales (the LIIF protocol)",
                cli.add_eval_arguments, cli.run_eval),
        Command(("sr",), "super-resolve one image by any scale >= 1 (e.g. 3.7)", cli.add_sr_arguments, cli.run_sr),
    ),
    jobs=(JobSpec("Train GaussianSR", TrainSROptions, _train_job,
                  help="loss and held-out PSNR at x2/x3/x4 stream to the Jobs panel; preview: bicubic | model | "
                       "truth at x4"),),
    sources=(SourceSpec("sr", "Super-resolution (GaussianSR)", lazy("methods.gaussiansr.live_source", "demo_source"),
                        order=60, help="a photo at any zoom through nearest / bicubic / LIIF / GaussianSR, split "
                                       "between two, with pretend-LR PSNR and the per-pixel Gaussians"),),
    order=60,
)
