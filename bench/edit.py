"""Splat editor speed on a large scene: selection, delete, recolour, transform and their undo, against what a
copy-per-edit history would cost (a clone of the scene) in the same run.

    python bench/edit.py [--gaussians 1000000] [--repeats 5] [--json out.json]

The scene is ``big_scene(N)`` (methods/gaussians/demo.py: shaped like a trained one, SH degree 3). Each row is the
median of ``--repeats`` apply (or apply + undo) calls; the target is <= 100 ms for selection, delete and undo.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import median_seconds  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gaussians", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    import torch

    from methods.gaussians import edit as E
    from methods.gaussians.demo import big_scene

    model = big_scene(args.gaussians)
    s = E.EditSession(model)
    lo, hi = model.means.detach().quantile(0.3, 0), model.means.detach().quantile(0.6, 0)
    box = E.SelectBox(lo=tuple(lo.tolist()), hi=tuple(hi.tolist()))
    centre = tuple(model.means.detach().median(0).values.tolist())
    rows: list[dict] = []

    def timed(name: str, fn, then=None) -> None:
        """Median time of ``fn`` alone; ``then`` (untimed) restores the state after each call."""
        ts = []
        for _ in range(max(1, args.repeats)):
            ts.append(median_seconds(fn, 1))
            counts = s.counts                  # what the timed call left (before ``then`` restores)
            if then is not None:
                then()
        t = sorted(ts)[len(ts) // 2]
        rows.append({"operation": name, "ms": t * 1000, "selected": counts[1], "alive": counts[0]})

    def apply_undo(op):
        return lambda: s.apply(op), lambda: s.undo()

    from render.camera import Camera

    cam = Camera.look_at((0.0, -6.0, 2.5), (0.0, 0.0, 0.0), width=1280, height=720)
    ring = [(640 + 300 * math.cos(a), 360 + 200 * math.sin(a)) for a in torch.linspace(0, 6.2, 32).tolist()]
    timed("select rectangle (project every centre)",
          lambda: s.apply(E.SelectIndices(indices=E.screen_select(model.means, cam, rect=(400, 200, 900, 520)))))
    timed("select lasso (32 points)", lambda: s.apply(E.SelectIndices(indices=E.screen_select(model.means, cam,
                                                                                               polygon=ring))))
    timed("select box (set)", lambda: s.apply(box))
    timed("select sphere (add)", lambda: s.apply(E.SelectSphere(center=centre, radius=0.3, mode="add")))
    # the rows below undo after each timed apply (untimed), so each repeat starts from the same state
    timed("select opacity < 0.1", *apply_undo(E.SelectOpacity(max=0.1)))
    timed("select scale > 0.05", *apply_undo(E.SelectScale(min=0.05)))
    timed("invert", *apply_undo(E.Invert()))
    timed("select box + its undo", lambda: (s.apply(box), s.undo()))
    s.apply(box)
    timed("grow selection (radius 0.01)", *apply_undo(E.Grow(radius=0.01)))
    timed("display copy (deleted dropped, selection tinted)", lambda: s.display())
    timed("delete", *apply_undo(E.Delete()))
    s.apply(E.Delete())
    timed("undo delete", lambda: s.undo(), then=lambda: s.redo())
    s.undo()
    timed("recolour (hue, sat, brightness)", *apply_undo(E.Recolour(hue=30.0, saturation=1.2, brightness=0.9)))
    timed("opacity x0.5", *apply_undo(E.ScaleOpacity(factor=0.5)))
    timed("transform (rotate, scale, move)", *apply_undo(E.Transform(translate=(0.1, 0, 0),
                                                                     rotate=(0.96, 0.0, 0.28, 0.0), scale=1.1)))
    s.apply(E.Recolour(hue=30.0))
    timed("undo recolour", lambda: s.undo(), then=lambda: s.redo())
    timed("reference: clone the scene (a copy-per-edit history)", lambda: model.clone())
    s.apply(E.Delete())
    timed("edited model (drop deleted rows, for save)", lambda: s.edited())

    # a mip stack: two levels as finetuning leaves them (5 % pruned, so rows shift and match by position)
    from methods.gaussians.stack_edit import StackSession, match_level

    keep = torch.rand(model.num_gaussians, generator=torch.Generator().manual_seed(0)) > 0.05
    levels = [(0.125, model.subset(keep)), (0.5, model.subset(keep))]
    t0 = time.perf_counter()
    corr = match_level(model, levels[0][1])
    rows.append({"operation": f"stack: match a level to the base ({corr.summary()})",
                 "ms": (time.perf_counter() - t0) * 1000, "selected": 0, "alive": levels[0][1].num_gaussians})
    s = StackSession(model.clone(), levels)
    timed("stack (base + 2 levels): select box", lambda: s.apply(box))
    timed("stack: delete", *apply_undo(E.Delete()))
    s.apply(E.Delete())
    timed("stack: undo delete", lambda: s.undo(), then=lambda: s.redo())

    print(f"Splat editor on {args.gaussians:,} Gaussians (SH degree {model.max_sh_degree}), {os.cpu_count()} cores, "
          f"torch {torch.get_num_threads()} threads; median of {args.repeats}\n")
    print("| operation | time | selected | alive |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['operation']} | {r['ms']:.1f} ms | {r['selected']:,} | {r['alive']:,} |")
    mem = sum(d.nbytes for _, d in s.history) / 2 ** 20
    print(f"\nhistory: {len(s.history)} entries, {mem:.1f} MiB of deltas (a copy per edit: "
          f"{len(s.history) * sum(p.numel() * 4 for p in model.params().values()) / 2 ** 20:,.0f} MiB)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gaussians": args.gaussians, "rows": rows, "history_mib": mem}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
