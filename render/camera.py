"""Pinhole camera shared by every renderer, dataset loader and controller.

Conventions (fixed project-wide, so rasterizers, GL and datasets agree):
- ``world_to_cam`` is a 4x4 world-to-camera matrix in the **OpenCV** convention: camera looks along +z, x right,
  y down.
- Pixel (row i, column j) has its centre at image coordinates (j + 0.5, i + 0.5); a camera-space point projects to
  u = fx·x/z + cx, v = fy·y/z + cy (the gsplat convention; cx = W/2 puts the optical axis at the image centre).
- nerf_synthetic / Blender store camera-to-world in the **OpenGL** convention (looks along −z, y up); converting
  means flipping the y and z camera axes.

Two ways to change the sampling rate are kept apart on purpose:
- :meth:`Camera.zoomed` scales the focal length only (same pixel grid, magnified view) — what a zoom slider does.
- :meth:`Camera.scaled` scales resolution and intrinsics together (same field of view, more pixels) — what a
  dataset rendered "at scale s" means.
Both multiply the number of pixels per unit of scene by the same factor.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

# Flips camera y and z: OpenCV <-> OpenGL camera axes (its own inverse).
_CV_GL_FLIP = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Camera:
    """An immutable pinhole camera: intrinsics, image size and an OpenCV world-to-camera pose."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    world_to_cam: np.ndarray  # (4, 4) float64, OpenCV axes
    near: float = 0.01
    far: float = 100.0

    def __post_init__(self) -> None:
        m = np.asarray(self.world_to_cam, dtype=np.float64)
        if m.shape != (4, 4) or not np.all(np.isfinite(m)):
            raise ValueError(f"world_to_cam must be a finite 4x4 matrix, got shape {m.shape}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")
        m = m.copy()
        m.setflags(write=False)
        object.__setattr__(self, "world_to_cam", m)

    # The generated dataclass __eq__/__hash__ would compare/hash the ndarray field and raise; views compare cameras
    # to decide whether to re-render, so equality is by value.
    def _key(self) -> tuple:
        # + 0.0 folds -0.0 into 0.0 so equal matrices hash equally.
        return (self.fx, self.fy, self.cx, self.cy, self.width, self.height, self.near, self.far,
                (self.world_to_cam + 0.0).tobytes())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Camera):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    # ----- construction -------------------------------------------------------------------------------------
    @staticmethod
    def from_fov(fov_x: float, width: int, height: int, world_to_cam: np.ndarray, **kw) -> "Camera":
        """Square pixels, principal point at the image centre; ``fov_x`` is the horizontal FOV in radians."""
        fx = 0.5 * width / math.tan(0.5 * fov_x)
        return Camera(fx, fx, width / 2.0, height / 2.0, int(width), int(height), world_to_cam, **kw)

    @staticmethod
    def look_at(eye, target, up=(0.0, 0.0, 1.0), *, fov_x: float = math.radians(50), width: int = 256,
                height: int = 256, **kw) -> "Camera":
        """Camera at ``eye`` looking at ``target`` with image-up closest to ``up`` (world z-up by default)."""
        return Camera.from_fov(fov_x, width, height, look_at_world_to_cam(eye, target, up), **kw)

    @staticmethod
    def from_c2w_opengl(c2w: np.ndarray, fov_x: float, width: int, height: int, **kw) -> "Camera":
        """From a nerf_synthetic/Blender camera-to-world matrix (OpenGL axes) and horizontal FOV."""
        return Camera.from_fov(fov_x, width, height, opengl_c2w_to_opencv_w2c(c2w), **kw)

    # ----- derived quantities -------------------------------------------------------------------------------
    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def cam_to_world(self) -> np.ndarray:
        return np.linalg.inv(self.world_to_cam)

    @property
    def position(self) -> np.ndarray:
        return self.cam_to_world[:3, 3].copy()

    @property
    def fov_x(self) -> float:
        return 2.0 * math.atan(0.5 * self.width / self.fx)

    @property
    def fov_y(self) -> float:
        return 2.0 * math.atan(0.5 * self.height / self.fy)

    def c2w_opengl(self) -> np.ndarray:
        """Camera-to-world in the OpenGL/Blender convention (for nerf_synthetic transforms files)."""
        return self.cam_to_world @ _CV_GL_FLIP

    def view_matrix_gl(self) -> np.ndarray:
        """OpenGL view matrix (world to OpenGL eye space), column-vector convention."""
        return _CV_GL_FLIP @ self.world_to_cam

    def projection_matrix_gl(self) -> np.ndarray:
        """OpenGL clip-space projection matching this camera's intrinsics exactly, principal point included.

        Rasterising with it puts a point at the same pixel as :meth:`project` (pixel centres at +0.5).
        """
        n, f, w, h = self.near, self.far, self.width, self.height
        return np.array([
            [2 * self.fx / w, 0.0, 1.0 - 2 * self.cx / w, 0.0],
            # GL's window y grows upward; rows are read back top-first, hence the sign on cy.
            [0.0, 2 * self.fy / h, 2 * self.cy / h - 1.0, 0.0],
            [0.0, 0.0, -(f + n) / (f - n), -2 * f * n / (f - n)],
            [0.0, 0.0, -1.0, 0.0],
        ])

    # ----- sampling-rate changes ----------------------------------------------------------------------------
    def zoomed(self, zoom: float) -> "Camera":
        """Focal length × zoom on the same pixel grid: zoom=2 samples the scene twice as densely (magnifies)."""
        if not zoom > 0:
            raise ValueError(f"zoom must be positive, got {zoom}")
        return replace(self, fx=self.fx * zoom, fy=self.fy * zoom)

    def scaled(self, scale: float) -> "Camera":
        """Resolution and intrinsics × scale (same field of view). Image size is rounded to whole pixels."""
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        w = max(1, int(round(self.width * scale)))
        h = max(1, int(round(self.height * scale)))
        sx, sy = w / self.width, h / self.height
        return replace(self, fx=self.fx * sx, fy=self.fy * sy, cx=self.cx * sx, cy=self.cy * sy, width=w, height=h)

    def resized(self, width: int, height: int) -> "Camera":
        """Same field of view (horizontal) at a new image size, principal point kept at the centre."""
        fx = self.fx * width / self.width
        return replace(self, fx=fx, fy=fx * self.fy / self.fx, cx=width / 2.0, cy=height / 2.0,
                       width=int(width), height=int(height))

    def with_pose(self, world_to_cam: np.ndarray) -> "Camera":
        return replace(self, world_to_cam=world_to_cam)

    # ----- projection ---------------------------------------------------------------------------------------
    def world_to_camera_points(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return p @ self.world_to_cam[:3, :3].T + self.world_to_cam[:3, 3]

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N,3) -> (pixel coords (N,2) as (u, v), camera depth z (N,))."""
        pc = self.world_to_camera_points(points)
        z = pc[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = np.stack([self.fx * pc[:, 0] / z + self.cx, self.fy * pc[:, 1] / z + self.cy], axis=-1)
        return uv, z

    def unproject(self, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Pixel coords (N,2) and camera depths (N,) -> world points (N,3)."""
        uv = np.asarray(uv, dtype=np.float64)
        z = np.asarray(depth, dtype=np.float64)
        pc = np.stack([(uv[:, 0] - self.cx) / self.fx * z, (uv[:, 1] - self.cy) / self.fy * z, z], axis=-1)
        c2w = self.cam_to_world
        return pc @ c2w[:3, :3].T + c2w[:3, 3]

    def pixel_rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Ray origins and unit directions (H, W, 3) through every pixel centre, in world space."""
        j, i = np.meshgrid(np.arange(self.width) + 0.5, np.arange(self.height) + 0.5)
        d_cam = np.stack([(j - self.cx) / self.fx, (i - self.cy) / self.fy, np.ones_like(j)], axis=-1)
        c2w = self.cam_to_world
        d = d_cam @ c2w[:3, :3].T
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        o = np.broadcast_to(c2w[:3, 3], d.shape).copy()
        return o, d


def look_at_world_to_cam(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV world-to-camera matrix for a camera at ``eye`` looking at ``target``."""
    eye = np.asarray(eye, dtype=np.float64)
    fwd = np.asarray(target, dtype=np.float64) - eye
    n = np.linalg.norm(fwd)
    if n == 0:
        raise ValueError("look_at: eye and target coincide")
    fwd /= n
    up = np.asarray(up, dtype=np.float64)
    right = np.cross(fwd, up)
    if np.linalg.norm(right) < 1e-9:  # looking along `up`: pick any perpendicular
        right = np.cross(fwd, np.array([1.0, 0.0, 0.0]) if abs(fwd[0]) < 0.9 else np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd])  # rows: camera axes in world coordinates
    m = np.eye(4)
    m[:3, :3] = R
    m[:3, 3] = -R @ eye
    return m


def opengl_c2w_to_opencv_w2c(c2w: np.ndarray) -> np.ndarray:
    c2w = np.asarray(c2w, dtype=np.float64)
    if c2w.shape == (3, 4):
        c2w = np.vstack([c2w, [0, 0, 0, 1]])
    if c2w.shape != (4, 4):
        raise ValueError(f"camera-to-world must be 3x4 or 4x4, got {c2w.shape}")
    return np.linalg.inv(c2w @ _CV_GL_FLIP)


def opencv_w2c_to_opengl_c2w(w2c: np.ndarray) -> np.ndarray:
    return np.linalg.inv(np.asarray(w2c, dtype=np.float64)) @ _CV_GL_FLIP


def fit_distance(radius: float, focal: float, width: int, height: int, margin: float = 1.08) -> float:
    """Distance at which a sphere of ``radius`` fits a width×height image of this focal length, with ``margin``.

    The narrower side decides (a tall, thin panel backs the camera off), and the sphere's silhouette — not its
    centre plane — must fit: half-angle asin(r/d) ≤ atan(half-side/f).
    """
    half = math.atan(0.5 * min(width, height) / focal)
    return margin * radius / math.sin(half)


def frame_camera(framing, width: int, height: int) -> Camera:
    """The zoom-1 camera of a :class:`render.live.Framing` for a panel of this size: the training focal length
    (so zoom keeps meaning sampling rate) and an eye far enough back for the bounding sphere to fit the panel."""
    c = np.asarray(framing.center, dtype=np.float64)
    d = np.asarray(framing.direction, dtype=np.float64)
    d = d / max(np.linalg.norm(d), 1e-12)
    dist = max(fit_distance(framing.radius, framing.focal, width, height), framing.min_distance)
    f = framing.focal
    return Camera(f, f, width / 2.0, height / 2.0, int(width), int(height),
                  look_at_world_to_cam(c + dist * d, c), near=framing.near, far=max(100.0, 4 * dist))
