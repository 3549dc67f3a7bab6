"""The MINER family: ``train miner``, ``eval miner`` and the Jobs-panel training job."""
from __future__ import annotations

from dataclasses import dataclass

from methods.miner import cli
from methods.miner.config import PRESETS
from methods.plugin import Command, Family, JobSpec, SourceSpec, lazy
from render.options import option


@dataclass(frozen=True)
class TrainMinerOptions:
    image: str = option("astronaut", label="image", help="an image file, a bundled photo name, or mosaic[:SIZE]")
    preset: str = option("cpu", choices=tuple(PRESETS), help="model and schedule")
    out_dir: str = option("", label="output folder", help="checkpoint folder; empty = <cache>/runs/...")


def _train_job(o: TrainMinerOptions):
    import os

    from methods.miner.config import preset
    from methods.miner.train import MinerTrainer

    img, label = cli.load_image(o.image.strip())
    return MinerTrainer(preset(o.preset, out_dir=os.path.expanduser(o.out_dir.strip())), img, label=label,
                        source=cli.image_source(o.image.strip()))


FAMILY = Family(
    name="miner",
    title="MINER",
    commands=(
        Command(("train", "miner"), "fit MINER (a Laplacian pyramid of per-block MLPs) to one image, coarse to fine",
                cli.add_train_arguments, cli.run_train),
        Command(("eval", "miner"), "MINER (paper, lightning) vs an equal-parameter single MLP: time to 30/35/40 dB",
                cli.add_eval_arguments, cli.run_eval),
    ),
    jobs=(JobSpec("Train MINER", TrainMinerOptions, _train_job,
                  help="PSNR so far and learning blocks per level stream to the Jobs panel; preview: the "
                       "reconstruction with learning (red) and pruned (green) blocks"),),
    sources=(SourceSpec("miner", "MINER (multiscale image)", lazy("methods.miner.live_source", "demo_source"),
                        order=70, help="a photo's MINER fit: the zoom picks (and blends) pyramid levels; block "
                                       "overlays; compare with the original or an equal-size single MLP"),),
    order=70,
)
