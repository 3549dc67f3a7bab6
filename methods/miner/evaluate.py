"""``eval miner``: MINER (paper and lightning presets) against the equal-parameter single MLP on one image, each
for at most the same training budget, in one run: time to 30/35/40 dB, final PSNR/SSIM, parameters, peak memory
(research sr_miner.md B1: MINER's claim is reaching a given accuracy much sooner at equal size)."""
from __future__ import annotations

import gc
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from methods.jobs import Progress
from methods.metrics import ssim
from methods.miner.baseline import BaselineConfig, BaselineTrainer, width_for
from methods.miner.config import MinerConfig, preset
from methods.miner.train import MinerTrainer, largest_levels, psnr_of, upsample_to

THRESHOLDS = (30.0, 35.0, 40.0)


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError, IndexError):
        return math.nan


class PeakMemory:
    """Peak resident memory above the level at entry, sampled every 20 ms (Linux /proc; NaN elsewhere)."""

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        self.base = self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())

    @property
    def mb(self) -> float:
        return self.peak - self.base


def seconds_to(seconds: list[float], psnr: list[float]) -> dict[str, float | None]:
    """First time each threshold was reached (None if never)."""
    out: dict[str, float | None] = {}
    for t in THRESHOLDS:
        hit = next((s for s, p in zip(seconds, psnr) if p >= t), None)
        out[f"{t:g}"] = None if hit is None else round(float(hit), 3)
    return out


def fit_levels(cfg: MinerConfig, image: np.ndarray) -> MinerConfig:
    fits = largest_levels(image.shape[0], image.shape[1], cfg.block)
    return cfg.with_(levels=min(cfg.levels, fits))


def _progress(label: str, stream):
    last = {"t": 0.0}

    def fn(p: Progress) -> None:
        now = time.perf_counter()
        if stream is not None and (now - last["t"] > 5.0 or p.step == p.total):
            last["t"] = now
            print(f"  {label}: {p.message or ''}", file=stream, flush=True)
    return fn


def run_miner(name: str, image: np.ndarray, budget_s: float, out_dir: str | Path, stream=None) -> dict[str, Any]:
    cfg = fit_levels(preset(name), image).with_(out_dir=str(out_dir))
    trainer = MinerTrainer(cfg, image, label=name)
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        trainer.run(_progress(f"miner-{name}", stream), lambda: time.perf_counter() - t0 > budget_s)
        final = min(trainer.model.levels)
        h, w = trainer.model.size
        rec = upsample_to(trainer.model.reconstruct(final, crop=False), final)[:h, :w].clamp(0, 1)
    img = torch.as_tensor(image, dtype=torch.float32)
    return {"seconds_to": seconds_to(trainer.history["seconds"], trainer.history["psnr"]),
            "psnr": round(psnr_of(rec, img), 3), "ssim": round(ssim(rec.numpy(), image), 4),
            "params": trainer.model.parameter_count(), "peak_mb": round(mem.mb, 1),
            "train_s": round(trainer.seconds, 2), "levels": cfg.levels}


def run_baseline(params: int, image: np.ndarray, budget_s: float, kind: str = "siren", stream=None
                 ) -> dict[str, Any]:
    cfg = BaselineConfig(kind=kind)
    cfg = cfg.with_(width=width_for(params, cfg, image.shape[2]))
    trainer = BaselineTrainer(cfg, image, budget_s)
    with PeakMemory() as mem:
        r = trainer.run(_progress(f"baseline {kind} width {cfg.width}", stream), lambda: False)
        rec = trainer.render()
    img = torch.as_tensor(image, dtype=torch.float32)
    return {"seconds_to": seconds_to(trainer.history["seconds"], trainer.history["psnr"]),
            "psnr": round(psnr_of(rec, img), 3), "ssim": round(ssim(rec.numpy(), image), 4),
            "params": r["params"], "peak_mb": round(mem.mb, 1), "train_s": round(trainer.seconds, 2),
            "width": cfg.width, "steps": r["steps"]}


def evaluate(image: np.ndarray, budget_s: float, out_dir: str | Path, *, presets: tuple[str, ...] = ("paper",
             "lightning"), baseline: str = "siren", baseline_budget_s: float = 0.0, stream=None
             ) -> dict[str, dict[str, Any]]:
    """{METHOD: {...}} for miner-<preset> and the baseline (sized like the first preset's result). The baseline
    may get a longer budget (``baseline_budget_s``) so that "N times sooner" is measured, not only bounded."""
    rows: dict[str, dict[str, Any]] = {}
    for name in presets:
        rows[f"miner-{name}"] = run_miner(name, image, budget_s, Path(out_dir) / name, stream)
    params = rows[f"miner-{presets[0]}"]["params"]
    rows["baseline"] = run_baseline(params, image, baseline_budget_s or budget_s, baseline, stream)
    return rows


def speedups(rows: dict[str, dict[str, Any]]) -> list[str]:
    """One line per MINER row and threshold it reached: the baseline's time over MINER's, or a lower bound
    (baseline training time over MINER's) when the baseline never reached the threshold."""
    base = rows["baseline"]
    out = []
    for k, r in rows.items():
        if k == "baseline":
            continue
        for t, s in r["seconds_to"].items():
            if not s:
                continue
            b = base["seconds_to"][t]
            out.append(f"{k} reaches {t} dB {b / s:.1f}x sooner than the baseline" if b else
                       f"{k} reaches {t} dB at least {base['train_s'] / s:.1f}x sooner than the baseline (which did "
                       f"not reach it in {base['train_s']:.0f} s)")
    return out


def format_table(rows: dict[str, dict[str, Any]], label: str) -> str:
    def t(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} s"

    lines = [f"MINER vs one MLP on {label}", "",
             "| method | to 30 dB | to 35 dB | to 40 dB | PSNR | SSIM | params | peak MB | trained |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k, r in rows.items():
        st = r["seconds_to"]
        lines.append(f"| {k} | {t(st['30'])} | {t(st['35'])} | {t(st['40'])} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                     f"{r['params']:,} | {r['peak_mb']:.0f} | {r['train_s']:.0f} s |")
    return "\n".join(lines + [""] + speedups(rows))
