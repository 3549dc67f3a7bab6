"""CPU time of the pure-torch reference splat rasterizer (forward, and forward + backward).

    python bench/splat_cpu.py [--sizes 10000,100000] [--width 640 --height 480] [--reps 3] [--json out.json]

Scene: N random anisotropic Gaussians spread over the whole view of a 50° camera at depths 2–10, projected
σ of 0.5–6 px, opacity 0.2–0.9, SH degree-3 colours (what a trainer feeds in). The in-run reference is a
brute-force dense renderer (every Gaussian against every pixel, chunked, same compositing rules, no tile lists)
for the first size; it is timed on a band of rows and scaled to the full image, and its image is compared with
the tiled one on that band (max |Δ|), so the table also doubles as a large-scene correctness check.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import median_seconds  # noqa: E402

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see main.py

import torch  # noqa: E402

from render.splat import project_gaussians, rasterize  # noqa: E402
from render.splat.projection import camera_position  # noqa: E402
from render.splat.sh import sh_to_rgb  # noqa: E402


def make_scene(n: int, width: int, height: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    fx = 0.5 * width / math.tan(math.radians(25))
    K = torch.tensor([[fx, 0, width / 2], [0, fx, height / 2], [0, 0, 1.0]])
    z = 2 + 8 * torch.rand(n, generator=g)
    u, v = width * torch.rand(n, generator=g), height * torch.rand(n, generator=g)
    means = torch.stack([(u - width / 2) / fx * z, (v - height / 2) / fx * z, z], dim=-1)
    sigma_px = torch.exp(math.log(0.5) + math.log(12) * torch.rand(n, 3, generator=g))
    scales = sigma_px * z[:, None] / fx
    quats = torch.randn(n, 4, generator=g)
    opac = 0.2 + 0.7 * torch.rand(n, generator=g)
    sh = 0.2 * torch.randn(n, 16, 3, generator=g)
    sh[:, 0] += 0.5
    return means, quats, scales, opac, sh, torch.eye(4), K


def dense_reference(scene, width: int, height: int, rows: int, chunk: int = 256):
    """Brute force: each pixel of the first ``rows`` rows against all Gaussians, globally depth-sorted."""
    means, quats, scales, opac, sh, viewmat, K = scene
    with torch.no_grad():
        p = project_gaussians(means, quats, scales, opac, viewmat, K, width, height)
        dirs = means - camera_position(viewmat)
        rgb = sh_to_rgb(sh, dirs / dirs.norm(dim=-1, keepdim=True), 3)
        keep = torch.nonzero(p.radii > 0).squeeze(1)
        keep = keep[torch.argsort(p.depths[keep], stable=True)]
        m2, con, op, col = p.means2d[keep], p.conics[keep], p.opacities[keep], rgb[keep]
        lo, hi = p.tile_min[keep], p.tile_max[keep]
        jj, ii = torch.meshgrid(torch.arange(width), torch.arange(rows), indexing="xy")
        pix_j, pix_i = jj.reshape(-1), ii.reshape(-1)
        out = torch.zeros(pix_j.numel(), 3)
        for s in range(0, pix_j.numel(), chunk):
            pj, pi = pix_j[s:s + chunk], pix_i[s:s + chunk]
            inside = ((lo[None, :, 0] <= pj[:, None] // 16) & (pj[:, None] // 16 < hi[None, :, 0])
                      & (lo[None, :, 1] <= pi[:, None] // 16) & (pi[:, None] // 16 < hi[None, :, 1]))
            dx = m2[None, :, 0] - (pj[:, None] + 0.5)
            dy = m2[None, :, 1] - (pi[:, None] + 0.5)
            power = -0.5 * (con[:, 0] * dx * dx + con[:, 2] * dy * dy) - con[:, 1] * dx * dy
            a = torch.clamp_max(op * torch.exp(power.clamp_max(0)), 0.99)
            a = torch.where(inside & (power <= 0) & (a >= 1 / 255), a, torch.zeros_like(a))
            t_cand = torch.cumprod(1 - a, dim=-1)
            a = torch.where(t_cand >= 1e-4, a, torch.zeros_like(a))
            t = torch.cumprod(torch.cat([torch.ones_like(a[:, :1]), 1 - a], dim=-1), dim=-1)[:, :-1]
            out[s:s + chunk] = (a * t) @ col
        return out.reshape(rows, width, 3)


def time_training(steps: int, preset: str) -> list[dict]:
    """Optimisation steps per second of the real trainer (`cpu_small`) on the bundled synthetic scene, including
    densification as scheduled; the first 5 steps (allocation, imports) are not timed."""
    from methods.datasets.generate import ensure_dataset
    from methods.gaussians.train import GaussianTrainer, TrainConfig

    root = ensure_dataset(preset)
    out = []
    for method in ("3dgs", "mip"):
        cfg = TrainConfig.preset("cpu_small", method=method, max_eval_views=1, preview_interval_s=float("inf"),
                                 out_dir=str(Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-train-{method}"))
        trainer = GaussianTrainer.from_path(root, cfg)
        for _ in range(5):
            trainer.step()
        n0 = trainer.model.num_gaussians
        t0 = time.perf_counter()
        for _ in range(steps):
            trainer.step()
        dt = (time.perf_counter() - t0) / steps
        ds = trainer.train_set
        out.append({"method": method, "image": f"{ds.width}x{ds.height}", "steps": steps, "n_start": n0,
                    "n_end": trainer.model.num_gaussians, "s_per_step": dt})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--reps", type=int, default=3, help="repetitions for the smallest size (median reported)")
    ap.add_argument("--dense-rows", type=int, default=48, help="rows the dense reference is timed on")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--json", default="", help="also write the rows as JSON here")
    ap.add_argument("--train-steps", type=int, default=60, help="cpu_small training steps to time (0 = skip)")
    ap.add_argument("--train-preset", default="default", help="synthetic dataset preset for the training row")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    w, h = args.width, args.height
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for k, n in enumerate(sizes):
        scene = make_scene(n, w, h)
        reps = args.reps if k == 0 else 1
        means, quats, scales, opac, sh, viewmat, K = scene

        def fwd():
            with torch.no_grad():
                return rasterize(means, quats, scales, opac, sh, viewmat, K, w, h)

        def fwd_bwd():
            params = [t.clone().requires_grad_(True) for t in (means, quats, scales, opac, sh)]
            out = rasterize(*params, viewmat, K, w, h)
            (out.color.sum() + out.alpha.sum()).backward()

        out = fwd()
        n_vis = int((out.radii > 0).sum())
        pairs = int(out.n_contrib.sum())
        t_f = median_seconds(fwd, reps)
        t_fb = median_seconds(fwd_bwd, reps)
        rows.append({"renderer": "tiled torch reference", "N": n, "visible": n_vis, "forward_s": t_f,
                     "forward_backward_s": t_fb, "composited_per_px": pairs / (w * h), "note": ""})
        if k == 0 and args.dense_rows > 0:
            r = min(args.dense_rows, h)
            t0 = time.perf_counter()
            dense = dense_reference(scene, w, h, r)
            t_d = (time.perf_counter() - t0) * h / r
            diff = float((dense - out.color[:r]).abs().max())  # black background: colour = Σ w·c
            rows.append({"renderer": "brute-force dense (all Gaussians × all pixels)", "N": n, "visible": n_vis,
                         "forward_s": t_d, "forward_backward_s": None, "composited_per_px": None,
                         "note": f"timed on {r}/{h} rows, scaled; max |Δ| vs tiled = {diff:.1e}"})

    train_rows = time_training(args.train_steps, args.train_preset) if args.train_steps else []

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nCPU: {platform.processor() or platform.machine()} ({os.cpu_count()} cores, load {load:.1f}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {w}×{h}, float32, median of "
          f"{args.reps} for N={sizes[0]:,}, 1 run otherwise\n")
    print("| renderer | N | visible | forward (s) | forward+backward (s) | composited / px | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        fb = "—" if r["forward_backward_s"] is None else f"{r['forward_backward_s']:.2f}"
        cp = "—" if r["composited_per_px"] is None else f"{r['composited_per_px']:.1f}"
        print(f"| {r['renderer']} | {r['N']:,} | {r['visible']:,} | {r['forward_s']:.2f} | {fb} | {cp} | "
              f"{r['note']} |")
    if train_rows:
        print("\n| training (cpu_small) | image | steps | Gaussians at start → end | s/step | steps/s |")
        print("|---|---|---:|---|---:|---:|")
        for r in train_rows:
            print(f"| {r['method']} | {r['image']} | {r['steps']} | {r['n_start']:,} → {r['n_end']:,} | "
                  f"{r['s_per_step']:.3f} | {1 / r['s_per_step']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"width": w, "height": h, "threads": torch.get_num_threads(),
                                               "cpu_count": os.cpu_count(), "rows": rows,
                                               "training": train_rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
