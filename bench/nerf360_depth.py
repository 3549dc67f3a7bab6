"""Does a mip-NeRF 360 model put surfaces where they are? Its median depth against the true depth of the generated
scene (the mesh renderer's depth buffer), on a grid of pixels of a few views.

    xvfb-run -a python bench/nerf360_depth.py [--checkpoint CKPT] [--views 0,10,20] [--grid 6] [--json out.json]

Prints the per-view median and 90th percentile of |log(model depth / true depth)| and the fraction of pixels within
5 % and 10 %; the reference in the same run is the constant depth at the median of all true depths (what a model
that learned no geometry would score at best). Default checkpoint: the NeRF view's bundled model. Needs GL (EGL or
an X display) for the true depth.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="")
    ap.add_argument("--scene", default="default")
    ap.add_argument("--views", default="0,10,20", help="training views to probe")
    ap.add_argument("--grid", type=int, default=6, help="pixels per side of the probed grid")
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    import torch

    from assets.unbounded_scene import PRESETS, build_scene, render_depth
    from methods.nerf360.dataset import ensure_unbounded_dataset, load_unbounded
    from methods.nerf360.demo import demo_checkpoint
    from methods.nerf360.model import camera_rays
    from methods.nerf360.train import load_nerf360
    from render.mesh_renderer import MeshRenderer

    ckpt = args.checkpoint or str(demo_checkpoint())
    model, cfg = load_nerf360(ckpt)
    root = ensure_unbounded_dataset(args.scene)
    ds = load_unbounded(root, "train", scale=1.0)
    meshes, renderer = build_scene(PRESETS[args.scene]), MeshRenderer()
    rows, all_true, all_model = [], [], []
    for i in [int(v) for v in args.views.split(",") if v.strip()]:
        cam = ds.cameras[i]
        true = render_depth(renderer, meshes, cam)
        ys = np.linspace(0.1, 0.95, args.grid) * cam.height
        xs = np.linspace(0.05, 0.95, args.grid) * cam.width
        pix = [(int(y), int(x)) for y in ys for x in xs if np.isfinite(true[int(y), int(x)])]
        rays = camera_rays(cam, near=float(ds.near[i]), far=float(ds.far[i]))
        sel = rays.map(lambda t: torch.stack([t[y, x] for y, x in pix]))
        with torch.no_grad():
            depth = model(sel, train=False).depth.numpy()
        t = np.array([true[y, x] for y, x in pix])
        err = np.abs(np.log(depth / t))
        all_true.append(t)
        all_model.append(depth)
        rows.append({"view": i, "pixels": len(pix), "median_abs_log": float(np.median(err)),
                     "p90_abs_log": float(np.percentile(err, 90)), "within_5pct": float(np.mean(err < np.log(1.05))),
                     "within_10pct": float(np.mean(err < np.log(1.10)))})
    t, d = np.concatenate(all_true), np.concatenate(all_model)
    const = np.abs(np.log(np.median(t) / t))
    summary = {"checkpoint": ckpt, "preset": cfg.name, "delta_space": cfg.model.delta_space, "views": rows,
               "all": {"median_abs_log": float(np.median(np.abs(np.log(d / t)))),
                       "within_5pct": float(np.mean(np.abs(np.log(d / t)) < np.log(1.05)))},
               "reference_constant_depth": {"median_abs_log": float(np.median(const)),
                                            "within_5pct": float(np.mean(const < np.log(1.05)))}}
    print(f"\nmedian depth vs true depth, {ckpt} ({cfg.name}, Δ {cfg.model.delta_space})\n")
    print("| view | pixels | median abs log ratio | p90 | within 5 % | within 10 % |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['view']} | {r['pixels']} | {r['median_abs_log']:.3f} | {r['p90_abs_log']:.3f} | "
              f"{r['within_5pct']:.0%} | {r['within_10pct']:.0%} |")
    a, c = summary["all"], summary["reference_constant_depth"]
    print(f"| all | {len(t)} | {a['median_abs_log']:.3f} | | {a['within_5pct']:.0%} | |")
    print(f"| reference: one constant depth | {len(t)} | {c['median_abs_log']:.3f} | | {c['within_5pct']:.0%} | |")
    if args.json:
        from assets.cache import atomic_write_text

        atomic_write_text(args.json, json.dumps(summary, indent=2), parents=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
