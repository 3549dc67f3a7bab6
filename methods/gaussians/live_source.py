"""LiveSource for Gaussian splats: renders a static model (a loaded .ply) or snapshots of a model being trained.

Render modes turn the rasterizer's outputs into pictures (RGB, depth, alpha, Gaussian-count heat, error against
ground truth). When the request's options name a dataset test view (the view then sends that view's exact camera)
the frame carries its PSNR against true ground truth in ``aux["psnr"]``.
"""
from __future__ import annotations

import math
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from methods.datasets.test_views import MultiscaleTestViews
from methods.gaussians.edit import EditError, EditSession
from methods.gaussians.mipmap import STACK_MODES, MipStack, plan_levels
from methods.gaussians.stack_edit import StackSession
from methods.live_training import LiveTraining, ModelSlot
from methods.metrics import psnr
from render.colormap import colormap
from render.device import compute_device
from render.live import Frame, Framing, RenderRequest
from render.options import option
from render.splat.api import BACKEND_CHOICES
from render.tensors import to_numpy


class DisplayCopies:
    """Copies of displayed models on the compute device (CUDA when present), so the "auto" rasterizer can pick the
    CUDA kernels for a PLY loaded on the CPU. One copy per model, kept while the model lives and its parameters are
    unchanged (identity and in-place versions); a CPU-only install returns the model itself."""

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self._copies: dict[int, tuple[weakref.ref, tuple, tuple[int, ...], object]] = {}

    def get(self, model):
        device = compute_device()
        if model.device == device:
            return model
        sources = tuple(model.params().values()) + ((model.filter_3d,) if model.filter_3d is not None else ())
        versions = tuple(t._version for t in sources)
        hit = self._copies.get(id(model))
        if hit is not None and hit[0]() is model and hit[2] == versions and len(hit[1]) == len(sources) \
                and all(a is b for a, b in zip(hit[1], sources)):  # a replaced tensor (set_params) is a miss
            return hit[3]
        copy = model.to(device)
        # entries hold their sources (for the identity check): drop those of models that are gone
        self._copies = {k: v for k, v in self._copies.items() if v[0]() is not None and k != id(model)}
        while len(self._copies) >= self.keep:
            self._copies.pop(next(iter(self._copies)))
        self._copies[id(model)] = (weakref.ref(model), sources, versions, copy)
        return copy


def _rgb(out, gt):  # noqa: ARG001 - same signature for every mode
    return to_numpy(out.color.clamp(0, 1))


def _depth(out, gt):  # noqa: ARG001
    a = to_numpy(out.alpha)
    d = np.where(a > 0.05, to_numpy(out.depth) / np.maximum(a, 1e-6), np.nan)
    return colormap(-d) * a[..., None]  # near = bright


def _alpha(out, gt):  # noqa: ARG001
    return np.repeat(to_numpy(out.alpha)[..., None], 3, axis=2)


def _count(out, gt):  # noqa: ARG001
    n = to_numpy(out.n_contrib).astype(np.float32)
    return colormap(np.log1p(n), lo=0.0, hi=max(float(np.log1p(n).max()), 1.0))


def _error(out, gt):
    if gt is None:
        return _rgb(out, gt)
    err = np.abs(to_numpy(out.color.clamp(0, 1)) - gt).mean(axis=2)
    return colormap(err, lo=0.0, hi=0.25)


RENDER_MODES: dict[str, Callable] = {"rgb": _rgb, "depth": _depth, "alpha": _alpha, "count": _count, "error": _error}


FILTERS = ("mip", "3dgs", "none")
BACKEND_LABELS = ("auto", "CUDA", "OpenGL", "torch (reference)")
DEFAULT_FOCAL = 256 / math.tan(math.radians(25))  # a .ply without its dataset: 50° over 512 px


@dataclass(frozen=True)
class SplatOptions:
    filter: str = option("mip", choices=FILTERS, widget="radio", label="2D filter",
                         help="mip: Mip-Splatting's 0.1 px² filter with compensation · 3dgs: 0.3 px² dilation")
    use_3d_filter: bool = option(True, label="3D filter (Mip-Splatting)",
                                 help="bound each Gaussian by the training cameras' sampling rate")
    mode: str = option("rgb", choices=tuple(RENDER_MODES), label="render", help="what the panel shows")
    sh_degree: int = option(3, min=0, max=3, widget="slider", label="SH degree",
                            help="highest spherical-harmonics band used (never above the model's)")
    white_background: bool = option(False, label="white background")
    backend: str = option("auto", choices=BACKEND_CHOICES, labels=BACKEND_LABELS, label="rasterizer",
                          help="auto: CUDA when present, else OpenGL (real time, any GPU or software GL), else the "
                               "torch reference; a missing one falls back and says why")
    stack: str = option("blended", choices=tuple(STACK_MODES), label="mip stack",
                        help="with a Mipmap-GS stack open: the base only, the level nearest to the sampling rate, "
                             "or the two nearest blended by log-scale distance")
    show_selection: bool = option(True, label="tint selection", help="draw the edit selection in orange")
    gt_view: int = -1  # a dataset test view (-1: free camera); the request's camera is that view's
    edit_revision: int = 0  # the edit session's revision: an edit changes the request, the next frame shows it
    gt_scale: float = 0.0  # the dataset scale of gt_view's camera

    @property
    def background(self) -> tuple[float, float, float]:
        return (1.0, 1.0, 1.0) if self.white_background else (0.0, 0.0, 0.0)


def gaussian_framing(model, focal: float = DEFAULT_FOCAL, min_distance: float = 0.0) -> Framing:
    """Frame the bulk of a Gaussian scene: the 2nd–98th percentile box of the means (floaters far out don't
    push the camera away), as a bounding sphere."""
    xyz = to_numpy(model.means)
    if len(xyz) == 0:
        return Framing(radius=1.0, focal=focal, min_distance=min_distance)
    lo, hi = np.percentile(xyz, 2, axis=0), np.percentile(xyz, 98, axis=0)
    c = (lo + hi) / 2
    return Framing(center=tuple(float(v) for v in c), radius=float(max(np.linalg.norm(hi - lo) / 2, 1e-3)),
                   focal=float(focal), min_distance=float(min_distance))


class SplatSource:
    """Renders a static model (a loaded .ply) or the snapshots of a model being trained; with a dataset attached
    (:meth:`set_dataset`) a request whose options name a test view gets that view's PSNR in ``aux["psnr"]``."""

    Options = SplatOptions

    def __init__(self, model=None) -> None:
        self.slot = ModelSlot(model)
        self._on_device = DisplayCopies()
        self.test_views: MultiscaleTestViews | None = None
        self.train_scale = 1.0
        self.stack: list[tuple[float, object]] = []  # (scale, model) sorted, the base at 1 included
        self.mip_stack: MipStack | None = None           # the mipmap.json the stack came from
        self._focal, self._min_distance = DEFAULT_FOCAL, 0.0
        self._framing = gaussian_framing(model) if model is not None else Framing(radius=1.0, focal=DEFAULT_FOCAL)
        self.edit: EditSession | None = None  # the splat editor's session on the shown model (or stack)
        self._shown: tuple[tuple[int, bool], object, list] | None = None  # (revision, tint) -> what edits draw
        self._stack_session: tuple | None = None  # (base, thread, {"session" | "error"}) while a stack is matched

    # ----- editing --------------------------------------------------------------------------------------------
    def start_editing(self, wait: bool = False) -> "EditSession":
        """The edit session on what is shown (a :class:`StackSession` over every level when a stack is open),
        created on first use; a training job's live model is not edited. A stack's session is built in the
        background when the stack opens; until it is ready this raises a one-line :class:`EditError` (``wait``
        blocks instead)."""
        if self.edit is not None:
            return self.edit
        model = self.model
        if model is None or self.slot.live is not None:
            raise EditError("only a loaded .ply or mip stack can be edited; open one (the live model trains on)")
        if not self.stack:
            self.edit = EditSession(model)
            return self.edit
        job = self._stack_session
        if job is None or job[0] is not model:
            self.prepare_stack_editing()
            job = self._stack_session
        thread, box = job[1], job[2]
        thread.join(None if wait else 0.0)
        if thread.is_alive():
            raise EditError("the stack's levels are still being matched to the base; edit again in a moment")
        if isinstance(box.get("error"), Exception):
            raise EditError(str(box["error"]))
        self.edit = box["session"]
        return self.edit

    def prepare_stack_editing(self) -> None:
        """Match the open stack's levels to its base in a background thread (seconds on a million Gaussians), so
        the first edit does not stall the UI."""
        model = self.model
        levels = [(s, m) for s, m in self.stack if m is not model]
        box: dict = {}

        def build() -> None:
            try:
                box["session"] = StackSession(model, levels)
            except Exception as e:  # noqa: BLE001 - shown as the first edit's one line
                box["error"] = e

        thread = threading.Thread(target=build, name="stack-edit-match", daemon=True)
        self._stack_session = (model, thread, box)
        thread.start()

    def save_edited(self, out: str) -> str:
        """Write what the edit session holds: a .ply, or for a stack a mipmap.json with every level's PLY beside
        it (atomic files, the JSON last). Returns the line the view shows."""
        from methods.gaussians.ply import save_ply
        from methods.gaussians.stack_edit import save_stack

        edit = self.edit
        if edit is None:
            raise EditError("nothing is being edited: select or delete Gaussians first")
        alive = edit.counts[0]
        if isinstance(edit, StackSession):
            if self.mip_stack is None:
                raise EditError("the stack's mipmap.json is gone from the view; open the stack again")
            path = save_stack(edit, self.mip_stack, out)
            return f"wrote {path} and {len(edit.levels) + 1} PLYs ({alive:,} Gaussians in the base)"
        if not out.lower().endswith(".ply"):
            raise EditError(f"save a single model as .ply, got {Path(out).name}")
        path = save_ply(edit.edited(), out)
        return f"wrote {path} ({alive:,} Gaussians)"

    def _drawn(self, model, o: SplatOptions) -> tuple[object, list[tuple[float, object]]]:
        """The model and stack to draw: with an edit session, display copies (deleted ones gone, the selection
        tinted), rebuilt once per edit revision."""
        edit = self.edit
        if edit is None or edit.model is not model:
            return model, self.stack
        key = (edit.revision, bool(o.show_selection))
        if self._shown is None or self._shown[0] != key:
            stack = edit.display_levels(key[1]) if isinstance(edit, StackSession) else []
            base = next(m for s, m in stack if s == 1.0) if stack else edit.display(key[1])
            self._shown = (key, base, stack)
        return self._shown[1], self._shown[2]

    # ----- what is shown --------------------------------------------------------------------------------------
    def set_model(self, model) -> None:
        """Show a static model (e.g. a loaded .ply); forgets any dataset and stack."""
        self.stack, self.mip_stack = [], None
        self.edit, self._shown = None, None
        self.slot.show(model)
        self.test_views, self.train_scale = None, 1.0
        self._focal, self._min_distance = DEFAULT_FOCAL, 0.0
        self._framing = gaussian_framing(model)

    def set_stack(self, path: str) -> "MipStack":
        """Show a Mipmap-GS stack (mipmap.json): its base, and the levels chosen per request by ``options.stack``.
        Its dataset (named in the stack) becomes the ground truth when it exists."""
        from methods.gaussians.mipmap import MipStack
        from methods.gaussians.ply import load_ply

        stack = MipStack.read(path)
        folder = Path(path).parent
        base = load_ply(folder / stack.base)
        levels = sorted([(1.0, base)] + [(lv.scale, load_ply(folder / lv.ply)) for lv in stack.levels],
                        key=lambda t: t[0])
        self.set_model(base)
        self.stack, self.mip_stack = levels, stack
        self.prepare_stack_editing()
        root = stack.meta.get("dataset")
        if root and Path(root).is_dir():
            self.train_scale = stack.base_scale
            self.set_dataset(root, True)
        return stack

    def follow(self, live: LiveTraining, dataset_root: str | None = None) -> dict:
        """Show a running training job's model; its dataset's focal becomes zoom 1 and its test views ground truth.
        Returns the snapshot's info (method, filters, …) for the view's widgets."""
        self.stack = []
        self.edit, self._shown = None, None
        snap = self.slot.follow(live)
        info = dict(snap.info)
        self.train_scale = float(info.get("train_scale", 1.0))
        if dataset_root:
            self.set_dataset(dataset_root, bool(info.get("white_background", False)))
        self._framing = gaussian_framing(snap.model, self._focal, self._min_distance)
        return info

    def set_dataset(self, root: str, white_background: bool) -> None:
        """Attach a multi-scale dataset: its test cameras' focal is zoom 1, its cameras' distance the framing's."""
        views = MultiscaleTestViews(root, white_background)
        cams = views.at(self.nearest_train_scale(views)).cameras
        self.test_views = views
        self._focal = float(cams[0].fx)
        self._min_distance = float(np.linalg.norm(cams[0].position))
        self._framing = Framing(center=(0.0, 0.0, 0.0), radius=self._framing.radius, focal=self._focal,
                                min_distance=self._min_distance)

    def nearest_train_scale(self, views: MultiscaleTestViews) -> float:
        return views.nearest_scale(self.train_scale)

    @property
    def model(self):
        return self.slot.get()[0]

    def framing(self) -> Framing:
        return self._framing

    # ----- render ---------------------------------------------------------------------------------------------
    def render(self, request: RenderRequest) -> Frame:
        if request.camera is None:
            raise ValueError("the Splat view needs a 3D camera")
        o: SplatOptions = request.options
        model, _ = self.slot.get(request.revision)
        if model is None:
            return Frame(np.full((request.height, request.width, 3), 0.1, np.float32), aux={"empty": True})
        t0 = time.perf_counter()
        gt = self._ground_truth(o)
        image = color = None
        n, used = 0, []
        model, stack = self._drawn(model, o)
        for weight, level_model, scale in self._levels_for(model, stack, o, request.zoom * request.render_scale):
            level_model = self._on_device.get(level_model)
            with torch.no_grad():
                sh = min(int(o.sh_degree), level_model.active_sh_degree)  # never above what the model has (yet)
                out = level_model.render(request.camera, filter=o.filter, use_3d_filter=o.use_3d_filter,
                                         background=o.background, sh_degree=sh, backend=o.backend,
                                         counts=o.mode == "count")
            c, img = to_numpy(out.color.clamp(0, 1)), RENDER_MODES[o.mode](out, gt)
            color = weight * c if color is None else color + weight * c
            image = weight * img if image is None else image + weight * img
            n = max(n, int(level_model.num_gaussians))
            used.append(f"x{scale:g} {weight:.0%}" if len(self.stack) else "")
        aux = {"n_gaussians": n, "backend": out.backend, "backend_note": out.note}
        if self.edit is not None:
            aux["selected"] = self.edit.counts[1]
            if not request.preview:  # the editor places its sphere/box on the surface under the cursor
                a = to_numpy(out.alpha)
                aux["depth"] = np.where(a > 0.5, to_numpy(out.depth) / np.maximum(a, 1e-6), np.nan).astype(np.float32)
        if self.stack:
            aux["levels"] = " + ".join(used)
        if gt is not None:
            aux["psnr"] = float(psnr(color, gt))
            aux["gt_scale"] = o.gt_scale
        return Frame(image, aux=aux, timings={"render": time.perf_counter() - t0})

    @staticmethod
    def _levels_for(model, stack: list, o: SplatOptions, rate: float) -> list[tuple[float, object, float]]:
        """(weight, model, scale) to render for sampling rate ``rate`` (zoom × render_scale) under ``o.stack``."""
        if not stack or o.stack == "base":
            return [(1.0, model, 1.0)]
        scales = [s for s, _ in stack]
        return [(w, stack[i][1], scales[i]) for i, w in plan_levels(scales, rate, o.stack)]

    def _ground_truth(self, o: SplatOptions) -> np.ndarray | None:
        views = self.test_views
        if views is None or o.gt_view < 0 or o.gt_scale <= 0:
            return None
        return views.at(o.gt_scale).images[o.gt_view]


def demo_source(ply: str | None = None) -> SplatSource:
    """A SplatSource on ``ply`` or the bundled demo scene (generated into the cache on first use)."""
    from methods.gaussians.ply import load_ply

    if ply is None:
        from methods.gaussians.demo import demo_ply_path

        ply = str(demo_ply_path())
    return SplatSource(load_ply(ply))
