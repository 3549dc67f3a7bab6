"""The live-source contract: what every view renders through (DESIGN §3).

A view builds an immutable :class:`RenderRequest` once per UI frame from its widgets; a worker thread passes the
newest one to :meth:`LiveSource.render`, which returns a :class:`Frame`. Sources never touch the GUI, so the same
source serves the GUI, the CLI and the tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

from render.camera import Camera

ZOOM_MIN = 1.0 / 8.0
ZOOM_MAX = 8.0


@dataclass(frozen=True)
class RenderRequest:
    """Everything a source needs for one frame; compared by value so unchanged requests are not re-rendered.

    ``camera`` is None for 2D views. ``zoom`` is the sampling rate relative to training (1/8…8). ``width`` and
    ``height`` are the pixel size to render — smaller than the panel while the user interacts (``preview``).
    ``options`` holds the view's own settings as a sorted tuple of (name, value) pairs so the request stays hashable.
    """

    width: int
    height: int
    zoom: float = 1.0
    camera: Camera | None = None
    options: tuple[tuple[str, Any], ...] = ()
    preview: bool = False
    center: tuple[float, float] = (0.0, 0.0)  # 2D views: view centre in [-1, 1]^2

    def option(self, name: str, default: Any = None) -> Any:
        for k, v in self.options:
            if k == name:
                return v
        return default

    @staticmethod
    def pack_options(opts: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        return tuple(sorted(opts.items()))

    def same_as(self, other: "RenderRequest | None") -> bool:
        """Value equality including the camera pose (dataclass ``==`` cannot compare numpy arrays)."""
        if other is None:
            return False
        if (self.width, self.height, self.zoom, self.options, self.preview, self.center) != (
                other.width, other.height, other.zoom, other.options, other.preview, other.center):
            return False
        a, b = self.camera, other.camera
        if a is None or b is None:
            return a is b
        return (a.fx, a.fy, a.cx, a.cy, a.width, a.height) == (b.fx, b.fy, b.cx, b.cy, b.width, b.height) and \
            np.array_equal(a.world_to_cam, b.world_to_cam)


@dataclass
class Frame:
    """A rendered image, float32 HxWx{3,4} in [0, 1], plus optional auxiliary outputs and timings (seconds)."""

    image: np.ndarray
    aux: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        img = np.asarray(self.image)
        if img.ndim != 3 or img.shape[2] not in (3, 4):
            raise ValueError(f"Frame image must be HxWx3 or HxWx4, got shape {img.shape}")
        self.image = np.ascontiguousarray(img, dtype=np.float32)

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]

    def rgba(self) -> np.ndarray:
        """Contiguous float32 RGBA (what Dear PyGui raw textures take)."""
        if self.image.shape[2] == 4:
            return self.image
        alpha = np.ones(self.image.shape[:2] + (1,), np.float32)
        return np.ascontiguousarray(np.concatenate([self.image, alpha], axis=2))


@runtime_checkable
class LiveSource(Protocol):
    """Anything a view can show. Called from a worker thread; must not touch Dear PyGui."""

    def render(self, request: RenderRequest) -> Frame: ...
