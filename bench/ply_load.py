"""PLY load time of 3DGS scenes: the fast header-parsed vertex read against plyfile's general reader, same files.

    python bench/ply_load.py [--sizes 10000,100000] [--json out.json]

For each size a random SH-degree-3 model is written with ``save_ply`` (62 float properties per Gaussian) into a
temporary folder; then ``load_ply`` (fast path) and ``plyfile.PlyData.read`` (the reader ``load_ply`` used before)
are each timed on it, best of 3 (the general reader once above 200k). The table also checks that both read the same
bytes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from timing import best_seconds  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    import plyfile

    from methods.gaussians.model import GaussianModel
    from methods.gaussians.ply import _fast_vertex, load_ply, save_ply

    rows = []
    with tempfile.TemporaryDirectory(prefix="mipstudio-bench-ply-") as tmp:
        for n in [int(v) for v in args.sizes.split(",") if v.strip()]:
            path = Path(tmp) / f"g{n}.ply"
            save_ply(GaussianModel.random_in_box(n, sh_degree=3), path)
            fast_s = best_seconds(lambda: load_ply(path), 3)
            general = {}
            general_s = best_seconds(lambda: general.setdefault("v", plyfile.PlyData.read(str(path), mmap=False)),
                              1 if n > 200_000 else 3)
            ref, fast = general["v"]["vertex"].data, _fast_vertex(path)
            same = fast.dtype == ref.dtype and all(fast[k].tobytes() == ref[k].tobytes()
                                                   for k in ref.dtype.names)
            rows.append({"gaussians": n, "mb": path.stat().st_size / 2 ** 20, "load_ply_s": fast_s,
                         "plyfile_read_s": general_s, "speedup": general_s / fast_s, "identical": bool(same)})
    print(f"\nPLY load, {os.cpu_count()} cores (load_ply = fast vertex read + model build; plyfile = its read only)\n")
    print("| Gaussians | file MB | load_ply s | plyfile read s (old path) | speed-up | identical arrays |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['gaussians']:,} | {r['mb']:.1f} | {r['load_ply_s']:.3f} | {r['plyfile_read_s']:.2f} | "
              f"{r['speedup']:.0f}x | {r['identical']} |")
    if args.json:
        from assets.cache import atomic_write_text

        atomic_write_text(args.json, json.dumps(rows, indent=2), parents=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
