"""Headless commands of the neural-texture family: train the bundled field, render and evaluate camera paths."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from methods.cli import (
    non_negative_int,
    optional_size_arg,
    positive_float,
    positive_int,
)
from methods.neural_texture.modes import BOX_MATCHED_WIDTH, MODES
from methods.ngssf.config import TRAIN_PRESETS

DEFAULT_PATH_HELP = "camera path JSON (default: the bundled swoop around the fish, assets/neural_texture/)"


# ----- train neural_texture -----------------------------------------------------------------------------------------
def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="cpu", choices=tuple(TRAIN_PRESETS), help="NGSSF training preset")
    p.add_argument("--iterations", type=non_negative_int, default=0, help="training iterations (0 = the preset's)")
    p.add_argument("--texture-size", type=positive_int, default=1024,
                   help="train on the fish texture at this size (the GL modes sample the 1024² texture)")
    p.add_argument("--out", default="", metavar="FILE.pt",
                   help="where to write the field (default: the bundled assets/neural_texture/fish_texture.pt)")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming the cached run")


def run_train(args: argparse.Namespace) -> int:
    from assets.fish import fish_paths
    from methods.jobs import run_headless
    from methods.neural_texture.texture import bundle_texture_field
    from methods.ngssf.config import train_preset
    from methods.ngssf.train import load_field
    from methods.ngssf.train_job import TrainNGSSFJob

    changes = {"image_size": args.texture_size, "preview_every_s": 30.0}
    if args.iterations:
        changes["iterations"] = args.iterations
    job = TrainNGSSFJob(str(fish_paths()[1]), config=train_preset(args.config, **changes), modality="texture",
                        resume=not args.fresh)
    result = run_headless(job)
    if result["cancelled"]:
        print("cancelled; the run folder keeps its checkpoint (run again to resume)")
        return 130
    field, meta = load_field(result["checkpoint"])
    out = bundle_texture_field(field, args.texture_size, args.out or None, step=int(meta.get("step") or 0),
                               preset=args.config, calibration=float(result["calibration"]))
    print(f"trained {result['iterations']} iterations in {result['seconds']:.0f} s, calibration c = "
          f"{result['calibration']:.4g}; wrote {out}")
    return 0


# ----- shared by render / eval --------------------------------------------------------------------------------------
def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--path", default="", metavar="PATH.json", help=DEFAULT_PATH_HELP)
    p.add_argument("--field", default="", metavar="FILE.pt",
                   help="neural texture: a bundled-format file or an NGSSF training checkpoint (default: bundled)")
    p.add_argument("--zoom", type=positive_float, default=1.0,
                   help="sampling rate: multiplies every frame's focal length (below 1 minifies the texture)")
    p.add_argument("--filter-width", type=positive_float, default=BOX_MATCHED_WIDTH,
                   help="NGSSF footprint σ = width/2 pixels (0.577 matches a supersampled pixel's variance; 1 = the "
                        "paper's σ = ½ px)")
    p.add_argument("--frames", type=non_negative_int, default=0, help="use only the first N frames (0 = all)")


def _load(args: argparse.Namespace, need_field: bool):
    from methods.neural_texture.path import DEFAULT_PATH, read_path
    from methods.neural_texture.renderer import WalkthroughRenderer
    from methods.neural_texture.texture import fish_mesh, load_texture_field

    frames = read_path(args.path or DEFAULT_PATH)
    if args.frames:
        frames = frames[:args.frames]
    field, meta = load_texture_field(args.field or None) if need_field else (None, {})
    renderer = WalkthroughRenderer(fish_mesh(), field, int(meta.get("texture_size", 0)) or None)
    return frames, renderer


# ----- render walkthrough -----------------------------------------------------------------------------------------
def add_render_arguments(p: argparse.ArgumentParser) -> None:
    _add_common(p)
    p.add_argument("--mode", default="ngssf", choices=MODES, help="texture mode")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for frame_NNNN.png (created)")
    p.add_argument("--size", type=optional_size_arg, default="", metavar="WxH",
                   help="render every frame at this size, same vertical field of view (default: the path's)")
    p.add_argument("--downsample", type=positive_int, default=1,
                   help="K: output at 1/K of the size ('reference' then averages KxK full-size samples)")


def run_render(args: argparse.Namespace) -> int:
    import dataclasses

    import numpy as np

    from assets.cache import atomic_save_image
    from methods.neural_texture.renderer import box_downsample

    frames, renderer = _load(args, need_field=args.mode == "ngssf")
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    k, total = args.downsample, 0.0
    for i, fr in enumerate(frames):
        if args.size:
            fr = dataclasses.replace(fr, width=args.size[0], height=args.size[1])
        cam = fr.camera(args.zoom)
        low = cam.scaled(1.0 / k) if k > 1 else cam
        if args.mode == "reference" and k > 1:
            res = renderer.render(low.scaled(k), "bilinear")
            img, secs = box_downsample(res.image, k), res.seconds
        else:
            res = renderer.render(low, args.mode, filter_width=args.filter_width)
            img, secs = res.image, res.seconds
        total += secs
        atomic_save_image(out / f"frame_{i:04d}.png", np.clip(img, 0, 1))
        print(f"frame {i + 1}/{len(frames)}: {img.shape[1]}x{img.shape[0]} {args.mode} in {secs * 1000:.0f} ms",
              file=sys.stderr)
    print(f"rendered {len(frames)} frames ({args.mode}) to {out} in {total:.1f} s "
          f"({total / len(frames) * 1000:.0f} ms per frame)")
    return 0


# ----- eval walkthrough -----------------------------------------------------------------------------------------
def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    _add_common(p)
    p.add_argument("--downsample", type=positive_int, default=16,
                   help="K: modes render at 1/K of the path's size, the reference averages KxK full-size samples")
    p.add_argument("--json", default="", metavar="FILE",
                   help='also write {"modes": {MODE: {"psnr", "ssim", "ms_per_frame", ...}}, "frames", '
                        '"downsample"}')


def run_eval(args: argparse.Namespace) -> int:
    import json

    from assets.cache import atomic_write_text
    from methods.neural_texture.evaluate import evaluate_path, format_table

    frames, renderer = _load(args, need_field=True)
    result = evaluate_path(renderer, frames, downsample=args.downsample, zoom=args.zoom,
                           filter_width=args.filter_width, log=lambda line: print(line, file=sys.stderr))
    print(format_table(result))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1), parents=True)
        print(f"wrote {args.json}")
    return 0
