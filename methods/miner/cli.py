"""Headless commands: ``train miner IMAGE`` and ``eval miner IMAGE``. Nothing heavy at module level."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from methods.cli import non_negative_int, positive_float, positive_int
from methods.miner.config import PRESETS


def epochs_arg(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        vals = ()
    if not vals or min(vals) < 0:
        raise argparse.ArgumentTypeError(f"expected epochs per level, coarse to fine, such as 200,200,150; "
                                         f"got {text!r}")
    return vals


def image_source(spec: str, max_side: int = 0) -> str:
    """What a checkpoint records to load its image again (absolute path for files, then ``@max_side``)."""
    path = Path(spec).expanduser()
    spec = str(path.resolve()) if path.is_file() else spec
    return f"{spec}@{max_side}" if max_side else spec


def load_source(source: str) -> tuple["object", str]:
    """The image an :func:`image_source` string names, without notes (they were said at training)."""
    spec, sep, side = source.rpartition("@")
    if not sep or not side.isdigit():
        spec, side = source, "0"
    return load_image(spec, int(side), notes=[])


def load_image(spec: str, max_side: int = 0, notes: list[str] | None = None) -> tuple["object", str]:
    """(HxWx3 float array, label) from an image file, a bundled photo name, or ``mosaic[:SIZE]`` (a SIZE² mosaic of
    native-resolution photo crops, default 4096). Grey, 16-bit and RGBA files are converted: said on stderr, or
    appended to ``notes`` when given (as is a crop)."""
    from assets.images import load_rgb
    from assets.photos import centre_crop, photo_mosaic

    said: list[str] = []
    if spec.startswith("mosaic"):
        _, _, size = spec.partition(":")
        try:
            side = int(size) if size else 4096
        except ValueError:
            raise ValueError(f"expected mosaic or mosaic:SIZE (a multiple of 256), got {spec!r}") from None
        img, label = photo_mosaic(side), f"mosaic{side}"
    else:
        img, label, said = load_rgb(spec)
    cropped = centre_crop(img, max_side)
    if cropped is not img:
        img = cropped
        said.append(f"centre-cropped to {img.shape[1]}x{img.shape[0]} (--max-side)")
    for n in said:
        if notes is None:
            print(f"{spec}: {n}", file=sys.stderr)
        else:
            notes.append(f"{spec}: {n}")
    return img, label


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="an image file, a bundled photo name, or mosaic[:SIZE]")
    p.add_argument("--preset", default="cpu", choices=tuple(PRESETS), help="model and schedule")
    p.add_argument("--levels", type=positive_int, default=0, help="pyramid levels J (0 = the preset's)")
    p.add_argument("--block", type=positive_int, default=0, help="block side b in pixels (0 = the preset's)")
    p.add_argument("--epochs", type=epochs_arg, default=None, help="epochs per level, coarse to fine")
    p.add_argument("--max-side", type=non_negative_int, default=0, help="centre-crop larger images to this side")
    p.add_argument("--out", default="", metavar="FOLDER", help="run folder for miner.pt (default <cache>/runs/...)")
    p.add_argument("--resume", default="", metavar="CHECKPOINT", help="continue from this miner.pt")
    p.add_argument("--threads", type=non_negative_int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--save", default="", metavar="OUT.png", help="also write the full reconstruction here")


def run_train(args: argparse.Namespace) -> int:
    from methods.jobs import run_headless
    from methods.miner.config import preset
    from methods.miner.train import MinerTrainer

    img, label = load_image(args.image, args.max_side)
    changes = {"out_dir": args.out, "threads": args.threads}
    for key in ("levels", "block"):
        if getattr(args, key):
            changes[key] = getattr(args, key)
    if args.epochs:
        changes["epochs"] = args.epochs
    trainer = MinerTrainer(preset(args.preset, **changes), img, label=label, resume=args.resume or None,
                           source=image_source(args.image, args.max_side))
    if trainer.padded_note:
        print(f"{label}: {trainer.padded_note}", file=sys.stderr)
    r = run_headless(trainer)
    state = "cancelled" if r["cancelled"] else "trained"
    print(f"MINER ({r['preset']}) {state}: {r['levels_done']} of {trainer.config.levels} levels in "
          f"{r['seconds']:.1f} s, PSNR {r['psnr']:.2f} dB, {r['params']:,} parameters")
    print(f"  checkpoint {r['checkpoint']}")
    if args.save:
        from assets.cache import atomic_save_image

        print(f"  image      {atomic_save_image(args.save, trainer.model.reconstruct(0).clamp(0, 1).numpy())}")
    return 0


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="an image file, a bundled photo name, or mosaic[:SIZE]")
    p.add_argument("--budget", type=positive_float, default=300.0, metavar="SECONDS",
                   help="training seconds per method (each stops at its budget or when done)")
    p.add_argument("--baseline-budget", type=positive_float, default=None, metavar="SECONDS",
                   help="training seconds for the single MLP (default: --budget); longer shows larger speedups")
    p.add_argument("--baseline", default="siren", choices=("siren", "fourier"), help="the single-MLP baseline")
    p.add_argument("--max-side", type=non_negative_int, default=0, help="centre-crop larger images to this side")
    p.add_argument("--threads", type=non_negative_int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--json", default="", metavar="FILE", help="also write the table here")


def run_eval(args: argparse.Namespace) -> int:
    import json

    from assets.cache import atomic_write_bytes
    from methods.jobs import torch_threads
    from methods.miner.evaluate import evaluate, format_table

    if args.json and not Path(args.json).expanduser().resolve().parent.is_dir():
        raise ValueError(f"--json {args.json}: the folder does not exist")
    img, label = load_image(args.image, args.max_side)
    print(f"{label}: {img.shape[1]}x{img.shape[0]}, budget {args.budget:g} s per method", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp, torch_threads(args.threads):
        rows = evaluate(img, args.budget, tmp, baseline=args.baseline, baseline_budget_s=args.baseline_budget or 0.0,
                        stream=sys.stderr)
    budget = f"budget {args.budget:g} s" + (f", baseline {args.baseline_budget:g} s" if args.baseline_budget else "")
    print(format_table(rows, f"{label} ({img.shape[1]}x{img.shape[0]}), {budget}"))
    if args.json:
        out = {k: {f: r[f] for f in ("seconds_to", "psnr", "ssim", "params", "peak_mb")} for k, r in rows.items()}
        atomic_write_bytes(Path(args.json).expanduser(), json.dumps(out, indent=1).encode())
    return 0
