"""``main.py eval ngssf``: a trained field against the exact Gaussian blur of its picture (paper §4, on CPU-sized
grids): one row per isotropic variance {0, 1e-4, 1e-3, 1e-2, 1e-1} and one for the mean over a fixed, seeded set
of random covariance matrices. The "sharp field" columns compare the *unsmoothed* field with the same ground truth,
which shows how much of the score the smoothing itself earns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from methods.field import Field, eval_grid
from render.tensors import to_numpy

VARIANCES = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)


@dataclass
class EvalRow:
    label: str
    psnr: float
    ssim: float
    sharp_psnr: float
    sharp_ssim: float
    count: int = 1


@dataclass
class EvalReport:
    image: str
    resolution: int
    calibration: float
    rows: list[EvalRow] = field(default_factory=list)
    seconds: float = 0.0

    def table(self) -> str:
        from methods.ngssf.metrics import format_table

        cols = ["scale", "PSNR", "SSIM", "sharp field PSNR", "sharp field SSIM"]
        body = [[r.label + (f" (mean of {r.count})" if r.count > 1 else ""), f"{r.psnr:.2f}", f"{r.ssim:.4f}",
                 f"{r.sharp_psnr:.2f}", f"{r.sharp_ssim:.4f}"] for r in self.rows]
        head = (f"NGSSF vs exact Gaussian blur — {self.image}, {self.resolution}² grid, calibration c = "
                f"{self.calibration:.4g}, {self.seconds:.0f} s")
        return head + "\n" + format_table(body, cols)

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "resolution": self.resolution, "calibration": self.calibration,
                "seconds": self.seconds, "rows": [vars(r) for r in self.rows]}


def _score(pred: torch.Tensor, gt: np.ndarray, variance: float) -> tuple[float, float]:
    from methods.ngssf.metrics import compare_images

    m = compare_images(to_numpy(pred), gt, variance)
    return float(m["psnr"]), float(m["ssim"])


def evaluate_picture(field: Field, image01: np.ndarray, *, label: str = "image", covariances: int = 100,
                     variances: tuple[float, ...] = VARIANCES,
                     log: Callable[[str], None] | None = None) -> EvalReport:
    """Evaluate ``field`` on the image's own pixel grid (``image01``: HxWx3 in [0, 1], square)."""
    import time

    from methods.ngssf.covariances import benchmark_covariances
    from methods.ngssf.ground_truth import gaussian_blur_exact

    t0 = time.perf_counter()
    h, w = image01.shape[:2]
    if h != w:
        raise ValueError(f"evaluation expects a square image, got {w}x{h}")
    img = image01.astype(np.float32) * 2.0 - 1.0
    sharp = eval_grid(field, (h, w))
    report = EvalReport(label, h, float(getattr(field, "calibration", torch.tensor(1.0))))
    for v in variances:
        gt = gaussian_blur_exact(img, v) if v > 0 else img
        pred = eval_grid(field, (h, w), v if v > 0 else None)
        p, s = _score(pred, gt, v)
        sp, ss = _score(sharp, gt, v)
        report.rows.append(EvalRow(f"σ² = {v:g}", p, s, sp, ss))
        if log:
            log(f"  σ² = {v:g}: PSNR {p:.2f} dB, SSIM {s:.4f}")
    if covariances:
        acc = []
        for i, cov in enumerate(benchmark_covariances(2, covariances)):
            cov_np = np.asarray(cov, dtype=np.float64)
            lam = float(np.linalg.eigvalsh(cov_np).max())
            gt = gaussian_blur_exact(img, cov_np)
            pred = eval_grid(field, (h, w), torch.as_tensor(cov_np, dtype=torch.float32))
            acc.append(_score(pred, gt, lam) + _score(sharp, gt, lam))
            if log and (i + 1) % 20 == 0:
                log(f"  covariance {i + 1}/{covariances}")
        a = np.array(acc, dtype=np.float64)
        a[~np.isfinite(a)] = np.nan
        m = np.nanmean(a, axis=0)
        report.rows.append(EvalRow("random covariances", *m.tolist(), count=len(acc)))
    report.seconds = time.perf_counter() - t0
    return report
