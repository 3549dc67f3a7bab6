"""UI frame time of the real studio, idle vs while a CPU training job runs (and while orbiting, for reference).

    python bench/ui_responsiveness.py [--frames 300] [--json out.json]

Starts Xvfb itself when there is no display. Frame time = wall time between consecutive UI frames (the loop is
capped at the studio's max_fps, so ~8 ms is the floor). The "idle" row is the reference for the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
# idle OpenMP threads sleep instead of spinning: with one core busy, spinning made torch ~30x slower
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402


def measure(studio, frames: int) -> np.ndarray:
    times = []
    last = time.perf_counter()
    for _ in range(frames):
        studio.frame()
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return np.array(times[5:]) * 1000.0


def summarize(name: str, ms: np.ndarray, extra: str = "") -> dict:
    return {"scenario": name, "frames": int(ms.size), "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "max_ms": float(ms.max()),
            "fps": float(1000.0 / ms.mean()), "note": extra}


def _mlp_job() -> tuple[str, dict]:
    return "Fit tiny MLP to an image (demo)", {"steps": 10**7, "size": 64}


def _mipmap_job() -> tuple[str, dict]:
    """Mipmap-GS finetuning of the bundled demo scene's PLY on the default dataset's test poses (long enough to
    outlast the measurement)."""
    import tempfile

    from methods.gaussians.demo import demo_ply_path

    return "Finetune Mipmap-GS stack", {"base_ply": str(demo_ply_path()), "scales": "1/2", "iterations": 100_000,
                                        "out_dir": tempfile.mkdtemp(prefix="mipstudio-bench-mipmap-")}


JOBS = {"mlp": _mlp_job, "mipmap": _mipmap_job}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", default="1440x900")
    ap.add_argument("--json", default="", help="also write the rows as JSON here")
    ap.add_argument("--job", default="mlp", choices=tuple(JOBS),
                    help="the CPU job that runs: mlp (tiny MLP fit) or mipmap (Mipmap-GS finetuning)")
    ap.add_argument("--views", default="", help="comma-separated views to open (default: all registered)")
    ap.add_argument("--switch-ms", type=float, default=0.0, help="sys.setswitchinterval (ms); 0 keeps the default")
    args = ap.parse_args()
    if args.switch_ms:
        sys.setswitchinterval(args.switch_ms / 1000)

    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # as the GUI does
    from app.display import virtual_display
    from app.shell import Studio, StudioConfig

    w, h = (int(v) for v in args.size.split("x"))
    rows = []
    with virtual_display():
        views = tuple(v for v in args.views.split(",") if v) or None
        studio = Studio(StudioConfig(width=w, height=h, views=views))
        studio.setup()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not studio.warmed_up.is_set():
            studio.frame()
        while time.monotonic() < deadline and not all(v.worker.latest() is not None and not v.worker.busy
                                                       for v in studio.views.values()):
            studio.frame()
        measure(studio, 60)  # let the panels fall back to static textures
        rows.append(summarize("idle (views still)", measure(studio, args.frames)))

        launcher, overrides = JOBS[args.job]()
        handle = studio.start_job(launcher, **overrides)
        if handle is None:
            print(f"could not start {launcher!r}")
            return 1
        step0 = handle.snapshot().step
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and handle.snapshot().step == step0:  # until it is really training
            studio.frame()
        step0 = handle.snapshot().step
        t0 = time.perf_counter()
        ms = measure(studio, args.frames)
        rate = (handle.snapshot().step - step0) / (time.perf_counter() - t0)
        rows.append(summarize(f"CPU job running ({args.job})", ms, f"job {rate:.1f} steps/s"))

        view = studio.views.get("mesh")
        if view is not None:  # orbit continuously: a render per frame on top of the job
            times, last = [], time.perf_counter()
            for k in range(args.frames):
                view.orbit.rotate(3.0, 0.0)
                view.dynres.touch()
                studio.frame()
                now = time.perf_counter()
                times.append(now - last)
                last = now
            rows.append(summarize("CPU job + orbiting the mesh", np.array(times[5:]) * 1000.0,
                                  f"mesh view {view.worker.fps():.1f} renders/s"))
        handle.cancel()
        studio.close()

    print(f"\nUI frame time, {w}x{h} window, views: {args.views or 'all'}, {os.cpu_count()} cores, "
          f"max_fps cap {StudioConfig().max_fps:.0f}\n")
    print(f"| {'scenario':<30} | frames | p50 ms | p95 ms | max ms |   fps | note")
    print(f"|{'-' * 32}|--------|--------|--------|--------|-------|------")
    for r in rows:
        print(f"| {r['scenario']:<30} | {r['frames']:>6} | {r['p50_ms']:>6.1f} | {r['p95_ms']:>6.1f} | "
              f"{r['max_ms']:>6.1f} | {r['fps']:>5.1f} | {r['note']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
