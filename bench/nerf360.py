"""Training steps/s and render time per 256² frame of mip-NeRF 360, per preset, on this machine.

    python bench/nerf360.py [--presets cpu,test_tiny] [--steps 30] [--size 256] [--json out.json]

Training: ``--steps`` optimisation steps (after 3 warm-up steps) on the generated unbounded scene (``--scene``).
Rendering: one test view at ``--size`` pixels wide (same field of view), test-mode sampling, no grad, with the
preset's proposal sampler and, as the in-run reference, uniform sampling with the same number of NeRF-MLP
evaluations per ray (what the proposal rounds cost on top). The NeRF view's progressive renderer on the same
frame: when its first (coarse) pass arrives and when all passes are done. ``paper`` rows are for a GPU machine.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see main.py


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="cpu,test_tiny")
    ap.add_argument("--scene", default="default", help="generated unbounded scene preset (tiny, default)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--size", type=int, default=256, help="render width in pixels")
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    import tempfile

    import torch

    from methods.nerf360.config import TRAIN_PRESETS
    from methods.nerf360.dataset import ensure_unbounded_dataset, load_unbounded
    from methods.nerf360.model import uniform_samples
    from methods.nerf360.live_source import NerfOptions, NerfSource
    from methods.nerf360.train import Nerf360Trainer, scene_view
    from render.live import RenderRequest

    root = ensure_unbounded_dataset(args.scene)
    test = load_unbounded(root, "test", scale=1.0)
    cam = test.cameras[0]
    cam = cam.scaled(args.size / cam.width)
    rows = []
    for name in [p for p in args.presets.split(",") if p]:
        cfg = TRAIN_PRESETS[name].with_(preview_interval_s=float("inf"), eval_split="")
        trainer = Nerf360Trainer(cfg, root, tempfile.mkdtemp(prefix="mipstudio-bench-nerf360-"))
        for _ in range(3):
            trainer.step()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            trainer.step()
        steps_s = args.steps / (time.perf_counter() - t0)
        model = trainer.model.eval()
        nerf_n = cfg.model.samples[-1]
        timings = {}
        with torch.no_grad():
            for label, samples in (("proposal", None), ("uniform, same NeRF evals", uniform_samples(nerf_n))):
                model.render_image(cam, 8192, samples=samples, near=float(test.near[0]), far=float(test.far[0]))
                t0 = time.perf_counter()
                model.render_image(cam, 8192, samples=samples, near=float(test.near[0]), far=float(test.far[0]))
                timings[label] = (time.perf_counter() - t0) * 1000.0
        # the NeRF view's progressive renderer on the same frame: latency of its first pass and of the whole
        source = NerfSource(model, scene_view(trainer.train_set))
        req = RenderRequest(cam.width, cam.height, camera=cam, options=NerfOptions())
        list(source.render_progressive(req))  # warm: its time-per-ray estimate comes from real chunks
        t0 = time.perf_counter()
        frames = source.render_progressive(req)
        next(frames)
        first_ms = (time.perf_counter() - t0) * 1000.0
        for _ in frames:
            pass
        timings["progressive first pass"], timings["progressive total"] = first_ms, (time.perf_counter() - t0) * 1e3
        rows.append({"preset": name, "batch_rays": cfg.batch_rays, "samples": list(cfg.model.samples),
                     "train_steps_per_s": steps_s, "rays_per_s": steps_s * cfg.batch_rays,
                     "render_ms": timings["proposal"], "render_ms_uniform_same_nerf_evals":
                     timings["uniform, same NeRF evals"], "frame": [cam.width, cam.height],
                     "progressive_first_pass_ms": timings["progressive first pass"],
                     "progressive_total_ms": timings["progressive total"],
                     "device": "cpu", "threads": torch.get_num_threads()})
    print(f"\nmip-NeRF 360 on {root.name}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n")
    print("| preset | samples | batch | train steps/s | rays/s | render ms (proposal) | render ms (uniform, same "
          "NeRF evals) | view: first pass ms | view: all passes ms | frame |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {'/'.join(map(str, r['samples']))} | {r['batch_rays']} | "
              f"{r['train_steps_per_s']:.2f} | {r['rays_per_s']:.0f} | {r['render_ms']:.0f} | "
              f"{r['render_ms_uniform_same_nerf_evals']:.0f} | {r['progressive_first_pass_ms']:.0f} | "
              f"{r['progressive_total_ms']:.0f} | {r['frame'][0]}x{r['frame'][1]} |")
    if args.json:
        from assets.cache import atomic_write_text

        atomic_write_text(args.json, json.dumps(rows, indent=2), parents=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
