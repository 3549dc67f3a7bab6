"""Datasets: the synthetic multi-scale dataset generator as a command and a Jobs-panel job."""
from __future__ import annotations

import os
from dataclasses import dataclass

from assets.synthetic_scene import PRESETS as SCENE_PRESETS
from methods.datasets import cli
from methods.plugin import Command, Family, JobSpec
from render.options import option


@dataclass(frozen=True)
class GenerateDatasetOptions:
    preset: str = option("default", choices=tuple(SCENE_PRESETS), help="scene preset (views, scales, textures)")
    resolution: int = option(128, label="resolution (px)", min=8, max=1600, help="training image size in pixels")
    train_views: int = option(100, label="train views", min=1, max=1000, help="number of training views")
    out_dir: str = option("", label="output folder",
                          help="an empty or new folder; empty = the cache (a folder you name is never overwritten)")


def _dataset_job(o: GenerateDatasetOptions):
    from methods.datasets.generate import GenerateSyntheticDataset, default_dataset_path

    spec = SCENE_PRESETS[o.preset].with_(resolution=int(o.resolution), n_train=int(o.train_views))
    # Only our own cache folder is replaced; a folder the user typed is never overwritten.
    out = os.path.expanduser(o.out_dir.strip()) if o.out_dir.strip() else None
    target = out or str(default_dataset_path(o.preset, f"{o.resolution}px-{o.train_views}v"))
    return GenerateSyntheticDataset(out_dir=target, spec=spec, overwrite=out is None)


FAMILY = Family(
    name="datasets",
    title="Datasets",
    commands=(Command(("dataset",), "generate the synthetic multi-scale dataset (nerf_synthetic format)",
                      cli.add_arguments, cli.run),),
    jobs=(JobSpec("Generate synthetic dataset", GenerateDatasetOptions, _dataset_job,
                  help="renders the synthetic scene with supersampled ground truth at every test scale"),),
    order=10,
)
