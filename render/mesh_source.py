"""LiveSource for textured meshes (the Mesh view and, later, the neural-texture walkthrough's GL reference)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from render.camera import Camera, frame_camera
from render.live import Frame, Framing, RenderRequest
from render.mesh import TexturedMesh
from render.mesh_renderer import MeshRenderer
from render.options import option

FILTERS = ("nearest", "trilinear", "anisotropic", "supersampled")
FILTER_LABELS = ("nearest", "trilinear mipmaps", "anisotropic 16x", "supersampled 16x (ref.)")
MESH_FOCAL = 256 / math.tan(math.radians(20))  # zoom 1: a 40° field of view across 512 px
MESH_DIRECTION = (0.163, -0.978, 0.326)  # from the object towards the default eye (front, slightly above)


@dataclass(frozen=True)
class MeshOptions:
    filter: str = option("nearest", choices=FILTERS, labels=FILTER_LABELS, widget="radio",
                         help="texture filter; zoom out to 1/8x with nearest to see aliasing, compare with the "
                              "supersampled reference")
    lighting: bool = option(True, help="Lambert lighting applied after the texture lookup")
    background: tuple[float, float, float] = (0.08, 0.09, 0.11)


def mesh_framing(meshes: Sequence[TexturedMesh], focal: float = MESH_FOCAL) -> Framing:
    """Bounding sphere of the meshes in world space (their ``model`` matrices applied)."""
    pts = [np.asarray(m.positions, np.float64) @ np.asarray(m.model)[:3, :3].T + np.asarray(m.model)[:3, 3]
           for m in meshes]
    p = np.concatenate(pts) if pts else np.zeros((1, 3))
    lo, hi = p.min(axis=0), p.max(axis=0)
    c = (lo + hi) / 2
    r = float(np.linalg.norm(p - c, axis=1).max()) or 1.0
    return Framing(center=tuple(float(v) for v in c), radius=r, focal=focal, direction=MESH_DIRECTION)


def mesh_camera(meshes: Sequence[TexturedMesh], width: int, height: int) -> Camera:
    """The zoom-1 camera that frames the meshes in a width×height image (the view's and ``render mesh``'s)."""
    return frame_camera(mesh_framing(meshes), width, height)


class MeshSource:
    """Renders meshes through the GL thread's :class:`MeshRenderer`."""

    Options = MeshOptions

    def __init__(self, meshes: Sequence[TexturedMesh], renderer: MeshRenderer | None = None) -> None:
        self.meshes = list(meshes)
        self.renderer = renderer or MeshRenderer()
        self._framing = mesh_framing(self.meshes)

    def framing(self) -> Framing:
        return self._framing

    def describe(self) -> str:
        tris = sum(len(m.faces) for m in self.meshes)
        tex = max((m.texture.shape[1] for m in self.meshes), default=0)
        return f"{tris} triangles · texture {tex}px"

    def render(self, request: RenderRequest) -> Frame:
        if request.camera is None:
            raise ValueError("MeshSource needs a 3D camera in the request")
        o: MeshOptions = request.options
        t0 = time.perf_counter()
        img = self.renderer.render(self.meshes, request.camera, filter=o.filter, background=(*o.background, 1.0),
                                   lighting=o.lighting)
        return Frame(img, timings={"render": time.perf_counter() - t0})
