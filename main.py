"""mipstudio entry point: no arguments opens the studio; subcommands run the same work headless.

    python main.py                               # the studio (needs a display; xvfb-run works)
    python main.py dataset --preset default      # generate the synthetic multi-scale dataset
    python main.py render mesh --zoom 0.125 --filter nearest --out fish.png
    python main.py train demo --steps 300        # a small CPU job with a progress bar
    python main.py info                          # device, GL renderer, versions
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
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
    studio = Studio(StudioConfig(width=w, height=h, views=views))
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

    trainers = {"demo": lambda: FitImageJob(steps=args.steps)}
    if args.method not in trainers:
        return _fail(f"unknown method '{args.method}'; available: {', '.join(trainers)}")
    result = run_headless(trainers[args.method]())
    print(result)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mipstudio", description="A studio for multiscale representations.")
    p.add_argument("--size", default="1440x900", help="window size WxH")
    p.add_argument("--views", default="", help="comma-separated views to open (default: all)")
    p.add_argument("--job", default="", help="start this job on launch (its Jobs-panel name)")
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

    t = sub.add_parser("train", help="run a training job with a progress bar")
    t.add_argument("method", help="what to train: demo")
    t.add_argument("--steps", type=int, default=300)
    t.set_defaults(func=cmd_train)

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
