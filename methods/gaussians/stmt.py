"""The "stmt" benchmark: single-scale training, multi-scale testing (Mip-Splatting's protocol, research §2.5–§2.6).

Two settings, each for every method (3DGS, Mip-Splatting):

- **zoom-out**: train on full-resolution images (dataset scale 1), test at dataset scales 1, 1/2, 1/4, 1/8;
- **zoom-in**: train on 1/8-resolution images (area-downsampled train split, intrinsics scaled), test at 1×, 2×,
  4×, 8× the training resolution, i.e. dataset scales 1/8, 1/4, 1/2, 1.

Ground truth at each test scale is the dataset's own rendering at that scale when it has one (our generated scenes
list them in ``multiscale.json``); a real nerf_synthetic scene has only scale 1, so lower scales are
area-downsampled from it and the output says so. Zoom-in is skipped (with a note) when the 1/8 training images
would be smaller than ``min_train_side`` pixels.

Trained models are cached (``<cache>/stmt/<dataset>-<config>-<hash>/<setting>/<method>/checkpoint.pt``, keyed by
the dataset path and the full training config) so re-running only re-evaluates; ``load_dir`` evaluates models
from a previous run's folder without training at all.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from methods.datasets import load_nerf_synthetic
from methods.gaussians.train import (
    CHECKPOINT_NAME,
    METHODS,
    GaussianTrainer,
    TrainConfig,
    evaluate_model,
    load_trained_model,
)
from methods.io import CheckpointError, atomic_write
from methods.jobs import Progress, ProgressFn, StopFn

__all__ = ["StmtSetting", "SETTINGS", "StmtBenchmark", "format_table", "format_report"]


@dataclass(frozen=True)
class StmtSetting:
    """One stmt setting: the dataset scale trained on and the dataset scales tested, with column labels."""

    key: str
    title: str
    train_scale: float
    eval_scales: tuple[float, ...]
    columns: tuple[str, ...]
    between_scales: tuple[float, ...] = (3 / 16, 3 / 8, 3 / 4)  # dataset scales half-way between test scales


SETTINGS: dict[str, StmtSetting] = {
    "zoom_out": StmtSetting("zoom_out", "zoom-out: train at full resolution, test at full … 1/8", 1.0,
                            (1.0, 0.5, 0.25, 0.125), ("Full", "1/2", "1/4", "1/8")),
    "zoom_in": StmtSetting("zoom_in", "zoom-in: train at 1/8 resolution, test at 1× … 8× of it", 0.125,
                           (0.125, 0.25, 0.5, 1.0), ("1x", "2x", "4x", "8x")),
}


def _config_key(root: Path, cfg: TrainConfig) -> str:
    """A short hash of what a trained model depends on (the dataset path and the config minus output paths)."""
    d = cfg.to_dict()
    for k in ("out_dir", "checkpoint_every", "preview_interval_s", "threads", "max_eval_views", "eval_split"):
        d.pop(k, None)
    text = json.dumps({"dataset": str(root.resolve()), "config": d}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def format_table(title: str, columns: Sequence[str], rows: dict[str, Sequence[float]], digits: int = 2) -> str:
    """A Markdown table with rows = methods, columns = scales + Avg (like the tables in research §2.6)."""
    head = ["Method", *columns, "Avg"]
    width = max(len("Mip-Splatting"), *(len(METHODS[m].label) if m in METHODS else len(m) for m in rows))
    lines = [title, "| " + " | ".join([head[0].ljust(width), *(h.rjust(6) for h in head[1:])]) + " |",
             "|" + "|".join(["-" * (width + 2), *("-" * 8 for _ in head[1:])]) + "|"]
    for method, values in rows.items():
        label = METHODS[method].label if method in METHODS else method
        cells = [f"{v:.{digits}f}".rjust(6) if math.isfinite(v) else "   n/a" for v in values]
        lines.append("| " + " | ".join([label.ljust(width), *cells]) + " |")
    return "\n".join(lines)


def format_report(result: dict[str, Any]) -> str:
    """PSNR and SSIM tables for every setting in a result, followed by the notes."""
    parts = [f"stmt benchmark on {result['dataset']} (config {result['config']})"]
    for key, s in result["settings"].items():
        size = "x".join(str(v) for v in s["train_size"])
        cols = s["columns"]
        parts.append("")
        parts.append(format_table(f"{s['title']} (train {size}) — PSNR (dB)", cols,
                                  {m: [*v, s["psnr_avg"][m]] for m, v in s["psnr"].items()}, 2))
        parts.append("")
        parts.append(format_table(f"{s['title']} (train {size}) — SSIM", cols,
                                  {m: [*v, s["ssim_avg"][m]] for m, v in s["ssim"].items()}, 3))
        for method, t in s.get("pseudo_gt_psnr", {}).items():
            parts.append(f"{method}: its pseudo-GT itself scores " +
                         ", ".join(f"{v:.2f} dB at x{k}" for k, v in t.items()) + " against the true images")
        if s.get("between"):
            parts.append("")
            parts.append(format_between(s["between"]))
    if result.get("notes"):
        parts.append("")
        parts.extend(f"note: {n}" for n in result["notes"])
    return "\n".join(parts)


def format_between(between: dict[str, dict[str, Any]]) -> str:
    """The stacks half-way between their scales: blended vs each neighbouring level alone (PSNR, dB)."""
    lines = ["Mip stacks between their scales — PSNR (dB): blended / lower level / upper level",
             "| Method | scale | levels | blended | lower | upper |", "|---|---|---|---|---|---|"]
    for method, rows in between.items():
        for label, r in rows.items():
            lines.append(f"| {method} | x{label} | x{r['lower_scale']} + x{r['upper_scale']} | {r['blended']:.2f} | "
                         f"{r['lower']:.2f} | {r['upper']:.2f} |")
    return "\n".join(lines)


@dataclass
class StmtBenchmark:
    """Job: train (or load) one model per (setting, method) and evaluate it at every test scale.

    ``run`` returns a JSON-ready dict: ``settings[key]`` holds ``columns``, ``scales``, ``train_size``, ``psnr``
    and ``ssim`` (method → per-column list) plus their ``*_avg``; ``models`` maps "setting/method" to the
    checkpoint used and whether it was trained now; ``notes`` lists protocol deviations (e.g. synthesised GT).
    """

    root: Path
    config: TrainConfig
    methods: tuple[str, ...] = ("3dgs", "mip")
    settings: tuple[str, ...] = ("zoom_out", "zoom_in")
    model_dir: Path | None = None     # where models are trained/cached; default under the asset cache
    load_dir: Path | None = None      # evaluate the models found here; never train
    retrain: bool = False
    min_train_side: int = 16
    max_eval_views: int = 0           # 0 = every test view
    name: str = "stmt benchmark (Gaussians)"
    log: Callable[[str], None] | None = None
    pseudo_gt_out: str = "bilinear"   # Mipmap-GS rows: zoom-out pseudo-GT (bilinear as released, area, oracle)
    pseudo_gt_in: str = "bicubic"     # zoom-in pseudo-GT (bicubic, oracle)
    finetune_iterations: int = 1000
    finetune_densify: bool = True     # densification during finetuning (as released); off = only optimise
    _between_cache: dict = field(default_factory=dict, init=False, repr=False)  # scale -> GT rendered once

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise ValueError(f"{self.root}: dataset folder not found")
        bad = [m for m in self.methods if m not in METHODS and not mipmap_base(m)]
        if bad or not self.methods:
            raise ValueError(f"unknown method(s) {', '.join(bad) or '(none)'}; valid: "
                             f"{', '.join(list(METHODS) + [f'mipmap-{m}[-option...]' for m in METHODS])}")
        for m in self.methods:
            if mipmap_base(m):
                self.variant(m)  # a bad option is one line now, not after an hour of training
        bad = [s for s in self.settings if s not in SETTINGS]
        if bad or not self.settings:
            raise ValueError(f"unknown setting(s) {', '.join(bad) or '(none)'}; valid: {', '.join(SETTINGS)}")
        if self.load_dir is not None and not Path(self.load_dir).is_dir():
            raise ValueError(f"--load {self.load_dir}: folder not found")
        if self.model_dir is None and self.load_dir is None:
            from assets.cache import cache_dir

            self.model_dir = (cache_dir() / "stmt" /
                              f"{self.root.name}-{self.config.name}-{_config_key(self.root, self.config)}")

    def _say(self, text: str) -> None:
        if self.log is not None:
            self.log(text)

    # ----- models -------------------------------------------------------------------------------------------------
    def _model_path(self, setting: str, method: str) -> Path:
        base = Path(self.load_dir) if self.load_dir is not None else Path(self.model_dir)  # type: ignore[arg-type]
        return base / setting / method / CHECKPOINT_NAME

    def _probe(self, path: Path, cfg: TrainConfig) -> tuple[Any, int]:
        """(model, iterations done) of a checkpoint at ``path`` trained with exactly ``cfg``; (None, 0) if none."""
        if self.retrain or not path.is_file():
            return None, 0
        try:
            model, got, it = load_trained_model(path)
        except (CheckpointError, ValueError):
            return None, 0
        return (model, it) if _config_key(self.root, got) == _config_key(self.root, cfg) else (None, 0)

    def _get_model(self, setting: StmtSetting, method: str, progress: ProgressFn, should_stop: StopFn):
        path = self._model_path(setting.key, method)
        if self.load_dir is not None:
            model, cfg, _ = load_trained_model(path)  # CheckpointError names the missing file in one line
            if cfg.method != method:
                raise ValueError(f"{path}: holds a '{cfg.method}' model, expected '{method}'")
            return model, False
        cfg = self.config.with_(method=method, train_scale=setting.train_scale, eval_split="",
                                out_dir=str(path.parent))
        model, done = self._probe(path, cfg)
        tag = f"{setting.key}/{method}"
        if model is not None and done >= cfg.iterations:
            self._say(f"{tag}: using cached model {path}")
            return model, False
        # a cancelled earlier run of the same config continues where it stopped
        trainer = GaussianTrainer.from_path(self.root, cfg, name=tag, resume=path if model is not None else None)
        t0 = time.perf_counter()

        def forward(p: Progress) -> None:
            progress(Progress(p.step, p.total, p.metrics, p.preview, f"{tag}: {p.message}" if p.message else tag))

        summary = trainer.run(forward, should_stop)
        if summary["cancelled"]:
            from methods.jobs import JobCancelled

            raise JobCancelled(f"stmt cancelled while training {tag}; re-run to continue from {summary['checkpoint']}")
        self._say(f"{tag}: trained {summary['iterations'] - done} iterations in {time.perf_counter() - t0:.0f} s, "
                  f"{summary['n_gaussians']} Gaussians")
        return trainer.model, True

    # ----- the Job ------------------------------------------------------------------------------------------------
    def run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        t0 = time.perf_counter()
        notes: list[str] = []
        result: dict[str, Any] = {"dataset": str(self.root), "config": self.config.name,
                                  "methods": list(self.methods), "settings": {}, "models": {}, "notes": notes}
        full = load_nerf_synthetic(self.root, "test", white_background=self.config.white_background, max_frames=1)
        side = min(full.width, full.height)
        for key in self.settings:
            setting = SETTINGS[key]
            train_side = round(side * setting.train_scale)
            if train_side < self.min_train_side:
                notes.append(f"{key} omitted: training at scale {setting.train_scale:g} gives {train_side} px "
                             f"images (< {self.min_train_side} px); use a dataset with larger images")
                continue
            result["settings"][key] = self._run_setting(setting, progress, should_stop, result["models"], notes)
        result["seconds"] = time.perf_counter() - t0
        return result

    def _run_setting(self, setting: StmtSetting, progress: ProgressFn, should_stop: StopFn,
                     models: dict[str, Any], notes: list[str]) -> dict[str, Any]:
        bg_white = self.config.white_background
        gts = {s: load_nerf_synthetic(self.root, "test", scale=s, white_background=bg_white,
                                      max_frames=self.max_eval_views or None) for s in setting.eval_scales}
        synth = [s for s in setting.eval_scales if gts[s].source != "files"]
        if synth:
            notes.append(f"{setting.key}: the dataset has no ground truth rendered at scale(s) "
                         f"{', '.join(f'{s:g}' for s in synth)}; area-downsampled from the full-resolution test "
                         "images instead")
        train_cam = load_nerf_synthetic(self.root, "train", scale=setting.train_scale, white_background=bg_white,
                                        max_frames=1).cameras[0]
        out: dict[str, Any] = {"title": setting.title, "columns": list(setting.columns),
                               "scales": list(setting.eval_scales), "train_scale": setting.train_scale,
                               "train_size": [train_cam.width, train_cam.height],
                               "gt_source": {f"{s:g}": gts[s].source for s in setting.eval_scales},
                               "psnr": {}, "ssim": {}, "psnr_avg": {}, "ssim_avg": {}}
        for method in self.methods:
            if mipmap_base(method):
                self._run_mipmap(setting, method, gts, out, progress, should_stop)
                continue
            model, trained = self._get_model(setting, method, progress, should_stop)
            models[f"{setting.key}/{method}"] = {"checkpoint": str(self._model_path(setting.key, method)),
                                                 "trained_now": trained, "n_gaussians": model.num_gaussians}
            ps, ss = [], []
            for k, s in enumerate(setting.eval_scales):
                progress(Progress(k, len(setting.eval_scales), {}, None,
                                  f"evaluating {setting.key}/{method} at scale {s:g}"))
                ev = evaluate_model(model, METHODS[method], gts[s])
                ps.append(ev["psnr"])
                ss.append(ev["ssim"])
            out["psnr"][method], out["ssim"][method] = ps, ss
            out["psnr_avg"][method] = float(np.mean(ps))
            out["ssim_avg"][method] = float(np.mean(ss))
        return out

    # ----- Mipmap-GS rows -----------------------------------------------------------------------------------------
    def _run_mipmap(self, setting: StmtSetting, method: str, gts: dict, out: dict,
                     progress: ProgressFn, should_stop: StopFn) -> None:
        """A Mipmap-GS row: the base model at its own scale, and at every other test scale a copy finetuned on
        pseudo-GT (the variant the row's name spells: provider, poses, image source, position LR, densification),
        evaluated at the test scales and, as a stack, half-way between them (``between``)."""
        from methods.gaussians.mipmap import finetune_level, make_pseudo_gt, pose_set, scale_label, source_images
        from methods.metrics import psnr

        v = self.variant(method)
        base, _ = self._get_model(setting, v.base, progress, should_stop)
        spec = METHODS[v.base]
        if v.poses == "test":
            cams, real = list(gts[setting.train_scale].cameras), [None] * len(gts[setting.train_scale])
        else:
            cams, real = pose_set(self.root, v.poses, setting.train_scale, self.config.white_background)
        sources = source_images(base, cams, real, source=v.source, method=v.base,
                                white_background=self.config.white_background)
        ps, ss, secs = [], [], 0.0
        levels: dict[float, Any] = {1.0: base}
        target_psnr: dict[str, float] = {}
        for k, s in enumerate(setting.eval_scales):
            rel = s / setting.train_scale
            if abs(rel - 1.0) < 1e-9:
                model = base
            else:
                kind = v.pseudo(rel)
                level_cams = [c.scaled(rel) for c in cams]
                size = (level_cams[0].width, level_cams[0].height)
                targets = make_pseudo_gt(kind, sources, size, zoom_in=rel > 1, gt=gts[s].images)
                if v.poses == "test":  # how good the targets themselves are: a bound for what finetuning can reach
                    target_psnr[scale_label(rel)] = float(np.mean([psnr(a, b) for a, b in zip(targets, gts[s].images)]))
                t0 = time.perf_counter()
                tag = f"{setting.key}/{method} x{rel:g}"

                def forward(p: Progress, tag=tag) -> None:
                    progress(Progress(p.step, p.total, p.metrics, None, tag))

                run_dir = self._level_dir(setting, method, v) / f"x{rel:g}"
                model = self._cached_level(run_dir, v.iterations)
                if model is None:
                    model, summary = finetune_level(base, level_cams, targets, method=v.base,
                                                    white_background=self.config.white_background,
                                                    iterations=v.iterations, progress=forward,
                                                    should_stop=should_stop, out_dir=str(run_dir),
                                                    densify=v.densify, position_lr=v.position_lr,
                                                    reset_at_start=v.opacity_reset)
                    if summary.get("cancelled"):
                        from methods.jobs import JobCancelled

                        raise JobCancelled(f"stmt cancelled while finetuning {tag}")
                    took = time.perf_counter() - t0
                    atomic_write(run_dir / "seconds.json", lambda f: f.write(json.dumps({"seconds": took}).encode()))
                    self._say(f"{tag}: finetuned {v.iterations} iterations on '{kind}' pseudo-GT "
                              f"({v.poses} poses, {v.source}) in {took:.0f} s")
                else:
                    took = self._level_seconds(run_dir)
                    self._say(f"{tag}: using cached level {run_dir}")
                secs += took
                levels[rel] = model
            progress(Progress(k, len(setting.eval_scales), {}, None, f"evaluating {setting.key}/{method} at {s:g}"))
            ev = evaluate_model(model, spec, gts[s])
            ps.append(ev["psnr"])
            ss.append(ev["ssim"])
        out["psnr"][method], out["ssim"][method] = ps, ss
        out["psnr_avg"][method] = float(np.mean(ps))
        out["ssim_avg"][method] = float(np.mean(ss))
        out.setdefault("finetune_seconds", {})[method] = secs
        out.setdefault("between", {})[method] = self._between(setting, levels, spec)
        if target_psnr:
            out.setdefault("pseudo_gt_psnr", {})[method] = target_psnr

    def _level_dir(self, setting: StmtSetting, method: str, variant) -> Path:
        """Where a row's levels are finetuned and cached, next to the base models of this config: keyed by the
        variant's settings that differ from the defaults (flag defaults and the step count included)."""
        from dataclasses import fields

        if self.model_dir is None:  # --load: finetune runs go to a scratch folder, never into the cwd
            import tempfile

            self.model_dir = Path(tempfile.mkdtemp(prefix="mipstudio-mipmap-"))
        # only what differs from the defaults, so a switch added later keeps existing caches valid
        key = json.dumps({f.name: getattr(variant, f.name) for f in fields(variant)
                          if getattr(variant, f.name) != f.default}, sort_keys=True)
        return Path(self.model_dir) / setting.key / "mipmap" / f"{method}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"

    def _cached_level(self, run_dir: Path, iterations: int):
        """A level finetuned by an earlier run of the same row (all its steps done), else None."""
        if self.retrain or not (run_dir / CHECKPOINT_NAME).is_file():
            return None
        try:
            model, _, it = load_trained_model(run_dir / CHECKPOINT_NAME)
        except (CheckpointError, ValueError):
            return None
        return model if it >= iterations else None

    @staticmethod
    def _level_seconds(run_dir: Path) -> float:
        """Finetune time recorded when a cached level was made (NaN if unknown)."""
        try:
            return float(json.loads((run_dir / "seconds.json").read_text())["seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            return float("nan")

    def _between(self, setting: StmtSetting, levels: dict[float, Any], spec) -> dict[str, Any]:
        """The stack half-way between its scales: PSNR of the blended stack and of each neighbouring level alone,
        against true ground truth at that scale (rendered now for our generated datasets)."""
        import torch

        from methods.gaussians.mipmap import blend_levels, level_weights, scale_label
        from methods.metrics import psnr

        scales = sorted(levels)
        models = [levels[s] for s in scales]
        bg = (1.0, 1.0, 1.0) if self.config.white_background else (0.0, 0.0, 0.0)
        rows: dict[str, Any] = {}
        for b in setting.between_scales:
            gt = self._between_gt(b)
            if gt is None:
                continue
            rel = b / setting.train_scale
            pair = [i for i, _ in level_weights(scales, rel)]
            if len(pair) != 2:
                continue
            acc = {"blended": [], "lower": [], "upper": []}
            for cam, img in zip(gt.cameras, gt.images):
                with torch.no_grad():  # each of the two levels rendered once, for the blend and on its own
                    alone = {i: models[i].render(cam, filter=spec.filter, use_3d_filter=spec.use_3d_filter,
                                                 background=bg).color.clamp(0, 1).numpy() for i in pair}
                blended, used = blend_levels(range(len(models)), scales, rel, alone.__getitem__)
                acc["blended"].append(psnr(blended, img))
                acc["lower"].append(psnr(alone[pair[0]], img))
                acc["upper"].append(psnr(alone[pair[1]], img))
            label = _fraction(rel)
            rows[label] = {**{k: float(np.mean(v)) for k, v in acc.items()},
                           "lower_scale": scale_label(scales[pair[0]]), "upper_scale": scale_label(scales[pair[1]]),
                           "weights": [round(w, 3) for _, w in used], "gt_source": gt.source}
        return rows


    def _between_gt(self, scale: float):
        """True test images at a scale the dataset may not store (cached per run); None if it cannot be had."""
        cache = self._between_cache
        if scale not in cache:
            from methods.datasets import load_nerf_synthetic
            from methods.datasets.generate import render_at_scale
            from methods.datasets.nerf_synthetic import DatasetError

            wb = self.config.white_background
            n = self.max_eval_views or None
            gt = render_at_scale(self.root, "test", scale, white_background=wb, max_frames=n)
            if gt is None:
                try:  # a real dataset: area-downsampled from the full-resolution test images (no zoom-in GT)
                    gt = load_nerf_synthetic(self.root, "test", scale=scale, white_background=wb, max_frames=n)
                except DatasetError:
                    gt = None
            cache[scale] = gt
        return cache[scale]


    def variant(self, method: str):
        """The Mipmap-GS variant a row name spells, with this run's switches as defaults."""
        from methods.gaussians.mipmap import MipmapVariant

        return MipmapVariant.parse(method, pseudo_out=self.pseudo_gt_out, pseudo_in=self.pseudo_gt_in,
                                   densify=self.finetune_densify, iterations=self.finetune_iterations)


def mipmap_base(method: str) -> str:
    """'mipmap-3dgs' or 'mipmap-3dgs-area-free' -> '3dgs' (the base a Mipmap-GS row finetunes); '' otherwise."""
    parts = method.split("-")
    return parts[1] if len(parts) >= 2 and parts[0] == "mipmap" else ""


def _fraction(x: float) -> str:
    """3/8, 3/16, 3/2, 6 — exact short names for the in-between scales."""
    from fractions import Fraction

    f = Fraction(x).limit_denominator(64)
    return f"{f.numerator}/{f.denominator}" if f.denominator != 1 else f"{f.numerator}"



def by_direction(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's JSON view: {"out"|"in": {METHOD: {"psnr": {SCALE: dB, "avg": dB}, "ssim": {...},
    "seconds": s}}} with SCALE relative to the training rate ("1/8" … "8")."""
    from methods.gaussians.mipmap import scale_label

    view: dict[str, Any] = {}
    for key, direction in (("zoom_out", "out"), ("zoom_in", "in")):
        st = result["settings"].get(key)
        if not st:
            continue
        labels = [scale_label(s / st["train_scale"]) for s in st["scales"]]
        view[direction] = {m: {"psnr": {**dict(zip(labels, st["psnr"][m])), "avg": st["psnr_avg"][m]},
                               "ssim": {**dict(zip(labels, st["ssim"][m])), "avg": st["ssim_avg"][m]},
                               "seconds": st.get("finetune_seconds", {}).get(m, 0.0),
                               **({"between": st["between"][m]} if m in st.get("between", {}) else {}),
                               **({"pseudo_gt_psnr": st["pseudo_gt_psnr"][m]} if m in st.get("pseudo_gt_psnr", {})
                                  else {})}
                           for m in st["psnr"]}
    return view


def write_json(path: str | os.PathLike, result: dict[str, Any]) -> Path:
    """Write a stmt result as JSON atomically."""
    text = json.dumps({**by_direction(result), **result}, indent=2, default=str)
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
