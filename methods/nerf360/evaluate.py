"""``eval nerf360``: image quality at every test scale against true ground truth, and what the proposal sampler
saves — NeRF-MLP evaluations per ray at equal PSNR against uniform sampling of the same model, measured, not claimed.

Without ``--checkpoint`` the preset is trained first (cached under ``<cache>/nerf360/``, keyed by the dataset and
the full config, with its training time), so a second run only evaluates.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from methods.jobs import Progress, ProgressFn, StopFn

UNIFORM_SAMPLES = (24, 48, 96, 192, 384)


def scale_name(s: float) -> str:
    return f"1/{round(1 / s)}" if s < 1 else f"{s:g}"


def test_scales(root: str | Path) -> tuple[float, ...]:
    """The scales a dataset stores test ground truth for (ours: 1/8..8; a real dataset: 1 only)."""
    from methods.datasets.nerf_synthetic import read_multiscale

    ms = read_multiscale(root) or {}
    listed = {float(e["scale"]) for e in ms.get("splits", {}).get("test", [])}
    return tuple(sorted(listed | {1.0}))


def equal_psnr_ratio(proposal: dict[str, float], uniform: list[dict[str, float]]) -> float:
    """How many times more NeRF-MLP evaluations uniform sampling needs to reach the proposal sampler's PSNR:
    log-linear interpolation between the two uniform rows around it; inf when no uniform row reaches it."""
    target = proposal["psnr"]
    rows = sorted(uniform, key=lambda r: r["nerf_evals_per_ray"])
    for lo, hi in zip(rows, rows[1:]):
        if lo["psnr"] < target <= hi["psnr"]:
            t = (target - lo["psnr"]) / (hi["psnr"] - lo["psnr"])
            n = math.exp((1 - t) * math.log(lo["nerf_evals_per_ray"]) + t * math.log(hi["nerf_evals_per_ray"]))
            return n / proposal["nerf_evals_per_ray"]
    if rows and rows[0]["psnr"] >= target:
        return rows[0]["nerf_evals_per_ray"] / proposal["nerf_evals_per_ray"]
    return math.inf


@dataclass
class Nerf360Eval:
    """The job: train (or load) a model, then score it per scale and per sampler on the test views."""

    root: str
    preset: str = "cpu"
    checkpoint: str = ""
    scales: tuple[float, ...] = ()          # () = every test scale the dataset stores
    max_views: int = 4                      # test views per scale (CPU time grows with scale²)
    uniform_samples: tuple[int, ...] = UNIFORM_SAMPLES
    steps: int = 0                          # 0 = the preset's
    chunk: int = 8192
    name: str = "eval mip-NeRF 360"
    log: Any = None

    def _model(self, progress: ProgressFn, should_stop: StopFn):
        from methods.nerf360.train import TRAIN_PRESETS, Nerf360Trainer, load_nerf360

        if self.checkpoint:
            model, cfg = load_nerf360(self.checkpoint)
            return model, cfg, float("nan")
        if self.preset not in TRAIN_PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; valid: {', '.join(TRAIN_PRESETS)}")
        cfg = TRAIN_PRESETS[self.preset]
        if self.steps:
            cfg = cfg.with_(steps=self.steps)
        from assets.cache import cache_dir

        key = json.dumps({"dataset": str(Path(self.root).resolve()), "config": cfg.to_dict()}, sort_keys=True,
                         default=str)
        digest = hashlib.sha1(key.encode()).hexdigest()[:10]
        out = cache_dir() / "nerf360" / f"{Path(self.root).name}-{cfg.name}-{digest}"
        ckpt, secs_file = out / "checkpoint.pt", out / "train_seconds.json"
        if ckpt.is_file() and secs_file.is_file():
            try:
                model, got = load_nerf360(ckpt)
                secs = float(json.loads(secs_file.read_text())["seconds"])
                if got.to_dict() == cfg.to_dict():
                    self._say(f"using the cached model {ckpt} (trained in {secs:.0f} s)")
                    return model, got, secs
            except (ValueError, KeyError, OSError):
                pass
        trainer = Nerf360Trainer(cfg, self.root, out, resume=ckpt if ckpt.is_file() else None)
        summary = trainer.run(progress, should_stop)
        if summary["cancelled"]:
            from methods.jobs import JobCancelled

            raise JobCancelled(f"cancelled while training; re-run to continue from {summary['checkpoint']}")
        from assets.cache import atomic_write_text

        atomic_write_text(secs_file, json.dumps({"seconds": summary["seconds"]}), parents=True)
        trainer.model.eval()
        return trainer.model, cfg, float(summary["seconds"])

    def _say(self, text: str) -> None:
        if self.log is not None:
            self.log(text)

    def run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        import torch

        from methods.metrics import psnr, ssim
        from methods.nerf360.dataset import load_unbounded
        from methods.nerf360.model import uniform_samples

        model, cfg, train_seconds = self._model(progress, should_stop)
        scales = self.scales or test_scales(self.root)
        out: dict[str, Any] = {"dataset": str(self.root), "config": cfg.name, "psnr": {}, "ssim": {}, "sampler": [],
                               "train_seconds": train_seconds, "views": self.max_views}
        t0 = time.perf_counter()

        def score(ds, samples=None, with_ssim=False) -> dict[str, float]:
            """Mean PSNR (and SSIM) of the first views of ``ds`` and the evaluations per ray it took."""
            n = min(self.max_views, len(ds)) if self.max_views > 0 else len(ds)
            ps, ss = [], []
            for i in range(n):
                if should_stop():
                    from methods.jobs import JobCancelled

                    raise JobCancelled("eval nerf360 cancelled")
                r = model.render_image(ds.cameras[i], self.chunk, samples=samples, near=float(ds.near[i]),
                                       far=float(ds.far[i]))
                img = r.rgb.clamp(0, 1).numpy()
                ps.append(float(psnr(img, ds.images[i])))
                if with_ssim:
                    ss.append(float(ssim(img, ds.images[i])))
            return {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)) if ss else float("nan"),
                    "nerf_evals_per_ray": float(r.nerf_evals_per_ray), "proposal_evals_per_ray":
                    float(r.prop_evals_per_ray)}

        proposal_at_1 = None
        with torch.no_grad():
            for k, s in enumerate(scales):
                ds = load_unbounded(self.root, "test", scale=s)
                progress(Progress(k, len(scales), message=f"rendering test views at x{scale_name(s)} "
                                                          f"({ds.width}x{ds.height})"))
                r = score(ds, with_ssim=True)
                out["psnr"][scale_name(s)], out["ssim"][scale_name(s)] = r["psnr"], r["ssim"]
                if s == 1.0:
                    proposal_at_1 = r  # the proposal row of the sampler table: same renders
            ds = load_unbounded(self.root, "test", scale=1.0)
            prop = proposal_at_1 or score(ds)
            out["sampler"].append({"sampler": "proposal", **{k: prop[k] for k in ("nerf_evals_per_ray", "psnr",
                                                                                  "proposal_evals_per_ray")}})
            for j, m in enumerate(self.uniform_samples):
                progress(Progress(j, len(self.uniform_samples), message=f"sampler: uniform, {m} samples"))
                r = score(ds, uniform_samples(m))
                out["sampler"].append({"sampler": "uniform", "nerf_evals_per_ray": r["nerf_evals_per_ray"],
                                       "psnr": r["psnr"]})
        prop = out["sampler"][0]
        out["equal_psnr_ratio"] = equal_psnr_ratio(prop, out["sampler"][1:])
        out["eval_seconds"] = time.perf_counter() - t0
        return out


def format_report(res: dict[str, Any]) -> str:
    scales = list(res["psnr"])
    lines = [f"mip-NeRF 360 ({res['config']}) on {res['dataset']}, {res['views']} test views per scale, trained in "
             f"{res['train_seconds']:.0f} s", "",
             "| | " + " | ".join(f"x{s}" for s in scales) + " |", "|---|" + "---|" * len(scales),
             "| PSNR (dB) | " + " | ".join(f"{res['psnr'][s]:.2f}" for s in scales) + " |",
             "| SSIM | " + " | ".join(f"{res['ssim'][s]:.3f}" for s in scales) + " |", "",
             "| sampler | NeRF-MLP evaluations / ray | PSNR (dB) at x1 |", "|---|---|---|"]
    for r in res["sampler"]:
        extra = f" (+{r['proposal_evals_per_ray']:.0f} proposal-MLP)" if "proposal_evals_per_ray" in r else ""
        lines.append(f"| {r['sampler']} | {r['nerf_evals_per_ray']:.0f}{extra} | {r['psnr']:.2f} |")
    ratio = res["equal_psnr_ratio"]
    most = max(r["nerf_evals_per_ray"] for r in res["sampler"]) / res["sampler"][0]["nerf_evals_per_ray"]
    lines.append("")
    lines.append(f"uniform sampling needs {ratio:.1f}x the NeRF-MLP evaluations for the proposal sampler's PSNR"
                 if math.isfinite(ratio) else
                 "no uniform row reaches the proposal sampler's PSNR (more than "
                 f"{most:.0f}x"
                 " its NeRF-MLP evaluations)")
    return "\n".join(lines)
