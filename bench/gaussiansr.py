"""Super-resolution inference time: bicubic, LIIF and GaussianSR (the bundled cpu models and the paper-size
architectures with random weights, whose cost does not depend on the weights), one run, a table and JSON.

    python bench/gaussiansr.py [--sizes 64:4,256:4,128:3.7] [--json out.json]

Each row: an LR image of side L (a centre crop of a bundled photo) super-resolved by x s to round(L s)², whole
image (``methods.gaussiansr.model.upscale``: encode once, query in chunks of 16,384 points), median of 3 after a
warm-up, torch threads as set by the environment.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from timing import median_seconds  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64:4,256:4,128:3.7", help="LR side:scale pairs, comma separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    import torch

    from assets.photos import load_photo
    from methods.gaussiansr.cli import bundled_checkpoint
    from methods.gaussiansr.config import ModelConfig
    from methods.gaussiansr.evaluate import bicubic
    from methods.gaussiansr.model import build_model, upscale
    from methods.gaussiansr.train import load_sr_model

    torch.manual_seed(0)
    methods = {"bicubic": None}
    for name in ("liif", "gaussiansr"):
        path = bundled_checkpoint(name)
        if path.is_file():
            methods[f"{name} (bundled cpu)"] = load_sr_model(path)[0]
    methods["liif (paper size)"] = build_model(ModelConfig(kind="liif")).eval()
    methods["gaussiansr (paper size)"] = build_model(ModelConfig()).eval()
    params = {k: (sum(p.numel() for p in m.parameters()) if m is not None else 0) for k, m in methods.items()}
    rows = []
    for item in args.sizes.split(","):
        side, scale = int(item.split(":")[0]), float(item.split(":")[1])
        lr = torch.from_numpy(load_photo("astronaut", side))
        out = round(side * scale)
        row = {"lr": side, "scale": scale, "out": out}
        for name, m in methods.items():
            fn = (lambda: bicubic(lr, out, out)) if m is None else (lambda m=m: upscale(m, lr, out, out))
            fn()
            row[name] = median_seconds(fn, args.repeats)
        rows.append(row)
        print(f"  {side}² x{scale:g}: " + ", ".join(f"{k} {row[k]:.2f} s" for k in methods), flush=True)
    print(f"\nSR inference, whole image, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads "
          f"(seconds, median of {args.repeats})\n")
    print("| LR -> output | " + " | ".join(f"{k} ({params[k] / 1e6:.2f}M)" if params[k] else k for k in methods)
          + " |")
    print("|---|" + "---|" * len(methods))
    for r in rows:
        print(f"| {r['lr']}² x{r['scale']:g} -> {r['out']}² | " + " | ".join(f"{r[k]:.2f}" for k in methods) + " |")
    if args.json:
        from assets.cache import atomic_write_text

        atomic_write_text(args.json, json.dumps({"rows": rows, "params": params}, indent=1), parents=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
