"""Image view: a photo or procedural texture at any zoom, sampled naively or with the anti-aliasing prefilter.

The 2D baseline the scale-space views are compared with; drag to pan, wheel or slider to zoom.
"""
from __future__ import annotations

from typing import Any

import dearpygui.dearpygui as dpg

from app.views import register_view
from app.views.base import View
from render.image_sampler import SAMPLING_MODES, ImageSource

IMAGES = ("astronaut", "chelsea", "brick", "zone plate", "checkerboard")


def load_demo_image(name: str, size: int = 512):
    from assets import photos, textures

    if name in photos.list_photos():
        return photos.load_photo(name, size=size)
    return textures.make_texture(name.replace(" ", "_"), size)


@register_view
class ImageView(View):
    name = "image"
    title = "Image (2D sampling)"
    is_3d = False
    order = 20

    def create_source(self) -> ImageSource:
        self._image_name = "zone plate"
        return ImageSource(load_demo_image(self._image_name))

    def build_options(self, parent: int | str) -> None:
        dpg.add_text("Image", parent=parent)
        self.tags["image_name"] = dpg.add_combo(list(IMAGES), default_value=self._image_name, parent=parent,
                                                width=-1, callback=lambda s, a: self._load(a))
        dpg.add_text("Sampling", parent=parent)
        self.tags["sampling"] = dpg.add_radio_button(list(SAMPLING_MODES), default_value="nearest", parent=parent,
                                                 tag=f"{self.name}.sampling")

    def _load(self, name: str) -> None:
        try:
            self.worker.set_source(ImageSource(load_demo_image(name)))
            self._image_name = name
            self.last_request = None  # force a re-render with the new source
        except Exception as e:  # noqa: BLE001
            self.studio.notify(f"cannot load image '{name}': {e}")

    def read_options(self) -> dict[str, Any]:
        return {"mode": dpg.get_value(self.tags["sampling"]), "image": self._image_name}
