"""Crash safety: kill -9 training runs of every family that writes checkpoints, in the middle of checkpoint writes
and at random moments, and check that the checkpoint on disk always loads, that a run resumes from it, and that no
temp files pile up.

Each family first trains a tiny run into a folder (the baseline checkpoint). Then each kill re-runs the same command
into that folder, which rewrites the checkpoint, and SIGKILLs it in one of two ways:
- **in-write**: the child's next checkpoint write kills itself after a random number of bytes (the
  MIPSTUDIO_CRASH_AFTER_BYTES hook in assets/cache.py);
- **random-time**: the parent kills it after a random delay within the baseline's run time.

After every kill the checkpoint must load with the family's own loader, and at most one stale temp file may sit
next to it (the next write removes it). At the end a clean run and a resume must succeed and leave no temp file.

    python3 bench/kill9.py [--kills 50] [--families miner,ngssf,...] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Family:
    train: Callable[[Path, Path], list[str]]   # (out folder, input image) -> CLI args that write the checkpoint
    checkpoint: str                              # its file, relative to the out folder
    resume: Callable[[Path, Path], list[str]]   # args that resume from it
    load: Callable[[Path], object]               # the family's own loader (raises on a bad file)
    crash_file: str = ""                         # whose write the in-write kills tear (default: the checkpoint)


def _loaders() -> dict[str, Callable[[Path], object]]:
    from methods.gaussians.train import load_trained_model
    from methods.gaussiansr.train import load_sr_model
    from methods.miner.train import load_miner
    from methods.nerf360.train import load_nerf360
    from methods.neural_texture.texture import load_texture_field
    from methods.ngssf.train import load_field

    return {"miner": load_miner, "ngssf": load_field, "gaussians": load_trained_model, "nerf360": load_nerf360,
            "gaussiansr": load_sr_model, "neural_texture": load_texture_field, "mipmap": _load_stack}


def _load_stack(path: Path) -> object:
    """A Mipmap-GS stack loads when its mipmap.json reads and every PLY it names loads."""
    from methods.gaussians.mipmap import MipStack
    from methods.gaussians.ply import load_ply

    stack = MipStack.read(path)
    return [load_ply(path.parent / name) for name in [stack.base] + [lv.ply for lv in stack.levels]]


def _finetune(o: Path, img: Path, *extra: str) -> list[str]:
    """``finetune gaussians`` of a small random base (made next to the test image) on the tiny scene."""
    base = img.parent / "base.ply"
    if not base.exists():
        from methods.gaussians.model import GaussianModel
        from methods.gaussians.ply import save_ply

        save_ply(GaussianModel.random_in_box(400, -0.6, 0.6, seed=0), base)
    return ["finetune", "gaussians", "--ply", str(base), "--preset", "tiny", "--scales", "1/4,1/2", "--iterations",
            "20", "--out", str(o), *extra]


def families() -> dict[str, Family]:
    load = _loaders()
    return {
        "miner": Family(lambda o, img: ["train", "miner", str(img), "--preset", "test_tiny", "--out", str(o)],
                        "miner.pt",
                        lambda o, img: ["train", "miner", str(img), "--preset", "test_tiny", "--out", str(o),
                                        "--resume", str(o / "miner.pt")], load["miner"]),
        "ngssf": Family(lambda o, img: ["train", "ngssf", "astronaut", "--config", "test_tiny", "--iterations", "40",
                                        "--out", str(o)],
                        "checkpoint.pt",
                        lambda o, img: ["train", "ngssf", "astronaut", "--config", "test_tiny", "--iterations", "60",
                                        "--out", str(o)], load["ngssf"]),
        "neural_texture": Family(lambda o, img: ["train", "neural_texture", "--config", "test_tiny", "--iterations",
                                                 "40", "--out", str(o / "field.pt")],
                                 "field.pt",
                                 lambda o, img: ["train", "neural_texture", "--config", "test_tiny", "--iterations",
                                                 "60", "--out", str(o / "field.pt")], load["neural_texture"]),
        "gaussians": Family(lambda o, img: ["train", "gaussians", "--preset", "tiny", "--config", "test_tiny",
                                            "--iterations", "40", "--out", str(o)],
                            "checkpoint.pt",
                            lambda o, img: ["train", "gaussians", "--preset", "tiny", "--config", "test_tiny",
                                            "--iterations", "60", "--out", str(o), "--resume",
                                            str(o / "checkpoint.pt")], load["gaussians"]),
        "nerf360": Family(lambda o, img: ["train", "nerf360", "--scene", "tiny", "--config", "test_tiny", "--steps",
                                          "20", "--out", str(o)],
                          "checkpoint.pt",
                          lambda o, img: ["train", "nerf360", "--scene", "tiny", "--config", "test_tiny", "--steps",
                                          "30", "--out", str(o), "--resume", str(o / "checkpoint.pt")],
                          load["nerf360"]),
        "gaussiansr": Family(lambda o, img: ["train", "gaussiansr", "--preset", "test_tiny", "--iterations", "10",
                                             "--out", str(o)],
                             "checkpoint.pt",
                             lambda o, img: ["train", "gaussiansr", "--preset", "test_tiny", "--iterations", "15",
                                             "--out", str(o), "--resume", str(o / "checkpoint.pt")],
                             load["gaussiansr"]),
        "mipmap": Family(_finetune, "mipmap.json", lambda o, img: _finetune(o, img, "--resume"), load["mipmap"],
                         crash_file="levels/x1_2.ply"),
    }


def _run(args: list[str], env: dict[str, str] | None = None, kill_after: float | None = None,
         timeout: float = 600) -> tuple[int, float, str]:
    """Run ``main.py args`` in a child; SIGKILL it after ``kill_after`` seconds. (exit code, seconds, stderr tail)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, env=env or os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=kill_after if kill_after is not None else timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
    return proc.returncode, time.perf_counter() - t0, (err or "")[-300:]


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.tmp")]


def kill_family(name: str, kills: int, root: Path, seed: int = 0, image: Path | None = None) -> dict:
    """Baseline run, ``kills`` killed re-runs (alternating in-write and random-time), then a clean run and a resume.
    Returns the figures; raises AssertionError on the first corrupt checkpoint or temp-file pile-up."""
    fam = families()[name]
    rng = random.Random(seed)
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    img = image or _test_image(root)
    ckpt = out / fam.checkpoint
    rc, base_s, err = _run(fam.train(out, img))
    assert rc == 0 and ckpt.is_file(), f"{name}: the baseline run failed ({rc}): {err}"
    fam.load(ckpt)
    stats = {"family": name, "kills": 0, "in_write": 0, "random_time": 0, "finished_before_kill": 0,
             "checkpoint_loads": 0, "max_stale_temps": 0, "baseline_s": round(base_s, 2)}
    torn = out / (fam.crash_file or fam.checkpoint)
    for k in range(kills):
        size = torn.stat().st_size
        if k % 2 == 0:
            env = {**os.environ, "MIPSTUDIO_CRASH_AFTER_BYTES": str(rng.randrange(0, max(size, 1))),
                   "MIPSTUDIO_CRASH_TARGET": torn.name}
            rc, _, err = _run(fam.train(out, img), env=env)
            assert rc == -signal.SIGKILL, f"{name}: in-write kill {k} did not land ({rc}): {err}"
            stats["in_write"] += 1
        else:
            rc, _, err = _run(fam.train(out, img), kill_after=rng.uniform(0.2, base_s))
            stats["random_time"] += 1
        stats["kills"] += 1
        if rc == 0:
            stats["finished_before_kill"] += 1
        else:
            assert rc == -signal.SIGKILL, f"{name}: kill {k} ended with {rc}, not SIGKILL: {err}"
        fam.load(ckpt)  # the checkpoint on disk: the old one or a whole new one, never a torn one
        stats["checkpoint_loads"] += 1
        stale = len(_temps(out))
        stats["max_stale_temps"] = max(stats["max_stale_temps"], stale)
        assert stale <= 1, f"{name}: {stale} temp files piled up after kill {k}: {_temps(out)}"
    rc, _, err = _run(fam.train(out, img))
    assert rc == 0, f"{name}: the run after the kills failed ({rc}): {err}"
    rc, _, err = _run(fam.resume(out, img))
    assert rc == 0, f"{name}: resuming from the checkpoint failed ({rc}): {err}"
    fam.load(ckpt)
    assert not _temps(out), f"{name}: temp files left after the final runs: {_temps(out)}"
    stats["resumed"] = True
    return stats


def _test_image(root: Path) -> Path:
    import imageio.v3 as iio
    import numpy as np

    path = root / "img.png"
    if not path.exists():
        iio.imwrite(path, (np.random.default_rng(0).random((128, 128, 3)) * 255).astype(np.uint8))
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=50, help="kills per family")
    ap.add_argument("--families", default=",".join(["miner", "ngssf", "neural_texture", "gaussians", "nerf360",
                                                     "gaussiansr", "mipmap"]))
    ap.add_argument("--out", default="", help="work folder (default: a temp folder)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    import tempfile

    root = Path(args.out or tempfile.mkdtemp(prefix="kill9_"))
    rows = []
    for name in args.families.split(","):
        t0 = time.perf_counter()
        try:
            row = kill_family(name, args.kills, root, args.seed)
        except AssertionError as e:
            row = {"family": name, "error": str(e)}
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nkill -9 during checkpoint writes ({args.kills} per family, seed {args.seed})\n")
    print("| family | kills | in-write | random-time | finished first | checkpoint loads | max stale temps | "
          "resumed | seconds |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['family']} | FAILED: {r['error'][:120]} |")
            continue
        print(f"| {r['family']} | {r['kills']} | {r['in_write']} | {r['random_time']} | {r['finished_before_kill']} "
              f"| {r['checkpoint_loads']}/{r['kills']} | {r['max_stale_temps']} | {r['resumed']} | {r['seconds']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
