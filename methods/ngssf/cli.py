"""Headless commands of the NGSSF family: ``train ngssf``, ``eval ngssf``, ``render ngssf``. Choices come from
:mod:`methods.ngssf.config`; the trainer, the evaluation and the field are imported inside the run functions."""
from __future__ import annotations

import argparse
import json
import math
import sys

from methods.cli import non_negative_int, positive_int
from methods.ngssf.config import MODALITY_NAMES, TRAIN_PRESETS

DEFAULT_CONFIG = "cpu"


def cov_arg(text: str) -> str:
    """argparse ``type=`` for ``--cov``: a variance ``v`` or a covariance's upper triangle (3 values in 2D, 6 in
    3D), positive semi-definite. The text is returned; the field's dimension is checked once it is loaded."""
    form = "a variance such as 1e-3, or a covariance's upper triangle a,b,c (2D) / xx,xy,xz,yy,yz,zz (3D)"
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {form}; got {text!r}") from None
    if len(vals) not in (1, 3, 6) or not all(math.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError(f"expected {form}; got {text!r}")
    if len(vals) == 1:
        if vals[0] < 0:
            raise argparse.ArgumentTypeError(f"a variance cannot be negative, got {text!r}")
        return text
    import numpy as np

    dim = 2 if len(vals) == 3 else 3
    m = np.zeros((dim, dim))
    m[np.triu_indices(dim)] = vals
    m = m + np.triu(m, 1).T
    if np.linalg.eigvalsh(m).min() < -1e-12 * max(1.0, abs(m).max()):
        raise argparse.ArgumentTypeError(f"the covariance {text!r} is not positive semi-definite")
    return text


# ----- train ngssf ----------------------------------------------------------------------------------------------
def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", default="",
                   help="what to train on: a bundled photo name (e.g. astronaut) or an image path; a mesh path or "
                        "shape with --modality mesh; nothing with --modality ackley")
    p.add_argument("--modality", default="picture", choices=MODALITY_NAMES, help="what the target is")
    p.add_argument("--config", default=DEFAULT_CONFIG, choices=tuple(TRAIN_PRESETS), help="training preset")
    p.add_argument("--iterations", type=non_negative_int, default=0,
                   help="training iterations (0 = the preset's)")
    p.add_argument("--image-size", type=non_negative_int, default=0,
                   help="train on the picture resized to this many pixels square (0 = the preset's)")
    p.add_argument("--out", default="", metavar="FOLDER",
                   help="run folder for the checkpoint (default: <cache>/runs/ngssf/<modality>-<target>-<preset>)")
    p.add_argument("--fresh", action="store_true",
                   help="start over, ignoring a checkpoint already in the run folder (default: resume from it)")
    p.add_argument("--bundle", action="store_true",
                   help="also write the trained field as the studio's bundled demo for this photo")


def run_train(args: argparse.Namespace) -> int:
    from methods.jobs import run_headless
    from methods.ngssf.config import train_preset
    from methods.ngssf.train_job import TrainNGSSFJob

    if not args.target and args.modality != "ackley":
        raise ValueError("train ngssf needs what to train on: a bundled photo name (e.g. astronaut) or an image "
                         "path (a mesh path/shape with --modality mesh)")
    changes = {"preview_every_s": 30.0}  # the bar shows the sharp-field PSNR measured with each preview
    if args.iterations:
        changes["iterations"] = args.iterations
    if args.image_size:
        changes["image_size"] = args.image_size
    job = TrainNGSSFJob(args.target or "ackley", config=train_preset(args.config, **changes),
                        modality=args.modality, out_dir=args.out, resume=not args.fresh)
    r = run_headless(job)
    state = "cancelled at" if r["cancelled"] else "trained"
    print(f"NGSSF: {state} {r['iterations']} iterations in {r['seconds']:.0f} s, final loss {r['final_loss']:.5f}, "
          f"calibration c = {r['calibration']:.4g}")
    if "checkpoint" in r:
        print(f"  checkpoint {r['checkpoint']}")
    if args.bundle and not r["cancelled"]:
        from methods.ngssf.demo import bundle_demo
        from methods.ngssf.train import load_field

        field, meta = load_field(r["checkpoint"])
        size = int(meta["config"]["image_size"])
        print(f"  bundled  {bundle_demo(field, args.target, size, extra={'step': meta['step']})}")
    return 0


# ----- eval ngssf -----------------------------------------------------------------------------------------------
def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="bundled photo name (e.g. astronaut) or image path to evaluate on")
    p.add_argument("--field", default="", metavar="CHECKPOINT",
                   help="evaluate this training checkpoint (default: the bundled field for the photo, else train "
                        "one with --config)")
    p.add_argument("--config", default=None, choices=tuple(TRAIN_PRESETS),
                   help="train a field with this preset first instead of using the bundled one "
                        f"(default: the bundled field when there is one, else train with '{DEFAULT_CONFIG}')")
    p.add_argument("--covariances", type=positive_int, default=100,
                   help="random covariance matrices to average the anisotropic score over")
    p.add_argument("--json", default="", metavar="FILE", help="also write the results to this JSON file")


def run_eval(args: argparse.Namespace) -> int:
    from methods.ngssf.evaluate import evaluate_picture
    from methods.ngssf.modalities import load_picture

    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    if args.field:
        from methods.ngssf.train import load_field

        field, meta = load_field(args.field)
        size = int(meta["config"]["image_size"]) if meta.get("config") else 256
    else:
        from methods.ngssf.demo import available_demos, load_demo

        if args.image in available_demos() and not args.config:
            demo = load_demo(args.image)
            field, size = demo.field, demo.image.shape[0]
            log(f"using the bundled field for '{args.image}'")
        else:
            from methods.jobs import run_headless
            from methods.ngssf.config import train_preset
            from methods.ngssf.train import load_field
            from methods.ngssf.train_job import TrainNGSSFJob

            job = TrainNGSSFJob(args.image, config=train_preset(args.config or DEFAULT_CONFIG,
                                                                preview_every_s=float("inf")))
            result = run_headless(job)
            field, _ = load_field(result["checkpoint"])
            size = job.config.image_size
    image, label = load_picture(args.image, size)
    report = evaluate_picture(field, image, label=label, covariances=args.covariances, log=log)
    print(report.table())
    if args.json:
        from assets.cache import atomic_open

        with atomic_open(args.json, "w") as f:
            json.dump(report.to_json(), f, indent=1)
        print(f"wrote {args.json}")
    return 0


# ----- render ngssf ---------------------------------------------------------------------------------------------
def add_render_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("field", help="a training checkpoint, or a bundled demo name (e.g. astronaut)")
    p.add_argument("--cov", type=cov_arg, default="0",
                   help="the Gaussian to smooth with: a variance, or a covariance's upper triangle a,b,c (2D) / "
                        "6 values xx,xy,xz,yy,yz,zz (3D); 0 = the unsmoothed field")
    p.add_argument("--out", required=True, help=".png/.jpg for 2D fields, .ply/.obj for 3D (SDF) fields")
    p.add_argument("--size", type=positive_int, default=512, help="output image size in pixels, square (2D)")
    p.add_argument("--res", type=positive_int, default=128, help="marching-cubes grid resolution (3D)")


def run_render(args: argparse.Namespace) -> int:
    from methods.ngssf.render_cli import render_field

    print(render_field(args.field, args.cov, args.out, size=args.size, res=args.res))
    return 0
