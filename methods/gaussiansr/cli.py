"""Headless commands: ``train gaussiansr``, ``eval gaussiansr`` and ``sr`` (one image at any scale >= 1).

Nothing heavy is imported at module level (``main.py --help`` builds every parser)."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from methods.cli import non_negative_int
from methods.gaussiansr.config import MODEL_KINDS, TRAIN_PRESETS

BUNDLED = {"gaussiansr": "gaussiansr_cpu.pt", "gaussiansr-faithful": "gaussiansr_faithful_cpu.pt",
           "liif": "liif_cpu.pt"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
SR_MODES = ("gaussiansr", "liif", "bicubic")


def bundled_checkpoint(name: str = "gaussiansr") -> Path:
    """assets/gaussiansr/<file> of a bundled model (``main.py train gaussiansr --bundle`` writes them)."""
    return Path(__file__).resolve().parents[2] / "assets" / "gaussiansr" / BUNDLED[name]


def scale_arg(text: str) -> float:
    """argparse ``type=`` for an SR scale: a finite number >= 1."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a scale >= 1 such as 3.7, got {text!r}") from None
    if not (math.isfinite(v) and v >= 1.0):
        raise argparse.ArgumentTypeError(f"expected a scale >= 1 such as 3.7, got {text!r}")
    return v


def scale_list(text: str) -> tuple[float, ...]:
    vals = tuple(scale_arg(t.strip()) for t in text.split(",") if t.strip())
    if not vals:
        raise argparse.ArgumentTypeError(f"expected scales such as 2,3,4, got {text!r}")
    return vals


def image_files(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder`` (sorted); one clear line when there are none."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValueError(f"{root}: folder not found (give a folder of PNG/JPEG images)")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"{root}: no PNG/JPEG/BMP/TIFF/WebP images in this folder")
    return files


def load_images(specs: list[str], max_side: int = 0) -> list[tuple[str, "object"]]:
    """(label, HxWx3 float array) for each bundled photo name / image file / folder in ``specs``; ``max_side``
    centre-crops larger images to at most that many pixels per side (keeps CPU evals affordable)."""
    from assets.images import load_rgb
    from assets.photos import centre_crop

    out = []
    for spec in specs:
        p = Path(spec).expanduser()
        for item in (image_files(p) if p.is_dir() else [spec]):
            img, label, notes = load_rgb(str(item))
            for n in notes:
                print(f"{item}: {n}", file=sys.stderr)
            out.append((label, centre_crop(img, max_side)))
    return out


# ----- train --------------------------------------------------------------------------------------------------------
def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", nargs="?", default="",
                   help="a folder of training photos (e.g. DIV2K_train_HR); default: the preset's bundled photos")
    p.add_argument("--preset", default="cpu", choices=tuple(TRAIN_PRESETS), help="model size and schedule")
    p.add_argument("--model", default="gaussiansr", choices=MODEL_KINDS, help="GaussianSR or the LIIF baseline")
    p.add_argument("--faithful", action="store_true",
                   help="GaussianSR as released: batch-averaged Gaussian parameters, corner-centred, [0,1] clamp")
    p.add_argument("--iterations", type=non_negative_int, default=0, help="training steps (0 = the preset's)")
    p.add_argument("--out", default="", metavar="FOLDER",
                   help="run folder for checkpoint.pt (default: <cache>/runs/<model>-<preset>-<time>)")
    p.add_argument("--resume", default="", metavar="CHECKPOINT", help="continue from this checkpoint.pt")
    p.add_argument("--threads", type=non_negative_int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--bundle", action="store_true",
                   help="also write the trained model (fp16, no optimiser) as the studio's bundled checkpoint")


def run_train(args: argparse.Namespace) -> int:
    from methods.gaussiansr.config import preset
    from methods.gaussiansr.train import SRTrainer
    from methods.jobs import run_headless

    cfg = preset(args.preset)
    changes = {"out_dir": args.out, "threads": args.threads, "preview_interval_s": math.inf,
               "model": cfg.model.with_(kind=args.model, faithful=args.faithful)}
    if args.iterations:
        changes["iterations"] = args.iterations
    cfg = cfg.with_(**changes)
    images = load_images([args.folder]) if args.folder else None
    trainer = SRTrainer(cfg, images, resume=args.resume or None)
    r = run_headless(trainer)
    state = "cancelled at" if r["cancelled"] else "trained"
    val = (", held-out " + ", ".join(f"x{s} {r[f'val_x{s}']:.2f} dB (bicubic {r[f'bicubic_x{s}']:.2f})"
                                     for s in (2, 3, 4))) if "val_x2" in r else ""
    print(f"{r['model']}: {state} {r['steps']} steps in {r['seconds']:.0f} s, loss {r['loss']:.4f}{val}")
    print(f"  checkpoint {r['checkpoint']}")
    if args.bundle and not r["cancelled"]:
        name = "liif" if args.model == "liif" else ("gaussiansr-faithful" if args.faithful else "gaussiansr")
        print(f"  bundled    {trainer.save_checkpoint(bundled_checkpoint(name), for_release=True)}")
    return 0


# ----- eval ---------------------------------------------------------------------------------------------------------
def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", required=True, nargs="+", metavar="FOLDER|IMAGE|PHOTO",
                   help="images never trained on: folders, files or bundled photo names (chelsea is held out)")
    p.add_argument("--scales", type=scale_list, default="2,3,4,6,8", help="comma-separated scales (any >= 1)")
    p.add_argument("--checkpoint", default="", help="GaussianSR checkpoint (default: the bundled cpu model)")
    p.add_argument("--faithful-checkpoint", default="",
                   help="a --faithful GaussianSR checkpoint for its own row (default: the bundled one, if any)")
    p.add_argument("--liif", default="", metavar="CHECKPOINT",
                   help="LIIF baseline checkpoint (default: the bundled one)")
    p.add_argument("--metric", default="auto", choices=("auto", "y_psnr", "rgb_psnr"),
                   help="auto: y_psnr for benchmark sets (Set5/Set14/B100/Urban100/Manga109 folders), else rgb_psnr")
    p.add_argument("--max-side", type=non_negative_int, default=1024,
                   help="centre-crop larger images to this many pixels per side (0 = full size)")
    p.add_argument("--json", default="", metavar="FILE", help="also write the table here")


BENCHMARK_NAMES = ("set5", "set14", "b100", "bsd100", "urban100", "manga109")


def _model_upscaler(path: Path):
    from methods.gaussiansr.model import upscale
    from methods.gaussiansr.train import load_sr_model

    model, _ = load_sr_model(path)
    return lambda lr, h, w: upscale(model, lr, h, w)


def run_eval(args: argparse.Namespace) -> int:
    import json

    from methods.gaussiansr.evaluate import bicubic, evaluate

    metric = args.metric
    if metric == "auto":
        bench = any(Path(s).name.lower() in BENCHMARK_NAMES for s in args.images)
        metric = "y_psnr" if bench else "rgb_psnr"
    images = [img for _, img in load_images(args.images, args.max_side)]
    methods = {"bicubic": bicubic}
    for row, given, default in (("liif", args.liif, "liif"), ("gaussiansr", args.checkpoint, "gaussiansr"),
                                ("gaussiansr-faithful", args.faithful_checkpoint, "gaussiansr-faithful")):
        path = Path(given) if given else bundled_checkpoint(default)
        if given or path.is_file():
            methods[row] = _model_upscaler(path)
    print(f"{len(images)} images, scales {', '.join(f'x{s:g}' for s in args.scales)}, {metric}", file=sys.stderr)
    res = evaluate(methods, images, list(args.scales), metric,
                   on_image=lambda i, n: print(f"  image {i}/{n}", file=sys.stderr))
    print(f"\n{metric.replace('_', ' ').upper()} (dB), mean over {res.images} images; seconds per image in brackets\n")
    print("| method | " + " | ".join(f"x{s:g}" for s in args.scales) + " |")
    print("|---|" + "---|" * len(args.scales))
    for m in methods:
        print(f"| {m} | " + " | ".join(f"{res.rows[m][s]:.2f} ({res.seconds[m][s]:.2f} s)" for s in args.scales)
              + " |")
    if args.json:
        from assets.cache import atomic_write_text

        atomic_write_text(args.json, json.dumps(res.to_json(), indent=1), parents=True)
    return 0


# ----- sr -----------------------------------------------------------------------------------------------------------
def add_sr_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="an image file or a bundled photo name")
    p.add_argument("--scale", type=scale_arg, required=True, help="magnification, any number >= 1 (e.g. 3.7)")
    p.add_argument("--out", required=True, metavar="OUT.png", help="where to write the result (replaced atomically)")
    p.add_argument("--mode", default="gaussiansr", choices=SR_MODES, help="which upscaler")
    p.add_argument("--checkpoint", default="", help="model checkpoint (default: the bundled one for --mode)")
    p.add_argument("--chunk", type=non_negative_int, default=16_384,
                   help="output pixels per query batch (bounds memory; 0 = the default)")


def run_sr(args: argparse.Namespace) -> int:
    import time

    import torch

    from assets.cache import atomic_save_image
    from assets.images import load_rgb
    from methods.gaussiansr.evaluate import bicubic
    from methods.gaussiansr.model import upscale
    from methods.gaussiansr.train import load_sr_model

    if not args.out.lower().endswith(".png"):
        raise ValueError(f"--out {args.out}: write a .png file")
    if not Path(args.out).expanduser().resolve().parent.is_dir():  # before any work, not after it
        raise ValueError(f"--out {args.out}: folder {Path(args.out).parent} does not exist; create it or pick "
                         f"another path")
    img, _, notes = load_rgb(args.image)
    for n in notes:
        print(f"{args.image}: {n}", file=sys.stderr)
    h, w = img.shape[:2]
    oh, ow = max(1, round(h * args.scale)), max(1, round(w * args.scale))
    lr = torch.from_numpy(img)
    t0 = time.perf_counter()
    if args.mode == "bicubic":
        out = bicubic(lr, oh, ow)
    else:
        model, _ = load_sr_model(Path(args.checkpoint) if args.checkpoint else bundled_checkpoint(args.mode))
        out = upscale(model, lr, oh, ow, chunk=args.chunk or 16_384)
    dt = time.perf_counter() - t0
    path = atomic_save_image(args.out, out.numpy())
    print(f"{w}x{h} -> {ow}x{oh} (x{args.scale:g}, {args.mode}) in {dt:.2f} s: {path}")
    return 0
