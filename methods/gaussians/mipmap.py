"""Mipmap-GS (research/gaussians.md §3): per-scale finetuning of a trained Gaussian model on pseudo ground truth the
model itself provides, and the *mip stack* those levels form.

* Pseudo-GT providers (:data:`PSEUDO_GT`, a registry): zoom-out targets are full-resolution renders downsampled
  to the target size — ``bilinear`` as released (no prefilter, cv2 INTER_LINEAR) or ``area`` (box filter) — and
  zoom-in targets are base renders super-resolved — ``bicubic`` for now; ``oracle`` hands back the true images and
  bounds what better super-resolution could give. GaussianSR registers itself here when it lands.
* :func:`finetune_level` finetunes a copy of the base model for one scale with the ``mipmap`` training preset
  (plain L2, densification every 100 steps, position LR 0 as released).
* :class:`MipStack` is the ``mipmap.json`` of a finished stack; :func:`level_weights` picks and blends levels for
  a sampling rate (the Splat view's "trilinear" mode).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

SCALES = (1 / 8, 1 / 4, 1 / 2, 2.0, 4.0, 8.0)
MIN_SCALE, MAX_SCALE = 1 / 8, 8.0
STACK_VERSION = 1


def scale_label(s: float) -> str:
    """1/8, 1/4, 1/2, 1, 2, 4, 8 — the names the benchmark JSON uses."""
    return f"1/{round(1 / s):d}" if s < 1 else f"{s:g}"


# ----- pseudo ground truth ---------------------------------------------------------------------------------------
def _resize(images: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    w, h = size
    t = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
    kw = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    out = F.interpolate(t, size=(h, w), mode=mode, **kw)
    return np.ascontiguousarray(out.permute(0, 2, 3, 1).clamp(0, 1).numpy())


def bilinear_downsample(images: np.ndarray, size: tuple[int, int], gt: np.ndarray | None = None) -> np.ndarray:
    """As released: plain bilinear interpolation to the target size (pixel-centre aligned, no prefilter), so a
    ½ downsample averages 2×2 blocks but ¼ and ⅛ sample only 2×2 of each 4×4 / 8×8 block (aliasing kept)."""
    return _resize(images, size, "bilinear")


def area_downsample(images: np.ndarray, size: tuple[int, int], gt: np.ndarray | None = None) -> np.ndarray:
    """Box filter: every output pixel is the mean of the input pixels it covers (exact for integer factors)."""
    return _resize(images, size, "area")


def bicubic_upsample(images: np.ndarray, size: tuple[int, int], gt: np.ndarray | None = None) -> np.ndarray:
    """Bicubic super-resolution (the baseline SR until the project's GaussianSR provides better)."""
    return _resize(images, size, "bicubic")


def oracle(images: np.ndarray, size: tuple[int, int], gt: np.ndarray | None = None) -> np.ndarray:
    """The true images at the target scale: an upper bound for any pseudo-GT."""
    if gt is None:
        raise ValueError("the oracle pseudo-GT needs the true images at the target scale (a multi-scale dataset)")
    if gt.shape[1:3] != (size[1], size[0]):
        raise ValueError(f"oracle images are {gt.shape[2]}x{gt.shape[1]}, the target is {size[0]}x{size[1]}")
    return np.asarray(gt, np.float32)


@dataclass(frozen=True)
class PseudoGT:
    name: str
    fn: Callable[..., np.ndarray]
    zoom_out: bool  # usable for targets below the base scale
    zoom_in: bool   # usable for targets above it


PSEUDO_GT: dict[str, PseudoGT] = {p.name: p for p in (
    PseudoGT("bilinear", bilinear_downsample, True, False),
    PseudoGT("area", area_downsample, True, False),
    PseudoGT("bicubic", bicubic_upsample, False, True),
    PseudoGT("oracle", oracle, True, True),
)}


def pseudo_gt_names(zoom_in: bool) -> tuple[str, ...]:
    """Registered providers usable for zoom-in (or zoom-out) levels, for choices in forms and flags."""
    return tuple(k for k, p in PSEUDO_GT.items() if (p.zoom_in if zoom_in else p.zoom_out))


def register_pseudo_gt(provider: PseudoGT) -> None:
    """Add a provider (e.g. an SR model) by name; the finetune job and the CLI list what is registered."""
    PSEUDO_GT[provider.name] = provider


def make_pseudo_gt(kind: str, renders: np.ndarray, size: tuple[int, int], *, zoom_in: bool,
                   gt: np.ndarray | None = None) -> np.ndarray:
    """(N, h, w, 3) targets for one level from (N, H, W, 3) base renders."""
    p = PSEUDO_GT.get(kind)
    if p is None:
        raise ValueError(f"unknown pseudo-GT {kind!r}; registered: {', '.join(PSEUDO_GT)}")
    if zoom_in and not p.zoom_in or not zoom_in and not p.zoom_out:
        raise ValueError(f"pseudo-GT {kind!r} is for zoom-{'out' if zoom_in else 'in'} levels, not "
                         f"zoom-{'in' if zoom_in else 'out'}")
    out = p.fn(renders, size, gt)
    if out.shape[1:3] != (size[1], size[0]):
        raise ValueError(f"pseudo-GT {kind!r} returned {out.shape[2]}x{out.shape[1]}, expected {size[0]}x{size[1]}")
    return out


# ----- the mip stack -----------------------------------------------------------------------------------------------
def level_weights(scales: Sequence[float], s: float) -> list[tuple[int, float]]:
    """Blend weights for sampling rate ``s`` over levels at sorted ``scales`` (the base included, at its scale):
    linear in log2(scale) between the two levels around ``s`` ("trilinear" across the stack), the end level alone
    beyond either end. Returns (level index, weight) pairs with weights summing to 1."""
    if not scales:
        raise ValueError("an empty stack has no levels")
    ls = [math.log2(x) for x in scales]
    x = math.log2(s)
    if x <= ls[0]:
        return [(0, 1.0)]
    if x >= ls[-1]:
        return [(len(ls) - 1, 1.0)]
    hi = next(i for i, v in enumerate(ls) if v >= x)
    lo = hi - 1
    t = (x - ls[lo]) / (ls[hi] - ls[lo])
    return [(lo, 1.0 - t), (hi, t)] if 0.0 < t < 1.0 else [(hi if t >= 1.0 else lo, 1.0)]


def nearest_level(scales: Sequence[float], s: float) -> int:
    """The level whose scale is closest to ``s`` in log2 (ties go to the finer, larger scale)."""
    x = math.log2(s)
    return min(range(len(scales)), key=lambda i: (abs(math.log2(scales[i]) - x), -scales[i]))


# How a stack answers a sampling rate: the Splat view's "mip stack" option and the benchmark's blended rows.
STACK_MODES: dict[str, Callable[[Sequence[float], float], list[tuple[int, float]]]] = {
    "blended": level_weights,
    "nearest": lambda scales, s: [(nearest_level(scales, s), 1.0)],
    "base": lambda scales, s: [(nearest_level(scales, 1.0), 1.0)],
}


def plan_levels(scales: Sequence[float], rate: float, mode: str = "blended") -> list[tuple[int, float]]:
    """(level index, weight) pairs to render for sampling rate ``rate`` under ``mode`` (blended/nearest/base)."""
    try:
        return STACK_MODES[mode](scales, rate)
    except KeyError:
        raise ValueError(f"unknown stack mode {mode!r}; valid: {', '.join(STACK_MODES)}") from None


def blend_levels(models: Sequence, scales: Sequence[float], rate: float, render: Callable[[Any], np.ndarray],
                 mode: str = "blended") -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Render the levels ``plan_levels`` picks with ``render(model) -> image`` and mix them by weight; returns the
    image and the (scale, weight) pairs used. Mixing images, not Gaussians: each level stays the model it was
    finetuned to be, and the blend is exact at a level's own scale."""
    out, used = None, []
    for i, w in plan_levels(scales, rate, mode):
        img = render(models[i])
        out = w * img if out is None else out + w * img
        used.append((float(scales[i]), float(w)))
    return out, used


@dataclass(frozen=True)
class MipLevel:
    scale: float
    ply: str  # relative to the mipmap.json's folder
    metrics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MipStack:
    """``mipmap.json``: the base model (its scale = the training sampling rate) and one finetuned PLY per level."""

    base: str
    levels: tuple[MipLevel, ...]
    base_scale: float = 1.0
    pseudo_gt: str = ""
    poses: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def scales(self) -> list[float]:
        """Every level's scale relative to the base's training rate, the base (1) included, sorted."""
        return sorted([1.0] + [lv.scale for lv in self.levels])

    def to_json(self) -> dict[str, Any]:
        return {"version": STACK_VERSION, "base": self.base, "base_scale": self.base_scale,
                "pseudo_gt": self.pseudo_gt, "poses": self.poses, "meta": self.meta,
                "levels": [{"scale": lv.scale, "ply": lv.ply, "metrics": lv.metrics} for lv in self.levels]}

    def write(self, path: str | Path) -> Path:
        from assets.cache import atomic_write_text

        return atomic_write_text(path, json.dumps(self.to_json(), indent=1), parents=True)

    @staticmethod
    def read(path: str | Path, check_files: bool = True) -> "MipStack":
        """Load and validate; every problem is one line naming the file and what to do."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"{path}: no such mip stack (a mipmap.json written by `finetune gaussians`)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a readable mipmap.json ({type(e).__name__}: {e})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("levels"), list) or "base" not in doc:
            raise ValueError(f"{path}: needs 'base' (a PLY) and a 'levels' list")
        levels = []
        for i, lv in enumerate(doc["levels"]):
            if not isinstance(lv, dict) or "scale" not in lv or "ply" not in lv:
                raise ValueError(f"{path}: level {i} needs 'scale' and 'ply'")
            s = lv["scale"]
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
                raise ValueError(f"{path}: level {i} scale must be a number, got {s!r}")
            if not MIN_SCALE - 1e-9 <= s <= MAX_SCALE + 1e-9 or abs(s - 1.0) < 1e-9:
                raise ValueError(f"{path}: level {i} scale {s:g} is outside 1/8..8 or equals the base's 1")
            if not isinstance(lv["ply"], str) or not lv["ply"]:
                raise ValueError(f"{path}: level {i} 'ply' must be a file name, got {lv['ply']!r}")
            if not isinstance(lv.get("metrics") or {}, dict):
                raise ValueError(f"{path}: level {i} 'metrics' must be an object")
            levels.append(MipLevel(float(s), lv["ply"], dict(lv.get("metrics") or {})))
        scales = [lv.scale for lv in levels]
        if len(set(scales)) != len(scales):
            raise ValueError(f"{path}: duplicate level scales {sorted(scales)}")
        if scales != sorted(scales):
            raise ValueError(f"{path}: levels must be sorted by scale, got {scales}")
        base_scale = doc.get("base_scale", 1.0)
        if isinstance(base_scale, bool) or not isinstance(base_scale, (int, float)) or not (
                math.isfinite(base_scale) and base_scale > 0):
            raise ValueError(f"{path}: 'base_scale' must be a positive number, got {base_scale!r}")
        for key, kind in (("base", str), ("pseudo_gt", str), ("poses", str), ("meta", dict)):
            if key in doc and doc[key] is not None and not isinstance(doc[key], kind):
                raise ValueError(f"{path}: '{key}' must be {'a string' if kind is str else 'an object'}, "
                                 f"got {str(doc[key])[:40]!r}")
        if not doc["base"]:
            raise ValueError(f"{path}: 'base' must name the base PLY")
        stack = MipStack(doc["base"], tuple(levels), float(base_scale), str(doc.get("pseudo_gt") or ""),
                         str(doc.get("poses") or ""), dict(doc.get("meta") or {}))
        if check_files:
            for name in [stack.base] + [lv.ply for lv in levels]:
                if not (path.parent / name).is_file():
                    raise ValueError(f"{path}: names {name}, which is missing next to it")
        return stack


# ----- finetuning one level ----------------------------------------------------------------------------------------
def finetune_level(base_model, cameras: Sequence, targets: np.ndarray, *, method: str = "3dgs",
                   white_background: bool = True, iterations: int = 1000, position_lr: str = "released",
                   reset_at_start: bool = False, densify: bool = True, out_dir: str = "", progress=None,
                   should_stop=None, seed: int = 0, resume: str | Path | None = None) -> tuple[Any, dict]:
    """Finetune a copy of ``base_model`` so that, seen by ``cameras`` (at the target scale), it renders
    ``targets`` (N, h, w, 3); returns (model, the trainer's summary). ``position_lr``: "released" (0: positions
    move only by densification) or "schedule" (the 3DGS log-linear schedule over the run). ``resume``: the
    trainer checkpoint of a cancelled run of this same level, continued exactly."""
    from dataclasses import replace

    from methods.datasets.nerf_synthetic import Dataset
    from methods.gaussians.config import FINETUNE_PRESETS, LearningRates
    from methods.gaussians.train import GaussianTrainer

    if len(cameras) != len(targets) or not len(cameras):
        raise ValueError(f"finetuning needs one target per camera, got {len(cameras)} cameras, {len(targets)} targets")
    cfg = FINETUNE_PRESETS["mipmap"].with_(method=method, white_background=white_background, seed=seed,
                                           out_dir=out_dir, preview_interval_s=float("inf"))
    if iterations != cfg.iterations:
        cfg = cfg.scaled_to(iterations)
    if position_lr == "schedule":
        cfg = replace(cfg, lr=replace(LearningRates(), position_max_steps=cfg.iterations))
    elif position_lr != "released":
        raise ValueError(f"position_lr must be 'released' or 'schedule', got {position_lr!r}")
    # the release starts densifying (and, with the quirk, resets opacities) at step 2 whatever the run length;
    # without densification the window shrinks to nothing, or with the quirk to just that reset
    start = FINETUNE_PRESETS["mipmap"].densify.from_iter
    window = {"from_iter": start} if densify else {"from_iter": start, "until_iter": start + 1 if reset_at_start else 0}
    cfg = replace(cfg, densify=replace(cfg.densify, reset_at_start=bool(reset_at_start), **window))
    bg = (1.0, 1.0, 1.0) if white_background else (0.0, 0.0, 0.0)
    t = np.asarray(targets, np.float32)
    ds = Dataset(images=t, alphas=np.ones(t.shape[:3], np.float32), cameras=list(cameras), paths=[], split="pseudo",
                 scale=1.0, background=bg, root=Path(out_dir or "."))
    trainer = GaussianTrainer(cfg, ds, None, init_model=base_model, name=f"Mipmap-GS level ({len(ds)} views)",
                              resume=resume)
    summary = trainer.run(progress or (lambda p: None), should_stop or (lambda: False))
    return trainer.model, summary


# ----- which poses, which images -----------------------------------------------------------------------------------
POSE_SETS = ("test", "train", "free")
SOURCES = ("render", "real")          # pseudo-GT made from the base's renders, or from the dataset's own images
POSITION_LR = ("released", "schedule")


def free_viewing_cameras(cameras: Sequence, n_new: int = 16, seed: int = 0) -> list:
    """Training poses plus ``n_new`` poses on the sphere they span (random directions, the same distances and
    intrinsics, looking at the origin), so a stack holds for cameras the user flies to, not only the test poses."""
    from render.camera import look_at_world_to_cam

    rng = np.random.default_rng(seed)
    out = list(cameras)
    radii = [float(np.linalg.norm(c.position)) for c in cameras]
    for k in range(n_new):
        d = rng.normal(size=3)
        d[2] = abs(d[2]) * 0.8 + 0.1  # above the ground plane, like the rig
        d /= np.linalg.norm(d)
        ref = cameras[k % len(cameras)]
        eye = d * radii[k % len(radii)]
        up = (0.0, 0.0, 1.0)
        out.append(ref.with_pose(look_at_world_to_cam(eye, np.zeros(3), up)))
    return out


def pose_set(dataset: str | Path, poses: str, base_scale: float = 1.0, white_background: bool = True
             ) -> tuple[list, list]:
    """(cameras at the base's scale, the dataset's image per camera or None) for a pose set: ``test`` views as the
    paper (test-time adaptation), ``train`` views, or ``free`` = train views + new poses around the scene (no
    images for the new ones)."""
    from methods.datasets import load_nerf_synthetic

    if poses not in POSE_SETS:
        raise ValueError(f"poses must be one of {', '.join(POSE_SETS)}, got {poses!r}")
    ds = load_nerf_synthetic(dataset, "test" if poses == "test" else "train", scale=base_scale,
                             white_background=white_background)
    cams, images = list(ds.cameras), list(ds.images)
    if poses == "free":
        cams = free_viewing_cameras(cams)
        images += [None] * (len(cams) - len(images))
    return cams, images


def source_images(base_model, cameras: Sequence, images: Sequence, *, source: str = "render", method: str = "3dgs",
                  white_background: bool = True) -> np.ndarray:
    """(N, H, W, 3) images the pseudo-GT is made from: the base's renders, or with ``source="real"`` the dataset's
    images where a pose has one (renders for the rest)."""
    import torch

    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if source == "real" and all(im is None for im in images):
        raise ValueError("source 'real' needs poses with images (train or free poses)")
    bg = (1.0, 1.0, 1.0) if white_background else (0.0, 0.0, 0.0)
    out = []
    with torch.no_grad():
        for cam, im in zip(cameras, images):
            if source == "real" and im is not None:
                out.append(np.asarray(im, np.float32))
            else:
                out.append(base_model.render(cam, filter="mip" if method == "mip" else "3dgs",
                                             use_3d_filter=method == "mip", background=bg).color.clamp(0, 1).numpy())
    return np.stack(out)


@dataclass(frozen=True)
class MipmapVariant:
    """How a stack is built, the settings shared by the finetune job and the benchmark rows; a row name spells one:
    ``mipmap-<base>[-<token>...]`` where tokens name a pseudo-GT provider (``area``, ``oracle``, …), a pose set
    (``test``/``train``/``free``), the image source (``render``/``real``), the position learning rate
    (``released``/``schedule``), ``densify``/``nodensify``, ``reset`` (the released opacity reset at step 2) or a
    number (finetuning steps per level); what a name leaves out comes from the defaults."""

    base: str = "3dgs"                # the base model's method: how levels render and train
    pseudo_out: str = "bilinear"      # zoom-out provider (bilinear as released)
    pseudo_in: str = "bicubic"        # zoom-in provider
    poses: str = "test"               # the paper's test-time adaptation
    source: str = "render"            # pseudo-GT from the base's renders, or "real" training images
    position_lr: str = "released"     # released = 0 (positions move only by densification)
    densify: bool = True              # as released; off measured better on small levels (README)
    opacity_reset: bool = False       # the release's white-background opacity reset at step 2 (§3.4)
    iterations: int = 1000            # finetuning steps per level

    def __post_init__(self) -> None:
        from methods.gaussians.config import METHODS

        for what, value, valid in (("base method", self.base, tuple(METHODS)), ("poses", self.poses, POSE_SETS),
                                   ("source", self.source, SOURCES), ("position_lr", self.position_lr, POSITION_LR),
                                   ("zoom-out pseudo-GT", self.pseudo_out, pseudo_gt_names(zoom_in=False)),
                                   ("zoom-in pseudo-GT", self.pseudo_in, pseudo_gt_names(zoom_in=True))):
            if value not in valid:
                raise ValueError(f"{what} must be one of {', '.join(valid)}, got {value!r}")
        if self.poses != "test" and "oracle" in (self.pseudo_out, self.pseudo_in):
            raise ValueError("the oracle pseudo-GT exists only for the test poses (true images at every scale)")
        if self.source == "real" and self.poses == "test":
            raise ValueError("'real' uses the training images; pair it with train or free poses")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")

    @classmethod
    def parse(cls, name: str, **defaults: Any) -> MipmapVariant:
        from methods.gaussians.config import METHODS

        parts = name.split("-")
        if len(parts) < 2 or parts[0] != "mipmap" or parts[1] not in METHODS:
            raise ValueError(f"{name!r}: a Mipmap-GS row is mipmap-<{'|'.join(METHODS)}>[-option...]")
        tokens: dict[str, dict[str, Any]] = {
            **{k: {**({"pseudo_out": k} if p.zoom_out else {}), **({"pseudo_in": k} if p.zoom_in else {})}
               for k, p in PSEUDO_GT.items()},
            **{k: {"poses": k} for k in POSE_SETS}, **{k: {"source": k} for k in SOURCES},
            **{k: {"position_lr": k} for k in POSITION_LR}, "densify": {"densify": True},
            "nodensify": {"densify": False}, "reset": {"opacity_reset": True}}
        fields_ = {**defaults, "base": parts[1]}
        for t in parts[2:]:
            if t.isdigit() and int(t) > 0:  # a step count, e.g. mipmap-3dgs-free-3000
                fields_["iterations"] = int(t)
            elif t in tokens:
                fields_.update(tokens[t])
            else:
                raise ValueError(f"{name!r}: unknown option {t!r}; options: {', '.join(tokens)}")
        try:
            return cls(**fields_)
        except ValueError as e:
            raise ValueError(f"{name!r}: {e}") from None

    def pseudo(self, rel: float) -> str:
        return self.pseudo_in if rel > 1 else self.pseudo_out


# ----- the finetune job: a whole stack -----------------------------------------------------------------------------
@dataclass
class FinetuneStackJob:
    """Finetune a base model at every target scale and write ``<out>/levels/x<s>.ply`` + ``<out>/mipmap.json``.

    ``dataset`` provides the poses (``variant.poses``: its test views as the paper, its training views, or ``free``
    = training views + new poses around the scene) at the scale the base was trained at (``base_scale``), the
    training images for ``source="real"``, and the true images for the ``oracle`` pseudo-GT. Each finished level
    is written (PLY, then the stack file) before the next starts, so a cancelled job keeps the finished levels.

    ``resume`` continues a cancelled (or killed) job in the same ``out_dir``: finished levels are kept and the level
    that was running goes on from its trainer checkpoint (``runs/x<s>/checkpoint.pt``), so the result equals an
    uninterrupted job's. The settings recorded in ``finetune.json`` must match; the pseudo-GT is made again (it is
    deterministic)."""

    base_ply: str
    dataset: str
    out_dir: str
    scales: tuple[float, ...] = (1 / 8, 1 / 4, 1 / 2)
    variant: MipmapVariant = field(default_factory=MipmapVariant)
    base_scale: float = 1.0
    white_background: bool = True
    name: str = "finetune Mipmap-GS stack"
    resume: bool = False
    stack: MipStack | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        bad = [s for s in self.scales if not MIN_SCALE - 1e-9 <= s <= MAX_SCALE + 1e-9 or abs(s - 1) < 1e-9]
        if bad or not self.scales:
            raise ValueError(f"scales must be in 1/8..8 and not 1, got {[scale_label(s) for s in self.scales]}")
        self.scales = tuple(sorted({float(s) for s in self.scales}))

    def _oracle(self, scale: float) -> np.ndarray:
        from methods.datasets import load_nerf_synthetic

        return load_nerf_synthetic(self.dataset, "test", scale=self.base_scale * scale,
                                   white_background=self.white_background).images

    def settings(self) -> dict[str, Any]:
        """What the job's result depends on (``finetune.json``; a resume must match it)."""
        import hashlib

        return {"base_sha256": hashlib.sha256(Path(self.base_ply).read_bytes()).hexdigest(),
                "dataset": str(Path(self.dataset).resolve()), "scales": list(self.scales),
                "base_scale": self.base_scale, "white_background": self.white_background,
                "variant": asdict(self.variant)}

    def _finished_levels(self, out: Path, settings: dict[str, Any]) -> dict[float, MipLevel]:
        """The levels a cancelled job with these settings finished in ``out`` (resume), by scale."""
        record = out / "finetune.json"
        if not record.is_file():
            raise ValueError(f"--resume: {out} holds no finetune.json, so there is no job of this kind to continue; "
                             f"run without --resume")
        try:
            was = json.loads(record.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"--resume: {record} is unreadable ({e}); run without --resume") from None
        differ = sorted(k for k in settings if not isinstance(was, dict) or was.get(k) != settings[k])
        if differ:
            raise ValueError(f"--resume: {out} was finetuned with other {', '.join(differ)}; use the same settings "
                             f"or a new --out")
        finished = was.get("finished")
        stack_file = out / "mipmap.json"
        if not isinstance(finished, list) or not finished or not stack_file.is_file():
            return {}
        return {lv.scale: lv for lv in MipStack.read(stack_file).levels if lv.scale in finished}

    def run(self, progress, should_stop) -> dict:
        import shutil
        import time

        from assets.cache import atomic_write_bytes
        from methods.gaussians.ply import load_ply, save_ply
        from methods.jobs import JobCancelled, Progress

        v = self.variant
        out = Path(self.out_dir)
        settings = self.settings()
        done = self._finished_levels(out, settings) if self.resume else {}
        (out / "levels").mkdir(parents=True, exist_ok=True)
        base = load_ply(self.base_ply)
        base_copy = out / "base.ply"
        if Path(self.base_ply).resolve() != base_copy.resolve() and not (self.resume and base_copy.is_file()):
            shutil.copyfile(self.base_ply, base_copy)
        record = out / "finetune.json"
        atomic_write_bytes(record, json.dumps({**settings, "finished": sorted(done)}, indent=1).encode())
        cams, real = pose_set(self.dataset, v.poses, self.base_scale, self.white_background)
        total = len(self.scales) * v.iterations
        progress(Progress(0, total, message=f"rendering {len(cams)} base views"))
        sources = source_images(base, cams, real, source=v.source, method=v.base,
                                white_background=self.white_background)
        levels: list[MipLevel] = []
        kinds = {v.pseudo_in if s > 1 else v.pseudo_out for s in self.scales}
        pseudo = kinds.pop() if len(kinds) == 1 else f"{v.pseudo_out} (out) / {v.pseudo_in} (in)"

        def stack_of(levels: list[MipLevel]) -> MipStack:
            return MipStack("base.ply", tuple(levels), self.base_scale, pseudo, v.poses,
                            {"method": v.base, "dataset": str(self.dataset),
                             **{k: x for k, x in asdict(v).items() if k != "base"}})
        for k, s in enumerate(self.scales):
            if should_stop():
                raise JobCancelled()
            level_dir = out / "runs" / f"x{scale_label(s).replace('/', '_')}"
            if s in done and (out / done[s].ply).is_file():
                levels.append(done[s])
                self.stack = stack_of(levels)
                progress(Progress((k + 1) * v.iterations, total, message=f"level x{scale_label(s)}: finished before"))
                continue
            checkpoint = level_dir / "checkpoint.pt"
            if not self.resume:
                checkpoint.unlink(missing_ok=True)  # an older job's: a later resume must not continue it
            zoom_in = s > 1
            kind = v.pseudo_in if zoom_in else v.pseudo_out
            level_cams = [c.scaled(s) for c in cams]
            size = (level_cams[0].width, level_cams[0].height)
            gt = self._oracle(s) if kind == "oracle" else None
            targets = make_pseudo_gt(kind, sources, size, zoom_in=zoom_in, gt=gt)
            t0 = time.perf_counter()

            def level_progress(p, k=k, s=s):
                progress(Progress(k * v.iterations + p.step, total, dict(p.metrics),
                                  message=f"level x{scale_label(s)}: {p.message or p.step}"))

            model, summary = finetune_level(base, level_cams, targets, method=v.base,
                                            white_background=self.white_background, iterations=v.iterations,
                                            out_dir=str(level_dir), progress=level_progress,
                                            should_stop=should_stop, densify=v.densify, position_lr=v.position_lr,
                                            reset_at_start=v.opacity_reset,
                                            resume=checkpoint if self.resume and checkpoint.is_file() else None)
            if summary.get("cancelled"):
                raise JobCancelled()
            name = f"levels/x{scale_label(s).replace('/', '_')}.ply"
            save_ply(model, out / name)
            levels.append(MipLevel(s, name, {"seconds": time.perf_counter() - t0,
                                             "n_gaussians": int(model.num_gaussians),
                                             "train_psnr": float(summary.get("train_psnr", float("nan")))}))
            self.stack = stack_of(levels)
            self.stack.write(out / "mipmap.json")
            atomic_write_bytes(record, json.dumps({**settings, "finished": [lv.scale for lv in levels]},
                                                  indent=1).encode())
        return {"stack": str(out / "mipmap.json"), "levels": [lv.scale for lv in levels]}
