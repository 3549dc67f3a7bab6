"""MINER throughput: training blocks/s and pixels/s of the batched block MLPs (against a loop of per-block
nn.Sequential MLPs, the same maths, in the same run), and the time to reconstruct a 4096² image.

    python bench/miner.py [--blocks 256,4096] [--chunks 64,1024] [--side 4096] [--checkpoint miner.pt] [--json F]

Training step = forward + backward + the row-wise Adam update over all pixels of N blocks of 32² (paper preset:
18 features, 2 hidden sine layers, 795 parameters per block), ``chunk`` blocks per forward/backward (the trainer's
default is 64: the activations stay in cache; 1024 was the first version's). Reconstruction: every level, coarse to
fine, of a ``--side``² image with every block active (an upper bound: pruned-at-start blocks cost nothing), or of
the trained ``--checkpoint``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import median_seconds  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", default="256,4096", help="block counts per training step, comma separated")
    ap.add_argument("--chunks", default="64,1024", help="blocks per forward/backward, comma separated")
    ap.add_argument("--loop-blocks", type=int, default=256, help="block count of the per-block-loop reference")
    ap.add_argument("--side", type=int, default=4096, help="image side for the reconstruction timing")
    ap.add_argument("--checkpoint", default="", help="a trained miner.pt to reconstruct as well")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    import torch

    from methods.miner import blocks as B
    from methods.miner.config import preset
    from methods.miner.model import Level, MinerModel
    from methods.miner.pyramid import local_coords
    from methods.miner.train import load_miner

    cfg = preset("paper")
    b = cfg.block
    x = local_coords(b)[None]
    g = torch.Generator().manual_seed(0)
    rows: list[dict] = []

    def batched_step(n: int, chunk: int):
        p = B.init_params(cfg, 0, n, 3, g)
        opt = B.RowAdam(p, 1e-4)
        target = torch.rand(n, b * b, 3) * 0.1

        def step() -> None:
            opt.tick()
            for c0 in range(0, n, chunk):
                c1 = min(n, c0 + chunk)
                pc = {k: v[c0:c1].detach().requires_grad_(True) for k, v in opt.params.items()}
                loss = (B.forward(cfg, 0, pc, x) - target[c0:c1]).pow(2).mean((1, 2)).sum()
                grads = torch.autograd.grad(loss, list(pc.values()))
                opt.step(dict(zip(pc, grads)), slice(c0, c1))
        return step

    def loop_step(n: int):
        nets = []
        for _ in range(n):
            layers = []
            sizes = [2] + [cfg.hidden] * (cfg.hidden_layers + 1) + [3]
            for i, (a, o) in enumerate(zip(sizes[:-1], sizes[1:])):
                layers.append(torch.nn.Linear(a, o))
            nets.append(torch.nn.ModuleList(layers))
        params = [p for net in nets for p in net.parameters()]
        opt = torch.optim.Adam(params, lr=1e-4)
        target = torch.rand(n, b * b, 3) * 0.1

        def step() -> None:
            loss = 0.0
            for q, net in enumerate(nets):
                h = x[0]
                for i, lin in enumerate(net):
                    h = lin(h)
                    if i < len(net) - 1:
                        h = torch.sin(cfg.omega0 * h)
                loss = loss + (h - target[q]).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    print(f"MINER training steps, {b}² blocks, paper MLP ({B.count(B.init_params(cfg, 0, 1, 3, g))} parameters per "
          f"block), {os.cpu_count()} cores, torch {torch.get_num_threads()} threads\n", flush=True)
    print("| blocks | method | step | blocks/s | pixels/s |\n|---|---|---|---|---|")
    ref_n = args.loop_blocks
    for n in [int(v) for v in args.blocks.split(",")]:
        for chunk in [int(v) for v in args.chunks.split(",")]:
            fn = batched_step(n, chunk)
            fn()
            t = median_seconds(fn, args.repeats)
            rows.append({"blocks": n, "method": f"batched, chunks of {chunk}", "chunk": chunk, "seconds": t,
                         "blocks_per_s": n / t, "pixels_per_s": n * b * b / t})
    fn = loop_step(ref_n)
    fn()
    t = median_seconds(fn, args.repeats)
    rows.append({"blocks": ref_n, "method": "per-block loop", "seconds": t, "blocks_per_s": ref_n / t,
                 "pixels_per_s": ref_n * b * b / t})
    for r in rows:
        print(f"| {r['blocks']} | {r['method']} | {r['seconds'] * 1000:.1f} ms | {r['blocks_per_s']:,.0f} | "
              f"{r['pixels_per_s'] / 1e6:.2f} M |")

    # reconstruction of a side² image, every block active
    side = args.side
    model = MinerModel(cfg, (side, side), (side, side), 3)
    for j in range(cfg.levels):
        gh, gw = model.grid(j)
        n = gh * gw
        model.levels[j] = Level((gh, gw), B.init_params(cfg, j, n, 3, g), torch.ones(n, dtype=torch.bool),
                                done=True)
    recon = {"all_active": median_seconds(lambda: model.reconstruct(0), max(1, args.repeats - 1))}
    params = {"all_active": model.parameter_count()}
    if args.checkpoint:
        trained, _ = load_miner(args.checkpoint)
        recon["checkpoint"] = median_seconds(lambda: trained.reconstruct(0), max(1, args.repeats - 1))
        params["checkpoint"] = trained.parameter_count()
    print(f"\nFull reconstruction of a {side}x{side} image ({cfg.levels} levels):")
    for k, v in recon.items():
        print(f"  {k}: {v:.2f} s ({params[k]:,} parameters)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"training": rows, "reconstruction_s": recon, "params": params, "side": side}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
