"""Live sources of the sampling baselines: the textured fish (GL texture filtering) and bundled 2D images
(nearest / bilinear / prefiltered resampling) — what every learned multiscale method is compared with."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from render.image_sampler import SAMPLING_MODES, ImageSource
from render.live import Frame, RenderRequest
from render.mesh_source import MeshSource
from render.options import option

IMAGES = ("zone plate", "astronaut", "chelsea", "brick", "checkerboard")


def load_demo_image(name: str, size: int = 512):
    """A bundled photo (scikit-image) or a procedural texture by name, HxWx3 float32."""
    from assets import photos, textures

    if name in photos.list_photos():
        return photos.load_photo(name, size=size)
    return textures.make_texture(name.replace(" ", "_"), size)


@dataclass(frozen=True)
class DemoImageOptions:
    image: str = option("zone plate", choices=IMAGES, help="a photo (scikit-image) or a procedural texture")
    mode: str = option("nearest", choices=SAMPLING_MODES, widget="radio", label="sampling",
                       help="nearest/bilinear alias when zoomed out; prefiltered blurs by σ = 0.5/zoom first")
    background: float = 0.1


class DemoImageSource:
    """An :class:`ImageSource` per bundled image, loaded the first time a request names it."""

    Options = DemoImageOptions

    def __init__(self) -> None:
        self._sources: dict[str, ImageSource] = {}
        self._lock = threading.Lock()
        self._current = DemoImageOptions().image

    def source(self, name: str) -> ImageSource:
        with self._lock:
            if name not in self._sources:
                self._sources[name] = ImageSource(load_demo_image(name))
            return self._sources[name]

    @property
    def image_size(self) -> tuple[int, int]:
        return self.source(self._current).image_size

    def render(self, request: RenderRequest) -> Frame:
        o: DemoImageOptions = request.options
        self._current = o.image
        return self.source(o.image).render(request)

    def describe(self) -> str:
        w, h = self.image_size
        return f"{self._current} · {w}x{h}"


def fish_source() -> MeshSource:
    """The textured fish (generated once into the cache, ~0.4 s to load afterwards)."""
    from assets.fish import fish_paths, load_fish

    return MeshSource([load_fish(*fish_paths())])
