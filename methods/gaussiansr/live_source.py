"""The SR view's source: an image at any continuous zoom through nearest / bicubic / LIIF / GaussianSR, a split
between two modes, "pretend-LR" (super-resolve a downscaled copy and measure PSNR against the original) and an
overlay of the per-pixel Gaussians when zoomed in far.

Zoom is screen pixels per pixel of the shown (LR) image, so zoom 3.7 is x3.7 super-resolution. Only the visible
screen pixels are queried; the encoder runs on the visible LR region plus a margin as wide as its receptive field
(features there equal the whole image's), cached while the view stays inside it, so a 5K photo costs what the
window shows. The worker's previews (render_scale < 1) give the coarse-first frames.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from assets.photos import list_photos
from methods.gaussiansr.evaluate import degrade, resize, sr_psnr
from methods.gaussiansr.model import QUERY_CHUNK, SRModel, normalise, receptive_margin, to_crop, upscale
from render.draw import draw_ellipses
from render.live import Frame, RenderRequest
from render.options import option
from render.viewport import Viewport

VIEW_MODES = ("nearest", "bicubic", "liif", "gaussiansr")
MODE_LABELS = ("nearest", "bicubic", "LIIF", "GaussianSR")
BACKGROUND = 0.12
SPLIT_COLOR = (1.0, 0.85, 0.2)
ELLIPSE_COLOR = (0.2, 1.0, 0.6)
OVERLAY_MIN_ZOOM = 6.0     # draw the Gaussians from this many screen pixels per LR pixel
OVERLAY_MAX = 6000         # at most this many ellipses per frame
PSNR_CROP = 384            # pretend-LR PSNR on the original's centre crop of at most this size
KEEP_OPENED = 2            # opened image files kept in memory (the view shows the newest)


@dataclass(frozen=True)
class SROptions:
    image: str = option("chelsea", choices=tuple(list_photos()), help="a bundled photo (File > Open for your own)")
    mode: str = option("gaussiansr", choices=VIEW_MODES, labels=MODE_LABELS, label="upscaler",
                       help="how the image is magnified (left of the split line)")
    compare: str = option("bicubic", choices=("off",) + VIEW_MODES, labels=("off",) + MODE_LABELS,
                          label="split with", help="the upscaler right of the split line")
    split: float = option(0.5, min=0.0, max=1.0, label="split position", help="where the split line is")
    pretend_lr: float = option(4.0, min=1.0, max=8.0, label="pretend-LR factor",
                               help="show a copy downscaled by this factor (so zoom = factor matches the original) "
                                    "and report PSNR against the original; 1 = the image itself")
    gaussians: bool = option(True, label="Gaussian overlay",
                             help=f"GaussianSR: draw each LR pixel's Gaussian (1 sigma) at zoom >= "
                                  f"{OVERLAY_MIN_ZOOM:g}")
    opened: str = ""  # internal: an opened image file (SRSource.open_image key), shown instead of ``image``


class RegionEncoder:
    """Encodings of LR regions of one image, the last one kept while requests stay inside it."""

    def __init__(self, model: SRModel, lr: torch.Tensor) -> None:
        self.model, self.lr = model.eval(), lr
        self.margin = receptive_margin(model.config)
        self._last: tuple[tuple[int, int, int, int], Any] | None = None
        self._lock = threading.Lock()

    def get(self, y0: int, y1: int, x0: int, x1: int) -> tuple[Any, tuple[int, int, int, int]]:
        """(encoding, (cy0, cy1, cx0, cx1)): a crop containing LR rows y0..y1 and columns x0..x1 with margin."""
        h, w = self.lr.shape[:2]
        with self._lock:
            if self._last is not None:
                (cy0, cy1, cx0, cx1), enc = self._last
                if (cy0 == 0 or cy0 <= y0 - self.margin) and (cx0 == 0 or cx0 <= x0 - self.margin) and \
                        (cy1 == h or cy1 >= y1 + self.margin) and (cx1 == w or cx1 >= x1 + self.margin):
                    return enc, self._last[0]
            pad_y, pad_x = self.margin + (y1 - y0) // 4, self.margin + (x1 - x0) // 4  # room to pan
            box = (max(0, y0 - pad_y), min(h, y1 + pad_y), max(0, x0 - pad_x), min(w, x1 + pad_x))
            crop = self.lr[box[0]:box[1], box[2]:box[3]]
            with torch.no_grad():
                enc = self.model.encode(normalise(crop.permute(2, 0, 1)[None]))
            self._last = (box, enc)
            return enc, box


def load_bundled(name: str) -> tuple[SRModel | None, str]:
    """(model, "") or (None, why) for a bundled checkpoint (assets/gaussiansr/)."""
    from methods.gaussiansr.cli import bundled_checkpoint
    from methods.gaussiansr.train import load_sr_model

    path = bundled_checkpoint(name)
    if not path.is_file():
        return None, (f"no bundled {name} model ({path.name}); train one with `main.py train gaussiansr --model "
                      f"{name} --bundle`")
    try:
        return load_sr_model(path)[0], ""
    except Exception as e:  # noqa: BLE001 - a broken bundle must not take the view down
        return None, f"{path.name}: {' '.join(str(e).split())[:160]}"


class SRSource:
    Options = SROptions

    def __init__(self, models: dict[str, SRModel] | None = None) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, SRModel | None] = dict(models or {})
        self._problems: dict[str, str] = {}
        self._encoders: dict[tuple, RegionEncoder] = {}
        self._shown_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._psnr: dict[tuple, float] = {}
        self._custom: dict[str, np.ndarray] = {}
        self.image_size = (1, 1)
        self.notes: list[str] = []

    # ----- inputs --------------------------------------------------------------------------------------------------
    def open_image(self, path: str) -> str:
        """Add an image file; returns its key for ``SROptions.image`` (one-line ValueError for bad files)."""
        from assets.images import load_rgb

        img, _, notes = load_rgb(path)
        if min(img.shape[:2]) < 2:
            raise ValueError(f"{path}: a {img.shape[1]}x{img.shape[0]} image is too small to super-resolve")
        key = str(Path(path).expanduser())
        with self._lock:
            self._custom.pop(key, None)
            self._custom[key] = img
            for old in list(self._custom)[:-KEEP_OPENED]:  # a 5120x2880 photo is 177 MB as float32
                del self._custom[old]
            self.notes = [f"{Path(path).name}: {n}" for n in notes]
        return key

    def _original(self, name: str) -> np.ndarray:
        from assets.photos import list_photos, load_photo

        with self._lock:
            if name in self._custom:
                return self._custom[name]
        if name not in list_photos():
            raise ValueError(f"{name} was closed (only the last {KEEP_OPENED} opened images are kept); open it again")
        return load_photo(name)

    def _model(self, mode: str) -> SRModel | None:
        with self._lock:
            if mode not in self._models:
                self._models[mode], self._problems[mode] = load_bundled(mode)
            return self._models[mode]

    def _shown(self, name: str, factor: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(original cropped to a whole number of LR pixels, the LR image the view shows)."""
        key = (name, round(factor, 4))
        with self._lock:
            hit = self._shown_cache.get(key)
        if hit is None:
            orig = torch.from_numpy(np.ascontiguousarray(self._original(name)))
            hit = degrade(orig, factor) if factor > 1.0 and min(orig.shape[:2]) / factor >= 2 else (orig, orig)
            with self._lock:  # one image at a time: drop what belongs to another
                self._shown_cache = {k: v for k, v in self._shown_cache.items() if k[0] == name}
                self._encoders = {k: v for k, v in self._encoders.items() if k[1] == name}
                self._shown_cache[key] = hit
        return hit

    def _encoder(self, mode: str, name: str, factor: float, lr: torch.Tensor) -> RegionEncoder | None:
        model = self._model(mode)
        if model is None:
            return None
        key = ("enc", name, round(factor, 4), mode)
        with self._lock:
            enc = self._encoders.get(key)
            if enc is None:
                enc = self._encoders[key] = RegionEncoder(model, lr)
        return enc

    # ----- pixels --------------------------------------------------------------------------------------------------
    def _sample(self, mode: str, lr: torch.Tensor, uv: np.ndarray, zoom: float, name: str,
                factor: float) -> tuple[np.ndarray, str]:
        """RGB (rows, cols, 3) at a regular grid of LR-image points uv (rows, cols, 2) (pixel centres at +0.5),
        spaced 1/zoom LR pixels apart (one screen pixel)."""
        h, w = lr.shape[:2]
        if mode == "nearest":
            iu = np.clip(np.floor(uv[..., 0]).astype(int), 0, w - 1)
            iv = np.clip(np.floor(uv[..., 1]).astype(int), 0, h - 1)
            return lr.numpy()[iv, iu], mode
        if mode != "bicubic":
            enc = self._encoder(mode, name, factor, lr)
            if enc is not None:
                return self._query(enc, uv, zoom), mode
            mode = "bicubic"  # no model: say so in the info line, draw bicubic
        grid = torch.from_numpy((uv * (2.0 / np.array([w, h])) - 1.0).astype(np.float32))[None]
        out = F.grid_sample(lr.permute(2, 0, 1)[None], grid, mode="bicubic", align_corners=False,
                            padding_mode="border")
        return out[0].permute(1, 2, 0).clamp(0, 1).numpy(), mode

    @staticmethod
    def _query(region: RegionEncoder, uv: np.ndarray, zoom: float) -> np.ndarray:
        y0, x0 = int(np.floor(uv[..., 1].min())), int(np.floor(uv[..., 0].min()))
        y1, x1 = int(np.ceil(uv[..., 1].max())) + 1, int(np.ceil(uv[..., 0].max())) + 1
        enc, box = region.get(y0, y1, x0, x1)
        h, w = region.lr.shape[:2]
        full = torch.from_numpy((uv * (2.0 / np.array([w, h])) - 1.0).astype(np.float32))
        grid, cell = to_crop(full, torch.tensor([[2.0 / (w * zoom), 2.0 / (h * zoom)]]), box, h, w)
        rows = max(1, QUERY_CHUNK // grid.shape[1])
        with torch.no_grad():
            out = [region.model.query_grid(enc, grid[r:r + rows], cell) for r in range(0, grid.shape[0], rows)]
        return (torch.cat(out) * 0.5 + 0.5).clamp(0, 1).numpy()

    def pretend_psnr(self, mode: str, name: str, factor: float) -> float | None:
        """PSNR (RGB, shave factor + 6) of ``mode`` at x``factor`` on the original's centre crop (cached)."""
        key = (mode, name, round(factor, 4))
        if key in self._psnr:
            return self._psnr[key]
        orig = torch.from_numpy(np.ascontiguousarray(self._original(name)))
        h, w = orig.shape[:2]
        side_y, side_x = min(h, PSNR_CROP), min(w, PSNR_CROP)
        crop = orig[(h - side_y) // 2:(h - side_y) // 2 + side_y, (w - side_x) // 2:(w - side_x) // 2 + side_x]
        hr, lr = degrade(crop, factor)
        if mode == "nearest":
            sr = F.interpolate(lr.permute(2, 0, 1)[None], size=hr.shape[:2], mode="nearest")[0].permute(1, 2, 0)
        elif mode == "bicubic":
            sr = resize(lr, hr.shape[0], hr.shape[1])
        else:
            model = self._model(mode)
            if model is None:
                return None
            sr = upscale(model, lr, hr.shape[0], hr.shape[1])
        self._psnr[key] = value = sr_psnr(sr, hr, factor, "rgb_psnr")
        return value

    # ----- render --------------------------------------------------------------------------------------------------
    def render(self, request: RenderRequest) -> Frame:
        t0 = time.perf_counter()
        o: SROptions = request.options
        factor = max(1.0, float(o.pretend_lr)) if math.isfinite(float(o.pretend_lr)) else 1.0
        if o.opened:
            o = replace(o, image=o.opened)
        orig, lr = self._shown(o.image, factor)
        h, w = lr.shape[:2]
        self.image_size = (w, h)
        zoom = request.effective_zoom
        vp = Viewport(request.center, zoom, request.width, request.height, (w, h))
        uv = vp.pixel_coords()
        inside = (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
        out = np.full((request.height, request.width, 3), BACKGROUND, np.float32)
        split_x = request.width if o.compare == "off" else int(round(o.split * request.width))
        cols = np.arange(request.width)[None, :]
        used = {}
        for side, mode in (("left", o.mode), ("right", o.compare)):
            if mode == "off":
                continue
            sel = inside & ((cols < split_x) if side == "left" else (cols >= split_x))
            if not sel.any():
                continue
            rows_, cols_ = np.flatnonzero(sel.any(1)), np.flatnonzero(sel.any(0))  # a rectangle: image ∩ side
            r0, r1, c0, c1 = rows_[0], rows_[-1] + 1, cols_[0], cols_[-1] + 1
            out[r0:r1, c0:c1], used[side] = self._sample(mode, lr, uv[r0:r1, c0:c1], zoom, o.image, factor)
        if o.gaussians and zoom >= OVERLAY_MIN_ZOOM and "gaussiansr" in (o.mode, o.compare):
            self._draw_gaussians(out, vp, o, lr, factor, split_x)
        if o.compare != "off" and 0 < split_x < request.width:
            out[:, max(0, split_x - 1):split_x + 1] = SPLIT_COLOR
        aux: dict[str, Any] = {"zoom": zoom, "lr_size": (w, h), "original_size": (orig.shape[1], orig.shape[0]),
                               "modes": used, "factor": factor}
        problems = [self._problems[m] for m in (o.mode, o.compare) if self._problems.get(m)]
        if problems:
            aux["note"] = problems[0]
        if factor > 1.0 and not request.preview:
            aux["psnr"] = {m: self.pretend_psnr(m, o.image, factor) for m in {o.mode, o.compare} - {"off"}}
        return Frame(out, aux=aux, timings={"render": time.perf_counter() - t0})

    def _draw_gaussians(self, out: np.ndarray, vp: Viewport, o: SROptions, lr: torch.Tensor, factor: float,
                        split_x: int) -> None:
        """1-sigma ellipses of the chosen bank entries of the visible LR pixels, on the GaussianSR side."""
        region = self._encoder("gaussiansr", o.image, factor, lr)
        if region is None:
            return
        h, w = lr.shape[:2]
        (u0, v0), (u1, v1) = [np.array(p) for p in zip(*vp.to_image(np.array([0.0, vp.width]),
                                                                        np.array([0.0, vp.height])))]
        x0, x1 = max(0, int(u0)), min(w, int(math.ceil(u1)))
        y0, y1 = max(0, int(v0)), min(h, int(math.ceil(v1)))
        if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) > OVERLAY_MAX:
            return
        enc, (cy0, _, cx0, _) = region.get(y0, y1, x0, x1)
        g = enc.gauss[0, :, y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0].reshape(4, -1).T.numpy().astype(np.float64)
        sx, sy, rho, op = g.T
        covs = vp.zoom ** 2 * np.stack([np.stack([sx * sx, rho * sx * sy], -1),
                                        np.stack([rho * sx * sy, sy * sy], -1)], -2)
        gy, gx = np.meshgrid(np.arange(y0, y1) + 0.5, np.arange(x0, x1) + 0.5, indexing="ij")
        centres = np.stack(vp.to_screen(gx.reshape(-1), gy.reshape(-1)), -1)
        keep = (centres[:, 0] < split_x) == (o.mode == "gaussiansr")  # on the GaussianSR side of the line
        colors = np.asarray(ELLIPSE_COLOR)[None] * (0.4 + 0.6 * op[:, None])  # brighter = more opaque
        canvas = out.copy()
        draw_ellipses(canvas, centres[keep], covs[keep], 1.0, colors[keep])
        side = (np.arange(out.shape[1]) < split_x) == (o.mode == "gaussiansr")
        out[:, side] = canvas[:, side]  # ellipses never spill over the split line

    def describe(self) -> str:
        return "SR: zoom = magnification of the shown image; pretend-LR shows a downscaled copy"


def demo_source() -> SRSource:
    return SRSource()
