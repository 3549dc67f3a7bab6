"""LiveSource for textured meshes (the Mesh view and, later, the neural-texture walkthrough's GL reference)."""
from __future__ import annotations

import time
from typing import Sequence

from render.live import Frame, RenderRequest
from render.mesh import TexturedMesh
from render.mesh_renderer import MeshRenderer


class MeshSource:
    """Renders meshes for a request. Options: ``filter`` (a MeshRenderer filter name), ``lighting`` (bool),
    ``background`` (RGB tuple)."""

    def __init__(self, meshes: Sequence[TexturedMesh], renderer: MeshRenderer | None = None) -> None:
        self.meshes = list(meshes)
        self.renderer = renderer or MeshRenderer()

    def render(self, request: RenderRequest) -> Frame:
        if request.camera is None:
            raise ValueError("MeshSource needs a 3D camera in the request")
        t0 = time.perf_counter()
        bg = tuple(request.option("background", (0.08, 0.09, 0.11))) + (1.0,)
        img = self.renderer.render(self.meshes, request.camera, filter=request.option("filter", "trilinear"),
                                   background=bg, lighting=bool(request.option("lighting", True)))
        return Frame(img, timings={"render": time.perf_counter() - t0})
