"""GUI-independent camera controllers.

The app reads raw input once per frame (mouse position, held buttons and keys, wheel steps, frame time) and feeds
it here; these classes turn it into :class:`~render.camera.Camera` poses. Nothing here knows about Dear PyGui, so
the behaviour is unit-testable and the same controllers can drive headless walkthroughs.

Conventions: world up defaults to +z (matching :meth:`Camera.look_at`); mouse deltas are in image pixels with y
growing downward; angles are radians. ``yaw`` is measured in the plane perpendicular to ``up`` from the basis
vector ``e1`` (world +x for z-up) toward ``e2`` (world +y); ``pitch`` is the elevation above that plane.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np

from .camera import Camera, look_at_world_to_cam

# Mouse button ids as Dear PyGui numbers them (mvMouseButton_Left/Right/Middle); kept here so render/ need not
# import the GUI library.
MOUSE_LEFT = 0
MOUSE_RIGHT = 1
MOUSE_MIDDLE = 2

# Fly-mode keys -> (forward, right, up) unit coefficients. A table rather than branches so rebinding is data.
FLY_KEY_AXES: dict[str, tuple[float, float, float]] = {
    "w": (1.0, 0.0, 0.0),
    "s": (-1.0, 0.0, 0.0),
    "d": (0.0, 1.0, 0.0),
    "a": (0.0, -1.0, 0.0),
    "space": (0.0, 0.0, 1.0),
    "shift": (0.0, 0.0, -1.0),
}
FLY_KEYS: frozenset[str] = frozenset(FLY_KEY_AXES)


@dataclass(frozen=True)
class ControllerConfig:
    """Tunable feel of the controllers; one object so the app can expose or persist it as a whole."""

    rotate_sensitivity: float = 0.005  # orbit radians per dragged pixel
    dolly_factor: float = 0.9  # distance multiplier per wheel step toward the target
    min_distance: float = 1e-3
    max_distance: float = 1e3
    fly_speed: float = 1.0  # world units per second
    look_sensitivity: float = 0.003  # fly-mode radians per pixel
    pitch_limit: float = math.radians(89.0)  # keeps the view off the poles, where look-at degenerates

    def __post_init__(self) -> None:
        if not 0.0 < self.dolly_factor < 1.0:
            raise ValueError(f"dolly_factor must be in (0, 1), got {self.dolly_factor}")
        if not 0.0 < self.min_distance <= self.max_distance:
            raise ValueError(f"need 0 < min_distance <= max_distance, got {self.min_distance}, {self.max_distance}")
        if not 0.0 < self.pitch_limit < math.pi / 2:
            raise ValueError(f"pitch_limit must be in (0, pi/2), got {self.pitch_limit}")
        if not (self.rotate_sensitivity > 0 and self.look_sensitivity > 0 and self.fly_speed > 0):
            raise ValueError("sensitivities and fly_speed must be positive")

    @staticmethod
    def for_scene_radius(radius: float) -> "ControllerConfig":
        """Defaults scaled to a scene of the given radius, so flying and dolly limits feel the same at any scale."""
        if not radius > 0:
            raise ValueError(f"scene radius must be positive, got {radius}")
        return ControllerConfig(min_distance=1e-3 * radius, max_distance=1e3 * radius, fly_speed=radius)


# ----- helpers ----------------------------------------------------------------------------------------------------
def _unit(v, what: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(3)
    n = float(np.linalg.norm(v))
    if not (np.isfinite(n) and n > 0):
        raise ValueError(f"{what} must be a finite non-zero 3-vector, got {v}")
    return v / n


def _horizontal_basis(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors completing ``up`` to a right-handed frame (e1, e2, up); for up=+z they are +x and +y."""
    ref = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = ref - up * float(ref @ up)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(up, e1)


def _direction(yaw: float, pitch: float, up: np.ndarray) -> np.ndarray:
    e1, e2 = _horizontal_basis(up)
    cp = math.cos(pitch)
    return cp * math.cos(yaw) * e1 + cp * math.sin(yaw) * e2 + math.sin(pitch) * up


def _yaw_pitch(direction: np.ndarray, up: np.ndarray) -> tuple[float, float]:
    e1, e2 = _horizontal_basis(up)
    d = _unit(direction, "direction")
    pitch = math.asin(float(np.clip(d @ up, -1.0, 1.0)))
    return math.atan2(float(d @ e2), float(d @ e1)), pitch


def _clamp(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


# ----- mouse drags ------------------------------------------------------------------------------------------------
class DragTracker:
    """Turns polled mouse state into per-frame drag deltas.

    Dear PyGui's drag handler reports the delta accumulated since button-down, and starts drags anywhere in the
    window; this tracker instead remembers the previous position itself and only starts a drag for a button pressed
    while the cursor is over the image panel (``inside``). A started drag continues outside until release, so a
    rotation does not stop when the cursor leaves the panel.
    """

    def __init__(self) -> None:
        self._held: frozenset[int] = frozenset()
        self._dragging: set[int] = set()
        self._last: Optional[tuple[float, float]] = None

    @property
    def is_dragging(self) -> bool:
        return bool(self._dragging)

    @property
    def dragging(self) -> frozenset[int]:
        """Buttons whose drag is in progress."""
        return frozenset(self._dragging)

    def update(self, x: float, y: float, buttons: Iterable[int], inside: bool) -> dict[int, tuple[float, float]]:
        """Feed one frame of mouse state; returns ``{button: (dx, dy)}`` for every button currently dragging.

        The press frame reports (0, 0), so the deltas of one drag sum exactly to the cursor's total movement since
        the press. A non-finite position (some backends report one while the cursor is off-window) is ignored.
        """
        held = frozenset(buttons)
        if not (math.isfinite(x) and math.isfinite(y)):
            x, y = self._last if self._last is not None else (0.0, 0.0)
        dx, dy = (0.0, 0.0) if self._last is None else (x - self._last[0], y - self._last[1])
        self._dragging &= held  # released buttons end their drag
        started = (held - self._held) if inside else frozenset()
        out = {b: (float(dx), float(dy)) for b in self._dragging}
        out.update({b: (0.0, 0.0) for b in started})
        self._dragging |= started
        self._held = held
        self._last = (float(x), float(y))
        return out

    def cancel(self) -> None:
        """Drop all drags (e.g. on focus loss); buttons still held will not restart until pressed again."""
        self._dragging.clear()


# ----- orbit ------------------------------------------------------------------------------------------------------
@dataclass
class OrbitController:
    """Turntable camera circling ``target`` at ``distance``: left-drag rotates, right-drag pans, wheel dollies.

    The eye sits at ``target + distance · dir(yaw, pitch)`` and always looks at the target, so the target stays at
    the principal point. :meth:`reset` returns to the state the controller was created with.
    """

    target: np.ndarray = field(default_factory=lambda: np.zeros(3))
    distance: float = 4.0
    yaw: float = 0.0
    pitch: float = 0.0
    up: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    config: ControllerConfig = field(default_factory=ControllerConfig)

    def __post_init__(self) -> None:
        self.target = np.asarray(self.target, dtype=np.float64).reshape(3).copy()
        if not np.all(np.isfinite(self.target)):
            raise ValueError(f"target must be finite, got {self.target}")
        self.up = _unit(self.up, "up")
        if not (math.isfinite(self.distance) and self.distance > 0):
            raise ValueError(f"distance must be positive, got {self.distance}")
        self.distance = _clamp(float(self.distance), self.config.min_distance, self.config.max_distance)
        self.pitch = _clamp(float(self.pitch), -self.config.pitch_limit, self.config.pitch_limit)
        self.yaw = float(self.yaw)
        self._home = (self.target.copy(), self.distance, self.yaw, self.pitch)

    @classmethod
    def from_camera(cls, cam: Camera, target=None, up=(0.0, 0.0, 1.0),
                    config: Optional[ControllerConfig] = None) -> "OrbitController":
        """Orbit around ``target`` starting from ``cam``'s eye position.

        The view turns to face ``target`` (and loses any roll), so pick a target on the optical axis to keep the
        picture unchanged. Without one, the point on the optical axis nearest the world origin is used (or one unit
        ahead if the origin is behind the camera).
        """
        eye = cam.position
        if target is None:
            fwd = cam.cam_to_world[:3, 2]
            depth = float(-eye @ fwd)
            target = eye + fwd * (depth if depth > 1e-6 else 1.0)
        target = np.asarray(target, dtype=np.float64).reshape(3)
        offset = eye - target
        dist = float(np.linalg.norm(offset))
        if not dist > 0:
            raise ValueError("from_camera: the camera sits on the target")
        up = _unit(up, "up")
        yaw, pitch = _yaw_pitch(offset, up)
        return cls(target=target, distance=dist, yaw=yaw, pitch=pitch, up=up,
                   config=config if config is not None else ControllerConfig())

    @property
    def eye(self) -> np.ndarray:
        return self.target + self.distance * _direction(self.yaw, self.pitch, self.up)

    def rotate(self, dx_px: float, dy_px: float) -> None:
        """Grab-the-scene rotation: dragging right spins the scene right, dragging down tips its top toward you."""
        s = self.config.rotate_sensitivity
        self.yaw -= dx_px * s
        lim = self.config.pitch_limit
        self.pitch = _clamp(self.pitch + dy_px * s, -lim, lim)

    def pan(self, dx_px: float, dy_px: float, focal_px: float) -> None:
        """Shift the target in the image plane so points at the target's depth follow the cursor exactly.

        ``focal_px`` is the focal length of the displayed image (after zoom): one pixel there spans
        ``distance / focal_px`` world units at the target.
        """
        if not focal_px > 0:
            raise ValueError(f"focal_px must be positive, got {focal_px}")
        r = self.world_to_cam()[:3, :3]  # rows: camera right, down, forward in world coordinates
        k = self.distance / focal_px
        self.target = self.target - k * (dx_px * r[0] + dy_px * r[1])

    def dolly(self, wheel_steps: float) -> None:
        """Positive steps (wheel up) move toward the target geometrically, so each step feels the same at any range."""
        d = self.distance * self.config.dolly_factor ** wheel_steps
        self.distance = _clamp(d, self.config.min_distance, self.config.max_distance)

    def world_to_cam(self) -> np.ndarray:
        """OpenCV 4x4 world-to-camera matrix of the current pose."""
        return look_at_world_to_cam(self.eye, self.target, self.up)

    def camera(self, base: Camera) -> Camera:
        """``base``'s intrinsics and image size with this controller's pose."""
        return base.with_pose(self.world_to_cam())

    def reset(self) -> None:
        target, self.distance, self.yaw, self.pitch = self._home
        self.target = target.copy()


# ----- fly --------------------------------------------------------------------------------------------------------
@dataclass
class FlyController:
    """First-person camera: WASD moves along the view direction and sideways, Space/Shift along world up.

    Movement is ``speed · dt`` per update whatever the key combination (diagonals are normalised), so speed does
    not depend on frame rate.
    """

    position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    yaw: float = 0.0
    pitch: float = 0.0
    speed: float = 1.0
    look_sensitivity: float = 0.003
    up: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    pitch_limit: float = math.radians(89.0)

    def __post_init__(self) -> None:
        self.position = np.asarray(self.position, dtype=np.float64).reshape(3).copy()
        if not np.all(np.isfinite(self.position)):
            raise ValueError(f"position must be finite, got {self.position}")
        self.up = _unit(self.up, "up")
        if not 0.0 < self.pitch_limit < math.pi / 2:
            raise ValueError(f"pitch_limit must be in (0, pi/2), got {self.pitch_limit}")
        self.pitch = _clamp(float(self.pitch), -self.pitch_limit, self.pitch_limit)
        self.yaw = float(self.yaw)

    @classmethod
    def from_camera(cls, cam: Camera, up=(0.0, 0.0, 1.0),
                    config: Optional[ControllerConfig] = None) -> "FlyController":
        """Start at ``cam``'s eye looking the same way (roll is dropped; pitch is clamped off the poles)."""
        cfg = config if config is not None else ControllerConfig()
        up = _unit(up, "up")
        yaw, pitch = _yaw_pitch(cam.cam_to_world[:3, 2], up)
        return cls(position=cam.position, yaw=yaw, pitch=pitch, speed=cfg.fly_speed,
                   look_sensitivity=cfg.look_sensitivity, up=up, pitch_limit=cfg.pitch_limit)

    @property
    def forward(self) -> np.ndarray:
        """Unit view direction (pitch included, so W climbs when looking up)."""
        return _direction(self.yaw, self.pitch, self.up)

    @property
    def right(self) -> np.ndarray:
        """Unit strafe direction: horizontal and perpendicular to the view, to the image's right."""
        r = np.cross(self.forward, self.up)
        return r / np.linalg.norm(r)

    def update(self, keys_down: Iterable[str], dt: float) -> bool:
        """Move for one frame of ``dt`` seconds given the held keys; returns whether the position changed.

        Unknown keys are ignored, so the app may pass everything it sees held. Opposite keys cancel.
        """
        coeff = np.zeros(3)
        for k in keys_down:
            coeff += FLY_KEY_AXES.get(str(k).lower(), (0.0, 0.0, 0.0))
        move = coeff[0] * self.forward + coeff[1] * self.right + coeff[2] * self.up
        n = float(np.linalg.norm(move))
        if not (n > 1e-12 and dt > 0):
            return False
        self.position = self.position + move * (self.speed * dt / n)
        return True

    def look(self, dx_px: float, dy_px: float) -> None:
        """Mouse-look: moving right turns right, moving down looks down."""
        self.yaw -= dx_px * self.look_sensitivity
        self.pitch = _clamp(self.pitch - dy_px * self.look_sensitivity, -self.pitch_limit, self.pitch_limit)

    def world_to_cam(self) -> np.ndarray:
        """OpenCV 4x4 world-to-camera matrix of the current pose."""
        return look_at_world_to_cam(self.position, self.position + self.forward, self.up)

    def camera(self, base: Camera) -> Camera:
        """``base``'s intrinsics and image size with this controller's pose."""
        return base.with_pose(self.world_to_cam())
