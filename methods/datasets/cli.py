"""``main.py dataset``: render the synthetic multi-scale dataset (nerf_synthetic format) headless."""
from __future__ import annotations

import argparse
from pathlib import Path

from assets.synthetic_scene import PRESETS as SCENE_PRESETS
from methods.cli import non_negative_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="default", choices=tuple(SCENE_PRESETS),
                   help="scene preset: image size, views per split, test scales (assets/synthetic_scene.py PRESETS)")
    p.add_argument("--resolution", type=non_negative_int, default=0,
                   help="training image size in pixels (0 = the preset's)")
    p.add_argument("--train-views", type=non_negative_int, default=0,
                   help="number of training views (0 = the preset's)")
    p.add_argument("--out", default="", metavar="FOLDER",
                   help="output folder, must be empty or absent (default: the cache, replaced if stale)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")


def run(args: argparse.Namespace) -> int:
    from methods.datasets.generate import GenerateSyntheticDataset, default_dataset_path
    from methods.jobs import run_headless

    spec = SCENE_PRESETS[args.preset]
    changes = {k: v for k, v in (("resolution", args.resolution), ("n_train", args.train_views)) if v}
    spec = spec.with_(**changes) if changes else spec
    variant = "-".join(f"{k}{v}" for k, v in changes.items())
    out = Path(args.out).expanduser() if args.out else default_dataset_path(args.preset, variant)
    job = GenerateSyntheticDataset(out_dir=out, spec=spec, overwrite=args.overwrite or not args.out)
    summary = run_headless(job)
    counts = ", ".join(f"{k} {v}" for k, v in summary.get("counts", {}).items())
    print(f"dataset written to {out} ({counts}) in {summary.get('seconds', 0):.1f} s")
    return 0
