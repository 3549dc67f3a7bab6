"""Mesh view: the textured fish rendered by GL, to see texture aliasing change with zoom and filtering.

Zoom 1× is a fixed focal length (703 px, a 40° field of view on a 512-px panel), so the zoom slider changes
the number of screen pixels per texel exactly like the sampling-rate zoom of the learned views.
"""
from __future__ import annotations

import math
from typing import Any

import dearpygui.dearpygui as dpg

from app.views import register_view
from app.views.base import OPTIONS_WIDTH, View
from render.camera import Camera, look_at_world_to_cam
from render.mesh_source import MeshSource

FILTERS = {  # label shown -> MeshRenderer filter name
    "nearest": "nearest",
    "trilinear mipmaps": "trilinear",
    "anisotropic 16x": "anisotropic",
    "supersampled 16x (ref.)": "supersampled",
}
BASE_FOCAL = 256 / math.tan(math.radians(20))


@register_view
class MeshView(View):
    name = "mesh"
    title = "Mesh (textured fish)"
    order = 10

    def create_source(self) -> MeshSource:
        from assets.fish import fish_paths, load_fish

        self.fish = load_fish(*fish_paths())  # generated once into the cache, ~0.4 s to load afterwards
        return MeshSource([self.fish])

    def base_camera(self, width: int, height: int) -> Camera:
        w2c = look_at_world_to_cam((0.6, -3.6, 1.2), (0.0, 0.0, 0.0))
        return Camera(BASE_FOCAL, BASE_FOCAL, width / 2, height / 2, width, height, w2c)

    def build_options(self, parent: int | str) -> None:
        dpg.add_text("Texture filter", parent=parent)
        self.tags["filter"] = dpg.add_radio_button(list(FILTERS), default_value="nearest", parent=parent,
                                                   tag=f"{self.name}.filter")
        self.tags["lighting"] = dpg.add_checkbox(label="lighting", default_value=True, parent=parent)
        dpg.add_text("Zoom out to 1/8x with 'nearest' to see aliasing; compare with the reference.",
                     parent=parent, color=(160, 160, 170), wrap=OPTIONS_WIDTH - 20)

    def read_options(self) -> dict[str, Any]:
        return {"filter": FILTERS[dpg.get_value(self.tags["filter"])],
                "lighting": bool(dpg.get_value(self.tags["lighting"]))}

    def info(self) -> str:
        return f"{len(self.fish.faces)} triangles · texture {self.fish.texture.shape[1]}px"
