"""Soak: the real studio for N minutes (30 by default) under Xvfb with scripted input and two training jobs started
and cancelled in turn; samples RSS, UI frame time and thread count every 10 s.

Input, on a cycle of one action every ~2 s:
- xdotool orbit drags and WASD in fly mode (real X events, from a helper thread);
- zoom-slider sweeps and view switches;
- file opens through the views' dialogs, of good files and of malformed ones from the fuzz suite.

Every 60 s the running job is cancelled and the other one starts.

Writes ``soak.csv`` and ``soak.png`` (RSS, p95 frame time and threads over time) into ``--out`` and prints:
- crashes (views closed by an exception, or the loop dying);
- RSS growth from the first to the last 5 minutes;
- p95 frame time per 5-minute window;
- the most threads seen.

    python3 bench/soak.py [--minutes 30] [--out DIR]
"""
from __future__ import annotations

import argparse
import csv
import gc
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

JOBS = (("Train NGSSF scale-space field", {"target": "astronaut", "preset": "test_tiny", "iterations": 10 ** 6}),
        ("Fit tiny MLP to an image (demo)", {"steps": 100_000, "size": 64}))


ACTIONS = ("orbit", "wasd", "zoom", "switch", "files")


def _proc_status() -> tuple[float, int]:
    """(RSS in MB, threads) of this process."""
    rss, threads = 0.0, 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, threads


class Xdo:
    """xdotool gestures run on a helper thread, so the UI loop keeps drawing while they play."""

    def __init__(self) -> None:
        self.exe = shutil.which("xdotool")
        self.busy = threading.Event()

    def window(self) -> str | None:
        out = subprocess.run([self.exe, "search", "--name", "^mipstudio"], capture_output=True, text=True, timeout=10)
        ids = out.stdout.split()
        return ids[-1] if ids else None

    def play(self, steps: list[list[str]]) -> None:
        if self.exe is None or self.busy.is_set():
            return
        self.busy.set()

        def run() -> None:
            try:
                for s in steps:
                    if s[0] == "sleep":
                        time.sleep(float(s[1]))
                    else:
                        subprocess.run([self.exe, *s], timeout=10, capture_output=True)
            finally:
                self.busy.clear()
        threading.Thread(target=run, daemon=True).start()


def _bad_files(folder: Path) -> dict[str, list[Path]]:
    """A few malformed files per view from the fuzz suite's generator, plus the good ones they mutate."""
    from test_fuzz_inputs import CASES, Seeds

    seeds = Seeds(folder / "seeds")
    files: dict[str, list[Path]] = {"splat": [seeds.root / "demo.ply"], "sr": [seeds.root / "img.png"]}
    kinds = {"ply": "splat", "image": "sr"}
    for i, case in enumerate(c for c in CASES if c.kind in kinds and c.expect == "fail"):
        if i % 6:
            continue
        argv, _ = case.build(seeds, folder)
        src = next(Path(a) for a in argv if Path(a).name.startswith("case"))
        dest = folder / f"bad{i:03d}{src.suffix}"
        shutil.copyfile(src, dest)
        files[kinds[case.kind]].append(dest)
    return files


def _plot(rows: list[dict], path: Path) -> None:
    """Stacked line charts against minutes (RSS MB, glibc heap in use and free-but-held MB, p95 frame ms,
    threads), drawn with Pillow (imageio's own dependency), labelled with their ranges."""
    from PIL import Image, ImageDraw

    w, h, left, pad = 900, 180, 70, 24
    panels = [("RSS (MB)", [("rss_mb", (40, 110, 220))]),
              ("glibc heap (MB): in use (purple), free but held (grey)",
               [("heap_used_mb", (140, 60, 170)), ("heap_free_mb", (150, 150, 150))]),
              ("p95 UI frame time (ms, per 10 s)", [("p95_ms", (220, 90, 40))]),
              ("threads", [("threads", (40, 160, 80))])]
    panels = [(title, series) for title, series in panels if all(key in rows[0] for key, _ in series)]
    img = Image.new("RGB", (w, h * len(panels) + 20), "white")
    d = ImageDraw.Draw(img)
    t = np.array([float(r["minute"]) for r in rows], dtype=np.float64)
    span = max(float(t.max() - t.min()), 1e-9) if len(t) else 1.0
    for k, (title, series) in enumerate(panels):
        ys = [np.array([float(r[key]) for r in rows], dtype=np.float64) for key, _ in series]
        top, bottom = k * h + pad, (k + 1) * h - pad
        hi = max(max(float(y.max()) for y in ys) * 1.1, 1e-9) if len(t) else 1.0
        d.line([(left, top), (left, bottom), (w - 10, bottom)], fill="black")
        d.text((left + 6, top - 16), title, fill="black")
        d.text((6, top - 4), f"{hi:.0f}", fill="black")
        d.text((6, bottom - 10), "0", fill="black")
        for g in (0.25, 0.5, 0.75):
            gy = bottom - g * (bottom - top)
            d.line([(left + 1, gy), (w - 10, gy)], fill=(225, 225, 225))
        for y, (_, colour) in zip(ys, series):
            pts = [(left + (ti - t.min()) / span * (w - 10 - left), bottom - yi / hi * (bottom - top))
                   for ti, yi in zip(t, y)]
            if len(pts) > 1:
                d.line(pts, fill=colour, width=2)
    d.text((left, h * len(panels) - 4), f"minutes 0 .. {span:.1f}", fill="black")
    img.save(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--out", default="soak_out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--actions", default=",".join(ACTIONS),
                    help="which inputs to play (to find which one grows memory): " + ", ".join(ACTIONS))
    ap.add_argument("--no-jobs", action="store_true", help="do not start the training jobs")
    ap.add_argument("--heap", choices=("studio", "default"), default="studio",
                    help="the studio's heap policy (app/memory.py) or the C library's defaults, to compare")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import dearpygui.dearpygui as dpg

    from app.display import virtual_display
    from app.memory import heap_mb
    from app.shell import Studio, StudioConfig, exit_after_close

    rng = random.Random(args.seed)
    actions = [a for a in args.actions.split(",") if a in ACTIONS] or list(ACTIONS)
    rows: list[dict] = []
    crashes: list[str] = []
    with virtual_display():
        studio = Studio(StudioConfig(width=1440, height=900, title="mipstudio-soak",
                                     **({"heap": None} if args.heap == "default" else {})))
        studio.setup()
        notify = studio.notify

        def watch(message: str) -> None:  # a view closed by an exception is a crash
            if "failed" in message and "closing it" in message:
                crashes.append(message)
            notify(message)
        studio.notify = watch
        files = _bad_files(out / "files")
        xdo = Xdo()
        views = list(studio.views)
        job_cycle = itertools.cycle(JOBS)
        handle, job_started = None, -1e9
        frame_ms: list[float] = []
        all_ms: list[tuple[float, float]] = []  # (minute, frame ms) for the per-window percentiles
        t0 = last_sample = time.monotonic()
        last_action, action_k = 0.0, 0
        last = time.perf_counter()
        while time.monotonic() - t0 < args.minutes * 60:
            try:
                studio.frame()
            except Exception as e:  # noqa: BLE001 - the loop itself died: count it and stop
                crashes.append(f"frame loop: {type(e).__name__}: {e}")
                break
            now_p = time.perf_counter()
            frame_ms.append((now_p - last) * 1000)
            last = now_p
            now = time.monotonic()
            all_ms.append(((now - t0) / 60, frame_ms[-1]))
            if now - job_started > 60 and not args.no_jobs:  # cancel the running job, start the other
                if handle is not None:
                    handle.cancel()
                name, overrides = next(job_cycle)
                handle = studio.start_job(name, **overrides) if name in studio.launchers else None
                job_started = now
            if now - last_action > 2.0:
                last_action, action_k = now, action_k + 1
                live = [v for v in views if v in studio.views]
                view = studio.views[rng.choice(live)] if live else None
                kind = ACTIONS.index(actions[action_k % len(actions)])
                if view is not None and kind == 0 and xdo.window():  # orbit drag
                    x0, y0, x1, y1 = view.image_rect()
                    cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
                    win = xdo.window()
                    xdo.play([["mousemove", "--window", win, str(cx), str(cy)], ["mousedown", "1"]]
                             + [["mousemove", "--window", win, str(cx + 8 * i), str(cy + 3 * i)] for i in range(10)]
                             + [["mouseup", "1"]])
                elif view is not None and kind == 1 and "camera_mode" in view.tags and xdo.window():  # WASD
                    dpg.set_value(view.tags["camera_mode"], "Fly")
                    key = rng.choice("wasd")
                    xdo.play([["keydown", key], ["sleep", "0.5"], ["keyup", key]])
                elif view is not None and kind == 2:  # zoom sweep: a few values, one per action
                    dpg.set_value(view.tags["zoom"], rng.uniform(-3.0, 3.0))
                elif view is not None and kind == 3:  # view switch (focus) and back to orbit
                    studio.active_view = view.name
                    if "camera_mode" in view.tags:
                        dpg.set_value(view.tags["camera_mode"], "Orbit")
                elif kind == 4:  # open a file, good or malformed
                    name = rng.choice(list(files))
                    v = studio.views.get(name)
                    if v is not None and "dialog" in v.tags:
                        dialog = v.tags["dialog"]
                        dpg.get_item_callback(dialog)(dialog, {"file_path_name": str(rng.choice(files[name]))})
            if now - last_sample >= 10.0:
                rss, threads = _proc_status()
                window = np.array(frame_ms[1:] or [0.0])
                rows.append({"minute": round((now - t0) / 60, 3), "rss_mb": round(rss, 1), "threads": threads,
                             "p50_ms": round(float(np.percentile(window, 50)), 2),
                             "p95_ms": round(float(np.percentile(window, 95)), 2),
                             "max_ms": round(float(window.max()), 1), "frames": len(frame_ms),
                             "views": len(studio.views), "jobs_running": studio.jobs.active_count,
                             # what grows, if RSS does: UI items (textures, drawings) or Python objects
                             "ui_items": len(dpg.get_all_items()), "py_objects": len(gc.get_objects()),
                             **heap_mb()})
                frame_ms, last_sample = [], now
                print(json.dumps(rows[-1]), flush=True)
        if handle is not None:
            handle.cancel()
        studio.close()
    with open(out / "soak.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    _plot(rows, out / "soak.png")
    first = [r["rss_mb"] for r in rows if r["minute"] <= 5]
    lastw = [r["rss_mb"] for r in rows if r["minute"] >= rows[-1]["minute"] - 5]
    growth = (np.mean(lastw) - np.mean(first)) / np.mean(first)
    print(f"\nsoak: {rows[-1]['minute']:.1f} min, {len(crashes)} crashes"
          + (f" ({crashes[0][:120]})" if crashes else ""))
    print(f"RSS first 5 min {np.mean(first):.0f} MB -> last 5 min {np.mean(lastw):.0f} MB: {growth:+.1%}")
    for key, what in (("heap_used_mb", "glibc heap in use"), ("heap_free_mb", "glibc heap free but held")):
        if key in rows[0]:
            a = np.mean([r[key] for r in rows if r["minute"] <= 5])
            b = np.mean([r[key] for r in rows if r["minute"] >= rows[-1]["minute"] - 5])
            print(f"{what}: first 5 min {a:.0f} MB -> last 5 min {b:.0f} MB")
    windows = {}
    for minute, ms in all_ms[1:]:
        windows.setdefault(int(minute // 5) * 5, []).append(ms)
    print("p95 frame time per 5-minute window: " + ", ".join(
        f"{m}-{m + 5} min {np.percentile(v, 95):.0f} ms" for m, v in sorted(windows.items())))
    print(f"max threads {max(r['threads'] for r in rows)} · {out / 'soak.csv'} · {out / 'soak.png'}")
    return exit_after_close(1 if crashes else 0)


if __name__ == "__main__":
    raise SystemExit(main())
