"""Milliseconds per walkthrough frame, per texture mode, at 640×360 and 1280×720 (and the NGSSF preview scales the
view uses while you move), on frames of the bundled camera path.

    python bench/walkthrough.py [--frames 3] [--reps 2] [--json out.json]

CPU rows use the bundled neural texture (cpu preset, 3×256). When CUDA is available, GPU rows time the same
renderer with a ``paper``-size field (3×1024, the reference's; its weights do not change the cost) on the GPU.
The in-run reference is the 4×4 supersampled GL frame (16 bilinear samples per pixel).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see main.py

import torch  # noqa: E402

from methods.neural_texture.modes import MODES  # noqa: E402
from methods.neural_texture.path import DEFAULT_PATH, read_path  # noqa: E402
from methods.neural_texture.renderer import WalkthroughRenderer  # noqa: E402
from methods.neural_texture.texture import fish_mesh, load_texture_field  # noqa: E402


def time_mode(renderer: WalkthroughRenderer, cams, mode: str, reps: int) -> tuple[float, int]:
    renderer.render(cams[0], mode)  # warm-up: uploads, program compiles, first-call allocations
    best = float("inf")
    queries = 0
    for _ in range(reps):
        t0 = time.perf_counter()
        for cam in cams:
            queries = renderer.render(cam, mode).queries
        best = min(best, (time.perf_counter() - t0) / len(cams))
    return 1000 * best, queries


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=3, help="path frames averaged per row")
    ap.add_argument("--reps", type=int, default=2, help="repetitions (the best is kept)")
    ap.add_argument("--json", default="", help="also write the rows here")
    args = ap.parse_args()

    frames = read_path(DEFAULT_PATH)
    pick = [frames[i * (len(frames) - 1) // max(args.frames - 1, 1)] for i in range(args.frames)]
    mesh = fish_mesh()
    field, meta = load_texture_field()
    rows = []
    setups = [("cpu", WalkthroughRenderer(mesh, field, int(meta["texture_size"])))]
    if torch.cuda.is_available():
        from methods.ngssf.neural_field import field_from_preset

        setups.append(("cuda", WalkthroughRenderer(mesh, field_from_preset("paper", "texture", 2, 3).cuda().eval(),
                                                   1024)))
    for device, renderer in setups:
        for w, h in ((640, 360), (1280, 720)):
            cams = [f.camera() for f in pick]
            cams = [c.scaled(w / c.width) for c in cams]
            modes = MODES if device == "cpu" else ("ngssf",)
            for mode in modes:
                ms, q = time_mode(renderer, cams, mode, args.reps)
                rows.append({"device": device, "size": f"{w}x{h}", "mode": mode, "ms": ms, "fps": 1000 / ms,
                             "queries": q})
            for scale in (0.5, 0.25):  # what the view renders while you move
                ms, q = time_mode(renderer, [c.scaled(scale) for c in cams], "ngssf", args.reps)
                rows.append({"device": device, "size": f"{w}x{h} @{scale:g} preview", "mode": "ngssf", "ms": ms,
                             "fps": 1000 / ms, "queries": q})
    print(f"walkthrough frame times ({platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; mean of {len(pick)} path frames, best of {args.reps})")
    print(f"{'device':6s} {'size':22s} {'mode':10s} {'ms/frame':>9s} {'fps':>7s} {'queries':>8s}")
    for r in rows:
        print(f"{r['device']:6s} {r['size']:22s} {r['mode']:10s} {r['ms']:9.1f} {r['fps']:7.2f} {r['queries']:8d}")
    if args.json:
        from assets.cache import atomic_write_text

        atomic_write_text(args.json, json.dumps({"rows": rows}, indent=1), parents=True)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
