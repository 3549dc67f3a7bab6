"""Speed of neural scale-space fields: queries per second of the field and frames per second of the live view.

    python bench/ngssf.py [--presets cpu,paper] [--batch 65536] [--reps 3] [--json out.json]

Rows (every one measured in this run, on this machine):
* field queries/s for each preset, unsmoothed / isotropic σ² / one anisotropic Σ / per-point covariances, with the
  inference weight cache on — and, as the in-run reference, with it off (weights rebuilt from the matrix
  exponentials every call, as the reference code does);
* the training step (forward + backward + Adam) in samples/s;
* the Scale-space view's source: a full render at 256² and 512² (field panel only, and with the exact-blur
  comparison), as frames per second.
On a CUDA machine the field rows are repeated on the GPU.
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


def timed(fn, reps: int) -> float:
    """Best-of-``reps`` seconds after one warm-up call (first calls pay allocator/cache costs)."""
    fn()
    best = float("inf")
    for _ in range(reps):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def field_rows(preset: str, batch: int, reps: int, device: str) -> list[dict]:
    from methods.ngssf.neural_field import NeuralField, field_config

    field = NeuralField(field_config(preset, "picture", dim=2, channels=3)).to(device).eval()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 2, generator=g) * 2 - 1).to(device)
    rot = torch.tensor([[0.8, -0.6], [0.6, 0.8]])
    aniso = (rot @ torch.diag(torch.tensor([1e-2, 1e-4])) @ rot.T).to(device)
    per_point = (10 ** (-4 + 3 * torch.rand(batch, generator=g)))[:, None, None] * torch.eye(2)
    cases = {"unsmoothed": None, "σ² = 1e-3": 1e-3, "anisotropic Σ": aniso, "per-point Σ": per_point.to(device)}
    rows = []
    for label, cov in cases.items():
        with torch.no_grad():
            s = timed(lambda: field(x, cov), reps)
        rows.append({"what": f"field {preset} {label}", "device": device, "batch": batch, "seconds": s,
                     "rate": batch / s, "unit": "queries/s"})
    def rebuilt():  # the reference code's behaviour: U, V rebuilt from the matrix exponentials on every call
        field.mlp.invalidate_cache()
        return field(x, 1e-3)

    with torch.no_grad():
        s = timed(rebuilt, reps)
    rows.append({"what": f"field {preset} σ² = 1e-3, weights rebuilt per call (reference)", "device": device,
                 "batch": batch, "seconds": s, "rate": batch / s, "unit": "queries/s"})
    field.train()
    opt = torch.optim.Adam(field.parameters(), lr=1e-4)
    tb = min(batch, 16384)
    xt, covt, y = x[:tb], per_point[:tb].to(device), torch.zeros(tb, 3, device=device)

    def train_step():
        loss = ((field.forward(xt, covt) - y) ** 2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    s = timed(train_step, reps)
    rows.append({"what": f"training step {preset}", "device": device, "batch": tb, "seconds": s,
                 "rate": tb / s, "unit": "samples/s"})
    return rows


def view_rows(reps: int) -> list[dict]:
    from methods.ngssf.demo import available_demos, load_demo
    from methods.ngssf.live_source import ScaleSpaceOptions, ScaleSpaceSource
    from render.live import RenderRequest
    from render.options import make_options

    names = available_demos()
    if not names:
        return [{"what": "view: no bundled demo field", "seconds": float("nan"), "rate": float("nan"),
                 "unit": "fps", "device": "cpu", "batch": 0}]
    demo = load_demo(names[0])
    source = ScaleSpaceSource(demo.field, demo.image)
    rows = []
    for size in (256, 512):
        for label, opts in (("isotropic σ² = 1e-3", {"mode": "isotropic", "variance": 1e-3}),
                            ("anisotropic", {"mode": "anisotropic", "variance": 1e-3, "ratio": 5.0,
                                             "angle": 30.0}),
                            ("foveated", {"mode": "foveated", "variance": 1e-2}),
                            ("isotropic + exact comparison", {"mode": "isotropic", "variance": 1e-3,
                                                              "compare": True})):
            req = RenderRequest(width=size, height=size, zoom=size / demo.image.shape[1],
                                options=make_options(ScaleSpaceOptions, opts))
            s = timed(lambda: source.render(req), reps)
            rows.append({"what": f"view {size}² {label}", "device": "cpu", "batch": size * size, "seconds": s,
                         "rate": 1 / s, "unit": "fps"})
        # what the view draws first while a slider or the mouse moves: a 1/4-size preview of the same region
        req = RenderRequest(width=size // 4, height=size // 4, zoom=size / demo.image.shape[1], preview=True,
                            render_scale=0.25, options=make_options(ScaleSpaceOptions, mode="isotropic",
                                                                    variance=1e-3))
        s = timed(lambda: source.render(req), reps)
        rows.append({"what": f"view {size}² isotropic, 1/4-size preview while interacting", "device": "cpu",
                     "batch": (size // 4) ** 2, "seconds": s, "rate": 1 / s, "unit": "fps"})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="cpu,paper")
    ap.add_argument("--batch", type=int, default=65536)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    ap.add_argument("--no-view", action="store_true")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for preset in [p for p in args.presets.split(",") if p]:
            rows += field_rows(preset, args.batch, args.reps, device)
    if not args.no_view:
        rows += view_rows(args.reps)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    if args.json:  # first: a formatting slip below must not lose a long run
        Path(args.json).write_text(json.dumps({"gpu": gpu, "threads": torch.get_num_threads(), "rows": rows},
                                              indent=1))
    print(f"NGSSF bench — {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"GPU: {gpu}, torch {torch.__version__}")
    print(f"| {'what':58s} | device | {'batch':>7s} | {'ms':>9s} | {'rate':>12s} | unit |")
    print(f"|{'-' * 60}|--------|{'-' * 9}|{'-' * 11}|{'-' * 14}|------|")
    for r in rows:
        rate = f"{r['rate']:12,.0f}" if r["rate"] >= 100 else f"{r['rate']:12.2f}"
        print(f"| {r['what']:58s} | {r['device']:6s} | {r['batch']:7d} | {r['seconds'] * 1000:9.1f} | {rate} | "
              f"{r['unit']} |")
    if args.json:
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
