"""OpenGL splat backend vs the torch reference: load, ms per frame, sort, preview rate and image parity, one run.

    python bench/splat_gl.py [--sizes 10000,100000,1000000] [--res 648x420,1280x720] [--json out.json]
    python bench/splat_gl.py --sizes "" --ply point_cloud.ply [--cameras transforms_test.json]   # your own scene

Scenes are :func:`methods.gaussians.demo.big_scene` (flat Gaussians on the demo's torus and sphere, a ground disc
and a backdrop; SH degree 3), written as 3DGS PLYs so the load columns time real files: ``load_ply`` (the fast
vertex read) against plyfile's reader (the old path). Each scene is rendered from three of the demo's orbit
cameras at each resolution. ``--ply`` adds scenes of your own (a trained 3DGS/Mip-Splatting PLY), seen from three
cameras of ``--cameras`` (a transforms file) or, without it, from three orbit cameras around its framing:

* torch: the reference rasterizer, after two warm-up frames, median of 5 per camera (3 above 200k Gaussians;
  its first frames in a process run up to 2x slower, and single frames vary by ±20% here);
* GL: ``backend="gl"`` after one warm-up frame, median of 5 per camera, without the per-pixel count (what the
  Splat view asks for in RGB mode) and once with it; the first frame (upload + sort) separately;
* sort: a forced re-sort of the depth order; preview: GL at the Splat view's smallest dynamic-resolution scale
  (1/4 of the size, what it draws while you drag);
* PSNR: GL against torch on the same frame (colour, [0, 1]).

A second table gives the parity per 2D filter mode (3dgs, mip, none): the bundled demo scene (4,288 Gaussians, SH 3),
a random scene (2,000 Gaussians across and beyond an off-axis frustum, some behind the near plane, SH 3, white
background) and the 100k scene; the smallest PSNR over the three cameras.

GL timings are the wall time of ``rasterize`` (upload, sort, GL work, read-back, tensor conversion included).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from timing import median_seconds  # noqa: E402

from methods.cli import parse_wxh  # noqa: E402

CAMERAS = (0, 5, 10)  # demo orbit cameras: above, below and above the equator, different azimuths


def _psnr(a, b) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def _random_scene(n: int, cam, seed: int = 0):
    """Gaussians spread across and beyond the camera's frustum (some behind the near plane), SH degree 3."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    pc = np.column_stack([rng.uniform(-0.7, 0.7, n), rng.uniform(-0.6, 0.6, n), rng.uniform(0.05, 4.0, n)])
    pc[:, :2] *= pc[:, 2:3]
    c2w = cam.cam_to_world
    means = pc @ c2w[:3, :3].T + c2w[:3, 3]
    sh = rng.normal(0, 0.3, (n, 16, 3))
    arrays = (means, rng.normal(size=(n, 4)), np.exp(rng.uniform(np.log(0.01), np.log(0.2), (n, 3))),
              rng.uniform(0.05, 0.98, n), sh)
    return [torch.tensor(a, dtype=torch.float32) for a in arrays]


def scene_cameras(model, transforms: str | None, synthetic: bool) -> list:
    """Three cameras: the demo's orbit for the synthetic scenes, three of a transforms file, or an orbit around the
    scene's framing (z up) for a PLY without cameras."""
    import numpy as np

    from methods.gaussians.demo import demo_cameras
    from methods.gaussians.live_source import gaussian_framing
    from render.camera import Camera

    if synthetic:
        return [demo_cameras()[i] for i in CAMERAS]
    if transforms:
        from methods.datasets import load_transforms_cameras

        cams = load_transforms_cameras(transforms)
        return [cams[i] for i in np.linspace(0, len(cams) - 1, 3).round().astype(int)]
    fr = gaussian_framing(model)
    c, r = np.asarray(fr.center), fr.radius
    return [Camera.look_at(c + 2.5 * r * np.array([np.cos(a) * 0.94, np.sin(a) * 0.94, 0.34]), c,
                           fov_x=np.radians(50), width=648, height=420) for a in (0.3, 2.4, 4.5)]


def parity_rows(scenes: dict, cams: list) -> list[dict]:
    """Smallest PSNR (GL vs torch) over the cameras, per scene and 2D filter mode."""
    from render.splat import rasterize_camera

    rows = []
    for name, (tensors, kw) in scenes.items():
        row = {"scene": name}
        for filt in ("3dgs", "mip", "none"):
            vals = []
            for cam in cams:
                ref = rasterize_camera(*tensors, cam, backend="torch", filter=filt, **kw)
                out = rasterize_camera(*tensors, cam, backend="gl", filter=filt, counts=False, **kw)
                vals.append(_psnr(out.color, ref.color))
            row[filt] = min(vals)
        rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="Gaussians per scene, comma separated")
    ap.add_argument("--res", default="648x420,1280x720", help="frame sizes, comma separated WxH")
    ap.add_argument("--no-torch-above", type=int, default=2_000_000,
                    help="skip the torch reference for scenes larger than this (it needs minutes per frame)")
    ap.add_argument("--no-plyfile-above", type=int, default=2_000_000,
                    help="skip the old plyfile load for files larger than this many Gaussians")
    ap.add_argument("--ply", default="", help="also these PLY files, comma separated")
    ap.add_argument("--cameras", default="", help="a transforms file with the cameras for --ply (else orbits)")
    ap.add_argument("--json", default="", help="also write the rows here")
    args = ap.parse_args()

    import plyfile
    import torch

    from methods.gaussians.demo import big_scene, demo_cameras
    from methods.gaussians.ply import load_ply, save_ply
    from methods.gaussians.render_cli import resolve_filter
    from render.gl import gl_info
    from render.splat import gl_backend as gb
    from render.splat.gl_backend import DepthOrder, ResortPolicy

    sizes = [int(v) for v in args.sizes.split(",") if v.strip()]
    resolutions = [parse_wxh(v) for v in args.res.split(",") if v.strip()]
    info = gl_info()
    rows = []
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory(prefix="mipstudio-bench-gl-") as tmp:
        scenes = []
        for n in sizes:
            path = Path(tmp) / f"scene_{n}.ply"
            save_ply(big_scene(n), path)
            scenes.append((f"{n:,}", path, None, True))  # the synthetic scenes go by their size
        scenes += [(f"{Path(p).parent.name}/{Path(p).name}", Path(p), args.cameras or None, False)
                   for p in args.ply.split(",") if p.strip()]
        for label, path, cameras, synthetic in scenes:
            load_s = median_seconds(lambda: load_ply(path), 1 if path.stat().st_size > 75e6 else 3)
            model = load_ply(path)
            n = model.num_gaussians
            old_s = median_seconds(lambda: plyfile.PlyData.read(str(path), mmap=False), 1) \
                if n <= args.no_plyfile_above else float("nan")
            filt, use_3d = resolve_filter(model, "auto")
            render = lambda cam, **kw: model.render(cam, filter=filt, use_3d_filter=use_3d, **kw)  # noqa: E731
            order = DepthOrder(model.means.numpy())
            flip = lambda: order.update([0, 0, 1.0] if order.forward is None else -order.forward,  # noqa: E731
                                        ResortPolicy())  # a new view direction each call: always a full sort
            sort_s = median_seconds(flip, 3)
            for (w, h) in resolutions:
                cams = [c.resized(w, h) for c in scene_cameras(model, cameras, synthetic)]
                gb.clear_cache()
                t0 = time.perf_counter()
                render(cams[0], backend="gl", counts=False)
                first_s = time.perf_counter() - t0
                gl_s, gl_count_s, pre_s, preview_s, torch_s, psnrs = [], [], [], [], [], []
                for cam in cams:
                    render(cam, backend="gl", counts=False)  # warm: sorted for this camera
                    gl_s.append(median_seconds(lambda: render(cam, backend="gl", counts=False), 5))
                    pre_s.append(gb.last_stats().preprocess)
                    gl_count_s.append(median_seconds(lambda: render(cam, backend="gl", counts=True), 1))
                    small = cam.scaled(0.25)
                    render(small, backend="gl", counts=False)
                    preview_s.append(median_seconds(lambda: render(small, backend="gl", counts=False), 3))
                    if n <= args.no_torch_above:
                        ref = render(cam, backend="torch")  # warm-up (its first frames run slower), and
                        render(cam, backend="torch")        # the reference image
                        torch_s.append(median_seconds(lambda: render(cam, backend="torch"), 5 if n <= 200_000 else 3))
                        psnrs.append(_psnr(render(cam, backend="gl", counts=False).color, ref.color))
                mean = lambda v: sum(v) / len(v) if v else float("nan")  # noqa: E731
                row = {"scene": label, "gaussians": n, "width": w, "height": h, "load_ply_s": load_s,
                       "plyfile_read_s": old_s,
                       "first_frame_ms": first_s * 1e3, "gl_ms": mean(gl_s) * 1e3,
                       "gl_with_counts_ms": mean(gl_count_s) * 1e3, "preprocess_ms": mean(pre_s) * 1e3,
                       "sort_ms": sort_s * 1e3, "preview_ms": mean(preview_s) * 1e3,
                       "preview_fps": 1.0 / mean(preview_s), "torch_ms": mean(torch_s) * 1e3,
                       "speedup": mean(torch_s) / mean(gl_s) if torch_s else float("nan"),
                       "psnr_min_db": min(psnrs) if psnrs else float("nan")}
                rows.append(row)
                print(f"  {label} @ {w}x{h}: GL {row['gl_ms']:.0f} ms, torch {row['torch_ms']:.0f} ms, "
                      f"PSNR {row['psnr_min_db']:.1f} dB", flush=True)
            model = None  # noqa: F841 - free the scene before the next one is built
            gb.clear_cache()

    print(f"\nGL splat backend vs torch reference: {info.get('GL_RENDERER', '?')} ({info.get('GL_VERSION', '?')}), "
          f"{os.cpu_count()} cores, torch {torch.get_num_threads()} threads; mean over {len(CAMERAS)} cameras\n")
    print("| scene (Gaussians) | size | load_ply s (plyfile) | first frame ms | GL ms | GL+count ms | torch ms | "
          "speed-up | preprocess ms | sort ms | preview ms (fps) | PSNR GL vs torch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scene']} | {r['width']}x{r['height']} | "
              f"{r['load_ply_s']:.2f} ({r['plyfile_read_s']:.1f}) | "
              f"{r['first_frame_ms']:.0f} | {r['gl_ms']:.0f} | {r['gl_with_counts_ms']:.0f} | {r['torch_ms']:.0f} | "
              f"{r['speedup']:.1f}x | {r['preprocess_ms']:.0f} | {r['sort_ms']:.1f} | "
              f"{r['preview_ms']:.0f} ({r['preview_fps']:.1f}) | {r['psnr_min_db']:.1f} dB |")

    from methods.gaussians.demo import demo_model

    cams = [demo_cameras()[i].resized(648, 420) for i in CAMERAS]
    demo, big = demo_model(), big_scene(100_000)
    scenes = {"demo (4,288, SH 3, 3D filter)": ((demo.means, demo.rotations, *demo.effective(True), demo.sh()),
                                               {"sh_degree": 3}),
              "random (2,000, SH 3, white bg)": (_random_scene(2000, cams[0]),
                                                 {"sh_degree": 3, "background": (1.0, 1.0, 1.0)}),
              "big_scene (100,000, SH 3)": ((big.means, big.rotations, big.scales, big.opacities, big.sh()),
                                            {"sh_degree": 3})}
    parity = parity_rows(scenes, cams)
    print("\nParity, PSNR of GL vs the torch reference (smallest over the cameras, 648x420)\n")
    print("| scene | 3dgs | mip | none |")
    print("|---|---|---|---|")
    for r in parity:
        print(f"| {r['scene']} | {r['3dgs']:.1f} dB | {r['mip']:.1f} dB | {r['none']:.1f} dB |")
    if args.json:
        from assets.cache import atomic_write_text

        atomic_write_text(args.json, json.dumps({"gl": info, "rows": rows, "parity": parity}, indent=2),
                          parents=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
