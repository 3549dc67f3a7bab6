"""LiveSource for Gaussian scale-space fields: one forward pass draws a zoomable viewport blurred by any Σ.

Field coordinates (``methods/field.py``): x ∈ [-1, 1]² with coordinate 0 along columns, 1 along rows, ±1 on the
border pixel centres of the training image (N pixels ⇒ σ_px = σ·(N−1)/2).

Request options are :class:`ScaleSpaceOptions` (each field documents itself); the request's ``center`` is the
viewport centre in training-image pixels from the image centre and its ``zoom × render_scale`` the screen pixels
per training pixel (:class:`render.viewport.Viewport`, the one 2D mapping). Modes: isotropic Σ = σ²·I;
anisotropic Σ = R(θ)·diag(σ², σ²/r²)·R(θ)ᵀ (:func:`covariance`); foveated, a per-pixel isotropic variance that grows
with the distance from ``fovea`` (:func:`foveated_variances`), still one batched forward pass. Anti-aliasing adds
the screen pixel's footprint Σ_px = (0.5 px / zoom in field units)²·I. Compare draws [field | exact | |error|·gain]
and reports the PSNR over the image area (foveated: against exact blurs at :data:`FOVEA_LEVELS` σ levels,
interpolated per pixel — ``aux["compare_note"]`` says so). The ellipse overlay is the **2σ** ellipse of the Σ in
use (foveated: the sharp disc's edge).

Exact blurs (:func:`methods.ngssf.ground_truth.gaussian_blur_exact`) are the slow part on CPU, so they are cached
by covariance. The field of a running training job is drawn from its snapshots (methods/live_training.py), taken
once per request ``revision``, so drawing never blocks a training step.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from methods.field import Field, evaluate_points
from methods.live_training import LiveTraining, ModelSlot
from methods.metrics import psnr
from render.colormap import colormap
from render.live import Frame, RenderRequest
from render.options import option
from render.tensors import to_numpy
from render.draw import draw_outline, ellipse_points
from render.viewport import Viewport, from_field, to_field

MODES = ("isotropic", "anisotropic", "foveated")
BACKGROUND = 0.1
FOVEA_LEVELS = 8  # exact blurs interpolated for the foveated reference
ELLIPSE_K = 2.0  # the overlay shows the 2σ ellipse
ELLIPSE_COLOR = (1.0, 0.85, 0.2)
GAP = 2  # pixels between compare panels
CHUNK = 1 << 14


# ----- exact blur ------------------------------------------------------------------------------------------------
def exact_blur(image: np.ndarray, cov: Any) -> np.ndarray:
    """The ground truth: :func:`methods.ngssf.ground_truth.gaussian_blur_exact` (field units, reflection)."""
    from methods.ngssf.ground_truth import gaussian_blur_exact

    return np.asarray(gaussian_blur_exact(np.asarray(image, dtype=np.float32), cov), dtype=np.float32)


# ----- covariances -----------------------------------------------------------------------------------------------
def covariance(variance: float, ratio: float = 1.0, angle_deg: float = 0.0) -> np.ndarray:
    """Σ = R(θ)·diag(σ², σ²/r²)·R(θ)ᵀ: major-axis variance σ², minor σ²/r², major axis at θ degrees from +x."""
    if variance < 0 or ratio < 1:
        raise ValueError(f"need variance ≥ 0 and anisotropy ratio ≥ 1, got {variance:g} and {ratio:g}")
    t = math.radians(angle_deg)
    r = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return r @ np.diag([variance, variance / ratio ** 2]) @ r.T


def pixel_footprint(zoom: float, image_size: tuple[int, int]) -> np.ndarray:
    """Σ_px: a Gaussian of σ = 0.5 screen pixel (= 0.5/zoom training pixels) in field units; image_size = (w, h)."""
    w, h = image_size
    sx, sy = 1.0 / (zoom * max(w - 1, 1)), 1.0 / (zoom * max(h - 1, 1))  # 0.5/zoom px · 2/(N−1)
    return np.diag([sx * sx, sy * sy])


def foveated_variances(points: np.ndarray | torch.Tensor, fovea: tuple[float, float], max_variance: float,
                       radius: float = 0.15, falloff: float = 1.0) -> np.ndarray:
    """σ²(d) = σ²_max·clamp((d − r0)/(falloff − r0), 0, 1)²: sharp within r0 of the fovea, full blur at ``falloff``
    (distances in field units), so σ grows linearly with eccentricity."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    d = np.hypot(p[:, 0] - fovea[0], p[:, 1] - fovea[1])
    t = np.clip((d - radius) / max(falloff - radius, 1e-6), 0.0, 1.0)
    return (max_variance * t * t).astype(np.float64)


def ellipse_outline(cov: np.ndarray, zoom: float, image_size: tuple[int, int], k: float = ELLIPSE_K,
                    n: int | None = None) -> np.ndarray:
    """(n, 2) screen-pixel offsets (x right, y down) of the k-σ ellipse of ``cov`` (field units) at ``zoom``."""
    w, h = image_size
    s = np.diag([(w - 1) / 2.0 * zoom, (h - 1) / 2.0 * zoom])
    return ellipse_points(s @ np.asarray(cov, dtype=np.float64) @ s, k, n)


def viewport_points(center: tuple[float, float], zoom: float, width: int, height: int,
                    image_size: tuple[int, int]) -> np.ndarray:
    """(H, W, 2) field coordinates of a viewport's pixel centres (:class:`render.viewport.Viewport`: ``center`` in
    image pixels from the image centre)."""
    uv = Viewport(center, zoom, width, height, image_size).pixel_coords()
    return to_field(uv, image_size).astype(np.float32)


def inside_mask(points: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Viewport pixels whose centre falls on the image (its pixels reach half a pixel beyond ±1)."""
    w, h = image_size
    mx, my = 1 + 1.0 / max(w - 1, 1), 1 + 1.0 / max(h - 1, 1)
    return (np.abs(points[..., 0]) <= mx) & (np.abs(points[..., 1]) <= my)


def sample_field_image(img: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of an HxWxC image (field units: ±1 on border pixel centres) at (..., 2) points."""
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    g = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)).reshape(1, -1, 1, 2)
    out = F.grid_sample(t, g, mode="bilinear", padding_mode="border", align_corners=True)
    return to_numpy(out[0, :, :, 0].T).reshape(*points.shape[:-1], img.shape[2])


class BlurCache:
    """Exact blurs of one image keyed by covariance (rounded), least recently used dropped first."""

    def __init__(self, image: np.ndarray, maxsize: int = 24) -> None:
        self.image = np.ascontiguousarray(image, dtype=np.float32)
        self.maxsize = maxsize
        self._store: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.misses = 0

    @staticmethod
    def key(cov: np.ndarray) -> tuple:
        c = np.asarray(cov, dtype=np.float64)
        return tuple(float(f"{v:.5g}") for v in (c[0, 0], c[0, 1], c[1, 1]))

    def get(self, cov: np.ndarray) -> np.ndarray:
        k = self.key(cov)
        with self._lock:
            if k in self._store:
                self._store.move_to_end(k)
                return self._store[k]
        c = np.array([[k[0], k[1]], [k[1], k[2]]])
        out = self.image if k == (0.0, 0.0, 0.0) else exact_blur(self.image, c)
        with self._lock:
            self.misses += 1
            self._store[k] = out
            while len(self._store) > self.maxsize:
                self._store.popitem(last=False)
        return out

    def levels(self, points: np.ndarray, variances: np.ndarray, base: np.ndarray,
               sigmas: np.ndarray) -> np.ndarray:
        """Per-point σ²·I + ``base`` blur (points (P, 2), variances (P,)) → (P, C), approximated by the exact blurs
        at the increasing σ levels ``sigmas`` (the first 0) interpolated linearly in σ."""
        sig = np.clip(np.sqrt(np.clip(variances, 0, None)), sigmas[0], sigmas[-1])
        hi = np.clip(np.searchsorted(sigmas, sig, side="left"), 1, len(sigmas) - 1) if len(sigmas) > 1 else \
            np.zeros(len(sig), int)
        lo = np.maximum(hi - 1, 0)
        span = np.maximum(sigmas[hi] - sigmas[lo], 1e-30)
        frac = np.where(hi > lo, (sig - sigmas[lo]) / span, 0.0)[:, None]
        out = np.zeros((len(points), self.image.shape[2]), np.float32)
        for k, s in enumerate(sigmas):
            w = np.where(lo == k, 1 - frac[:, 0], 0.0) + np.where((hi == k) & (hi > lo), frac[:, 0], 0.0)
            sel = w > 0
            if sel.any():
                img = self.get(base + s * s * np.eye(2))
                out[sel] += w[sel, None].astype(np.float32) * sample_field_image(img, points[sel])
        return out


def fovea_levels(max_variance: float, n: int = FOVEA_LEVELS) -> np.ndarray:
    """σ levels of the foveated reference: ``n`` evenly spaced in [0, σ_max]."""
    return np.linspace(0.0, math.sqrt(max(max_variance, 0.0)), n) if max_variance > 0 else np.zeros(1)


def geometric_levels(max_sigma: float, first: float = 1e-3, step: float = math.sqrt(2)) -> np.ndarray:
    """0 then first·step^k up to ≥ max_sigma: a fixed grid, so batches with different ranges share cached blurs."""
    out = [0.0, first]
    while out[-1] < max_sigma:
        out.append(out[-1] * step)
    return np.array(out)


class ExactBlurField(Field):
    """The exact scale space of an image as a Field (the fallback when no neural field is available).

    One covariance for the whole batch is exact (a cached exact blur sampled bilinearly); per-point covariances
    use :meth:`BlurCache.levels` on the mean variance (trace/2) — exact for isotropic per-point blur up to the σ
    interpolation."""

    anisotropic = True
    name = "exact blur"

    def __init__(self, image: np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0)) -> None:
        img = np.asarray(image, dtype=np.float32)
        lo, hi = value_range
        self.cache = BlurCache(img * (hi - lo) + lo)
        self.channels = img.shape[2]

    def evaluate(self, x: torch.Tensor, cov: torch.Tensor | None) -> torch.Tensor:
        pts = to_numpy(x)
        if cov is None:
            return torch.from_numpy(sample_field_image(self.cache.get(np.zeros((2, 2))), pts))
        if cov.shape[0] == 0 or cov.stride(0) == 0:  # one covariance expanded over the batch
            return torch.from_numpy(sample_field_image(self.cache.get(to_numpy(cov[0].double())), pts))
        c = to_numpy(cov.double())
        if np.allclose(c, c[:1], rtol=1e-6, atol=1e-12):
            return torch.from_numpy(sample_field_image(self.cache.get(c[0]), pts))
        var = 0.5 * (c[:, 0, 0] + c[:, 1, 1])
        sig = geometric_levels(math.sqrt(float(var.max())))
        return torch.from_numpy(self.cache.levels(pts, var, np.zeros((2, 2)), sig))


# ----- the source ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScaleSpaceOptions:
    mode: str = option("isotropic", choices=MODES, widget="radio", label="blur",
                       help="isotropic σ²·I · anisotropic ellipse · foveated (sharp around the cursor)")
    variance: float = option(1e-4, min=0.0, max=1e-1, log=True, label="variance",
                             help="σ² in field units (the maximum in foveated mode)")
    ratio: float = option(4.0, min=1.0, max=20.0, help="anisotropic: major/minor axis ratio")
    angle: float = option(0.0, min=0.0, max=180.0, help="anisotropic: major axis angle in degrees")
    antialias: bool = option(True, label="anti-alias by zoom", help="add the screen pixel's footprint")
    compare: bool = option(False, label="compare with exact", help="field | exact blur | |error| x4, with PSNR")
    ellipse: bool = option(True, label="2-sigma ellipse", help="draw the 2σ ellipse of the blur in use")
    fovea: tuple[float, float] = (0.0, 0.0)  # field units; the view sets it from the cursor
    fovea_radius: float = 0.15
    error_gain: float = 4.0


class ScaleSpaceSource:
    """Draws a scale-space field (neural or exact) into a zoomable viewport; see the module docstring."""

    Options = ScaleSpaceOptions

    def __init__(self, field: Field, image: np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0),
                 label: str = "") -> None:
        self._swap = threading.Lock()
        self.slot = ModelSlot()
        self.set_field(field, image, value_range, label)

    def _set_image(self, image: np.ndarray) -> None:
        img = np.asarray(image, dtype=np.float32)
        if img.ndim == 2:
            img = img[..., None]
        if img.ndim != 3 or img.shape[2] not in (1, 3, 4) or not np.all(np.isfinite(img)):
            raise ValueError(f"reference image must be a finite HxWx3 array, got shape {img.shape}")
        img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., :3]
        self.image = img
        self.cache = BlurCache(img)

    def set_field(self, field: Field, image: np.ndarray | None = None,
                  value_range: tuple[float, float] = (-1.0, 1.0), label: str = "") -> None:
        """Show another field; ``image`` (HxWx3 in [0, 1]) is its training image (the exact reference)."""
        with self._swap:
            if image is not None:
                self._set_image(image)
            self.slot.show(field)
            self.value_range = value_range
            self.label = label or getattr(field, "name", type(field).__name__)

    def follow(self, live: LiveTraining, label: str = "training") -> None:
        """Show the field of a running training job (its snapshot's ``info["image"]`` is the reference)."""
        snap = live.snapshot()
        image = snap.info.get("image")
        if image is None:
            raise ValueError("the training job has no picture to show")
        with self._swap:
            self._set_image(image)
            self.slot.follow(live)
            self.value_range = (-1.0, 1.0)
            self.label = label

    @property
    def image_size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]

    def query(self, field: Field, points: np.ndarray, cov: Any) -> np.ndarray:
        """Field values in display units [0, 1] at (P, 2) points; ``cov`` is None, (2,2) or per point (P,)/(P,2,2)
        (:func:`methods.field.evaluate_points`)."""
        lo, hi = self.value_range
        return (evaluate_points(field, points, cov, CHUNK)[:, :3] - lo) / (hi - lo)

    # ----- covariance of a request ------------------------------------------------------------------------------
    def request_cov(self, request: RenderRequest, zoom: float | None = None) -> np.ndarray:
        """The uniform Σ of a request (field units), anti-alias footprint included (foveated: at the fovea, 0)."""
        o: ScaleSpaceOptions = request.options
        zoom = request.effective_zoom if zoom is None else zoom
        mode, var = o.mode, float(o.variance)
        if mode == "anisotropic":
            cov = covariance(var, float(o.ratio), float(o.angle))
        elif mode == "foveated":
            cov = np.zeros((2, 2))
        elif mode == "isotropic":
            cov = var * np.eye(2)
        else:
            raise ValueError(f"unknown mode '{mode}'; choose one of {', '.join(MODES)}")
        if o.antialias:
            cov = cov + pixel_footprint(zoom, self.image_size)
        return cov

    # ----- render -----------------------------------------------------------------------------------------------
    def render(self, request: RenderRequest) -> Frame:
        t0 = time.perf_counter()
        o: ScaleSpaceOptions = request.options
        with self._swap:
            field, _ = self.slot.get(request.revision)
            image_size, cache = self.image_size, self.cache
        mode = o.mode
        zoom = request.effective_zoom
        compare = bool(o.compare)
        width, height = request.width, request.height
        pw = max(1, (width - 2 * GAP) // 3) if compare else width
        pts = viewport_points(request.center, zoom, pw, height, image_size)
        mask = inside_mask(pts, image_size)
        inner = pts[mask]
        base = self.request_cov(request, zoom)
        fovea = tuple(o.fovea)
        var_max = float(o.variance)
        radius = float(o.fovea_radius)
        if mode == "foveated":
            pv = foveated_variances(inner, fovea, var_max, radius)
            # isotropic per-point variances (B,) when nothing else is added: isotropic-only fields accept these
            cov_q = pv + 0.0 if np.allclose(base, 0) else pv[:, None, None] * np.eye(2)[None] + base[None]
        else:
            cov_q = None if np.allclose(base, 0, atol=0) else base
        t1 = time.perf_counter()
        vals = self.query(field, inner, cov_q) if len(inner) else np.zeros((0, 3), np.float32)
        t_field = time.perf_counter() - t1
        panel = np.full((height, pw, 3), BACKGROUND, np.float32)
        panel[mask] = np.clip(vals, 0, 1)
        aux: dict[str, Any] = {"mode": mode, "label": self.label, "cov": base.tolist(), "zoom": zoom,
                               "image_size": image_size,
                               "sigma_px": math.sqrt(max(float(np.linalg.eigvalsh(base).max()), 0.0))
                               * (max(image_size) - 1) / 2}
        timings = {"field": t_field}
        ecx, ecy = Viewport(request.center, zoom, pw, height, image_size).to_screen(
            *from_field(np.array(fovea), image_size)) if mode == "foveated" else (pw / 2, height / 2)
        panels = [panel]
        if compare:
            t2 = time.perf_counter()
            if mode == "foveated":
                ref_vals = cache.levels(inner, pv, base, fovea_levels(var_max)) if len(inner) else \
                    np.zeros((0, 3), np.float32)
                aux["compare_note"] = f"reference: exact blurs at {FOVEA_LEVELS} sigma levels, interpolated per pixel"
            else:
                ref_vals = sample_field_image(cache.get(base), inner) if len(inner) else np.zeros((0, 3))
            timings["exact"] = time.perf_counter() - t2
            ref = np.full_like(panel, BACKGROUND)
            ref[mask] = np.clip(ref_vals, 0, 1)
            gain = float(o.error_gain)
            err = np.abs(panel - ref).mean(axis=2) * gain
            err_img = colormap(err, lo=0.0, hi=1.0)
            err_img[~mask] = BACKGROUND
            aux["psnr"] = psnr(panel, ref, mask=mask)
            aux["error_gain"] = gain
            panels = [panel, ref, err_img]
        if o.ellipse:
            # foveated: the circle where blurring starts (r0); otherwise the 2σ ellipse of the Σ in use
            outline = ellipse_outline(radius * radius * np.eye(2), zoom, image_size, k=1.0) \
                if mode == "foveated" else ellipse_outline(base, zoom, image_size)
            for p in panels[:2]:
                _draw_points(p, outline + np.array([ecx, ecy]))
        if compare:
            sep = np.full((height, GAP, 3), 0.35, np.float32)
            out = np.concatenate([panels[0], sep, panels[1], sep, panels[2]], axis=1)
            if out.shape[1] < width:
                out = np.pad(out, ((0, 0), (0, width - out.shape[1]), (0, 0)), constant_values=BACKGROUND)
        else:
            out = panel
        timings["render"] = time.perf_counter() - t0
        return Frame(out, aux=aux, timings=timings)


def _draw_points(img: np.ndarray, pts: np.ndarray, color: tuple[float, float, float] = ELLIPSE_COLOR) -> None:
    draw_outline(img, pts, color)


EXACT_LABEL = "exact blur (no neural field available)"
FALLBACK_SIZE = 256  # the cpu training preset's image size


def demo_field(name: str) -> tuple[Field, np.ndarray, str, str]:
    """(field, training image, label, problem) for bundled demo ``name``: its neural field, or — when that is
    missing or broken — the exact blur of the same photo, with ``problem`` saying why (else "")."""
    try:
        from methods.ngssf.demo import load_demo

        demo = load_demo(name)
        return demo.field, demo.image, f"neural field '{name}'", ""
    except Exception as e:  # noqa: BLE001 - the photo alone still gives the exact scale space
        from methods.ngssf.modalities import load_picture

        image, _ = load_picture(name, FALLBACK_SIZE)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return ExactBlurField(image), image, EXACT_LABEL, f"no NGSSF demo '{name}': {first}; showing the exact blur"


def demo_source(name: str = "astronaut") -> ScaleSpaceSource:
    field, image, label, _ = demo_field(name)
    return ScaleSpaceSource(field, image, label=label)
