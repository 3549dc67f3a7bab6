"""The LIIF evaluation protocol (research sr_miner.md A4), shared by the eval command, validation during training
and the SR view's "pretend-LR" PSNR.

- LR from HR: h_lr = floor(H / s + 1e-9); the HR image is cropped to round(h_lr * s); LR = antialiased bicubic
  resize of that crop (for integer s this is the benchmarks' "HR cropped to a multiple of s").
- ``y_psnr`` (benchmark sets): PSNR of the Y channel of the difference, Y = (65.738 R + 129.057 G + 25.064 B) / 256,
  border shave = s. ``rgb_psnr`` (DIV2K and other photos): RGB PSNR, shave = s + 6. Non-integer s shaves ceil(s).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

METRICS = ("y_psnr", "rgb_psnr")
Y_COEFFS = (65.738 / 256.0, 129.057 / 256.0, 25.064 / 256.0)


def resize(img: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bicubic resize of an (H, W, 3) image in [0, 1]: antialiased when shrinking (PIL's behaviour, which LIIF's
    LR images come from), plain bicubic when enlarging; clamped to [0, 1]."""
    x = img.permute(2, 0, 1)[None]
    shrink = h < img.shape[0] or w < img.shape[1]
    out = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=shrink)
    return out[0].permute(1, 2, 0).clamp(0.0, 1.0)


def degrade(hr: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(HR cropped to a whole number of LR pixels, its LR image) for scale ``scale`` (research A4)."""
    if not (math.isfinite(scale) and scale >= 1.0):
        raise ValueError(f"scale must be a number >= 1, got {scale}")
    h_lr, w_lr = math.floor(hr.shape[0] / scale + 1e-9), math.floor(hr.shape[1] / scale + 1e-9)
    if h_lr < 1 or w_lr < 1:
        raise ValueError(f"a {hr.shape[1]}x{hr.shape[0]} image is too small for x{scale:g}")
    crop = hr[:round(h_lr * scale), :round(w_lr * scale)]
    return crop, resize(crop, h_lr, w_lr)


def shave_for(scale: float, metric: str) -> int:
    s = math.ceil(scale - 1e-9)
    return s if metric == "y_psnr" else s + 6


def sr_psnr(sr: torch.Tensor | np.ndarray, hr: torch.Tensor | np.ndarray, scale: float, metric: str) -> float:
    """PSNR in dB of an (H, W, 3) super-resolved image against its HR image under ``metric`` (module docstring)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    diff = torch.as_tensor(np.asarray(sr), dtype=torch.float64) - torch.as_tensor(np.asarray(hr), dtype=torch.float64)
    if metric == "y_psnr":
        diff = (diff * torch.tensor(Y_COEFFS, dtype=torch.float64)).sum(-1)
    s = shave_for(scale, metric)
    valid = diff[s:-s, s:-s] if diff.shape[0] > 2 * s and diff.shape[1] > 2 * s else diff
    mse = float((valid ** 2).mean())
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


Upscaler = Callable[[torch.Tensor, int, int], torch.Tensor]  # (lr (h, w, 3), out_h, out_w) -> (out_h, out_w, 3)


def bicubic(lr: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return resize(lr, h, w)


@dataclass
class EvalResult:
    metric: str
    rows: dict[str, dict[float, float]] = field(default_factory=dict)     # method -> scale -> mean dB
    seconds: dict[str, dict[float, float]] = field(default_factory=dict)  # method -> scale -> mean s per image
    images: int = 0

    def to_json(self) -> dict:
        return {"metric": self.metric, "rows": {m: {f"{s:g}": v for s, v in r.items()} for m, r in self.rows.items()},
                "seconds_per_image": {m: {f"{s:g}": v for s, v in r.items()} for m, r in self.seconds.items()},
                "images": self.images}


def evaluate(methods: dict[str, Upscaler], images: list[np.ndarray], scales: list[float], metric: str, *,
             should_stop: Callable[[], bool] | None = None,
             on_image: Callable[[int, int], None] | None = None) -> EvalResult:
    """Mean PSNR of every method at every scale over ``images`` (each HxWx3 in [0, 1]); time per image too."""
    res = EvalResult(metric, {m: {} for m in methods}, {m: {} for m in methods}, len(images))
    sums = {(m, s): [0.0, 0.0, 0] for m in methods for s in scales}
    for i, img in enumerate(images):
        hr_full = torch.as_tensor(img, dtype=torch.float32)
        for s in scales:
            hr, lr = degrade(hr_full, s)
            for m, fn in methods.items():
                if should_stop is not None and should_stop():
                    return res
                t0 = time.perf_counter()
                sr = fn(lr, hr.shape[0], hr.shape[1])
                acc = sums[(m, s)]
                acc[1] += time.perf_counter() - t0
                acc[0] += sr_psnr(sr, hr, s, metric)
                acc[2] += 1
                res.rows[m][s] = acc[0] / acc[2]
                res.seconds[m][s] = acc[1] / acc[2]
        if on_image is not None:
            on_image(i + 1, len(images))
    return res
