"""mipstudio entry point: no arguments opens the studio; subcommands run the same work headless.

    python main.py                               # the studio (needs a display; xvfb-run works)
    python main.py dataset --preset default      # generate the synthetic multi-scale dataset
    python main.py render mesh --zoom 0.125 --filter nearest --out fish.png
    python main.py train demo --steps 300        # a small CPU job with a progress bar
    python main.py train gaussians --preset default --config cpu_small --variant mip
    python main.py eval gaussians --preset default --config cpu_small --json stmt.json
    python main.py render gaussians --ply point_cloud.ply --cameras transforms.json --out renders --zoom 2
    python main.py train ngssf astronaut         # a neural scale-space field of a photo (cpu preset)
    python main.py eval ngssf astronaut          # its PSNR/SSIM vs the exact Gaussian blur
    python main.py info                          # device, GL renderer, versions
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep instead of spinning: with one core busy, spinning made torch ~30x slower
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _fail(message: str, code: int = 1) -> int:
    print(f"mipstudio: {message}", file=sys.stderr)
    return code


# ----- GUI ------------------------------------------------------------------------------------------------------
def cmd_gui(args: argparse.Namespace) -> int:
    from app.display import NO_DISPLAY_HINT, display_available

    if not display_available():
        print(NO_DISPLAY_HINT, file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # leave a core to the UI thread
    from app.shell import Studio, StudioConfig

    w, h = (int(v) for v in args.size.lower().split("x"))
    views = tuple(v for v in args.views.split(",") if v) if args.views else None
    if args.ply and not Path(args.ply).is_file():
        return _fail(f"--ply {args.ply}: no such file")
    studio = Studio(StudioConfig(width=w, height=h, views=views, ply=args.ply or None))
    studio.setup()
    if args.job:
        studio.start_job(args.job)
    if args.screenshot:
        return _screenshot_and_exit(studio, args)
    studio.run()
    return 0


def _screenshot_and_exit(studio, args: argparse.Namespace) -> int:
    """Run the studio for ``--seconds``, letting renders settle, then save the window and exit (README images)."""
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        studio.frame()
    for view in studio.views.values():
        view.worker.wait_idle(30)
    for _ in range(5):
        studio.frame()
    path = studio.save_screenshot(args.screenshot)
    studio.close()
    print(f"screenshot: {path}")
    return 0


# ----- headless -------------------------------------------------------------------------------------------------
def cmd_dataset(args: argparse.Namespace) -> int:
    from assets.synthetic_scene import SceneSpec
    from methods.datasets.generate import GenerateSyntheticDataset, default_dataset_path
    from methods.jobs import run_headless

    spec = SceneSpec.preset(args.preset)
    changes = {k: v for k, v in (("resolution", args.resolution), ("n_train", args.train_views)) if v}
    spec = spec.with_(**changes) if changes else spec
    variant = "-".join(f"{k}{v}" for k, v in changes.items())
    out = Path(args.out) if args.out else default_dataset_path(args.preset, variant)
    job = GenerateSyntheticDataset(out_dir=out, spec=spec, overwrite=args.overwrite or not args.out)
    summary = run_headless(job)
    counts = ", ".join(f"{k} {v}" for k, v in summary.get("counts", {}).items())
    print(f"dataset written to {out} ({counts}) in {summary.get('seconds', 0):.1f} s")
    return 0


def cmd_render_mesh(args: argparse.Namespace) -> int:
    import numpy as np

    from app.views.mesh_view import BASE_FOCAL  # constants only; no GUI is created
    from assets.cache import atomic_save_image
    from assets.fish import make_fish
    from render.camera import Camera, look_at_world_to_cam
    from render.mesh_renderer import MeshRenderer

    w, h = (int(v) for v in args.size.lower().split("x"))
    w2c = look_at_world_to_cam((0.6, -3.6, 1.2), (0.0, 0.0, 0.0))
    cam = Camera(BASE_FOCAL, BASE_FOCAL, w / 2, h / 2, w, h, w2c).zoomed(args.zoom)
    t0 = time.perf_counter()
    img = MeshRenderer().render([make_fish()], cam, filter=args.filter, background=(0.08, 0.09, 0.11, 1.0))
    dt = time.perf_counter() - t0
    atomic_save_image(args.out, np.clip(img[..., :3], 0, 1))
    print(f"wrote {args.out} ({w}x{h}, zoom {args.zoom}, filter {args.filter}) in {dt * 1000:.0f} ms")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from methods.demo_jobs import FitImageJob
    from methods.jobs import run_headless

    trainers = {"demo": lambda: FitImageJob(steps=args.steps), "gaussians": lambda: _gaussian_trainer(args),
                "ngssf": lambda: _ngssf_job(args)}
    reports = {"gaussians": _report_gaussian_training, "ngssf": lambda r: _report_ngssf_training(args, r)}
    if args.method not in trainers:
        return _fail(f"unknown method '{args.method}'; available: {', '.join(trainers)}")
    result = run_headless(trainers[args.method]())
    reports.get(args.method, print)(result)
    return 0


# ----- Gaussians (train / eval / render) ------------------------------------------------------------------------
def _dataset_root(args: argparse.Namespace) -> Path:
    """``--dataset PATH`` (a nerf_synthetic-format folder) or the generated ``--preset`` (made on first use)."""
    if args.dataset:
        root = Path(args.dataset)
        if not root.is_dir():
            raise ValueError(f"--dataset {root}: folder not found")
        return root
    from methods.datasets import ensure_dataset

    return ensure_dataset(args.preset)


def _gaussian_config(args: argparse.Namespace, **changes):
    from methods.gaussians.train import TrainConfig

    if getattr(args, "black_background", False):
        changes["white_background"] = False
    cfg = TrainConfig.preset(args.config or "cpu_small", preview_interval_s=float("inf"), **changes)  # a progress bar shows no images
    return cfg.scaled_to(args.iterations) if getattr(args, "iterations", 0) else cfg


def _gaussian_trainer(args: argparse.Namespace):
    from methods.gaussians.train import GaussianTrainer

    cfg = _gaussian_config(args, method=args.variant, out_dir=args.out, train_scale=args.scale)
    return GaussianTrainer.from_path(_dataset_root(args), cfg, resume=args.resume or None)


def _report_gaussian_training(s: dict) -> None:
    held = (f", held-out {s['eval_split']} PSNR {s['psnr']:.2f} dB / SSIM {s['ssim']:.3f}" if "psnr" in s
            else "")
    state = "cancelled at" if s["cancelled"] else "trained"
    print(f"{s['method']}: {state} {s['iterations']} iterations in {s['seconds']:.0f} s, "
          f"{s['n_gaussians']} Gaussians{held}")
    for key in ("checkpoint", "ply", "ply_baked"):
        if key in s:
            print(f"  {key:10s} {s[key]}")


def cmd_eval_gaussians(args: argparse.Namespace) -> int:
    from methods.gaussians.stmt import StmtBenchmark, format_report, write_json
    from methods.jobs import run_headless

    split = lambda text: tuple(v.strip() for v in text.split(",") if v.strip())  # noqa: E731
    bench = StmtBenchmark(root=_dataset_root(args), config=_gaussian_config(args), methods=split(args.methods),
                          settings=split(args.settings), model_dir=Path(args.models) if args.models else None,
                          load_dir=Path(args.load) if args.load else None, retrain=args.retrain,
                          max_eval_views=args.max_views, log=lambda line: print(line, file=sys.stderr))
    result = run_headless(bench)
    print(format_report(result))
    if args.json:
        print(f"wrote {write_json(args.json, result)}")
    return 0


# ----- NGSSF (train / eval) --------------------------------------------------------------------------------------
def _ngssf_job(args: argparse.Namespace):
    from methods.ngssf.train import train_preset
    from methods.ngssf.train_job import TrainNGSSFJob

    if not args.target and args.modality != "ackley":
        raise ValueError("train ngssf needs what to train on: a bundled photo name (e.g. astronaut) or an image "
                         "path (a mesh path/shape with --modality mesh)")
    changes = {"preview_every_s": 30.0}  # the bar shows the sharp-field PSNR measured with each preview
    if args.iterations:
        changes["iterations"] = args.iterations
    if args.image_size:
        changes["image_size"] = args.image_size
    cfg = train_preset(args.config or "cpu", **changes)
    return TrainNGSSFJob(args.target or "ackley", config=cfg, modality=args.modality, out_dir=args.out,
                         resume=not args.fresh)


def _report_ngssf_training(args: argparse.Namespace, r: dict) -> None:
    state = "cancelled at" if r["cancelled"] else "trained"
    print(f"NGSSF: {state} {r['iterations']} iterations in {r['seconds']:.0f} s, final loss {r['final_loss']:.5f}, "
          f"calibration c = {r['calibration']:.4g}")
    if "checkpoint" in r:
        print(f"  checkpoint {r['checkpoint']}")
    if getattr(args, "bundle", False) and not r["cancelled"]:
        from methods.ngssf.demo import bundle_demo
        from methods.ngssf.train import load_field

        field, meta = load_field(r["checkpoint"])
        size = int(meta["config"]["image_size"])
        print(f"  bundled  {bundle_demo(field, args.target, size, extra={'step': meta['step']})}")


def cmd_eval_ngssf(args: argparse.Namespace) -> int:
    import json

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
            from methods.ngssf.train import load_field, train_preset
            from methods.ngssf.train_job import TrainNGSSFJob

            job = TrainNGSSFJob(args.image, config=train_preset(args.config or "cpu", preview_every_s=float("inf")))
            result = run_headless(job)
            field, meta = load_field(result["checkpoint"])
            size = job.config.image_size
    image, label = load_picture(args.image, size)
    report = evaluate_picture(field, image, label=label, covariances=args.covariances, log=log)
    print(report.table())
    if args.json:
        from methods.io import atomic_open

        with atomic_open(args.json, "w") as f:
            json.dump(report.to_json(), f, indent=1)
        print(f"wrote {args.json}")
    return 0


def cmd_render_ngssf(args: argparse.Namespace) -> int:
    from methods.ngssf.render_cli import render_field

    print(render_field(args.field, args.cov, args.out, size=args.size, res=args.res))
    return 0


def cmd_render_gaussians(args: argparse.Namespace) -> int:
    from methods.gaussians.render_cli import BACKGROUNDS, RenderSettings, parse_size, render_ply

    settings = RenderSettings(filter=args.filter, zoom=args.zoom, size=parse_size(args.size),
                              background=BACKGROUNDS[args.background])
    views = render_ply(args.ply, args.cameras, args.out, settings, log=print)
    total = sum(v.seconds for v in views)
    print(f"rendered {len(views)} views to {args.out} in {total:.2f} s "
          f"({total / max(1, len(views)) * 1000:.0f} ms per view)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import platform

    import torch

    from render.device import device_description
    from render.gl import GLUnavailable, gl_info

    print(f"python   {platform.python_version()}  torch {torch.__version__}")
    print(f"device   {device_description()}")
    try:
        info = gl_info()
        print(f"opengl   {info['GL_RENDERER']} / {info['GL_VERSION']}")
    except GLUnavailable as e:
        print(f"opengl   unavailable: {e}")
    from app.display import display_available

    print(f"display  {'yes' if display_available() else 'no (use xvfb-run for the GUI)'}")
    return 0


def _gaussian_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="", help="gaussians: nerf_synthetic-format folder (default: --preset)")
    p.add_argument("--preset", default="default", help="gaussians: generated dataset preset (tiny, default)")
    p.add_argument("--config", default="", help="training preset: gaussians paper, cpu_small (default), test_tiny; "
                                                "ngssf paper, cpu (default), test_tiny")
    p.add_argument("--iterations", type=int, default=0,
                   help="gaussians: run this many iterations, scaling the preset's schedule to match")
    p.add_argument("--black-background", action="store_true", help="gaussians: composite on black, not white")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mipstudio", description="A studio for multiscale representations.")
    p.add_argument("--size", default="1440x900", help="window size WxH")
    p.add_argument("--views", default="", help="comma-separated views to open (default: all)")
    p.add_argument("--job", default="", help="start this job on launch (its Jobs-panel name)")
    p.add_argument("--ply", default="", help="open this 3D Gaussian .ply in the Splat view")
    p.add_argument("--screenshot", default="", help="save a screenshot of the window after --seconds and exit")
    p.add_argument("--seconds", type=float, default=4.0, help="how long to run before --screenshot")
    p.set_defaults(func=cmd_gui)
    sub = p.add_subparsers(title="headless commands")

    d = sub.add_parser("dataset", help="generate the synthetic multi-scale dataset (nerf_synthetic format)")
    d.add_argument("--preset", default="default")
    d.add_argument("--resolution", type=int, default=0, help="training image size in pixels")
    d.add_argument("--train-views", type=int, default=0)
    d.add_argument("--out", default="", help="output folder (default: the cache)")
    d.add_argument("--overwrite", action="store_true")
    d.set_defaults(func=cmd_dataset)

    r = sub.add_parser("render", help="render a view to an image file")
    r.set_defaults(func=lambda a: (r.print_help(), 2)[1])
    rs = r.add_subparsers(title="what")
    rm = rs.add_parser("mesh", help="the textured fish")
    rm.add_argument("--zoom", type=float, default=1.0)
    rm.add_argument("--filter", default="trilinear",
                    choices=("nearest", "bilinear", "trilinear", "anisotropic", "supersampled"))
    rm.add_argument("--size", default="512x512")
    rm.add_argument("--out", default="fish.png")
    rm.set_defaults(func=cmd_render_mesh)
    rg = rs.add_parser("gaussians", help="a 3D Gaussian .ply along the cameras of a transforms file")
    rg.add_argument("--ply", required=True, help="3DGS / Mip-Splatting point_cloud.ply")
    rg.add_argument("--cameras", required=True, help="nerf_synthetic or nerfstudio transforms JSON")
    rg.add_argument("--out", required=True, help="output folder (view_XXXX.png + view_XXXX.npy)")
    rg.add_argument("--filter", default="auto", choices=("auto", "3dgs", "mip", "none"),
                    help="2D filter; auto = mip when the PLY has filter_3D, else 3dgs")
    rg.add_argument("--zoom", type=float, default=1.0,
                    help="sampling rate: images are zoom x the camera's size with the same field of view")
    rg.add_argument("--size", default="", help="base image size WxH before --zoom (default: the cameras')")
    rg.add_argument("--background", default="white", choices=("white", "black"))
    rg.set_defaults(func=cmd_render_gaussians)

    rn = rs.add_parser("ngssf", help="a scale-space field at one Gaussian scale: image (2D) or smoothed mesh (3D)")
    rn.add_argument("field", help="training checkpoint, or a bundled demo name (astronaut, chelsea)")
    rn.add_argument("--cov", default="0", help="variance, or a covariance's upper triangle a,b,c (2D) / 6 values (3D)")
    rn.add_argument("--out", required=True, help=".png/.jpg for 2D fields, .ply/.obj for SDF fields")
    rn.add_argument("--size", type=int, default=512, help="image size (2D)")
    rn.add_argument("--res", type=int, default=128, help="marching-cubes grid (3D)")
    rn.set_defaults(func=cmd_render_ngssf)

    t = sub.add_parser("train", help="run a training job with a progress bar")
    t.add_argument("method", help="what to train: demo, gaussians, ngssf")
    t.add_argument("target", nargs="?", default="", help="ngssf: bundled photo name or image path (or mesh)")
    t.add_argument("--modality", default="picture", choices=("picture", "texture", "mesh", "ackley"),
                   help="ngssf: what the target is")
    t.add_argument("--image-size", type=int, default=0, help="ngssf: train on the picture resized to this")
    t.add_argument("--fresh", action="store_true", help="ngssf: ignore an existing checkpoint in the run folder")
    t.add_argument("--bundle", action="store_true", help="ngssf: also write the field as the studio's demo")
    t.add_argument("--steps", type=int, default=300, help="demo: optimisation steps")
    _gaussian_data_args(t)
    t.add_argument("--variant", default="mip", choices=("3dgs", "mip"), help="gaussians: 3DGS or Mip-Splatting")
    t.add_argument("--scale", type=float, default=1.0, help="gaussians: dataset scale to train at (e.g. 0.125)")
    t.add_argument("--out", default="", help="output folder (default: <cache>/runs/...)")
    t.add_argument("--resume", default="", help="gaussians: continue from this checkpoint.pt")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="benchmarks with printed tables")
    e.set_defaults(func=lambda a: (e.print_help(), 2)[1])
    es = e.add_subparsers(title="what")
    eg = es.add_parser("gaussians", help="stmt: single-scale training, multi-scale testing (3DGS vs Mip-Splatting)")
    _gaussian_data_args(eg)
    eg.add_argument("--methods", default="3dgs,mip", help="comma-separated: 3dgs, mip")
    eg.add_argument("--settings", default="zoom_out,zoom_in", help="comma-separated: zoom_out, zoom_in")
    eg.add_argument("--json", default="", help="also write the results here")
    eg.add_argument("--load", default="", help="evaluate the models in this folder (<setting>/<method>/checkpoint.pt)")
    eg.add_argument("--models", default="", help="train/cache models in this folder (default: the cache)")
    eg.add_argument("--retrain", action="store_true", help="ignore cached models")
    eg.add_argument("--max-views", type=int, default=0, help="test views per scale (0 = all)")
    eg.set_defaults(func=cmd_eval_gaussians)

    en = es.add_parser("ngssf", help="a scale-space field vs the exact Gaussian blur (PSNR/SSIM per variance)")
    en.add_argument("image", help="bundled photo name (e.g. astronaut) or image path")
    en.add_argument("--field", default="", help="a training checkpoint (default: the bundled demo, else train)")
    en.add_argument("--config", default="", help="train with this preset first (paper, cpu, test_tiny)")
    en.add_argument("--covariances", type=int, default=100, help="random covariance matrices to average over")
    en.add_argument("--json", default="", help="also write the results here")
    en.set_defaults(func=cmd_eval_ngssf)

    i = sub.add_parser("info", help="print the compute device and GL renderer")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except (ValueError, OSError) as e:  # bad input: one line, no traceback
        return _fail(f"{type(e).__name__}: {e}")
    except Exception as e:  # noqa: BLE001 - a cancelled job is not a crash
        if type(e).__name__ == "JobCancelled":
            return _fail("cancelled", 130)
        raise


if __name__ == "__main__":
    sys.exit(main())
