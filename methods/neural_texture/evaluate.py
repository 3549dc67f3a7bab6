"""``eval walkthrough``: every texture mode against the K×K supersampled reference along a camera path.

The NGSSF paper's "moving 16" experiment, with the GL filters added: each frame is rendered at full size, the
reference averages its K×K bilinear samples per output pixel, and every mode renders the same view at 1/K of the
size (one texture lookup, one GL filter tap set, or one field query per output pixel). ``psnr`` is over the whole
frame (as the paper computes it), ``psnr_object`` over the output pixels the fish touches.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from methods.metrics import psnr, ssim
from methods.neural_texture.modes import BOX_MATCHED_WIDTH, EVAL_MODES
from methods.neural_texture.path import PathFrame
from methods.neural_texture.renderer import WalkthroughRenderer, box_downsample


def evaluate_path(renderer: WalkthroughRenderer, frames: list[PathFrame], *, downsample: int = 16,
                  zoom: float = 1.0, filter_width: float = BOX_MATCHED_WIDTH, modes: tuple[str, ...] = EVAL_MODES,
                  log: Callable[[str], None] | None = None) -> dict:
    """Per-mode mean PSNR / object PSNR / SSIM / ms per frame, in the issue's JSON schema."""
    k = int(downsample)
    if k < 1:
        raise ValueError(f"--downsample must be ≥ 1, got {downsample}")
    sums = {m: {"psnr": 0.0, "psnr_object": 0.0, "ssim": 0.0, "seconds": 0.0, "n_object": 0} for m in modes}
    t0 = time.perf_counter()
    for i, fr in enumerate(frames):
        low = fr.camera(zoom).scaled(1.0 / k) if k > 1 else fr.camera(zoom)
        full = low.scaled(k) if k > 1 else low
        ref = box_downsample(renderer.render(full, "bilinear").image, k)
        cover = box_downsample(renderer.renderer.render_uv([renderer.mesh], full).mask[..., None].astype(np.float32),
                               k)[..., 0] > 0
        for m in modes:
            out = renderer.render(low, m, filter_width=filter_width)
            s = sums[m]
            s["psnr"] += float(psnr(out.image, ref))
            if cover.any():
                s["psnr_object"] += float(psnr(out.image, ref, mask=cover))
                s["n_object"] += 1
            s["ssim"] += float(ssim(out.image, ref))
            s["seconds"] += out.seconds
        if log:
            log(f"frame {i + 1}/{len(frames)}: {low.width}x{low.height} from {full.width}x{full.height} "
                f"({time.perf_counter() - t0:.0f} s)")
    n = len(frames)
    result = {"modes": {m: {"psnr": s["psnr"] / n, "psnr_object": s["psnr_object"] / max(s["n_object"], 1)
                            if s["n_object"] else math.nan, "ssim": s["ssim"] / n,
                            "ms_per_frame": 1000.0 * s["seconds"] / n} for m, s in sums.items()},
              "frames": n, "downsample": k, "zoom": zoom, "filter_width": filter_width}
    return result


def format_table(result: dict) -> str:
    k = result["downsample"]
    lines = [f"walkthrough: {result['frames']} frames, each mode vs the {k}x{k} supersampled reference "
             f"(zoom {result['zoom']:g}, filter width {result['filter_width']:g})",
             f"{'mode':10s} {'PSNR dB':>8s} {'fish PSNR':>10s} {'SSIM':>6s} {'ms/frame':>9s}"]
    for m, r in result["modes"].items():
        lines.append(f"{m:10s} {r['psnr']:8.2f} {r['psnr_object']:10.2f} {r['ssim']:6.3f} {r['ms_per_frame']:9.1f}")
    return "\n".join(lines)
