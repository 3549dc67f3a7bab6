"""Render a synthetic scene into a nerf_synthetic-format dataset with true multi-scale test ground truth.

Every image is rendered with the mesh renderer's 16-sample supersampled filter (a close approximation of the pixel
box integral), and the test views are rendered *directly* at every scale s with ``Camera.scaled(s)`` instead of
being resampled from scale 1: zoom-in ground truth then contains real detail, and zoom-out ground truth is what an
ideal anti-aliased camera sees. The whole dataset is written into a temp folder next to ``out_dir`` and renamed
into place at the end, so a crash or a cancel never leaves a half-written dataset that a later run would trust.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assets.synthetic_scene import SceneSpec, build_scene, render_view, sample_cameras
from methods.datasets.nerf_synthetic import (
    MULTISCALE_FILE,
    SPLITS,
    DatasetError,
    _atomic_write_bytes,
    read_multiscale,
    scale_label,
    write_rgba_png,
    write_transforms,
)
from methods.jobs import JobCancelled, Progress, ProgressFn, StopFn
from render.camera import Camera
from render.mesh_renderer import MeshRenderer

__all__ = ["GenerateSyntheticDataset", "default_dataset_path", "ensure_dataset", "scale_folder", "FORMAT_VERSION"]

FORMAT_VERSION = 1  # bump whenever the scene, the cameras or the writer change: cached datasets then regenerate
PREVIEW_MAX = 256
PREVIEW_EVERY_S = 0.3


def scale_folder(split: str, scale: float) -> str:
    """Folder of a split at a scale: scale 1 is the standard folder (``test``), others ``test_x{label}``."""
    return split if abs(scale - 1.0) < 1e-9 else f"{split}_x{scale_label(scale)}"


def _scale_text(scale: float) -> str:
    lab = scale_label(scale)
    return f"×{lab.replace('_', '/')}"


def _preview(rgba: np.ndarray) -> np.ndarray:
    """Downsize a rendered RGBA to at most PREVIEW_MAX pixels per side (integer stride, cheap)."""
    k = max(1, int(np.ceil(max(rgba.shape[:2]) / PREVIEW_MAX)))
    return np.ascontiguousarray(rgba[::k, ::k], dtype=np.float32)


def _straight_alpha(rgba: np.ndarray) -> np.ndarray:
    """Renderer output (premultiplied colour over a transparent background) → straight alpha, as PNGs store it.

    Blender's nerf_synthetic PNGs are straight alpha and loaders composite with rgb·a + bg·(1−a); storing
    premultiplied colour would darken every anti-aliased edge a second time.
    """
    a = rgba[..., 3:4]
    rgb = np.where(a > 1e-6, rgba[..., :3] / np.maximum(a, 1e-6), 0.0)
    return np.concatenate([np.clip(rgb, 0.0, 1.0), np.clip(a, 0.0, 1.0)], axis=-1).astype(np.float32)


@dataclass
class _Task:
    split: str
    scale: float
    index: int
    count: int
    camera: Camera
    rel_path: str  # file_path as written in transforms (no extension)


def _plan(spec: SceneSpec) -> tuple[dict[str, list[Camera]], list[_Task]]:
    cams = {split: sample_cameras(spec, split) for split in SPLITS}
    tasks: list[_Task] = []
    for split in SPLITS:
        scales = [1.0] + [s for s in spec.scales if abs(s - 1.0) > 1e-9] if split == "test" else [1.0]
        for s in scales:
            folder = scale_folder(split, s)
            for i, cam in enumerate(cams[split]):
                tasks.append(_Task(split, s, i, len(cams[split]), cam if s == 1.0 else cam.scaled(s),
                                   f"./{folder}/r_{i}"))
    return cams, tasks


def _multiscale_doc(spec: SceneSpec) -> dict[str, Any]:
    base = Camera.from_fov(spec.fov_x, spec.resolution, spec.resolution, np.eye(4))
    entries = []
    for s in sorted(set([1.0, *spec.scales])):
        c = base.scaled(s)
        folder = scale_folder("test", s)
        entries.append({"scale": float(s), "label": scale_label(s), "folder": folder,
                        "transforms": "transforms_test.json" if folder == "test" else f"transforms_{folder}.json",
                        "width": c.width, "height": c.height})
    return {"format": "mipstudio-multiscale", "version": FORMAT_VERSION, "scene": spec.name,
            "width": spec.resolution, "height": spec.resolution, "camera_angle_x": spec.fov_x,
            "splits": {"test": entries}, "spec": spec.to_dict(),
            "note": "test_x{label} holds the test views rendered directly at scale label (1_8 = 1/8) with the "
                    "intrinsics scaled by that factor; test/ is scale 1. Ground truth is 16-sample supersampled."}


@dataclass
class GenerateSyntheticDataset:
    """Job: render ``spec`` into ``out_dir`` (nerf_synthetic layout + ``test_x*`` multi-scale ground truth).

    Refuses a non-empty existing ``out_dir`` unless ``overwrite``. ``run`` returns a summary dict
    (``out_dir``, ``counts``, ``images``, ``seconds``, ``multiscale``); a cancel raises :class:`JobCancelled`
    after removing the temp folder, so nothing is left behind.
    """

    out_dir: Path
    spec: SceneSpec = field(default_factory=SceneSpec)
    overwrite: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        if not self.name:
            self.name = f"generate {self.spec.name} ({self.spec.resolution}px)"

    def run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        from assets.cache import staged_folder

        t0 = time.perf_counter()
        spec = self.spec
        out = self.out_dir
        cams, tasks = _plan(spec)
        with staged_folder(out, self.overwrite) as tmp:
            progress(Progress(0, len(tasks), {}, None, "building scene textures"))
            meshes = build_scene(spec)
            renderer = MeshRenderer()
            last_preview = -1e9
            for k, t in enumerate(tasks):
                if should_stop():
                    raise JobCancelled(f"{self.name}: cancelled after {k}/{len(tasks)} images")
                rgba = render_view(renderer, meshes, t.camera)
                if rgba.shape[:2] != (t.camera.height, t.camera.width):
                    raise RuntimeError(f"renderer returned {rgba.shape[1]}x{rgba.shape[0]} for a "
                                       f"{t.camera.width}x{t.camera.height} camera")
                write_rgba_png(tmp / f"{t.rel_path[2:]}.png", _straight_alpha(rgba))
                now = time.perf_counter()
                preview = None
                if now - last_preview >= PREVIEW_EVERY_S or k == len(tasks) - 1:
                    preview, last_preview = _preview(rgba), now
                what = t.split if t.scale == 1.0 and t.split != "test" else f"{t.split} {_scale_text(t.scale)}"
                progress(Progress(k + 1, len(tasks), {}, preview, f"{what} view {t.index + 1}/{t.count}"))
            self._write_metadata(tmp, cams)
        counts = {s: len(cams[s]) for s in SPLITS}
        return {"out_dir": str(out), "counts": counts, "images": len(tasks),
                "scales": [float(s) for s in sorted({1.0, *spec.scales})],
                "multiscale": str(out / MULTISCALE_FILE), "seconds": time.perf_counter() - t0}

    def _write_metadata(self, tmp: Path, cams: dict[str, list[Camera]]) -> None:
        spec = self.spec
        for split in SPLITS:
            write_transforms(tmp / f"transforms_{split}.json", spec.fov_x, cams[split],
                             [f"./{split}/r_{i}" for i in range(len(cams[split]))])
        doc = _multiscale_doc(spec)
        for e in doc["splits"]["test"]:
            if e["folder"] != "test":  # same poses and FoV, other folder: any nerf_synthetic loader can read it
                write_transforms(tmp / e["transforms"], spec.fov_x, cams["test"],
                                 [f"./{e['folder']}/r_{i}" for i in range(len(cams["test"]))])
        _atomic_write_bytes(tmp / MULTISCALE_FILE, json.dumps(doc, indent=2).encode("utf-8"))


def default_dataset_path(preset: str = "default", variant: str = "") -> Path:
    """Cache location of a generated preset (``$MIPSTUDIO_CACHE`` or ``~/.cache/mipstudio``)/datasets/…;
    ``variant`` names a preset with changed options. The format version is in the name so a generator change
    never reuses stale data."""
    from assets.cache import cache_dir

    spec = SceneSpec.preset(preset)
    suffix = f"-{variant}" if variant else ""
    return cache_dir() / "datasets" / f"{spec.name}-{preset}{suffix}-v{FORMAT_VERSION}"


_ensure_lock = threading.Lock()


def _is_complete(path: Path, spec: SceneSpec) -> bool:
    try:
        doc = read_multiscale(path)
    except DatasetError:
        return False
    return bool(doc) and doc.get("spec") == spec.to_dict() and all(
        (path / f"transforms_{s}.json").is_file() for s in SPLITS)


def ensure_dataset(preset: str = "default", *, progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None) -> Path:
    """The cached dataset of ``preset``, generated on first use (a stale or partial one is regenerated)."""
    spec = SceneSpec.preset(preset)
    path = default_dataset_path(preset)
    with _ensure_lock:
        if _is_complete(path, spec):
            return path
        # overwrite=True: a stale or foreign folder at our cache path is replaced only once the new one is complete
        GenerateSyntheticDataset(path, spec, overwrite=True).run(progress or (lambda p: None),
                                                                 should_stop or (lambda: False))
    return path


def render_at_scale(root: str | os.PathLike, split: str, scale: float, *, white_background: bool = True,
                    max_frames: int | None = None):
    """True ground truth of a generated dataset's ``split`` at any sampling ``scale`` (e.g. ×3/8, between the
    stored scales), rendered now from the scene spec in ``multiscale.json`` exactly as the stored test views were;
    None when the dataset was not generated by us (no spec to re-render). Returns a :class:`Dataset` in memory."""
    from methods.datasets.nerf_synthetic import Dataset, load_nerf_synthetic

    ms = read_multiscale(root)
    if not ms or "spec" not in ms:
        return None
    stored = load_nerf_synthetic(root, split, white_background=white_background, max_frames=max_frames)
    cams = [c.scaled(scale) for c in stored.cameras]
    meshes = build_scene(SceneSpec.from_dict(ms["spec"]))
    renderer = MeshRenderer()
    bg = np.asarray(stored.background, np.float32)
    images, alphas = [], []
    for cam in cams:
        rgba = render_view(renderer, meshes, cam)  # premultiplied: compositing is rgb + bg·(1 − a)
        images.append(rgba[..., :3] + bg * (1.0 - rgba[..., 3:4]))
        alphas.append(rgba[..., 3])
    return Dataset(images=np.clip(np.stack(images), 0, 1).astype(np.float32), alphas=np.stack(alphas),
                   cameras=cams, paths=[], split=split, scale=float(scale), background=stored.background,
                   root=Path(root), camera_angle_x=stored.camera_angle_x, source="rendered now",
                   meta={"spec": ms["spec"]})
