"""Triangle meshes with UVs and a texture: the data shared by asset generators, GL renderers and the fish view."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TexturedMesh:
    """Per-vertex positions/normals/UVs, triangle indices and one texture.

    ``uvs`` follow the OpenGL/OBJ convention: v = 0 is the **bottom** row of the texture image. ``texture`` is
    float32 HxWx{3,4} in [0, 1], row 0 = top. ``model`` places the mesh in the world (4x4).
    """

    positions: np.ndarray  # (N, 3) float32
    normals: np.ndarray    # (N, 3) float32, unit
    uvs: np.ndarray        # (N, 2) float32
    faces: np.ndarray      # (M, 3) int32, counter-clockwise seen from outside
    texture: np.ndarray    # (H, W, C) float32
    model: np.ndarray = field(default_factory=lambda: np.eye(4))
    name: str = "mesh"

    def __post_init__(self) -> None:
        self.positions = np.ascontiguousarray(self.positions, dtype=np.float32)
        self.normals = np.ascontiguousarray(self.normals, dtype=np.float32)
        self.uvs = np.ascontiguousarray(self.uvs, dtype=np.float32)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int32)
        self.texture = np.ascontiguousarray(self.texture, dtype=np.float32)
        n = len(self.positions)
        if self.positions.shape != (n, 3) or self.normals.shape != (n, 3) or self.uvs.shape != (n, 2):
            raise ValueError(f"mesh '{self.name}': positions/normals/uvs must be (N,3)/(N,3)/(N,2), got "
                             f"{self.positions.shape}/{self.normals.shape}/{self.uvs.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or (self.faces.size and
                                                                 (self.faces.min() < 0 or self.faces.max() >= n)):
            raise ValueError(f"mesh '{self.name}': faces must be (M,3) indices into {n} vertices")
        if self.texture.ndim != 3 or self.texture.shape[2] not in (3, 4):
            raise ValueError(f"mesh '{self.name}': texture must be HxWx3 or HxWx4, got {self.texture.shape}")
        for arr, what in ((self.positions, "positions"), (self.uvs, "uvs"), (self.texture, "texture")):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"mesh '{self.name}': {what} contain NaN or Inf")

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World-space axis-aligned bounds (min, max)."""
        p = self.positions @ self.model[:3, :3].T + self.model[:3, 3]
        return p.min(axis=0), p.max(axis=0)
