"""CUDA rasterizer vs the torch reference on the same GPU: forward and forward+backward ms, image parity, training
steps/s; one run, a markdown table and (``--json``) the rows.

    python bench/splat_gpu.py [--sizes 100000,1000000] [--res 648x420,1920x1080] [--train-steps 300] [--json F]

Scenes are :func:`methods.gaussians.demo.big_scene` (the demo's objects, a ground disc and a backdrop; SH degree 3,
mip filter with the 3D filter baked as the Splat view renders them), seen from three orbit cameras around their
framing (bench/splat_gl.py's). Per scene and frame size, mean over the cameras of the median of ``--repeats`` calls,
each bracketed by ``torch.cuda.synchronize()``:

* fwd: ``rasterize`` under ``torch.no_grad()``; fwd+bwd: with gradients for every Gaussian tensor and a loss
  that touches colour and alpha, ``backward()`` included;
* parity: PSNR and max |diff| of the CUDA image against the torch reference's (colour in [0, 1]);
* training: ``GaussianTrainer.step()`` per second on a generated 200x200 scene (24 views, test_tiny's schedule
  stretched to ``--train-steps``, densification included), each backend from the same start.

The torch reference is skipped above ``--no-torch-above`` Gaussians (it is the slow side). Without CUDA the CUDA
columns read n/a and the torch rows run on the CPU, so the script itself can be checked on any machine.
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
from splat_gl import scene_cameras  # noqa: E402
from timing import median_seconds  # noqa: E402

from methods.cli import parse_wxh  # noqa: E402


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn, repeats: int) -> float:
    def once():
        fn()
        _sync()
    once()  # warm-up: kernels compiled, caches filled
    return median_seconds(once, repeats)


def _psnr(a, b) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def frame_rows(sizes: list[int], resolutions: list[tuple[int, int]], repeats: int, no_torch_above: int,
               device, cuda_ok: bool) -> list[dict]:
    import torch

    from methods.gaussians.demo import big_scene
    from render.splat import rasterize_camera

    rows = []
    for n in sizes:
        model = big_scene(n).to(device)
        scales, opac = model.effective(True)
        base = [t.detach().contiguous() for t in (model.means, model.rotations, scales, opac, model.sh())]
        kw = dict(filter="mip", sh_degree=model.max_sh_degree)

        def fwd(cam, backend):
            with torch.no_grad():
                return rasterize_camera(*base, cam, backend=backend, counts=False, **kw)

        def fwd_bwd(cam, backend):
            tensors = [t.clone().requires_grad_(True) for t in base]
            out = rasterize_camera(*tensors, cam, backend=backend, **kw)
            (out.color.mean() + 0.1 * out.alpha.mean()).backward()
            assert out.backend == backend, out.note

        for w, h in resolutions:
            cams = [c.resized(w, h) for c in scene_cameras(model, None, False)]
            acc = {k: [] for k in ("torch_fwd", "torch_fb", "cuda_fwd", "cuda_fb", "psnr", "maxdiff")}
            for cam in cams:
                ref = None
                if n <= no_torch_above:
                    acc["torch_fwd"].append(_timed(lambda: fwd(cam, "torch"), repeats))
                    acc["torch_fb"].append(_timed(lambda: fwd_bwd(cam, "torch"), max(1, repeats // 2)))
                    ref = fwd(cam, "torch").color
                if cuda_ok:
                    acc["cuda_fwd"].append(_timed(lambda: fwd(cam, "cuda"), repeats))
                    acc["cuda_fb"].append(_timed(lambda: fwd_bwd(cam, "cuda"), repeats))
                    if ref is not None:
                        out = fwd(cam, "cuda").color
                        acc["psnr"].append(_psnr(out, ref))
                        acc["maxdiff"].append(float((out - ref).abs().max()))
            mean = lambda v: sum(v) / len(v) if v else float("nan")  # noqa: E731
            row = {"gaussians": n, "width": w, "height": h,
                   **{f"{k}_ms": mean(acc[k]) * 1e3 for k in ("torch_fwd", "torch_fb", "cuda_fwd", "cuda_fb")},
                   "psnr_min_db": min(acc["psnr"]) if acc["psnr"] else float("nan"),
                   "max_abs_diff": max(acc["maxdiff"]) if acc["maxdiff"] else float("nan")}
            row["fwd_speedup"] = row["torch_fwd_ms"] / row["cuda_fwd_ms"]
            row["fb_speedup"] = row["torch_fb_ms"] / row["cuda_fb_ms"]
            rows.append(row)
            print(f"  {n:,} @ {w}x{h}: fwd torch {row['torch_fwd_ms']:.1f} / cuda {row['cuda_fwd_ms']:.1f} ms, "
                  f"fwd+bwd torch {row['torch_fb_ms']:.1f} / cuda {row['cuda_fb_ms']:.1f} ms, "
                  f"PSNR {row['psnr_min_db']:.1f} dB", flush=True)
    return rows


def training_rows(steps: int, device, backends: list[str]) -> list[dict]:
    from assets.synthetic_scene import SceneSpec
    from methods.datasets import GenerateSyntheticDataset
    from methods.gaussians.train import GaussianTrainer, TrainConfig

    rows = []
    with tempfile.TemporaryDirectory(prefix="mipstudio-bench-gpu-") as tmp:
        root = Path(tmp) / "scene200"
        spec = SceneSpec.preset("tiny").with_(resolution=200, n_train=24, scales=(1.0,))
        GenerateSyntheticDataset(root, spec).run(lambda p: None, lambda: False)
        for backend in backends:
            cfg = TrainConfig.preset("test_tiny", device=device.type, backend=backend, eval_split="",
                                     out_dir=str(Path(tmp) / backend)).scaled_to(steps)
            trainer = GaussianTrainer.from_path(root, cfg)
            trainer.step()
            _sync()
            t0 = time.perf_counter()
            losses = [trainer.step()["loss"] for _ in range(steps - 1)]
            _sync()
            dt = time.perf_counter() - t0
            rows.append({"backend": backend, "steps_per_s": (steps - 1) / dt, "final_loss": losses[-1],
                         "gaussians": trainer.model.num_gaussians, "size": f"{spec.resolution}x{spec.resolution}"})
            print(f"  training with {backend}: {(steps - 1) / dt:.1f} steps/s, final loss {losses[-1]:.4f}, "
                  f"{trainer.model.num_gaussians:,} Gaussians", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000", help="Gaussians per scene, comma separated")
    ap.add_argument("--res", default="648x420,1920x1080", help="frame sizes, comma separated WxH")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per camera (median)")
    ap.add_argument("--no-torch-above", type=int, default=2_000_000, help="skip the torch reference above this")
    ap.add_argument("--train-steps", type=int, default=300, help="training steps per backend (0: no training rows)")
    ap.add_argument("--json", default="", help="also write the rows here")
    args = ap.parse_args()

    import torch

    from render.device import compute_device, cuda_device_name
    from render.splat.cuda_backend import self_check, unavailable_reason

    device = compute_device()
    reason = unavailable_reason() or self_check(device)
    cuda_ok = reason is None
    header = (f"{cuda_device_name() or 'no GPU'}, torch {torch.__version__}"
              + ("" if cuda_ok else f"; CUDA backend n/a ({reason})"))
    print(f"# splat GPU bench: {header}", flush=True)
    sizes = [int(v) for v in args.sizes.split(",") if v.strip()]
    resolutions = [parse_wxh(v) for v in args.res.split(",") if v.strip()]
    frames = frame_rows(sizes, resolutions, args.repeats, args.no_torch_above, device, cuda_ok)
    train = training_rows(args.train_steps, device, ["torch"] + (["cuda"] if cuda_ok else [])) \
        if args.train_steps > 1 else []

    print(f"\nCUDA rasterizer vs torch reference, {header}; mip filter, SH 3, mean over 3 cameras\n")
    print("| Gaussians | size | torch fwd ms | CUDA fwd ms | speed-up | torch fwd+bwd ms | CUDA fwd+bwd ms | speed-up "
          "| PSNR CUDA vs torch | max abs diff |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in frames:
        print(f"| {r['gaussians']:,} | {r['width']}x{r['height']} | {r['torch_fwd_ms']:.1f} | {r['cuda_fwd_ms']:.1f} "
              f"| {r['fwd_speedup']:.1f}x | {r['torch_fb_ms']:.1f} | {r['cuda_fb_ms']:.1f} | {r['fb_speedup']:.1f}x "
              f"| {r['psnr_min_db']:.1f} dB | {r['max_abs_diff']:.1e} |")
    if train:
        print("\n| training backend | steps/s | final loss | Gaussians | image size |\n|---|---|---|---|---|")
        for r in train:
            print(f"| {r['backend']} | {r['steps_per_s']:.1f} | {r['final_loss']:.4f} | {r['gaussians']:,} "
                  f"| {r['size']} |")
    if args.json:
        from assets.cache import atomic_write_text

        clean = lambda rows: [{k: (None if isinstance(v, float) and math.isnan(v) else v)  # noqa: E731 - JSON
                               for k, v in r.items()} for r in rows]                 # has no NaN: n/a is null
        atomic_write_text(args.json, json.dumps({"device": header, "frames": clean(frames),
                                                 "training": clean(train)}, indent=1), parents=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
