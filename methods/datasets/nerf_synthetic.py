"""The nerf_synthetic (Blender) dataset format: reading the real datasets and ours, writing ours.

Format (the real one, research/gaussians.md §4.1): ``transforms_{train,val,test}.json`` with ``camera_angle_x``
(horizontal FoV, radians) and ``frames[]`` of ``file_path`` (relative, usually without extension), ``rotation``
(unused) and ``transform_matrix`` (4x4 camera-to-world, OpenGL/Blender axes). Images are straight-alpha RGBA PNGs.

Our multi-scale extension (written by :mod:`methods.datasets.generate`) keeps that layout untouched and adds
``multiscale.json`` mapping each test scale to a folder ``test_x{label}`` and its own ``transforms_test_x{label}.json``
(same poses and FoV; only the file paths differ), so any nerf_synthetic loader can read any scale as a "split".
Scale labels are fractions with ``_`` for the slash: 1/8 → ``1_8``, 2 → ``2``.

nerfstudio-style ``transforms.json`` (``fl_x, fl_y, cx, cy, w, h`` globally or per frame, camera-to-world in OpenGL
axes) is read by the same frame parser, since the render CLI takes camera paths in that format.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from render.camera import Camera

__all__ = ["DatasetError", "Dataset", "load_nerf_synthetic", "load_transforms_cameras", "read_transforms",
           "read_multiscale", "area_resize", "scale_label", "write_transforms", "write_rgba_png", "read_image",
           "MULTISCALE_FILE", "SPLITS"]

MULTISCALE_FILE = "multiscale.json"
SPLITS = ("train", "val", "test")
_SCALE_TOL = 1e-6


class DatasetError(ValueError):
    """A dataset on disk is missing or malformed; the message names the file, the problem and the fix."""


@dataclass
class Dataset:
    """Images of one split at one scale, composited over ``background``, with one :class:`Camera` per image.

    ``source`` says where the pixels come from: "files" (read as stored, including our rendered ``test_x*``
    ground truth) or "area-downsampled" (scale < 1 synthesised from the full-resolution images).
    """

    images: np.ndarray            # (N, H, W, 3) float32 in [0, 1], composited over the background
    alphas: np.ndarray            # (N, H, W) float32 coverage in [0, 1]
    cameras: list[Camera]
    paths: list[Path]
    split: str
    scale: float
    background: tuple[float, float, float]
    root: Path
    camera_angle_x: float | None = None
    source: str = "files"
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.cameras)

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    def rgba(self, i: int) -> np.ndarray:
        """Image ``i`` as HxWx4 (composited colour + alpha), the form previews and metrics take."""
        return np.concatenate([self.images[i], self.alphas[i][..., None]], axis=-1)


# ----------------------------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------------------------
def scale_label(scale: float) -> str:
    """Folder label of a scale: 0.125 → "1_8", 0.5 → "1_2", 1 → "1", 4 → "4", 1.5 → "3_2"."""
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    f = Fraction(scale).limit_denominator(1000)
    if abs(float(f) - scale) > _SCALE_TOL * max(1.0, scale):
        raise ValueError(f"scale {scale} is not a simple fraction (denominator <= 1000); pick e.g. 1/3 or 3/2")
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}_{f.denominator}"


def _same_scale(a: float, b: float) -> bool:
    return abs(a - b) <= _SCALE_TOL * max(1.0, abs(a), abs(b))


def read_transforms(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a transforms JSON file and check it has a non-empty ``frames`` list (one-line errors otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: transforms file not found (expected a nerf_synthetic/nerfstudio JSON file)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON ({e}); fix or regenerate the file") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: top level must be a JSON object with 'frames', got {type(data).__name__}")
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        raise DatasetError(f"{path}: missing or empty 'frames' list")
    for i, fr in enumerate(frames):
        if not isinstance(fr, dict):
            raise DatasetError(f"{path}: frame {i} must be an object, got {type(fr).__name__}")
    return data


def checked_c2w(frame: dict[str, Any], where: str, key: str = "transform_matrix",
                error: type[ValueError] | None = None) -> np.ndarray:
    """``frame[key]`` as a 4x4 rigid camera-to-world matrix, or one line saying what is wrong (``where`` names the
    file and frame). Shared by the transforms loaders and the walkthrough's camera paths."""
    err = error or DatasetError
    if key not in frame:
        raise err(f"{where} has no '{key}' (4x4 camera-to-world)")
    try:
        m = np.asarray(frame[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise err(f"{where} '{key}' is not a numeric 4x4 matrix") from None
    if m.shape != (4, 4):
        raise err(f"{where} '{key}' must be 4x4, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise err(f"{where} '{key}' contains NaN or Inf")
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise err(f"{where} '{key}' bottom row must be [0, 0, 0, 1], got {m[3].tolist()}")
    r = m[:3, :3]
    if not np.allclose(r.T @ r, np.eye(3), atol=1e-3) or np.linalg.det(r) <= 0:
        raise err(f"{where} '{key}' rotation is not orthonormal with det +1 (scaled or mirrored camera)")
    return m


def _c2w(path: Path, i: int, frame: dict[str, Any]) -> np.ndarray:
    return checked_c2w(frame, f"{path}: frame {i}")


def _number(path: Path, where: str, key: str, value: Any, positive: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: {where} '{key}' must be a number, got {value!r}") from None
    if not math.isfinite(v) or (positive and v <= 0):
        raise DatasetError(f"{path}: {where} '{key}' must be a finite{' positive' if positive else ''} number, "
                           f"got {value!r}")
    return v


def resolve_image_file(root: Path, file_path: Any, tpath: Path, i: int) -> Path:
    """Resolve a frame's ``file_path`` (nerf_synthetic omits the extension; nerfstudio includes it)."""
    if not isinstance(file_path, str) or not file_path:
        raise DatasetError(f"{tpath}: frame {i} has no 'file_path' string")
    p = root / file_path
    if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".exr", ".webp") and p.is_file():
        return p
    for ext in (".png", ".PNG", ".jpg", ".jpeg"):
        q = p.with_name(p.name + ext)
        if q.is_file():
            return q
    if p.is_file():
        return p
    raise DatasetError(f"{tpath}: frame {i} image '{file_path}' not found (looked for {p}.png); "
                       "restore the image or remove the frame")


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    from assets.images import unreadable_image_message

    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except FileNotFoundError:
        raise DatasetError(f"image not found: {path}") from None
    except Exception:  # noqa: BLE001 - any decoder failure is one clear line
        raise DatasetError(unreadable_image_message(path)) from None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as HxWx4 float32 straight-alpha RGBA in [0, 1] (alpha = 1 where the file has none)."""
    from assets.images import read_image as read_pixels

    path = Path(path)
    try:
        a = read_pixels(path)
    except (OSError, ValueError) as e:
        raise DatasetError(str(e)) from None
    if a.dtype == np.uint8:
        f = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        f = a.astype(np.float32) / 65535.0
    elif np.issubdtype(a.dtype, np.floating):
        f = a.astype(np.float32)
    else:
        raise DatasetError(f"{path}: unsupported pixel type {a.dtype}")
    if f.ndim == 2:
        f = f[..., None]
    if f.ndim != 3 or f.shape[2] not in (1, 2, 3, 4):
        raise DatasetError(f"{path}: expected a grey, RGB or RGBA image, got shape {a.shape}")
    c = f.shape[2]
    if c in (1, 2):  # grey (+ alpha)
        f = np.concatenate([np.repeat(f[..., :1], 3, -1), f[..., 1:] if c == 2 else np.ones_like(f[..., :1])], -1)
    elif c == 3:
        f = np.concatenate([f, np.ones_like(f[..., :1])], -1)
    return np.ascontiguousarray(f)


class TransformsIntrinsics:
    """Per-frame intrinsics: nerfstudio keys (frame overrides global) or nerf_synthetic ``camera_angle_x``."""

    KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")

    def __init__(self, tpath: Path, data: dict[str, Any]) -> None:
        self.tpath = tpath
        self.glob = {k: data[k] for k in self.KEYS + ("camera_angle_x",) if k in data}

    def camera(self, i: int, frame: dict[str, Any], c2w: np.ndarray, size: tuple[int, int] | None) -> Camera:
        """``size`` is the image's (W, H) when known; needed when the JSON does not give ``w``/``h``."""
        merged = {**self.glob, **{k: frame[k] for k in self.KEYS + ("camera_angle_x",) if k in frame}}
        where = f"frame {i}"
        if "w" in merged or "h" in merged:
            if not ("w" in merged and "h" in merged):
                raise DatasetError(f"{self.tpath}: {where} gives only one of 'w'/'h'; give both")
            w = _number(self.tpath, where, "w", merged["w"])
            h = _number(self.tpath, where, "h", merged["h"])
            if w != int(w) or h != int(h):
                raise DatasetError(f"{self.tpath}: {where} 'w'/'h' must be whole pixels, got {w}x{h}")
            w, h = int(w), int(h)
            if w > MAX_IMAGE_SIDE or h > MAX_IMAGE_SIDE:
                raise DatasetError(f"{self.tpath}: {where} is {w}x{h} pixels; sides above {MAX_IMAGE_SIDE} are not "
                                   "supported (a wrong 'w'/'h'?)")
        elif size is not None:
            w, h = size
        else:
            raise DatasetError(f"{self.tpath}: {where}: cannot tell the image size (no 'w'/'h' and no image); "
                               "add 'w' and 'h'")
        from render.camera import opengl_c2w_to_opencv_w2c

        if "fl_x" in merged or "fl_y" in merged:
            fx = _number(self.tpath, where, "fl_x", merged.get("fl_x", merged.get("fl_y")))
            fy = _number(self.tpath, where, "fl_y", merged.get("fl_y", fx))
            cx = _number(self.tpath, where, "cx", merged.get("cx", w / 2.0), positive=False)
            cy = _number(self.tpath, where, "cy", merged.get("cy", h / 2.0), positive=False)
            return Camera(fx, fy, cx, cy, w, h, opengl_c2w_to_opencv_w2c(c2w))
        if "camera_angle_x" in merged:
            fov = _number(self.tpath, where, "camera_angle_x", merged["camera_angle_x"])
            if fov >= math.pi:
                raise DatasetError(f"{self.tpath}: 'camera_angle_x' must be below pi radians, got {fov}")
            return Camera.from_c2w_opengl(c2w, fov, w, h)
        raise DatasetError(f"{self.tpath}: {where} has no intrinsics: need 'camera_angle_x' (nerf_synthetic) or "
                           "'fl_x'/'fl_y'/'cx'/'cy'/'w'/'h' (nerfstudio)")


MAX_IMAGE_SIDE = 32768  # cameras beyond this are a typo, not a photo: refuse before allocating the image


def load_transforms_cameras(path: str | os.PathLike) -> list[Camera]:
    """Cameras of a nerf_synthetic or nerfstudio transforms file (a directory means its ``transforms.json``).

    Image sizes come from ``w``/``h`` when given, else from the first frame's image header (nerf_synthetic style).
    Pinhole only: distortion coefficients (``k1``…, ``p1``…) are ignored, as are nerfstudio's ``applied_transform``
    and scene scaling, which live outside the frames.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "transforms.json"
    data = read_transforms(path)
    intr = TransformsIntrinsics(path, data)
    cams = []
    size_cache: tuple[int, int] | None = None
    for i, fr in enumerate(data["frames"]):
        c2w = _c2w(path, i, fr)
        size = None
        if not any(k in fr or k in data for k in ("w", "h")):
            if size_cache is None:  # nerf_synthetic: one size for the whole file, read from the first image
                size_cache = _image_size(resolve_image_file(path.parent, fr.get("file_path"), path, i))
            size = size_cache
        cams.append(intr.camera(i, fr, c2w, size))
    return cams


def read_multiscale(root: str | os.PathLike) -> dict[str, Any] | None:
    """Our ``multiscale.json`` (validated), or None for datasets without one (e.g. the real nerf_synthetic)."""
    path = Path(root) / MULTISCALE_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON ({e}); regenerate the dataset") from None
    splits = data.get("splits") if isinstance(data, dict) else None
    if not isinstance(splits, dict):
        raise DatasetError(f"{path}: missing 'splits' object; regenerate the dataset")
    for split, entries in splits.items():
        if not isinstance(entries, list):
            raise DatasetError(f"{path}: splits.{split} must be a list of scale entries")
        for e in entries:
            missing = [k for k in ("scale", "label", "folder", "transforms", "width", "height")
                       if not isinstance(e, dict) or k not in e]
            if missing:
                raise DatasetError(f"{path}: splits.{split} entry {e!r} lacks {missing}")
    return data


def area_resize(images: np.ndarray, width: int, height: int) -> np.ndarray:
    """Box-filter downsampling of (..., H, W, C) images to (height, width): each output pixel is the exact area
    average of the input pixels it covers (fractional overlaps weighted), so no frequency aliases in."""
    images = np.asarray(images, dtype=np.float32)
    h_in, w_in = images.shape[-3], images.shape[-2]
    if width > w_in or height > h_in or width < 1 or height < 1:
        raise ValueError(f"area_resize only downsamples: {w_in}x{h_in} -> {width}x{height}")

    def weights(n_in: int, n_out: int) -> np.ndarray:
        edges = np.arange(n_out + 1, dtype=np.float64) * (n_in / n_out)
        lo = np.maximum(edges[:-1, None], np.arange(n_in)[None, :])
        hi = np.minimum(edges[1:, None], np.arange(n_in)[None, :] + 1.0)
        return (np.clip(hi - lo, 0.0, None) * (n_out / n_in)).astype(np.float32)

    wy, wx = weights(h_in, height), weights(w_in, width)
    out = np.einsum("yi,...ijc->...yjc", wy, images)
    out = np.einsum("xj,...yjc->...yxc", wx, out)
    return np.ascontiguousarray(out, dtype=np.float32)


# ----------------------------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------------------------
def load_nerf_synthetic(root: str | os.PathLike, split: str = "train", *, scale: float = 1.0,
                        white_background: bool = True, max_frames: int | None = None) -> Dataset:
    """Load one split of a nerf_synthetic-format dataset (the real one or ours) at sampling scale ``scale``.

    ``scale != 1`` uses our rendered ``test_x*`` ground truth when ``multiscale.json`` lists it (true zoom-in /
    zoom-out GT); otherwise scale < 1 is synthesised by area-downsampling the composited images with intrinsics
    scaled by :meth:`Camera.scaled`. Scale > 1 cannot be synthesised and is an error. The white background is the
    standard Blender evaluation protocol (Mip-Splatting / Mipmap-GS ``--white_background``).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise DatasetError(f"{root}: scale must be a positive number, got {scale!r}")
    if max_frames is not None and max_frames < 1:
        raise DatasetError(f"{root}: max_frames must be >= 1, got {max_frames}")
    bg = (1.0, 1.0, 1.0) if white_background else (0.0, 0.0, 0.0)

    entry, ms = None, None
    downsample = not _same_scale(scale, 1.0)
    if downsample:
        ms = read_multiscale(root)
        for e in (ms or {}).get("splits", {}).get(split, []):
            if _same_scale(float(e["scale"]), scale):
                entry, downsample = e, False
                break
        if downsample and scale > 1.0:
            listed = [e["scale"] for e in (ms or {}).get("splits", {}).get(split, [])]
            raise DatasetError(f"{root}: no ground truth at scale {scale} for split '{split}' (multiscale.json lists "
                               f"{listed or 'nothing'}); only scale < 1 can be synthesised by downsampling")

    base = None
    if entry is not None:
        tpath = root / entry["transforms"]
        if not ("width" in ms and "height" in ms):  # type: ignore[operator]
            raise DatasetError(f"{root / MULTISCALE_FILE}: missing base 'width'/'height'; regenerate the dataset")
        base = (int(ms["width"]), int(ms["height"]))  # type: ignore[index]
    else:
        tpath = root / f"transforms_{split}.json"
        if not tpath.is_file():
            have = sorted(p.name for p in root.glob("transforms*.json"))
            raise DatasetError(f"{tpath}: transforms file not found (split '{split}'; found {have or 'none'})")
    data = read_transforms(tpath)
    frames = data["frames"][:max_frames] if max_frames else data["frames"]
    intr = TransformsIntrinsics(tpath, data)
    bg_arr = np.asarray(bg, dtype=np.float32)

    images = alphas = None  # filled frame by frame: peak memory stays one image above the result
    cams, paths = [], []
    first_size: tuple[int, int] | None = None
    for i, fr in enumerate(frames):
        c2w = _c2w(tpath, i, fr)
        ipath = resolve_image_file(root, fr.get("file_path"), tpath, i)
        rgba = read_image(ipath)
        size = (rgba.shape[1], rgba.shape[0])
        cam = intr.camera(i, fr, c2w, base).scaled(float(entry["scale"])) if entry else intr.camera(i, fr, c2w, size)
        if (cam.width, cam.height) != size:
            raise DatasetError(f"{ipath}: image is {size[0]}x{size[1]} but {tpath.name} implies "
                               f"{cam.width}x{cam.height}; regenerate or resize the image")
        if first_size is None:
            first_size = size
        elif size != first_size:
            raise DatasetError(f"{ipath}: image is {size[0]}x{size[1]} but earlier images of split '{split}' are "
                               f"{first_size[0]}x{first_size[1]}; all images of a split must share one size")
        a = rgba[..., 3:4]
        comp = np.concatenate([rgba[..., :3] * a + bg_arr * (1.0 - a), a], -1)
        if downsample:
            cam = cam.scaled(scale)
            comp = area_resize(comp, cam.width, cam.height)  # compositing is linear: filtering after it is exact
        if images is None:
            images = np.empty((len(frames), comp.shape[0], comp.shape[1], 3), np.float32)
            alphas = np.empty((len(frames), comp.shape[0], comp.shape[1]), np.float32)
        images[i], alphas[i] = comp[..., :3], comp[..., 3]
        cams.append(cam)
        paths.append(ipath)

    angle = data.get("camera_angle_x")
    return Dataset(images=images, alphas=alphas, cameras=cams, paths=paths, split=split, scale=float(scale),
                   background=bg, root=root,
                   camera_angle_x=float(angle) if isinstance(angle, (int, float)) else None,
                   source="area-downsampled" if downsample else "files", meta={"transforms": str(tpath)})


# ----------------------------------------------------------------------------------------------------------------
# writing (used by the generator; kept here so the format lives in one file)
# ----------------------------------------------------------------------------------------------------------------
def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    from assets.cache import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, payload)


def write_transforms(path: str | os.PathLike, camera_angle_x: float, cameras: Sequence[Camera],
                     file_paths: Sequence[str]) -> None:
    """Write a nerf_synthetic ``transforms_*.json``: exactly ``camera_angle_x`` and ``frames`` of ``file_path``
    (no extension), ``rotation`` 0.0 and the OpenGL camera-to-world ``transform_matrix``."""
    if len(cameras) != len(file_paths):
        raise ValueError(f"{path}: {len(cameras)} cameras but {len(file_paths)} file paths")
    frames = [{"file_path": fp, "rotation": 0.0, "transform_matrix": cam.c2w_opengl().tolist()}
              for cam, fp in zip(cameras, file_paths)]
    text = json.dumps({"camera_angle_x": float(camera_angle_x), "frames": frames}, indent=4)
    _atomic_write_bytes(Path(path), text.encode("utf-8"))


def write_rgba_png(path: str | os.PathLike, rgba: np.ndarray) -> None:
    """Write HxWx4 straight-alpha float RGBA in [0, 1] as an 8-bit RGBA PNG (rounded, like Blender's output)."""
    import imageio.v3 as iio

    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"{path}: expected an HxWx4 image, got shape {rgba.shape}")
    u8 = np.clip(np.round(np.nan_to_num(rgba, nan=0.0) * 255.0), 0, 255).astype(np.uint8)
    payload = iio.imwrite("<bytes>", u8, extension=".png")
    _atomic_write_bytes(Path(path), payload)
