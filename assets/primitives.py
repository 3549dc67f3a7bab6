"""UV-mapped primitive meshes (sphere, box, torus, disc, plane, cylinder) as :class:`TexturedMesh` builders.

They are the building blocks of the synthetic scenes: every primitive has an analytic UV layout, so a procedural
texture covers it with a known, predictable density of detail (what zoom-in blur / zoom-out aliasing measure).

Conventions, shared with ``render/mesh.py``: world z is up; triangles are counter-clockwise seen from outside (the
geometric normal (b−a)×(c−a) points along the vertex normals); normals are unit and outward; v = 0 is the bottom
row of the texture image. UV seams duplicate vertices so no triangle wraps around the texture.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from render.mesh import TexturedMesh

__all__ = ["uv_sphere", "box", "torus", "disc", "plane", "cylinder", "trs", "default_texture"]


def default_texture() -> np.ndarray:
    """A 2x2 uniform light-grey RGB texture, for meshes built without one."""
    return np.full((2, 2, 3), 0.8, dtype=np.float32)


def trs(translate: Sequence[float] = (0.0, 0.0, 0.0), rotate_deg: Sequence[float] = (0.0, 0.0, 0.0),
        scale: float | Sequence[float] = 1.0) -> np.ndarray:
    """4x4 model matrix = T · Rz · Ry · Rx · S (rotations in degrees about the world axes, x applied first)."""
    rx, ry, rz = (math.radians(a) for a in rotate_deg)
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    s = np.broadcast_to(np.asarray(scale, dtype=np.float64), (3,))
    m = np.eye(4)
    m[:3, :3] = Rz @ Ry @ Rx @ np.diag(s)
    m[:3, 3] = np.asarray(translate, dtype=np.float64)
    return m


def _uv_scale(uv_scale: float | Sequence[float]) -> np.ndarray:
    return np.broadcast_to(np.asarray(uv_scale, dtype=np.float64), (2,))


def _grid_faces(rows: int, cols: int, *, poles: bool = False) -> np.ndarray:
    """Two CCW triangles per cell of a (rows+1)x(cols+1) vertex grid whose column index grows to the right and
    row index grows upward as seen from outside. With ``poles`` the first and last vertex rows are collapsed
    points (a sphere's poles): their degenerate triangles are dropped so every face has a geometric normal."""
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    a = i * (cols + 1) + j          # bottom-left
    b = a + 1                       # bottom-right
    c = a + (cols + 1) + 1          # top-right
    d = a + (cols + 1)              # top-left
    lower = np.stack([a, b, c], -1)
    upper = np.stack([a, c, d], -1)
    if poles:
        lower, upper = lower[1:], upper[:-1]
    return np.concatenate([lower.reshape(-1, 3), upper.reshape(-1, 3)])


def _mesh(positions, normals, uvs, faces, texture, model, name) -> TexturedMesh:
    return TexturedMesh(positions=positions, normals=normals, uvs=uvs, faces=faces,
                        texture=default_texture() if texture is None else texture,
                        model=np.eye(4) if model is None else np.asarray(model, dtype=np.float64), name=name)


def uv_sphere(radius: float = 1.0, segments: int = 64, rings: int = 32, *, texture: np.ndarray | None = None,
              uv_scale: float | Sequence[float] = 1.0, model: np.ndarray | None = None,
              name: str = "sphere") -> TexturedMesh:
    """Sphere about the origin, poles on ±z; u = longitude/2π (from +x towards +y), v = 0 south … 1 north."""
    if segments < 3 or rings < 2 or not radius > 0:
        raise ValueError(f"uv_sphere: need segments >= 3, rings >= 2, radius > 0 (got {segments}, {rings}, {radius})")
    lat = np.linspace(-math.pi / 2, math.pi / 2, rings + 1)
    lon = np.linspace(0.0, 2 * math.pi, segments + 1)
    LAT, LON = np.meshgrid(lat, lon, indexing="ij")
    n = np.stack([np.cos(LAT) * np.cos(LON), np.cos(LAT) * np.sin(LON), np.sin(LAT)], -1).reshape(-1, 3)
    uv = np.stack([LON / (2 * math.pi), (LAT + math.pi / 2) / math.pi], -1).reshape(-1, 2) * _uv_scale(uv_scale)
    faces = _grid_faces(rings, segments, poles=True)
    return _mesh(n * radius, n, uv, faces, texture, model, name)


def box(size: float | Sequence[float] = 1.0, *, texture: np.ndarray | None = None,
        uv_scale: float | Sequence[float] = 1.0, model: np.ndarray | None = None, name: str = "box") -> TexturedMesh:
    """Axis-aligned box centred at the origin with full edge lengths ``size``; each face maps the whole texture
    upright (side faces: v up = +z; top/bottom: u along +x)."""
    s = np.broadcast_to(np.asarray(size, dtype=np.float64), (3,)) / 2.0
    if not np.all(s > 0):
        raise ValueError(f"box: size must be positive, got {size}")
    X, Y, Z = np.eye(3)
    # (outward normal, texture-right, texture-up) with right × up = normal, so corners listed BL, BR, TR, TL are CCW.
    frames = [(X, Y, Z), (-X, -Y, Z), (Y, -X, Z), (-Y, X, Z), (Z, X, Y), (-Z, X, -Y)]
    pos, nrm, uv, faces = [], [], [], []
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    for k, (nv, r, u) in enumerate(frames):
        for cu, cv in corners:
            pos.append((nv + cu * r + cv * u) * s)
            nrm.append(nv)
            uv.append(((cu + 1) / 2, (cv + 1) / 2))
        faces += [[4 * k, 4 * k + 1, 4 * k + 2], [4 * k, 4 * k + 2, 4 * k + 3]]
    return _mesh(np.array(pos), np.array(nrm), np.array(uv) * _uv_scale(uv_scale), np.array(faces), texture, model,
                 name)


def torus(major_radius: float = 0.7, minor_radius: float = 0.25, segments: int = 96, sides: int = 32, *,
          texture: np.ndarray | None = None, uv_scale: float | Sequence[float] = 1.0,
          model: np.ndarray | None = None, name: str = "torus") -> TexturedMesh:
    """Torus about the z axis; u = angle around z / 2π, v = angle around the tube / 2π (0 at the outer equator)."""
    if not (major_radius > minor_radius > 0) or segments < 3 or sides < 3:
        raise ValueError(f"torus: need major > minor > 0 and >= 3 segments/sides "
                         f"(got {major_radius}, {minor_radius}, {segments}, {sides})")
    phi = np.linspace(0.0, 2 * math.pi, sides + 1)
    lam = np.linspace(0.0, 2 * math.pi, segments + 1)
    PHI, LAM = np.meshgrid(phi, lam, indexing="ij")
    n = np.stack([np.cos(PHI) * np.cos(LAM), np.cos(PHI) * np.sin(LAM), np.sin(PHI)], -1).reshape(-1, 3)
    ring = np.stack([np.cos(LAM), np.sin(LAM), np.zeros_like(LAM)], -1).reshape(-1, 3)
    p = ring * major_radius + n * minor_radius
    uv = np.stack([LAM / (2 * math.pi), PHI / (2 * math.pi)], -1).reshape(-1, 2) * _uv_scale(uv_scale)
    return _mesh(p, n, uv, _grid_faces(sides, segments), texture, model, name)


def disc(radius: float = 1.0, segments: int = 96, *, texture: np.ndarray | None = None,
         uv_scale: float | Sequence[float] = 1.0, model: np.ndarray | None = None, name: str = "disc") -> TexturedMesh:
    """Flat disc in the z = 0 plane facing +z, with planar UVs (the texture square inscribes the disc)."""
    if not radius > 0 or segments < 3:
        raise ValueError(f"disc: need radius > 0 and segments >= 3 (got {radius}, {segments})")
    return _cap(radius, segments, 0.0, +1, texture, uv_scale, model, name)


def _cap(radius: float, segments: int, z: float, facing: int, texture, uv_scale, model, name) -> TexturedMesh:
    t = np.linspace(0.0, 2 * math.pi, segments, endpoint=False)
    ring = np.stack([np.cos(t), np.sin(t)], -1) * radius
    xy = np.vstack([[0.0, 0.0], ring])
    pos = np.column_stack([xy, np.full(len(xy), z)])
    nrm = np.tile([0.0, 0.0, float(facing)], (len(xy), 1))
    # Seen from +z the ring runs counter-clockwise; a downward cap reverses the winding and mirrors u.
    uv = np.column_stack([(facing * xy[:, 0] / radius + 1) / 2, (xy[:, 1] / radius + 1) / 2]) * _uv_scale(uv_scale)
    j = np.arange(segments)
    faces = np.column_stack([np.zeros(segments, int), 1 + j, 1 + (j + 1) % segments])
    if facing < 0:
        faces = faces[:, [0, 2, 1]]
    return _mesh(pos, nrm, uv, faces, texture, model, name)


def plane(size: float | Sequence[float] = 2.0, subdivisions: int = 1, *, texture: np.ndarray | None = None,
          uv_scale: float | Sequence[float] = 1.0, model: np.ndarray | None = None,
          name: str = "plane") -> TexturedMesh:
    """Rectangle in the z = 0 plane facing +z, centred at the origin; u along +x, v along +y."""
    sx, sy = np.broadcast_to(np.asarray(size, dtype=np.float64), (2,))
    if not (sx > 0 and sy > 0) or subdivisions < 1:
        raise ValueError(f"plane: need positive size and subdivisions >= 1 (got {size}, {subdivisions})")
    t = np.linspace(0.0, 1.0, subdivisions + 1)
    V, U = np.meshgrid(t, t, indexing="ij")  # rows go up (+y), columns go right (+x) seen from +z
    pos = np.stack([(U - 0.5) * sx, (V - 0.5) * sy, np.zeros_like(U)], -1).reshape(-1, 3)
    nrm = np.tile([0.0, 0.0, 1.0], (len(pos), 1))
    uv = np.stack([U, V], -1).reshape(-1, 2) * _uv_scale(uv_scale)
    return _mesh(pos, nrm, uv, _grid_faces(subdivisions, subdivisions), texture, model, name)


def cylinder(radius: float = 0.5, height: float = 1.0, segments: int = 64, *, caps: bool = True,
             texture: np.ndarray | None = None, uv_scale: float | Sequence[float] = 1.0,
             model: np.ndarray | None = None, name: str = "cylinder") -> TexturedMesh:
    """Cylinder about the z axis from z = −height/2 to +height/2; the side maps u around, v up; caps are planar."""
    if not (radius > 0 and height > 0) or segments < 3:
        raise ValueError(f"cylinder: need radius, height > 0 and segments >= 3 (got {radius}, {height}, {segments})")
    lam = np.linspace(0.0, 2 * math.pi, segments + 1)
    zs = np.array([-height / 2, height / 2])
    Z, LAM = np.meshgrid(zs, lam, indexing="ij")
    n = np.stack([np.cos(LAM), np.sin(LAM), np.zeros_like(LAM)], -1).reshape(-1, 3)
    p = n * radius + np.stack([np.zeros_like(Z), np.zeros_like(Z), Z], -1).reshape(-1, 3)
    uv = np.stack([LAM / (2 * math.pi), (Z + height / 2) / height], -1).reshape(-1, 2) * _uv_scale(uv_scale)
    side = _mesh(p, n, uv, _grid_faces(1, segments), texture, model, name)
    if not caps:
        return side
    parts = [side, _cap(radius, segments, height / 2, +1, texture, uv_scale, model, name),
             _cap(radius, segments, -height / 2, -1, texture, uv_scale, model, name)]
    return merge(parts, name=name)


def merge(meshes: Sequence[TexturedMesh], *, name: str | None = None) -> TexturedMesh:
    """Concatenate meshes that share one texture and model matrix (e.g. a cylinder's side and caps)."""
    if not meshes:
        raise ValueError("merge: no meshes given")
    first = meshes[0]
    for m in meshes[1:]:
        if m.texture is not first.texture and not np.array_equal(m.texture, first.texture):
            raise ValueError(f"merge: mesh '{m.name}' has a different texture from '{first.name}'")
        if not np.array_equal(m.model, first.model):
            raise ValueError(f"merge: mesh '{m.name}' has a different model matrix from '{first.name}'")
    offsets = np.cumsum([0] + [len(m.positions) for m in meshes[:-1]])
    return TexturedMesh(
        positions=np.concatenate([m.positions for m in meshes]),
        normals=np.concatenate([m.normals for m in meshes]),
        uvs=np.concatenate([m.uvs for m in meshes]),
        faces=np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]),
        texture=first.texture, model=first.model, name=name or first.name)
