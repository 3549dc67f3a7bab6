"""The studio side of ``main.py``: the GUI flags, launching the studio (or a timed screenshot), and ``info``.

Importable without a display and without Dear PyGui: :mod:`app.shell` (which imports dearpygui) is loaded only
when the GUI actually starts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from methods.cli import positive_float, size_arg
from methods.plugin import Command


def add_gui_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``main.py`` without a subcommand (the studio)."""
    g = p.add_argument_group("studio (no command)")
    g.add_argument("--size", dest="window_size", type=size_arg, default="1440x900", metavar="WxH",
                   help="window size")
    g.add_argument("--views", default="", help="comma-separated views to open (default: all)")
    g.add_argument("--job", default="", help="start this job on launch (its name in the Jobs panel)")
    g.add_argument("--ply", default="", help="open this 3D Gaussian .ply in the Splat view (default: the demo)")
    g.add_argument("--screenshot", default="", metavar="PNG",
                   help="run for --seconds, save a screenshot of the window there and exit")
    g.add_argument("--seconds", type=positive_float, default=4.0, help="how long to run before --screenshot")


def run_gui(args: argparse.Namespace) -> int:
    from app.display import NO_DISPLAY_HINT, display_available

    if not display_available():
        print(NO_DISPLAY_HINT, file=sys.stderr)
        return 2
    if args.ply and not Path(args.ply).is_file():
        raise ValueError(f"--ply {args.ply}: no such file")
    import torch

    from render.device import studio_torch_threads

    torch.set_num_threads(studio_torch_threads())  # leave a core to the UI thread
    from app.shell import Studio, StudioConfig, exit_after_close

    w, h = args.window_size
    views = tuple(v.strip() for v in args.views.split(",") if v.strip()) or None
    studio = Studio(StudioConfig(width=w, height=h, views=views, ply=args.ply or None))
    studio.setup()
    if args.job:
        studio.start_job(args.job)
    if args.screenshot:
        return exit_after_close(_screenshot_and_exit(studio, args))
    studio.run()
    return exit_after_close(0)


def _screenshot_and_exit(studio, args: argparse.Namespace) -> int:
    """Run the studio for ``--seconds``, letting renders settle, then save the window and exit (README images)."""
    path = studio.settled_screenshot(args.screenshot, args.seconds, idle_timeout=30)
    studio.close()
    print(f"screenshot: {path}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    import platform

    import torch

    from render.device import device_summary
    from render.gl import GLUnavailable, gl_info

    print(f"python   {platform.python_version()}  torch {torch.__version__}")
    print(f"device   {device_summary()}")
    try:
        info = gl_info()
        print(f"opengl   {info['GL_RENDERER']} / {info['GL_VERSION']}")
    except GLUnavailable as e:
        print(f"opengl   unavailable: {e}")
    from app.display import display_available

    print(f"display  {'yes' if display_available() else 'no (use xvfb-run for the GUI)'}")
    from methods.plugin import FAMILY_ERRORS, discover_families

    families = discover_families()
    print(f"families {', '.join(families) or 'none'}")
    for module, reason in FAMILY_ERRORS.items():
        print(f"         {module} not loaded: {reason}")
    return 0


def _walk_arguments(p: argparse.ArgumentParser) -> None:
    from app.walk import add_walk_arguments

    add_walk_arguments(p)


def _run_walk(args: argparse.Namespace) -> int:
    from app.walk import run_walk

    return run_walk(args)


COMMANDS = (Command(("info",), "print the compute device, GL renderer, display and method families",
                    lambda p: None, run_info),
            Command(("walk",), "the neural-texture walkthrough in a full window (glfw): WASD, mouse look, 1-6 modes",
                    _walk_arguments, _run_walk))
