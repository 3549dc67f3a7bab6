"""Camera paths for walkthroughs: what the recorder writes and ``render``/``eval walkthrough`` read.

Format (JSON, the fish's world units)::

    {"frames": [{"camera_to_world": [[...4...], ...4 rows], "fov_y_deg": 40.0, "width": 1280, "height": 720}, ...]}

``camera_to_world`` uses OpenGL camera axes (x right, y up, looking along −z), like nerf_synthetic's
``transform_matrix``. Every problem is one line naming the file, the frame index and the field.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from render.camera import (
    Camera,
    look_at_world_to_cam,
    opencv_w2c_to_opengl_c2w,
    opengl_c2w_to_opencv_w2c,
)

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "assets" / "neural_texture" / "default_path.json"


@dataclass(frozen=True)
class PathFrame:
    camera_to_world: np.ndarray  # (4, 4) OpenGL axes
    fov_y_deg: float
    width: int
    height: int

    def camera(self, zoom: float = 1.0) -> Camera:
        """The pinhole camera of this frame; ``zoom`` multiplies the focal length (sampling rate)."""
        fy = 0.5 * self.height / math.tan(math.radians(self.fov_y_deg) / 2)
        w2c = opengl_c2w_to_opencv_w2c(self.camera_to_world)
        cam = Camera(fy, fy, self.width / 2.0, self.height / 2.0, self.width, self.height, w2c, near=0.01)
        return cam.zoomed(zoom) if zoom != 1.0 else cam

    @staticmethod
    def from_camera(cam: Camera) -> "PathFrame":
        fov_y = 2 * math.degrees(math.atan(0.5 * cam.height / cam.fy))
        return PathFrame(opencv_w2c_to_opengl_c2w(cam.world_to_cam), fov_y, cam.width, cam.height)

    def to_json(self) -> dict:
        return {"camera_to_world": np.asarray(self.camera_to_world, float).round(9).tolist(),
                "fov_y_deg": float(self.fov_y_deg), "width": int(self.width), "height": int(self.height)}


def _frame(path: Path, i: int, fr: object) -> PathFrame:
    where = f"{path}: frame {i}"
    if not isinstance(fr, dict):
        raise ValueError(f"{where} is not an object with camera_to_world, fov_y_deg, width, height")
    from methods.datasets.nerf_synthetic import checked_c2w

    m = checked_c2w(fr, where, "camera_to_world", ValueError)
    vals = {}
    for key, lo, hi in (("fov_y_deg", 0.0, 180.0), ("width", 1, 16384), ("height", 1, 16384)):
        if key not in fr:
            raise ValueError(f"{where}: missing '{key}'")
        v = fr[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{where}: '{key}' must be a number, got {v!r}")
        if key == "fov_y_deg" and not lo < v < hi:
            raise ValueError(f"{where}: 'fov_y_deg' must be in (0, 180), got {v}")
        if key != "fov_y_deg" and (v != int(v) or not lo <= v <= hi):
            raise ValueError(f"{where}: '{key}' must be a whole number of pixels in [{lo}, {hi}], got {v}")
        vals[key] = v
    return PathFrame(m, float(vals["fov_y_deg"]), int(vals["width"]), int(vals["height"]))


def read_path(path: str | Path) -> list[PathFrame]:
    """The frames of a path file (ValueError with one line naming the file/frame/field otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such camera path file (see the README's path format; --path)")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read the camera path ({e})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e.msg} at line {e.lineno}); a camera path is "
                         f'{{"frames": [...]}}') from None
    frames = doc.get("frames") if isinstance(doc, dict) else None
    if not isinstance(frames, list) or not frames:
        raise ValueError(f"{path}: needs a non-empty 'frames' list")
    return [_frame(path, i, fr) for i, fr in enumerate(frames)]


def write_path(path: str | Path, frames: list[PathFrame]) -> Path:
    """Write a path file atomically."""
    from assets.cache import atomic_write_text

    return atomic_write_text(path, json.dumps({"frames": [f.to_json() for f in frames]}, indent=1), parents=True)


def make_default_path(n: int = 24, width: int = 1280, height: int = 720, fov_y_deg: float = 40.0) -> list[PathFrame]:
    """A swoop around the fish (z up, nose along +x): half an orbit that starts far away (strong minification)
    and ends close to its flank, rising and falling, so every frame mixes distances and grazing angles."""
    frames = []
    for k in range(n):
        t = k / max(n - 1, 1)
        azim = math.radians(-110 + 200 * t)
        dist = 6.0 * (1 - t) + 2.2 * t
        elev = math.radians(25 * math.sin(math.pi * t) - 5)
        eye = np.array([dist * math.cos(elev) * math.cos(azim), dist * math.cos(elev) * math.sin(azim),
                        dist * math.sin(elev) + 0.05])
        target = np.array([0.15 * math.cos(2 * math.pi * t), 0.0, 0.05])
        w2c = look_at_world_to_cam(eye, target)
        frames.append(PathFrame(opencv_w2c_to_opengl_c2w(w2c), fov_y_deg, width, height))
    return frames
