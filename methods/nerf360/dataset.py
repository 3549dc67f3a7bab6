"""Unbounded (360°) datasets: generating ours, and reading ours, the real Mip-NeRF 360 layout and COLMAP text models.

Three layouts load into one :class:`UnboundedDataset` (opaque RGB images, :class:`Camera` objects in the project's
OpenCV world-to-camera convention, and per-camera near/far bounds):

(a) **nerfstudio** ``transforms.json`` (what :class:`GenerateUnboundedDataset` writes): per-frame intrinsics
    ``fl_x, fl_y, cx, cy, w, h`` and ``transform_matrix`` = camera-to-world in OpenGL axes (x right, y up, looking
    along −z). Splits come from nerfstudio's ``train_filenames`` / ``val_filenames`` / ``test_filenames`` lists.
    Our extras, ignored by other readers: per-frame ``near``/``far`` (the depth range the frame actually sees) and
    top-level ``scene_center`` / ``scene_radius``. Test views at other scales live in ``images_test_x{label}/`` with
    their own ``transforms_test_x{label}.json``, listed in ``multiscale.json`` (the bounded dataset's idea).
(b) **LLFF / Mip-NeRF 360** ``poses_bounds.npy``: N×17 = a 3×5 matrix per image plus (near, far) depth bounds,
    rows in the sorted order of the image names. Columns 0–2 of the 3×5 are the camera's axes expressed in world
    coordinates in the order (down, right, backwards), column 3 is the camera centre, column 4 = (H, W, focal) of
    the full-resolution images. Our OpenCV camera axes are (right, down, forward), so
        R_c2w(OpenCV) = [col1, col0, −col2]          (the OpenGL/NeRF convention would be [col1, −col0, col2]);
    the swap and the sign flip have det −1 each, so a proper rotation stays proper. ``images_N/`` holds the images
    downsampled N times (``factor``); intrinsics are scaled by the actual image/full-size ratio, principal point at
    the image centre.
(c) **COLMAP text model** ``sparse/0/{cameras,images}.txt`` (``points3D.txt`` optional): images.txt gives the
    world-to-camera rotation as a unit quaternion (QW, QX, QY, QZ, Hamilton, scalar first) and translation in
    OpenCV axes — already our convention, no axis change. PINHOLE and SIMPLE_PINHOLE are exact; SIMPLE_RADIAL,
    RADIAL and OPENCV are read as pinholes with their distortion IGNORED (recorded in ``meta``): undistort first
    (``colmap image_undistorter``) when it matters. Per-image near/far come from the depths of the image's own
    points in points3D.txt (0.1 / 99.9 percentiles, as LLFF's imgs2poses does) when available.

Real-data split convention (Mip-NeRF 360, ``llffhold = 8``): image i of the name-sorted list is a test image when
i % 8 == 0; "val" is the test set (the real dataset has no separate validation views); "all" is every image.
Without explicit bounds, near/far default to Mip-NeRF 360's 0.2 and 1e6 in units of the scene radius (the largest
camera distance from the camera centroid), i.e. its near/far after pose normalization. No pose normalization is
applied here: cameras stay in the file's world units; ``scene_center`` / ``scene_radius`` say how to normalize.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from assets.cache import atomic_write_bytes
from assets.unbounded_scene import (
    UnboundedSceneSpec,
    build_scene,
    render_depth,
    render_view,
    sample_cameras,
)
from methods.datasets.nerf_synthetic import (
    MULTISCALE_FILE,
    DatasetError,
    TransformsIntrinsics,
    area_resize,
    checked_c2w,
    read_image,
    read_multiscale,
    read_transforms,
    resolve_image_file,
    scale_label,
)
from methods.jobs import JobCancelled, Progress, ProgressFn, StopFn
from render.camera import Camera
from render.mesh_renderer import MeshRenderer

__all__ = ["UnboundedDataset", "load_unbounded", "detect_layout", "GenerateUnboundedDataset",
           "ensure_unbounded_dataset", "default_unbounded_path", "llff_to_w2c", "w2c_to_llff", "qvec_to_rotmat",
           "rotmat_to_qvec", "write_colmap_text", "llff_split", "FORMAT_VERSION", "TRANSFORMS_FILE", "LLFF_HOLD",
           "SPLITS"]

FORMAT_VERSION = 1  # bump whenever the scene, the cameras or the writer change: cached datasets then regenerate
TRANSFORMS_FILE = "transforms.json"
POSES_BOUNDS_FILE = "poses_bounds.npy"
LLFF_HOLD = 8
SPLITS = ("train", "val", "test")
LOAD_SPLITS = SPLITS + ("all",)
LAYOUTS = ("auto", "nerfstudio", "llff", "colmap")
DEFAULT_NEAR, DEFAULT_FAR = 0.2, 1e6  # Mip-NeRF 360's near/far after normalizing the scene radius to 1
BOUNDS_MARGIN = (0.9, 1.1)  # generated per-frame bounds: seen depth range widened by these factors
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
PREVIEW_MAX = 256
PREVIEW_EVERY_S = 0.3
_SCALE_TOL = 1e-6


@dataclass
class UnboundedDataset:
    """Images of one split at one scale with one :class:`Camera` each and per-camera near/far (world units).

    ``cameras[i].near/far`` equal ``near[i]/far[i]``. ``source`` is the layout read ("nerfstudio", "llff",
    "colmap"); ``origin`` says where the pixels come from ("files" or "area-downsampled").
    """

    images: np.ndarray          # (N, H, W, 3) float32 in [0, 1], opaque
    cameras: list[Camera]
    near: np.ndarray            # (N,) float64
    far: np.ndarray             # (N,) float64
    paths: list[Path]
    split: str
    scale: float
    root: Path
    source: str
    scene_center: np.ndarray    # (3,) the region the cameras look at
    scene_radius: float         # largest camera distance from scene_center: divide by it to normalize
    origin: str = "files"
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.cameras)

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    @property
    def height(self) -> int:
        return int(self.images.shape[1])


# ----------------------------------------------------------------------------------------------------------------
# conventions
# ----------------------------------------------------------------------------------------------------------------
def llff_to_w2c(pose: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
    """One LLFF 3×5 pose → (OpenCV world-to-camera 4×4, (H, W, focal)); see the module docstring for the axes."""
    p = np.asarray(pose, np.float64).reshape(3, 5)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2] = p[:, 1], p[:, 0], -p[:, 2]  # (down, right, back) → (right, down, forward)
    c2w[:3, 3] = p[:, 3]
    return np.linalg.inv(c2w), (float(p[0, 4]), float(p[1, 4]), float(p[2, 4]))


def w2c_to_llff(w2c: np.ndarray, height: float, width: float, focal: float) -> np.ndarray:
    """Inverse of :func:`llff_to_w2c`: the 3×5 LLFF pose of an OpenCV world-to-camera matrix."""
    c2w = np.linalg.inv(np.asarray(w2c, np.float64))
    return np.stack([c2w[:3, 1], c2w[:3, 0], -c2w[:3, 2], c2w[:3, 3], [height, width, focal]], -1)


def qvec_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a Hamilton quaternion (w, x, y, z) — COLMAP's order; normalized first."""
    w, x, y, z = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def rotmat_to_qvec(r: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) with w >= 0 of a rotation matrix (largest-component branch: stable)."""
    m = np.asarray(r, np.float64)
    tr = np.trace(m)
    cands = np.array([tr, m[0, 0], m[1, 1], m[2, 2]])
    k = int(np.argmax(cands))
    if k == 0:
        s = 2.0 * math.sqrt(1.0 + tr)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif k == 1:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif k == 2:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def llff_split(n: int, split: str, hold: int = LLFF_HOLD) -> list[int]:
    """Indices of ``split`` among n name-sorted images under Mip-NeRF 360's rule: test = every ``hold``-th image
    starting with the first; "val" is the test set; "all" is everything."""
    idx = np.arange(n)
    if split == "all":
        return idx.tolist()
    test = idx % hold == 0
    return idx[test].tolist() if split in ("test", "val") else idx[~test].tolist()


def _check_rotation(r: np.ndarray, where: str) -> None:
    if not np.allclose(r.T @ r, np.eye(3), atol=1e-3) or np.linalg.det(r) <= 0:
        raise DatasetError(f"{where}: rotation is not orthonormal with det +1 (scaled or mirrored camera); "
                           "re-export the poses")


def _scene_bounds(cams: list[Camera]) -> tuple[np.ndarray, float]:
    """Camera centroid and the largest camera distance from it (what Mip-NeRF 360 scales to 1)."""
    pos = np.stack([c.position for c in cams])
    centre = pos.mean(0)
    return centre, float(max(np.linalg.norm(pos - centre, axis=1).max(), 1e-9))


# ----------------------------------------------------------------------------------------------------------------
# shared loading machinery
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class _Frame:
    """One image to load: its file, its camera (at the resolution the file should have), bounds, and ``fit``:
    0 = the file must have exactly the camera's size, N = the camera is full resolution and the file is that
    image downsampled N times (±1 pixel of rounding; intrinsics follow the actual size)."""

    image: Path
    camera: Camera
    near: float
    far: float
    fit: int = 0


def _fit_camera(cam: Camera, size: tuple[int, int], fit: int, image: Path, source: str) -> Camera:
    w, h = size
    if fit == 0 or fit == 1:
        if (w, h) != (cam.width, cam.height):
            raise DatasetError(f"{image}: image is {w}x{h} but {source} says {cam.width}x{cam.height}; "
                               "regenerate or resize the image")
        return cam
    ew, eh = cam.width / fit, cam.height / fit
    if abs(w - ew) > 1.0 or abs(h - eh) > 1.0:
        raise DatasetError(f"{image}: image is {w}x{h} but {source} gives {cam.width}x{cam.height} at full "
                           f"resolution, i.e. about {ew:g}x{eh:g} at factor {fit}; the image folder does not match "
                           "the poses")
    sx, sy = w / cam.width, h / cam.height
    return replace(cam, fx=cam.fx * sx, fy=cam.fy * sy, cx=cam.cx * sx, cy=cam.cy * sy, width=int(w), height=int(h))


def _load_frames(frames: list[_Frame], area_scale: float, source: str) -> tuple[np.ndarray, list[Camera]]:
    """Read every frame (RGB, alpha ignored: unbounded scenes are opaque), check sizes, area-downsample by
    ``area_scale`` when < 1. Fills a preallocated array so peak memory stays one image above the result."""
    images = None
    cams: list[Camera] = []
    first: tuple[int, int] | None = None
    for i, fr in enumerate(frames):
        rgb = read_image(fr.image)[..., :3]
        size = (rgb.shape[1], rgb.shape[0])
        cam = _fit_camera(fr.camera, size, fr.fit, fr.image, source)
        if first is None:
            first = size
        elif size != first:
            raise DatasetError(f"{fr.image}: image is {size[0]}x{size[1]} but earlier images of this split are "
                               f"{first[0]}x{first[1]}; all images of a split must share one size")
        if not _same_scale(area_scale, 1.0):
            cam = cam.scaled(area_scale)
            rgb = area_resize(rgb, cam.width, cam.height)
        if images is None:
            images = np.empty((len(frames), rgb.shape[0], rgb.shape[1], 3), np.float32)
        images[i] = rgb
        cams.append(replace(cam, near=float(fr.near), far=float(fr.far)))
    assert images is not None
    return images, cams


def _same_scale(a: float, b: float) -> bool:
    return abs(a - b) <= _SCALE_TOL * max(1.0, abs(a), abs(b))


def _integer_factor(f: float) -> int | None:
    r = round(f)
    return int(r) if r >= 1 and abs(f - r) <= 1e-6 * max(1.0, f) else None


def _factor_folder(factor: int) -> str:
    return "images" if factor == 1 else f"images_{factor}"


def _list_images(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def _pick_folder(root: Path, factor: int, scale: float) -> tuple[int, float]:
    """(image folder factor to read, remaining area-downsampling scale) for a request at ``factor``/``scale``:
    an existing ``images_{factor/scale}`` folder is real ground truth at that scale and wins; otherwise scale < 1
    is synthesised by area-downsampling the ``factor`` images, and scale > 1 is an error."""
    want = _integer_factor(factor / scale)
    if want is not None and (root / _factor_folder(want)).is_dir():
        return want, 1.0
    if _same_scale(scale, 1.0) or scale < 1.0:
        if not (root / _factor_folder(factor)).is_dir():
            have = sorted(p.name for p in root.glob("images*") if p.is_dir())
            raise DatasetError(f"{root / _factor_folder(factor)}: image folder not found (factor {factor}; found "
                               f"{have or 'no image folders'}); pick an existing factor")
        return factor, scale
    raise DatasetError(f"{root}: no images at scale {scale} of factor {factor} (no images_{factor / scale:g}/ "
                       "folder); only scale < 1 can be synthesised by downsampling")


# ----------------------------------------------------------------------------------------------------------------
# (a) nerfstudio transforms.json
# ----------------------------------------------------------------------------------------------------------------
def _bound(path: Path, where: str, value: Any, key: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: {where} '{key}' must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise DatasetError(f"{path}: {where} '{key}' must be a finite positive number, got {value!r}")
    return v


def _nerfstudio_cameras(tpath: Path, data: dict[str, Any]) -> list[tuple[str, Camera, float | None, float | None]]:
    intr = TransformsIntrinsics(tpath, data)
    out = []
    for i, fr in enumerate(data["frames"]):
        c2w = checked_c2w(fr, f"{tpath}: frame {i}")
        fp = fr.get("file_path")
        if not isinstance(fp, str) or not fp:
            raise DatasetError(f"{tpath}: frame {i} has no 'file_path' string")
        if not ("w" in fr or "w" in data) or not ("h" in fr or "h" in data):
            raise DatasetError(f"{tpath}: frame {i} has no image size 'w'/'h' (per frame or global); add them")
        cam = intr.camera(i, fr, c2w, None)
        bounds = []
        for key in ("near", "far"):
            v = fr.get(key, data.get(key))
            bounds.append(None if v is None else _bound(tpath, f"frame {i}", v, key))
        if bounds[0] is not None and bounds[1] is not None and not bounds[0] < bounds[1]:
            raise DatasetError(f"{tpath}: frame {i} 'near' {bounds[0]} is not below 'far' {bounds[1]}")
        out.append((fp, cam, bounds[0], bounds[1]))
    return out


def _split_lists(tpath: Path, data: dict[str, Any]) -> dict[str, set[str]] | None:
    lists = {}
    for s in SPLITS:
        v = data.get(f"{s}_filenames")
        if v is None:
            continue
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise DatasetError(f"{tpath}: '{s}_filenames' must be a list of file paths")
        lists[s] = {_norm_rel(x) for x in v}
    return lists or None


def _norm_rel(p: str) -> str:
    return Path(p).as_posix().removeprefix("./")


def _select(names: list[str], split: str, lists: dict[str, set[str]] | None, where: Path) -> list[int]:
    """Indices of ``split``: explicit nerfstudio lists when the file has them, else llffhold on sorted names."""
    if split == "all":
        return list(range(len(names)))
    if lists is None:
        order = sorted(range(len(names)), key=lambda i: names[i])
        return sorted(order[j] for j in llff_split(len(names), split))
    if split not in lists:
        raise DatasetError(f"{where}: has no '{split}_filenames' list (it lists {sorted(lists)}); "
                           f"pick one of those splits or 'all'")
    want = lists[split]
    idx = [i for i, n in enumerate(names) if _norm_rel(n) in want]
    missing = want - {_norm_rel(names[i]) for i in idx}
    if missing:
        raise DatasetError(f"{where}: '{split}_filenames' names {len(missing)} file(s) with no frame, e.g. "
                           f"{sorted(missing)[0]!r}; fix the list")
    return idx


def _nerfstudio(root: Path, split: str, scale: float, factor: int) -> tuple[list[_Frame], float, dict[str, Any]]:
    tpath, folder_factor, area, entry = root / TRANSFORMS_FILE, factor, scale, None
    if not _same_scale(scale, 1.0) and factor == 1:
        ms = read_multiscale(root)
        for e in (ms or {}).get("splits", {}).get(split, []):
            if _same_scale(float(e["scale"]), scale):
                entry = e
                break
    if entry is not None:  # rendered ground truth at this scale: its own transforms file, read as is
        tpath, area, folder_factor = root / str(entry["transforms"]), 1.0, 1
    data = read_transforms(tpath)
    cams = _nerfstudio_cameras(tpath, data)
    meta: dict[str, Any] = {"transforms": str(tpath)}
    names = [fp for fp, _, _, _ in cams]
    idx = _select(names, split, _split_lists(tpath, data), tpath)
    if not idx:
        raise DatasetError(f"{tpath}: split '{split}' has no frames")
    if entry is None and not (_same_scale(scale, 1.0) and factor == 1):
        want = _integer_factor(factor / scale)
        first = root / _downscaled(names[idx[0]], want) if want else None
        if want is not None and (want == 1 or (first is not None and first.parent.is_dir())):
            folder_factor, area = want, 1.0
        elif scale > 1.0 and not _same_scale(scale, 1.0):
            listed = [e["scale"] for e in ((read_multiscale(root) or {}).get("splits", {}).get(split, []))]
            raise DatasetError(f"{root}: no ground truth at scale {scale} for split '{split}' (multiscale.json "
                               f"lists {listed or 'nothing'}); only scale < 1 can be synthesised by downsampling")
        else:
            folder_factor = factor
    if "scene_center" in data or "scene_radius" in data:
        try:
            centre = np.asarray(data["scene_center"], np.float64).reshape(3)
            raw_radius = data["scene_radius"]
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"{tpath}: 'scene_center' must be 3 numbers and 'scene_radius' a positive number, "
                               "given together") from None
        radius = _bound(tpath, "top level", raw_radius, "scene_radius")
        if not np.all(np.isfinite(centre)):
            raise DatasetError(f"{tpath}: 'scene_center' contains NaN or Inf")
    else:
        centre, radius = _scene_bounds([c for _, c, _, _ in cams])
    meta.update(scene_center=centre, scene_radius=radius)
    frames = []
    for i in idx:
        fp, cam, near, far = cams[i]
        path = resolve_image_file(root, fp, tpath, i) if folder_factor == 1 else root / _downscaled(fp, folder_factor)
        if folder_factor != 1 and not path.is_file():
            raise DatasetError(f"{tpath}: frame {i} image '{fp}' at factor {folder_factor} not found (looked for "
                               f"{path}); restore it or pick another factor")
        frames.append(_Frame(path, cam, near if near is not None else DEFAULT_NEAR * radius,
                             far if far is not None else DEFAULT_FAR * radius, folder_factor))
    meta["area_scale"] = area
    return frames, area, meta


def _downscaled(file_path: str, factor: int | None) -> str:
    """nerfstudio's convention for downscaled copies: ``images/x.png`` → ``images_{factor}/x.png``."""
    return file_path if factor in (None, 1) else f"images_{factor}/{Path(file_path).name}"


# ----------------------------------------------------------------------------------------------------------------
# (b) LLFF / Mip-NeRF 360 poses_bounds.npy
# ----------------------------------------------------------------------------------------------------------------
def _read_poses_bounds(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found (expected the LLFF N x 17 pose array)")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DatasetError(f"{path}: not a readable .npy array ({str(e).splitlines()[0] if str(e) else 'corrupt'}); "
                           "regenerate it") from None
    if arr.ndim != 2 or arr.shape[1] != 17 or arr.shape[0] < 1 or not np.issubdtype(arr.dtype, np.number):
        raise DatasetError(f"{path}: must be an N x 17 numeric array (3x5 pose + near, far per image), got shape "
                           f"{arr.shape}; regenerate it with LLFF's imgs2poses")
    arr = arr.astype(np.float64)
    bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=1))
    if bad.size:
        raise DatasetError(f"{path}: row {bad[0]} contains NaN or Inf; fix or regenerate the poses")
    return arr


def _llff(root: Path, split: str, scale: float, factor: int) -> tuple[list[_Frame], float, dict[str, Any]]:
    path = root / POSES_BOUNDS_FILE
    arr = _read_poses_bounds(path)
    folder_factor, area = _pick_folder(root, factor, scale)
    folder = root / _factor_folder(folder_factor)
    names = _list_images(folder)
    if len(names) != len(arr):
        raise DatasetError(f"{path}: has {len(arr)} poses but {folder} holds {len(names)} images; the rows must "
                           "match the sorted image names one to one")
    cams, nears, fars = [], [], []
    for i, row in enumerate(arr):
        w2c, (h, w, f) = llff_to_w2c(row[:15])
        _check_rotation(np.linalg.inv(w2c)[:3, :3], f"{path}: row {i}")
        if not (h >= 1 and w >= 1 and f > 0) or h != round(h) or w != round(w):
            raise DatasetError(f"{path}: row {i} (H, W, focal) = ({h}, {w}, {f}) must be whole positive pixel sizes "
                               "and a positive focal length")
        near, far = row[15], row[16]
        if not 0 < near < far:
            raise DatasetError(f"{path}: row {i} bounds (near {near}, far {far}) must satisfy 0 < near < far")
        cams.append(Camera(float(f), float(f), w / 2.0, h / 2.0, int(w), int(h), w2c))
        nears.append(float(near))
        fars.append(float(far))
    centre, radius = _scene_bounds(cams)
    frames = [_Frame(folder / names[i], cams[i], nears[i], fars[i], folder_factor)
              for i in llff_split(len(names), split)]
    if not frames:
        raise DatasetError(f"{path}: split '{split}' has no images ({len(names)} in all)")
    return frames, area, {"poses_bounds": str(path), "folder": str(folder), "scene_center": centre,
                          "scene_radius": radius}


# ----------------------------------------------------------------------------------------------------------------
# (c) COLMAP text model
# ----------------------------------------------------------------------------------------------------------------
# model -> parameter count; the distorted ones are read as pinholes (distortion ignored, noted in meta)
_COLMAP_MODELS = {"SIMPLE_PINHOLE": 3, "PINHOLE": 4, "SIMPLE_RADIAL": 4, "RADIAL": 5, "OPENCV": 8}
_COLMAP_DISTORTED = {"SIMPLE_RADIAL", "RADIAL", "OPENCV"}


def _model_dir(root: Path) -> Path:
    for d in (root / "sparse" / "0", root / "sparse"):
        if (d / "cameras.txt").is_file() or (d / "images.txt").is_file():
            return d
    for d in (root / "sparse" / "0", root / "sparse"):
        if (d / "cameras.bin").is_file():
            raise DatasetError(f"{d}: only a binary COLMAP model (cameras.bin); convert it with `colmap "
                               f"model_converter --input_path {d} --output_path {d} --output_type TXT`")
    raise DatasetError(f"{root / 'sparse' / '0' / 'cameras.txt'}: COLMAP text model not found")


def _data_lines(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found (a COLMAP text model needs cameras.txt and images.txt)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a UTF-8 text file (a binary model?); export the model as TXT") from None
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if not line.lstrip().startswith("#")]


def _colmap_cameras(path: Path) -> tuple[dict[int, Camera], dict[int, list[float]]]:
    cams, ignored = {}, {}
    for n, line in _data_lines(path):
        tok = line.split()
        if not tok:
            continue
        where = f"{path}: line {n}"
        if len(tok) < 4:
            raise DatasetError(f"{where}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...', got {line.strip()!r}")
        model = tok[1]
        if model not in _COLMAP_MODELS:
            raise DatasetError(f"{where}: unsupported camera model {model} (supported: {', '.join(_COLMAP_MODELS)}); "
                               "undistort the images with `colmap image_undistorter` to get PINHOLE cameras")
        try:
            cid, w, h = int(tok[0]), int(tok[2]), int(tok[3])
            params = [float(x) for x in tok[4:]]
        except ValueError:
            raise DatasetError(f"{where}: camera id, size and parameters must be numbers, "
                               f"got {line.strip()!r}") from None
        if len(params) != _COLMAP_MODELS[model]:
            raise DatasetError(f"{where}: {model} takes {_COLMAP_MODELS[model]} parameters, got {len(params)}")
        if not all(math.isfinite(p) for p in params) or w < 1 or h < 1:
            raise DatasetError(f"{where}: size must be positive and parameters finite, got {line.strip()!r}")
        if model in ("PINHOLE", "OPENCV"):
            fx, fy, cx, cy = params[:4]
        else:
            fx = fy = params[0]
            cx, cy = params[1:3]
        if not (fx > 0 and fy > 0):
            raise DatasetError(f"{where}: focal length must be positive, got {params[:2]}")
        if model in _COLMAP_DISTORTED and any(p != 0 for p in params[(4 if model == 'OPENCV' else 3):]):
            ignored[cid] = params[(4 if model == "OPENCV" else 3):]
        cams[cid] = Camera(fx, fy, cx, cy, w, h, np.eye(4))
    if not cams:
        raise DatasetError(f"{path}: no cameras listed")
    return cams, ignored


def _colmap_images(path: Path, cams: dict[int, Camera]) -> list[tuple[int, str, Camera]]:
    """(image id, name, camera with pose) per image; every image line is followed by a POINTS2D line (maybe
    empty), which is skipped."""
    lines = _data_lines(path)
    out, k = [], 0
    while k < len(lines):
        n, line = lines[k]
        tok = line.split()
        if not tok:
            k += 1
            continue
        where = f"{path}: line {n}"
        if len(tok) < 10:
            raise DatasetError(f"{where}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME', got "
                               f"{line.strip()[:80]!r}")
        try:
            iid, cid = int(tok[0]), int(tok[8])
            q = np.array([float(x) for x in tok[1:5]])
            t = np.array([float(x) for x in tok[5:8]])
        except ValueError:
            raise DatasetError(f"{where}: ids, quaternion and translation must be numbers") from None
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(t))):
            raise DatasetError(f"{where}: quaternion or translation contains NaN or Inf")
        if not np.linalg.norm(q) > 1e-8:
            raise DatasetError(f"{where}: quaternion is zero; fix the pose")
        if cid not in cams:
            raise DatasetError(f"{where}: camera id {cid} is not in cameras.txt (it lists {sorted(cams)})")
        w2c = np.eye(4)
        w2c[:3, :3], w2c[:3, 3] = qvec_to_rotmat(q), t
        out.append((iid, " ".join(tok[9:]), cams[cid].with_pose(w2c)))
        k += 2  # the POINTS2D line
    if not out:
        raise DatasetError(f"{path}: no images listed")
    return out


def _colmap_bounds(path: Path, images: list[tuple[int, str, Camera]]) -> dict[int, tuple[float, float]]:
    """Per-image (near, far) = 0.1 / 99.9 percentiles of the depths of the points each image observes."""
    if not path.is_file():
        return {}
    xyz, owners = [], []
    for n, line in _data_lines(path):
        tok = line.split()
        if not tok:
            continue
        try:
            p = [float(x) for x in tok[1:4]]
            track = [int(x) for x in tok[8::2]]
        except ValueError:
            raise DatasetError(f"{path}: line {n}: expected 'POINT3D_ID X Y Z R G B ERROR TRACK[]' numbers") from None
        if len(p) != 3 or not all(math.isfinite(v) for v in p):
            raise DatasetError(f"{path}: line {n}: point position must be 3 finite numbers")
        xyz.append(p)
        owners.append(track)
    if not xyz:
        return {}
    pts = np.asarray(xyz)
    seen: dict[int, list[int]] = {}
    for j, track in enumerate(owners):
        for iid in set(track):
            seen.setdefault(iid, []).append(j)
    out = {}
    for iid, _, cam in images:
        if iid in seen:
            z = cam.world_to_camera_points(pts[seen[iid]])[:, 2]
            z = z[z > 0]
            if z.size:
                near, far = np.percentile(z, 0.1), np.percentile(z, 99.9)
                out[iid] = (float(near), float(max(far, near * (1 + 1e-6))))
    return out


def _colmap(root: Path, split: str, scale: float, factor: int) -> tuple[list[_Frame], float, dict[str, Any]]:
    mdir = _model_dir(root)
    cams, ignored = _colmap_cameras(mdir / "cameras.txt")
    images = sorted(_colmap_images(mdir / "images.txt", cams), key=lambda x: x[1])
    for _, name, cam in images:
        _check_rotation(cam.world_to_cam[:3, :3], f"{mdir / 'images.txt'}: image {name}")
    bounds = _colmap_bounds(mdir / "points3D.txt", images)
    if ignored:
        warnings.warn(f"{mdir / 'cameras.txt'}: lens distortion of camera(s) {sorted(ignored)} is ignored "
                      "(read as pinholes); undistort the images for exact rays", stacklevel=3)
    centre, radius = _scene_bounds([c for _, _, c in images])
    folder_factor, area = _pick_folder(root, factor, scale)
    folder = root / _factor_folder(folder_factor)
    frames = []
    for i in llff_split(len(images), split):
        iid, name, cam = images[i]
        path = folder / name
        if not path.is_file():
            raise DatasetError(f"{mdir / 'images.txt'}: image {name!r} not found in {folder}; restore it or remove "
                               "it from the model")
        near, far = bounds.get(iid, (DEFAULT_NEAR * radius, DEFAULT_FAR * radius))
        frames.append(_Frame(path, cam, near, far, folder_factor))
    if not frames:
        raise DatasetError(f"{mdir / 'images.txt'}: split '{split}' has no images ({len(images)} in all)")
    return frames, area, {"model": str(mdir), "folder": str(folder), "ignored_distortion": ignored,
                          "scene_center": centre, "scene_radius": radius}


# ----------------------------------------------------------------------------------------------------------------
# public loader
# ----------------------------------------------------------------------------------------------------------------
def detect_layout(root: str | os.PathLike) -> str:
    """"nerfstudio" (transforms.json), "llff" (poses_bounds.npy) or "colmap" (sparse/0 or sparse/ text model), in
    that order of preference — the real Mip-NeRF 360 folders have both poses_bounds.npy and a binary model."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    if (root / TRANSFORMS_FILE).is_file():
        return "nerfstudio"
    if (root / POSES_BOUNDS_FILE).is_file():
        return "llff"
    if any((d / f).is_file() for d in (root / "sparse" / "0", root / "sparse") for f in ("cameras.txt", "cameras.bin")):
        return "colmap"
    raise DatasetError(f"{root}: no unbounded dataset here (looked for {TRANSFORMS_FILE}, {POSES_BOUNDS_FILE} and "
                       "sparse/0/cameras.txt); point at the scene folder")


_LAYOUT_READERS = {"nerfstudio": _nerfstudio, "llff": _llff, "colmap": _colmap}


def load_unbounded(root: str | os.PathLike, split: str = "train", scale: float = 1.0, *, factor: int = 1,
                   layout: str = "auto") -> UnboundedDataset:
    """Load one split of an unbounded dataset (ours, the real Mip-NeRF 360 layout or a COLMAP text model).

    ``factor`` picks the base resolution (``images_{factor}/``, as Mip-NeRF 360's ``factor = 4``); ``scale`` is the
    sampling rate relative to it. A scale with stored images is read as is (our rendered ``images_test_x*`` ground
    truth, or an existing ``images_{factor/scale}`` folder); other scales < 1 are area-downsampled from the base
    images with intrinsics scaled by :meth:`Camera.scaled`. ``split`` is "train", "val", "test" or "all".
    """
    root = Path(root)
    if layout not in LAYOUTS:
        raise DatasetError(f"{root}: unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    if split not in LOAD_SPLITS:
        raise DatasetError(f"{root}: unknown split {split!r}; valid: {', '.join(LOAD_SPLITS)}")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise DatasetError(f"{root}: scale must be a positive number, got {scale!r}")
    if not (isinstance(factor, int) and factor >= 1):
        raise DatasetError(f"{root}: factor must be an integer >= 1, got {factor!r}")
    found = detect_layout(root) if layout == "auto" else layout
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    frames, area, meta = _LAYOUT_READERS[found](root, split, float(scale), factor)
    images, cams = _load_frames(frames, area, found)
    centre, radius = meta.pop("scene_center"), meta.pop("scene_radius")
    return UnboundedDataset(images=images, cameras=cams, near=np.array([c.near for c in cams]),
                            far=np.array([c.far for c in cams]), paths=[f.image for f in frames], split=split,
                            scale=float(scale), root=root, source=found, scene_center=np.asarray(centre, np.float64),
                            scene_radius=float(radius), origin="files" if _same_scale(area, 1.0) else
                            "area-downsampled", meta=meta)


# ----------------------------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------------------------
def _frame_doc(cam: Camera, file_path: str, near: float, far: float) -> dict[str, Any]:
    return {"file_path": file_path, "fl_x": float(cam.fx), "fl_y": float(cam.fy), "cx": float(cam.cx),
            "cy": float(cam.cy), "w": int(cam.width), "h": int(cam.height),
            "transform_matrix": cam.c2w_opengl().tolist(), "near": float(near), "far": float(far)}


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    atomic_write_bytes(path, parents=True, data=json.dumps(doc, indent=2).encode("utf-8"))


def write_colmap_text(folder: str | os.PathLike, cameras: list[Camera], names: list[str]) -> None:
    """A COLMAP text model (one PINHOLE camera per image, no 3D points) of ``cameras`` named ``names``, so COLMAP
    tools and COLMAP-reading pipelines accept our datasets too."""
    folder = Path(folder)
    if len(cameras) != len(names):
        raise ValueError(f"{folder}: {len(cameras)} cameras but {len(names)} names")
    cam_lines = ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]"]
    img_lines = ["# Image list with two lines of data per image:",
                 "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME", "#   POINTS2D[] as (X, Y, POINT3D_ID)"]
    for k, (cam, name) in enumerate(zip(cameras, names), 1):
        intr = " ".join(repr(float(v)) for v in (cam.fx, cam.fy, cam.cx, cam.cy))
        cam_lines.append(f"{k} PINHOLE {cam.width} {cam.height} {intr}")
        q, t = rotmat_to_qvec(cam.world_to_cam[:3, :3]), cam.world_to_cam[:3, 3]
        img_lines.append(" ".join([str(k), *(repr(float(v)) for v in q), *(repr(float(v)) for v in t), str(k), name]))
        img_lines.append("")
    atomic_write_bytes(folder / "cameras.txt", parents=True, data=("\n".join(cam_lines) + "\n").encode("utf-8"))
    atomic_write_bytes(folder / "images.txt", parents=True, data=("\n".join(img_lines) + "\n").encode("utf-8"))
    atomic_write_bytes(folder / "points3D.txt", parents=True,
                       data=b"# 3D point list (empty: the scene is known analytically, not reconstructed)\n")


def scale_folder(scale: float) -> str:
    """Image folder of the test split at ``scale``: ``images`` at scale 1, ``images_test_x{label}`` otherwise."""
    return "images" if _same_scale(scale, 1.0) else f"images_test_x{scale_label(scale)}"


@dataclass
class _Task:
    split: str
    scale: float
    index: int
    count: int
    camera: Camera
    rel_path: str


def _plan(spec: UnboundedSceneSpec) -> tuple[dict[str, list[Camera]], list[_Task]]:
    cams = {split: sample_cameras(spec, split) for split in SPLITS}
    tasks = [_Task(split, 1.0, i, len(cams[split]), cam, f"images/{split}_{i:04d}.png")
             for split in SPLITS for i, cam in enumerate(cams[split])]
    for s in spec.scales:
        if not _same_scale(s, 1.0):
            tasks += [_Task("test", s, i, len(cams["test"]), cam.scaled(s), f"{scale_folder(s)}/test_{i:04d}.png")
                      for i, cam in enumerate(cams["test"])]
    return cams, tasks


def _scale_text(scale: float) -> str:
    return "×" + scale_label(scale).replace("_", "/")


def _preview(rgb: np.ndarray) -> np.ndarray:
    k = max(1, int(np.ceil(max(rgb.shape[:2]) / PREVIEW_MAX)))
    return np.ascontiguousarray(rgb[::k, ::k], dtype=np.float32)


def _frame_bounds(cam: Camera, depth: np.ndarray) -> tuple[float, float]:
    """(near, far) of a view from its depth map: near below the smallest depth along the view axis, far beyond the
    largest distance along a pixel ray, so the bounds hold whether a method measures t as depth (Mip-NeRF 360's
    unnormalized directions) or as distance (unit directions), each widened by :data:`BOUNDS_MARGIN`."""
    j, i = np.meshgrid(np.arange(cam.width) + 0.5, np.arange(cam.height) + 0.5)
    stretch = np.sqrt(1.0 + ((j - cam.cx) / cam.fx) ** 2 + ((i - cam.cy) / cam.fy) ** 2)
    return BOUNDS_MARGIN[0] * float(depth.min()), BOUNDS_MARGIN[1] * float((depth * stretch).max())


@dataclass
class GenerateUnboundedDataset:
    """Job: render ``spec`` into ``out_dir`` as a nerfstudio-format 360° dataset with multi-scale test views.

    Layout: ``transforms.json`` (every scale-1 frame, split lists, per-frame intrinsics and near/far), ``images/``,
    ``images_test_x{label}/`` + ``transforms_test_x{label}.json`` per extra test scale, ``multiscale.json`` (scale
    entries + the spec), and ``sparse/0/*.txt`` (the same scale-1 cameras as a COLMAP text model). Every view is a
    16-sample supersampled render; test views are rendered directly at each scale with :meth:`Camera.scaled`.
    Per-frame near/far bracket what the frame actually sees (its depth pass; see :func:`_frame_bounds`).
    Everything is written into a temp folder next to ``out_dir`` and renamed into place at the end; a cancel
    raises :class:`JobCancelled` after removing it. Refuses a non-empty ``out_dir`` unless ``overwrite``.
    """

    out_dir: Path
    spec: UnboundedSceneSpec = field(default_factory=UnboundedSceneSpec)
    overwrite: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        if not self.name:
            self.name = f"generate {self.spec.name} ({self.spec.width}x{self.spec.height}px)"

    def run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        from assets.cache import atomic_save_image, staged_folder

        t0 = time.perf_counter()
        spec = self.spec
        out = self.out_dir
        cams, tasks = _plan(spec)
        bounds: dict[tuple[str, int], tuple[float, float]] = {}
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
                holes = int((rgba[..., 3] < 0.999).sum())
                if holes:
                    raise RuntimeError(f"{t.split} view {t.index} at scale {t.scale}: {holes} pixels see nothing "
                                       f"(a hole in the scene, or far={t.camera.far} clips the dome)")
                if t.scale == 1.0:
                    depth = render_depth(renderer, meshes, t.camera)
                    if not np.all(np.isfinite(depth)):
                        raise RuntimeError(f"{t.split} view {t.index}: depth pass has uncovered pixels")
                    bounds[(t.split, t.index)] = _frame_bounds(t.camera, depth)
                (tmp / t.rel_path).parent.mkdir(parents=True, exist_ok=True)
                atomic_save_image(tmp / t.rel_path, rgba[..., :3])
                now = time.perf_counter()
                preview = None
                if now - last_preview >= PREVIEW_EVERY_S or k == len(tasks) - 1:
                    preview, last_preview = _preview(rgba[..., :3]), now
                what = t.split if t.split != "test" else f"test {_scale_text(t.scale)}"
                progress(Progress(k + 1, len(tasks), {}, preview, f"{what} view {t.index + 1}/{t.count}"))
            self._write_metadata(tmp, cams, bounds)
        near = min(b[0] for b in bounds.values())
        far = max(b[1] for b in bounds.values())
        return {"out_dir": str(out), "counts": {s: len(cams[s]) for s in SPLITS}, "images": len(tasks),
                "scales": [float(s) for s in sorted({1.0, *spec.scales})], "near": near, "far": far,
                "multiscale": str(out / MULTISCALE_FILE), "seconds": time.perf_counter() - t0}

    def _write_metadata(self, tmp: Path, cams: dict[str, list[Camera]],
                        bounds: dict[tuple[str, int], tuple[float, float]]) -> None:
        spec = self.spec
        centre = spec.target
        all_cams = [c for s in SPLITS for c in cams[s]]
        radius = max(float(np.linalg.norm(c.position - centre)) for c in all_cams)
        head = {"camera_model": "OPENCV", "format": "mipstudio-unbounded", "version": FORMAT_VERSION,
                "scene": spec.name, "scene_center": centre.tolist(), "scene_radius": radius,
                "near": min(b[0] for b in bounds.values()), "far": max(b[1] for b in bounds.values())}
        frames, lists, names = [], {}, []
        for s in SPLITS:
            paths = [f"images/{s}_{i:04d}.png" for i in range(len(cams[s]))]
            frames += [_frame_doc(c, p, *bounds[(s, i)]) for i, (c, p) in enumerate(zip(cams[s], paths))]
            lists[f"{s}_filenames"] = paths
            names += [Path(p).name for p in paths]
        _write_json(tmp / TRANSFORMS_FILE, {**head, "frames": frames, **lists})
        base = Camera.from_fov(spec.fov_x, spec.width, spec.height, np.eye(4))
        entries = []
        for s in sorted({1.0, *spec.scales}):
            folder, c = scale_folder(s), base.scaled(s)
            tname = TRANSFORMS_FILE if folder == "images" else f"transforms_test_x{scale_label(s)}.json"
            entries.append({"scale": float(s), "label": scale_label(s), "folder": folder, "transforms": tname,
                            "width": c.width, "height": c.height})
            if folder != "images":
                paths = [f"{folder}/test_{i:04d}.png" for i in range(len(cams["test"]))]
                fr = [_frame_doc(cam.scaled(s), p, *bounds[("test", i)])
                      for i, (cam, p) in enumerate(zip(cams["test"], paths))]
                _write_json(tmp / tname, {**head, "frames": fr, "test_filenames": paths})
        _write_json(tmp / MULTISCALE_FILE, {
            "format": "mipstudio-unbounded-multiscale", "version": FORMAT_VERSION, "scene": spec.name,
            "width": spec.width, "height": spec.height, "splits": {"test": entries}, "spec": spec.to_dict(),
            "note": "images_test_x{label} holds the test views rendered directly at scale label (1_8 = 1/8) with "
                    "the intrinsics scaled by that factor, described by its own transforms file; images/ is scale 1. "
                    "Every image is a 16-sample supersampled render."})
        write_colmap_text(tmp / "sparse" / "0", all_cams, names)



def default_unbounded_path(preset: str = "default") -> Path:
    """Cache location of a generated preset: <cache>/datasets/<scene>-<preset>-v<FORMAT_VERSION> (the version in the
    name means a generator change never reuses stale data)."""
    from assets.cache import cache_dir

    spec = UnboundedSceneSpec.preset(preset)
    return cache_dir() / "datasets" / f"{spec.name}-{preset}-v{FORMAT_VERSION}"


_ensure_lock = threading.Lock()


def _is_complete(path: Path, spec: UnboundedSceneSpec) -> bool:
    try:
        doc = read_multiscale(path)
    except DatasetError:
        return False
    return bool(doc) and doc.get("format") == "mipstudio-unbounded-multiscale" and \
        doc.get("spec") == spec.to_dict() and (path / TRANSFORMS_FILE).is_file()


def ensure_unbounded_dataset(preset: str = "default", *, progress: ProgressFn | None = None,
                             should_stop: StopFn | None = None) -> Path:
    """The cached dataset of ``preset``, generated on first use (a stale or partial one is regenerated)."""
    spec = UnboundedSceneSpec.preset(preset)
    path = default_unbounded_path(preset)
    with _ensure_lock:
        if _is_complete(path, spec):
            return path
        GenerateUnboundedDataset(path, spec, overwrite=True).run(progress or (lambda p: None),
                                                                 should_stop or (lambda: False))
    return path
