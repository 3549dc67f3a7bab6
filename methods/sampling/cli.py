"""``main.py render mesh``: the textured fish through a GL texture filter, written to an image file."""
from __future__ import annotations

import argparse
import time

from methods.cli import positive_float, size_arg
from render.mesh_source import FILTERS, MeshOptions

_BACKGROUND = MeshOptions().background


def add_render_mesh_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zoom", type=positive_float, default=1.0,
                   help="sampling rate relative to the framing camera: 1/8 (0.125) ... 8; below 1 minifies the "
                        "texture, where the filters differ")
    p.add_argument("--filter", default="trilinear", choices=FILTERS,
                   help="texture filter (supersampled = 16 samples per pixel, the reference)")
    p.add_argument("--size", type=size_arg, default="512x512", metavar="WxH", help="output image size")
    p.add_argument("--no-lighting", action="store_true", help="show the bare texture, without Lambert lighting")
    p.add_argument("--out", default="fish.png", help="output image (.png/.jpg)")


def run_render_mesh(args: argparse.Namespace) -> int:
    import numpy as np

    from assets.cache import atomic_save_image
    from assets.fish import make_fish
    from render.mesh_renderer import MeshRenderer
    from render.mesh_source import mesh_camera

    w, h = args.size
    fish = make_fish()
    cam = mesh_camera([fish], w, h).zoomed(args.zoom)
    t0 = time.perf_counter()
    img = MeshRenderer().render([fish], cam, filter=args.filter, background=(*_BACKGROUND, 1.0),
                                lighting=not args.no_lighting)
    dt = time.perf_counter() - t0
    atomic_save_image(args.out, np.clip(img[..., :3], 0, 1))
    print(f"wrote {args.out} ({w}x{h}, zoom {args.zoom:g}, filter {args.filter}) in {dt * 1000:.0f} ms")
    return 0
