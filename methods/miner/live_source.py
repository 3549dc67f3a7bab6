"""The MINER view's source: a photo's MINER representation at any zoom, the zoom picking the pyramid level.

Zoom is screen pixels per image pixel; at zoom z < 1 a screen pixel covers 1/z image pixels, so the view shows
level log2(1/z), blending the two nearest levels (each sampled bilinearly) so zooming is continuous. Overlays: the
block grid of the shown level, its active / pruned / inactive blocks, or a per-block error heat map against the
original's pyramid level. "compare" splits the view with the original or with the single-MLP baseline of the same
parameter count trained for the same time.

Opening a photo starts a background fit (the ``view`` preset on its 256² centre square, seconds) that publishes
each level as it finishes, so the picture sharpens coarse to fine; then the baseline trains for MINER's time.
Renders never wait for training: they show what is finished.
"""
from __future__ import annotations

import atexit
import math
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from assets.photos import list_photos
from methods.live_training import SnapshotPublisher
from methods.miner.config import MinerConfig
from methods.miner.model import Level
from methods.miner.pyramid import down2
from methods.miner.train import psnr_of
from render.live import Frame, RenderRequest
from render.options import option
from render.viewport import Viewport

OVERLAYS = ("none", "grid", "blocks", "error")
OVERLAY_LABELS = ("none", "block grid", "active / pruned blocks", "error heat map")
COMPARES = ("off", "original", "baseline")
BACKGROUND = 0.12
SPLIT_COLOR = (1.0, 0.85, 0.2)
VIEW_SIDE = 256          # bundled photos are fitted at this size (centre square): seconds on 2 cores
OPEN_SIDE = 512          # opened image files are fitted in their centre square of at most this side (a minute)
KEEP_OPENED = 2          # opened files, checkpoints and followed jobs kept (a 4096² checkpoint's levels are ~1 GB)
OPENED_KINDS = ("file", "checkpoint", "job")   # key prefixes ("kind:...") of what was opened; photos have none

# a quick fit for the view: 4 levels of 16² blocks, paper activations and init
VIEW_CONFIG = MinerConfig(name="view", levels=4, block=16, hidden=16, omega0=60.0, lr=1e-3, epochs=(80, 80, 80, 120),
                          check_every=10)


@dataclass(frozen=True)
class MinerOptions:
    image: str = option("astronaut", choices=tuple(list_photos()), help="a bundled photo, fitted when first shown")
    blend: bool = option(True, label="blend levels", help="blend the two nearest pyramid levels while zooming "
                                                          "(off: the nearest level only)")
    overlay: str = option("none", choices=OVERLAYS, labels=OVERLAY_LABELS,
                          help="block grid, active (red) / pruned (green) blocks, or per-block error (PSNR) of the "
                               "shown level")
    compare: str = option("off", choices=COMPARES, labels=("off", "original", "single-MLP baseline"),
                          label="split with", help="what the right of the split line shows at the same zoom")
    split: float = option(0.5, min=0.0, max=1.0, label="split position", help="where the split line is")
    opened: str = ""  # internal: the key of an opened image, checkpoint or job (MinerSource.open_*), shown instead


@dataclass
class Fit:
    """What the view shows: a MINER model (growing level by level while it trains), its original and pyramid (None
    when a checkpoint's image cannot be loaded), the finished levels' reconstructions, the baseline."""

    config: MinerConfig
    size: tuple[int, int]                       # (h, w) of the image
    image: torch.Tensor | None = None
    pyramid: list[torch.Tensor] | None = None
    model: Any = None                           # MinerModel, once it exists
    trainer: Any = None
    baseline: list[torch.Tensor] | None = None   # the baseline's reconstruction and its area pyramid
    status: str = "starting"
    levels: dict[int, torch.Tensor] = field(default_factory=dict)   # finished levels' reconstructions (cropped)
    error: str = ""
    origin: str = ""                            # what was opened: a photo, file, checkpoint or job
    own: bool = False                           # fitted here (with a baseline), not opened or followed
    source: str = ""                            # a checkpoint's recorded image (methods.miner.cli.image_source)
    note: str = ""                              # why its original is not shown, if it is not
    thread: threading.Thread | None = None
    closed: threading.Event = field(default_factory=threading.Event)


def area_pyramid(img: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[img, img / 2, ...] by 2x2 means (an odd last row/column is dropped): what each zoom level compares with."""
    pyr = [img]
    for _ in range(levels - 1):
        pyr.append(down2(pyr[-1][:pyr[-1].shape[0] // 2 * 2, :pyr[-1].shape[1] // 2 * 2]))
    return pyr


def view_config(h: int, w: int, config: MinerConfig = VIEW_CONFIG) -> MinerConfig:
    """``config`` with as many of its levels as an h x w image holds."""
    from methods.miner.train import largest_levels

    return config.with_(levels=min(config.levels, largest_levels(h, w, config.block)))


class MinerSource:
    Options = MinerOptions

    def __init__(self, config: MinerConfig = VIEW_CONFIG, side: int = VIEW_SIDE, open_side: int = OPEN_SIDE) -> None:
        self.config, self.side, self.open_side = config, side, open_side
        self._lock = threading.Lock()
        self._fits: dict[str, Fit] = {}
        self._retired: list[Fit] = []  # replaced or dropped fits whose threads may still be finishing an epoch
        self._info = ""
        self.notes: list[str] = []     # what the last open_image converted (a checkpoint's original: Fit.note)
        # bumped when a fit publishes a level or its baseline: the view re-renders (methods/live_training.py)
        self.live = SnapshotPublisher(lambda: None, self._lock, clone=lambda m: m)
        self._stop = threading.Event()
        _SOURCES.add(self)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the background work (at the next epoch) and wait for it: a torch thread still running when the
        interpreter exits aborts the process."""
        self._stop.set()
        for fit in list(self._fits.values()) + self._retired:
            fit.closed.set()
            if fit.thread is not None and fit.thread.is_alive():
                fit.thread.join(timeout)

    def _start(self, key: str, fit: Fit, target) -> Fit:
        """Register ``fit`` under ``key`` (replacing and stopping an older one) and run ``target(fit)`` in a daemon
        thread. Only the newest ``KEEP_OPENED`` opened files, checkpoints and jobs stay; older ones are stopped
        and dropped (the view shows the newest; bundled photos' small fits all stay)."""
        with self._lock:
            gone = [self._fits.pop(key)] if key in self._fits else []
            self._fits[key] = fit
            opened = [k for k in self._fits if k.split(":", 1)[0] in OPENED_KINDS]
            gone += [self._fits.pop(k) for k in opened[:max(0, len(opened) - KEEP_OPENED)]]
        for old in gone:
            old.closed.set()
        # close() joins stopped fits too: a torch thread alive at interpreter exit aborts the process
        self._retired = [f for f in self._retired if f.thread is not None and f.thread.is_alive()] + gone
        fit.thread = threading.Thread(target=target, args=(fit,), daemon=True, name=f"miner-{key[:40]}")
        fit.thread.start()
        return fit

    # ----- what can be shown ----------------------------------------------------------------------------------------
    def fit(self, name: str, *, wait: bool = False) -> Fit:
        """The fit shown for ``name``: an opened file, checkpoint or job (their keys) or a bundled photo, whose fit
        starts on first use; ``wait`` blocks until its background work is done."""
        with self._lock:
            fit = self._fits.get(name)
        if fit is None and ":" in name:
            raise ValueError(f"{name.split(':', 1)[1]} was closed (only the last {KEEP_OPENED} opened are kept); "
                             f"open it again")
        if fit is None:
            from assets.photos import load_photo

            img = torch.from_numpy(np.ascontiguousarray(load_photo(name, self.side)))
            cfg = view_config(*img.shape[:2], self.config)
            fit = self._start(name, Fit(cfg, tuple(img.shape[:2]), img, area_pyramid(img, cfg.levels),
                                        origin=name, own=True), self._train)
        if wait and fit.thread is not None:
            fit.thread.join()
        return fit

    def open_image(self, path: str) -> str:
        """Fit an image file in the background (centre-cropped to ``open_side``: the view's quick fit; train larger
        images with ``train miner`` and open the checkpoint). Returns the key to show; bad files raise one line."""
        from methods.miner.cli import load_image

        self.notes = []
        img, _ = load_image(path, self.open_side, notes=self.notes)
        key = f"file:{Path(path).expanduser().resolve()}"
        t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))
        cfg = view_config(*t.shape[:2], self.config)
        self._start(key, Fit(cfg, tuple(t.shape[:2]), t, area_pyramid(t, cfg.levels), origin=path, own=True),
                    self._train)   # an earlier fit of the same file is stopped
        return key

    def open_checkpoint(self, path: str) -> str:
        """Show a ``train miner`` checkpoint (any size: its levels are reconstructed in the background, coarse
        first); its original is loaded again from what the checkpoint recorded, for compare and the error map."""
        from methods.miner.train import load_miner

        self.notes = []
        model, payload = load_miner(path)
        fit = Fit(model.config, tuple(model.size), model=model, origin=f"{path}", status="loading the original")
        fit.source = str(payload.get("source") or "")
        return self._show(f"checkpoint:{Path(path).expanduser().resolve()}", fit)

    def follow_trainer(self, trainer: Any) -> str:
        """Show a running :class:`MinerTrainer` (the Jobs-panel job): each level appears when it is finished."""
        img = trainer.image
        fit = Fit(trainer.config, tuple(img.shape[:2]), img, area_pyramid(img, trainer.config.levels),
                  model=trainer.model, trainer=trainer, origin=trainer.name, status="training")
        return self._show(f"job:{id(trainer)}", fit)

    @staticmethod
    def _original(source: str, size: tuple[int, int]) -> tuple[torch.Tensor | None, str]:
        from methods.miner.cli import load_source

        if not source:
            return None, "the checkpoint does not say which image it was trained on: no original to compare with"
        try:
            img, _ = load_source(source)
        except Exception as e:  # noqa: BLE001 - the model still shows
            return None, f"original {source} not loaded ({' '.join(str(e).split())[:120]}): no compare / error map"
        if tuple(img.shape[:2]) != tuple(size):
            return None, f"original {source} is {img.shape[1]}x{img.shape[0]}, the checkpoint's image " \
                         f"{size[1]}x{size[0]}: no compare / error map"
        return torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)), ""

    def _show(self, key: str, fit: Fit) -> str:
        self._start(key, fit, self._publish_levels)
        return key

    def _publish_levels(self, fit: Fit) -> None:
        """Reconstruct each level of ``fit.model`` once it is finished, coarse to fine, and publish it."""
        model, J = fit.model, fit.config.levels
        try:
            if fit.image is None and fit.trainer is None:   # a checkpoint: its original, for compare and errors
                image, note = self._original(fit.source, fit.size)
                if image is not None:
                    pyramid = area_pyramid(image, J)
                    with self._lock:
                        fit.image, fit.pyramid = image, pyramid
                fit.note = note
            for j in range(J - 1, -1, -1):
                while not (j in model.levels and model.levels[j].done):
                    if fit.closed.is_set() or self._stop.is_set():
                        return
                    if fit.trainer is None or fit.trainer.finished:
                        fit.status = f"levels {J - 1} to {j + 1} only (training stopped before level {j})" \
                            if j < J - 1 else "no finished level"
                        self.live.bump()
                        return
                    time.sleep(0.2)
                fit.status = f"reconstructing level {j}"
                rec = model.reconstruct(j).clamp(0, 1)
                with self._lock:
                    fit.levels[j] = rec
                self.live.bump()
            fit.status = ""
        except Exception as e:  # noqa: BLE001 - shown in the view, the studio keeps running
            fit.error, fit.status = f"MINER reconstruction failed: {' '.join(str(e).split())[:200]}", ""
        self.live.bump()

    def _train(self, fit: Fit) -> None:
        from methods.miner.baseline import BaselineConfig, BaselineTrainer, width_for
        from methods.miner.train import MinerTrainer

        try:
            cfg = fit.config.with_(out_dir="")
            trainer = MinerTrainer(cfg, fit.image, label="view")
            fit.trainer, fit.model = trainer, trainer.model
            stop = lambda: self._stop.is_set() or fit.closed.is_set()  # noqa: E731
            for j in range(cfg.levels - 1, -1, -1):
                fit.status = f"fitting MINER: level {j} ({cfg.levels - j}/{cfg.levels})"
                if not trainer.train_level(j, lambda p: None, stop):
                    fit.status = "stopped"
                    return
                rec = trainer.model.reconstruct(j).clamp(0, 1)
                with self._lock:
                    fit.levels[j] = rec
                self.live.bump()
            seconds = trainer.seconds
            fit.status = f"training the equal-size MLP baseline for MINER's {seconds:.0f} s"
            bcfg = BaselineConfig()
            bcfg = bcfg.with_(width=width_for(trainer.model.parameter_count(), bcfg), batch=16384)
            base = BaselineTrainer(bcfg, fit.image, budget_s=seconds, report_every_s=math.inf)
            base.run(lambda p: None, stop)
            if stop():
                return
            fit.baseline = area_pyramid(base.render(), cfg.levels)
            fit.status = ""
        except Exception as e:  # noqa: BLE001 - shown in the view, the studio keeps running
            fit.error = f"MINER fit failed: {' '.join(str(e).split())[:200]}"
            fit.status = ""
        self.live.bump()

    # ----- pixels ---------------------------------------------------------------------------------------------------
    @staticmethod
    def level_for_zoom(zoom: float, levels: int) -> float:
        """Continuous level shown at ``zoom``: log2(1 / zoom), clamped to [0, levels - 1]."""
        return float(min(max(-math.log2(max(zoom, 1e-9)), 0.0), levels - 1)) + 0.0  # no "-0.00"

    @staticmethod
    def _sample(img: torch.Tensor, uv: np.ndarray, size: tuple[int, int], nearest: bool) -> torch.Tensor:
        """``img`` (a pyramid level covering the whole (w, h) image) at image coordinates uv (rows, cols, 2)."""
        w, h = size
        grid = torch.from_numpy((uv * (2.0 / np.array([w, h])) - 1.0).astype(np.float32))[None]
        out = F.grid_sample(img.permute(2, 0, 1)[None], grid, mode="nearest" if nearest else "bilinear",
                            align_corners=False, padding_mode="border")
        return out[0].permute(1, 2, 0)

    def render(self, request: RenderRequest) -> Frame:
        t0 = time.perf_counter()
        o: MinerOptions = request.options
        fit = self.fit(o.opened or o.image)
        h, w = fit.size
        zoom = request.effective_zoom
        vp = Viewport(request.center, zoom, request.width, request.height, (w, h))
        uv = vp.pixel_coords()
        inside = (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
        out = np.full((request.height, request.width, 3), BACKGROUND, np.float32)
        with self._lock:
            done = dict(fit.levels)
        finest = min(done) if done else None
        J = fit.config.levels
        lvl = self.level_for_zoom(request.zoom, J)   # the slider's zoom: previews keep the level
        aux: dict[str, Any] = {"level": lvl, "zoom": zoom, "size": (w, h), "origin": fit.origin}
        if finest is None:
            if fit.pyramid is not None:
                shown = self._blend(fit.pyramid, lvl, o.blend, uv, (w, h), zoom)
                out[inside] = shown[inside] * 0.5 + 0.25
            aux["note"] = fit.error or (fit.status if fit.pyramid is None else
                                        f"{fit.status} - the original, dimmed, until the coarsest level is in")
        else:
            levels = [done.get(j, done[finest] if j < finest else None) for j in range(J)]
            shown_level = max(lvl, finest)
            left = self._blend(levels, shown_level, o.blend, uv, (w, h), zoom)
            right = None
            if o.compare == "original" and fit.pyramid is not None:
                right = self._blend(fit.pyramid, shown_level, o.blend, uv, (w, h), zoom)
            elif o.compare == "baseline" and fit.baseline is not None:
                right = self._blend(fit.baseline, shown_level, o.blend, uv, (w, h), zoom)
            split_x = request.width if right is None else int(round(o.split * request.width))
            cols = np.arange(request.width)[None, :]
            img = np.where((cols < split_x)[..., None], left, right if right is not None else left)
            out[inside] = img[inside]
            j = max(int(round(shown_level)), finest)                  # the level the overlays and stats describe
            if o.overlay != "none" and fit.model is not None:
                self._overlay(out, uv, inside, fit, j, o.overlay, (w, h), zoom, split_x)
            if right is not None and 0 < split_x < request.width:
                out[:, max(0, split_x - 1):split_x + 1] = SPLIT_COLOR
            aux.update(self._stats(fit, j, done))
            aux["shown_level"] = shown_level
            if fit.status:
                aux["note"] = fit.status
            if o.compare == "baseline" and fit.baseline is None:
                aux["note"] = fit.status or ("no baseline yet" if fit.own else "no baseline for a checkpoint or a "
                                             "job's model (`eval miner IMAGE` compares with one)")
            if fit.pyramid is None and (o.compare == "original" or o.overlay == "error"):
                aux["note"] = "; ".join(n for n in (fit.status, fit.note or "the original is not loaded yet") if n)
            if fit.error:
                aux["note"] = fit.error
        self._info = self._describe(aux)
        return Frame(out, aux=aux, timings={"render": time.perf_counter() - t0})

    def _blend(self, levels: list[torch.Tensor | None], lvl: float, blend: bool, uv: np.ndarray,
               size: tuple[int, int], zoom: float) -> np.ndarray:
        lo, hi = int(math.floor(lvl)), int(math.ceil(lvl))
        if not blend:
            lo = hi = int(round(lvl))
        a = self._sample(levels[lo], uv, size, nearest=zoom >= 2.0 and lo == 0)
        if hi == lo or levels[hi] is None:
            return a.clamp(0, 1).numpy()
        t = lvl - lo
        b = self._sample(levels[hi], uv, size, nearest=False)
        return ((1 - t) * a + t * b).clamp(0, 1).numpy()

    def _overlay(self, out: np.ndarray, uv: np.ndarray, inside: np.ndarray, fit: Fit, j: int, kind: str,
                 size: tuple[int, int], zoom: float, split_x: int) -> None:
        b = fit.config.block
        cell = b * 2 ** j                                           # block side in image pixels
        gx, gy = np.floor(uv[..., 0] / cell).astype(int), np.floor(uv[..., 1] / cell).astype(int)
        lv: Level | None = fit.model.levels.get(j)
        if lv is None:
            return
        gh, gw = lv.grid
        ok = inside & (gx >= 0) & (gx < gw) & (gy >= 0) & (gy < gh)
        left = np.arange(out.shape[1])[None, :] < split_x
        ok &= left
        ids = np.clip(gy, 0, gh - 1) * gw + np.clip(gx, 0, gw - 1)
        if kind == "grid":
            edge = (np.abs(uv[..., 0] / cell - np.round(uv[..., 0] / cell)) * cell * zoom < 0.75) | \
                   (np.abs(uv[..., 1] / cell - np.round(uv[..., 1] / cell)) * cell * zoom < 0.75)
            out[ok & edge] = 0.5 * out[ok & edge] + 0.5 * np.array([1.0, 1.0, 1.0], np.float32)
            return
        if kind == "blocks":
            active = lv.active.numpy()
            pruned = (lv.pruned.numpy() > 0) if lv.pruned is not None else np.zeros_like(active)
            color = np.zeros((gh * gw, 3), np.float32)
            alpha = np.zeros(gh * gw, np.float32)
            color[active & ~pruned] = (1.0, 0.25, 0.2)             # learned to the end (hard blocks)
            color[active & pruned] = (0.2, 1.0, 0.35)              # converged and pruned
            alpha[active] = 0.35
        else:  # error heat map: per-block PSNR of the level against the original's level
            with self._lock:
                rec = fit.levels.get(j)
            if rec is None or fit.pyramid is None:
                return
            ref = fit.pyramid[j][:rec.shape[0], :rec.shape[1]]
            err = (rec - ref).pow(2).mean(-1)
            ph, pw = gh * b, gw * b
            err = F.pad(err, (0, pw - err.shape[1], 0, ph - err.shape[0]))
            mse = err.reshape(gh, b, gw, b).mean((1, 3)).reshape(-1).numpy()
            psnr = 10 * np.log10(1.0 / np.maximum(mse, 1e-10))
            t = np.clip((45.0 - psnr) / 25.0, 0.0, 1.0)           # 45 dB blue ... 20 dB red
            color = np.stack([t, 0.2 * np.ones_like(t), 1.0 - t], -1).astype(np.float32)
            alpha = np.full(gh * gw, 0.45, np.float32)
        a = alpha[ids][..., None]
        out[ok] = (out * (1 - a) + color[ids] * a)[ok]

    def _stats(self, fit: Fit, j: int, done: dict[int, torch.Tensor]) -> dict[str, Any]:
        model = fit.model
        lv = model.levels.get(j) if model is not None else None
        stats: dict[str, Any] = {"level_index": j}
        if lv is not None and lv.done:
            n = lv.active.numel()
            stats.update(blocks=n, active=int(lv.active.sum()),
                         pruned=int((lv.pruned > 0).sum()) if lv.pruned is not None else 0)
        rec = done.get(j)
        if rec is not None and fit.pyramid is not None:
            stats["psnr"] = psnr_of(rec, fit.pyramid[j][:rec.shape[0], :rec.shape[1]])
        if model is not None:
            stats["params"] = model.parameter_count()
        return stats

    @staticmethod
    def _describe(aux: dict[str, Any]) -> str:
        lvl = aux.get("shown_level", aux.get("level", 0.0))
        lo, hi = int(math.floor(lvl)), int(math.ceil(lvl))
        parts = [f"MINER level {lvl:.2f}" + (f" ({lo}-{hi} blend)" if hi != lo else "")]
        if "blocks" in aux:
            parts.append(f"level {aux['level_index']}: {aux['active']}/{aux['blocks']} blocks active, "
                         f"{aux['pruned']} pruned")
        if "psnr" in aux:
            parts.append(f"PSNR {aux['psnr']:.2f} dB")
        if "params" in aux:
            parts.append(f"{aux['params']:,} params")
        if aux.get("note"):
            parts.append(aux["note"])
        return " · ".join(parts)

    def describe(self) -> str:
        return self._info or "MINER: zoom out to see coarser pyramid levels"


_SOURCES: "weakref.WeakSet[MinerSource]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for src in list(_SOURCES):
        src.close()


def demo_source() -> MinerSource:
    return MinerSource()
