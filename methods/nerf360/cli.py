"""Headless commands of the mip-NeRF 360 family: ``train nerf360`` and ``eval nerf360``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from methods.cli import non_negative_int, positive_int


def preset_names() -> tuple[str, ...]:
    from methods.nerf360.config import TRAIN_PRESETS

    return tuple(TRAIN_PRESETS)


def scene_preset_names() -> tuple[str, ...]:
    from assets.unbounded_scene import PRESETS

    return tuple(PRESETS)


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="", metavar="FOLDER",
                   help="an unbounded dataset: ours (transforms.json), the real Mip-NeRF 360 layout "
                        "(poses_bounds.npy + images_N/) or a COLMAP text model (default: the generated --scene)")
    p.add_argument("--scene", default="default", choices=scene_preset_names(),
                   help="generated unbounded scene used when --dataset is not given (made on first use)")
    p.add_argument("--config", default="cpu", choices=preset_names(), help="model and training preset")
    p.add_argument("--steps", type=non_negative_int, default=0, help="training steps (0 = the preset's)")


def dataset_root(args: argparse.Namespace) -> Path:
    if args.dataset:
        root = Path(args.dataset).expanduser()
        if not root.is_dir():
            raise ValueError(f"--dataset {root}: folder not found")
        return root
    from methods.nerf360.dataset import ensure_unbounded_dataset

    return ensure_unbounded_dataset(args.scene)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    p.add_argument("--out", default="", metavar="FOLDER", help="checkpoint folder (default: <cache>/runs/...)")
    p.add_argument("--resume", default="", metavar="CHECKPOINT", help="continue from this checkpoint.pt")
    p.add_argument("--bundle", action="store_true",
                   help="also write the result as the NeRF view's bundled demo (assets/nerf360/garden360_cpu.pt)")


def run_train(args: argparse.Namespace) -> int:
    from methods.jobs import run_headless
    from methods.nerf360.train import TRAIN_PRESETS, Nerf360Trainer

    cfg = TRAIN_PRESETS[args.config]
    if args.steps:
        cfg = cfg.with_(steps=args.steps)
    trainer = Nerf360Trainer(cfg, dataset_root(args), args.out or None, resume=args.resume or None)
    s = run_headless(trainer)
    held = f", held-out PSNR {s['psnr']:.2f} dB" if "psnr" in s else ""
    print(f"mip-NeRF 360 ({cfg.name}): {'cancelled at' if s['cancelled'] else 'trained'} {s['iterations']} steps "
          f"in {s['seconds']:.0f} s ({s['steps_per_s']:.1f} steps/s, {s['nan_steps']} skipped){held}")
    print(f"  checkpoint {s['checkpoint']}")
    if args.bundle and not s["cancelled"]:
        from methods.nerf360.demo import bundle_demo

        print(f"  bundled as {bundle_demo(s['checkpoint'], trainer.root)}")
    return 0


def _scales(text: str) -> tuple[float, ...]:
    """argparse ``type=``: "1/8,1,8" → scales; "all" → () = every scale the dataset stores."""
    from fractions import Fraction

    if text.strip() == "all":
        return ()
    try:
        vals = tuple(float(Fraction(v.strip())) for v in text.split(",") if v.strip())
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected scales such as 1/8,1,8; got {text!r}") from None
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"scales must be positive; got {text!r}")
    return vals


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    p.add_argument("--checkpoint", default="", metavar="CKPT", help="evaluate this model (default: train --config "
                   "first, cached, then evaluate)")
    p.add_argument("--scales", type=_scales, default="all", help="test scales, e.g. 1/8,1,8; all = every stored one")
    p.add_argument("--max-views", type=non_negative_int, default=4,
                   help="test views per scale (0 = all; an 8x view takes minutes on a CPU)")
    p.add_argument("--uniform", default="24,48,96,192,384",
                   type=lambda t: tuple(positive_int(v) for v in t.split(",") if v.strip()),
                   help="uniform-sampling sample counts the proposal sampler is compared with")
    p.add_argument("--json", default="", metavar="FILE", help="also write the results to this JSON file")


def run_eval(args: argparse.Namespace) -> int:
    from methods.jobs import run_headless
    from methods.nerf360.evaluate import Nerf360Eval, format_report

    if args.checkpoint and not Path(args.checkpoint).is_file():
        raise ValueError(f"--checkpoint {args.checkpoint}: no such file (a checkpoint.pt of `train nerf360`)")
    job = Nerf360Eval(str(dataset_root(args)), preset=args.config, checkpoint=args.checkpoint, scales=args.scales,
                      max_views=args.max_views, uniform_samples=args.uniform, steps=args.steps,
                      log=lambda line: print(line, file=sys.stderr))
    res = run_headless(job)
    print(format_report(res))
    if args.json:
        import json

        from assets.cache import atomic_write_text

        atomic_write_text(args.json, json.dumps(res, indent=2), parents=True)
        print(f"wrote {args.json}")
    return 0
