"""The live-source contract: what every view renders through (DESIGN §3).

A view builds an immutable :class:`RenderRequest` once per UI frame from its widgets; a worker thread passes the
newest one to :meth:`LiveSource.render`, which returns a :class:`Frame`. Sources never touch the GUI, so the same
source serves the GUI, the CLI and the tests.

A source declares its settings as one frozen options dataclass (``Options``, fields made with
:func:`render.options.option`); the request carries an instance of it, so defaults, ranges and choices live in
one place and the request stays hashable. 3D sources may also say how to frame their content
(:class:`Framing`); :func:`render.camera.frame_camera` turns that into the zoom-1 camera for any panel.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from render.camera import Camera

ZOOM_MIN = 1.0 / 8.0
ZOOM_MAX = 8.0


@dataclass(frozen=True)
class NoOptions:
    """Options of a source that has none."""


@dataclass(frozen=True)
class RenderRequest:
    """Everything a source needs for one frame; compared by value so unchanged requests are not re-rendered.

    ``camera`` is None for 2D views; for 3D views it is already the camera of this request's pixel size (previews
    scale focal and size together, :meth:`Camera.scaled`, so the field of view never changes while dragging).
    ``zoom`` is the sampling rate relative to training (1/8…8). ``width``/``height`` are the pixel size to render;
    ``render_scale`` = width / panel width (< 1 for previews) — 2D sources use it to keep the covered region.
    ``options`` is the source's frozen options dataclass. ``revision`` is the live-training snapshot to show
    (0 = none); ``center`` the 2D view centre in the source's coordinates.
    """

    width: int
    height: int
    zoom: float = 1.0
    camera: Camera | None = None
    options: Any = field(default_factory=NoOptions)
    render_scale: float = 1.0
    preview: bool = False
    center: tuple[float, float] = (0.0, 0.0)
    revision: int = 0

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.options) or isinstance(self.options, type):
            raise TypeError(f"RenderRequest.options must be an options dataclass instance, "
                            f"got {type(self.options).__name__}")

    @property
    def effective_zoom(self) -> float:
        """Screen pixels per training pixel of *this* request's image (zoom × render_scale)."""
        return self.zoom * self.render_scale

    def same_as(self, other: "RenderRequest | None") -> bool:
        """Value equality including the camera pose."""
        return other is not None and self == other


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
        return to_rgba(self.image)


def to_rgba(image: np.ndarray, *, sanitize: bool = False) -> np.ndarray:
    """HxW / HxWx1 / HxWx3 / HxWx4 → contiguous float32 HxWx4 (alpha 1 where missing) — the one conversion every
    texture upload goes through. ``sanitize`` also maps NaN/inf to 0/1 and clips to [0, 1] (untrusted previews)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {img.shape}")
    h, w, c = img.shape
    if c == 4:
        out = np.array(img, dtype=np.float32, order="C", copy=sanitize)
    else:
        out = np.empty((h, w, 4), dtype=np.float32)
        out[..., :3] = img  # broadcasts one channel to grey
        out[..., 3] = 1.0
    if sanitize:
        np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
        np.clip(out, 0.0, 1.0, out=out)
    return out


@dataclass(frozen=True)
class Framing:
    """How a 3D source wants to be looked at: a bounding sphere, the zoom-1 focal length (pixels; the training
    cameras' sampling rate) and the direction from the centre to the default eye. ``min_distance`` keeps the
    default eye at least this far (e.g. the training cameras' distance) even when the object would fit closer."""

    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 1.0
    focal: float = 500.0
    direction: tuple[float, float, float] = (0.0, -0.906, 0.423)  # 25° above the horizon, looking along +y
    min_distance: float = 0.0
    near: float = 0.01


@runtime_checkable
class LiveSource(Protocol):
    """Anything a view can show. Called from a worker thread; must not touch Dear PyGui.

    ``Options`` is the frozen options dataclass requests carry. 3D sources also implement ``framing()``; any
    source may implement ``describe() -> str`` for the view's info line.
    """

    Options: ClassVar[type]

    def render(self, request: RenderRequest) -> Frame: ...
