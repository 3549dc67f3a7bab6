"""The bundled synthetic scene "studio_objects" and the spec of a dataset rendered from it.

Like a nerf_synthetic object, the scene is bounded and object-centred (everything inside |x|, |y| ≤ 1.05,
−0.3 ≤ z ≤ 0.55; world z up; transparent background), so the same cameras, loaders and training recipes apply.
Unlike it, every surface carries a procedural texture with detail close to the pixel rate at scale 1 (a checkered
sphere, a zone-plate box, a fish-scale torus, striped posts, a checkered ground): zooming out aliases visibly and
zooming in exposes blur, so multi-scale metrics measure something.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable

import numpy as np

from assets import primitives as P
from assets import textures as T
from render.camera import Camera
from render.mesh import TexturedMesh
from render.mesh_renderer import MAX_SUPERSAMPLED_SIDE, MeshRenderer

__all__ = ["SceneSpec", "PRESETS", "SCENES", "build_scene", "sample_cameras", "studio_objects", "render_view",
           "SPLIT_IDS", "RENDER_LIGHTING"]

NERF_SYNTHETIC_FOV_X = 0.6911112070083618  # camera_angle_x of every real nerf_synthetic scene
DEFAULT_SCALES = (1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0)
# The renderer's supersampled filter renders 4x per axis up to MAX_SUPERSAMPLED_SIDE, then quietly uses fewer.
MAX_GT_SIDE = MAX_SUPERSAMPLED_SIDE // 4
RENDER_LIGHTING = False  # lighting is baked into the textures (world-fixed sun); render unlit
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}  # independent RNG streams: n_test never changes the train views


@dataclass(frozen=True)
class SceneSpec:
    """What to render: scene, square image size at scale 1, views per split, camera rig and test scales.

    ``scales`` are the test sampling rates relative to the training resolution (images are rendered at
    round(s·resolution) pixels with the intrinsics scaled by s). ``supersample`` is the ground-truth samples per
    pixel (the mesh renderer's "supersampled" filter). ``fov_x`` defaults to nerf_synthetic's camera_angle_x.
    """

    name: str = "studio_objects"
    resolution: int = 128
    n_train: int = 100
    n_val: int = 10
    n_test: int = 20
    fov_x: float = NERF_SYNTHETIC_FOV_X
    radius: float = 4.0
    scales: tuple[float, ...] = DEFAULT_SCALES
    supersample: int = 16
    seed: int = 0
    elevation_deg: tuple[float, float] = (15.0, 75.0)
    texture_size: int = 512

    def __post_init__(self) -> None:
        if self.name not in SCENES:
            raise ValueError(f"unknown scene {self.name!r}; known: {', '.join(sorted(SCENES))}")
        if int(self.resolution) != self.resolution or self.resolution < 4:
            raise ValueError(f"resolution must be an integer >= 4, got {self.resolution!r}")
        for k in ("n_train", "n_val", "n_test"):
            if int(getattr(self, k)) != getattr(self, k) or getattr(self, k) < 1:
                raise ValueError(f"{k} must be an integer >= 1, got {getattr(self, k)!r}")
        if not 0 < self.fov_x < math.pi:
            raise ValueError(f"fov_x must be in (0, pi) radians, got {self.fov_x}")
        if not self.radius > 0:
            raise ValueError(f"radius must be positive, got {self.radius}")
        scales = tuple(float(s) for s in self.scales)
        if not scales or any(not (math.isfinite(s) and s > 0) for s in scales):
            raise ValueError(f"scales must be positive numbers, got {self.scales!r}")
        if any(round(s * self.resolution) < 1 for s in scales):
            raise ValueError(f"scales {self.scales} give images under 1 pixel at resolution {self.resolution}")
        object.__setattr__(self, "scales", tuple(sorted(set(scales))))
        lo, hi = self.elevation_deg
        if not -90 < lo <= hi < 90:
            raise ValueError(f"elevation_deg must satisfy -90 < low <= high < 90, got {self.elevation_deg}")
        if int(self.texture_size) != self.texture_size or self.texture_size < 8:
            raise ValueError(f"texture_size must be an integer >= 8, got {self.texture_size!r}")
        if self.supersample != 16:
            raise ValueError(f"supersample must be 16 (the mesh renderer's supersampled filter), got "
                             f"{self.supersample}")
        biggest = round(max(scales) * self.resolution)
        if biggest > MAX_GT_SIDE:
            raise ValueError(f"the largest test image ({biggest} px at scale {max(scales)}) exceeds {MAX_GT_SIDE} px, "
                             "beyond which the renderer cannot keep 16 samples per pixel; lower resolution or scales")

    @staticmethod
    def preset(name: str) -> "SceneSpec":
        """A named preset (see :data:`PRESETS`), with one clear error for unknown names."""
        try:
            return PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown dataset preset {name!r}; valid: {', '.join(PRESETS)}") from None

    def with_(self, **changes: Any) -> "SceneSpec":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists) that :meth:`from_dict` inverts; stored in multiscale.json."""
        d = asdict(self)
        d["scales"] = [float(s) for s in self.scales]
        d["elevation_deg"] = [float(e) for e in self.elevation_deg]
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "SceneSpec":
        d = dict(d)
        for k in ("scales", "elevation_deg"):
            if k in d:
                d[k] = tuple(d[k])
        return SceneSpec(**d)


def sample_cameras(spec: SceneSpec, split: str) -> list[Camera]:
    """Seeded camera positions on the upper hemisphere band at ``spec.radius``, looking at the origin, z up.

    Elevations are drawn uniformly in sin(elevation) (i.e. uniform by area on the sphere band), azimuths uniformly;
    each split uses its own RNG stream, so changing one split's size leaves the others unchanged, and a larger
    split extends a smaller one (view i is the same for every n > i).
    """
    if split not in SPLIT_IDS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLIT_IDS)}")
    n = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}[split]
    rng = np.random.default_rng([spec.seed, SPLIT_IDS[split]])
    lo, hi = (math.sin(math.radians(e)) for e in spec.elevation_deg)
    r = rng.random((n, 2))  # one (z, azimuth) pair per view: the first k views do not depend on n
    z, az = lo + (hi - lo) * r[:, 0], 2 * math.pi * r[:, 1]
    el = np.arcsin(z)
    eyes = spec.radius * np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1)
    return [Camera.look_at(e, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), fov_x=spec.fov_x, width=spec.resolution,
                           height=spec.resolution, near=0.1, far=100.0) for e in eyes]


def tint(grey: np.ndarray, dark, light) -> np.ndarray:
    """Map a grey texture onto a two-colour ramp, so objects differ in colour as well as pattern."""
    g = grey[..., :1]
    return (np.asarray(dark, np.float32) * (1.0 - g) + np.asarray(light, np.float32) * g).astype(np.float32)


# World-fixed sun (from above, front-left) and ambient level of the baked Lambertian shading.
LIGHT_DIR = np.array([0.35, -0.45, 0.82]) / np.linalg.norm([0.35, -0.45, 0.82])
AMBIENT = 0.35


def _texel_angles(tex: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) at texel centres, v = 1 at the top row (the OpenGL/OBJ convention of TexturedMesh)."""
    h, w = tex.shape[:2]
    u = ((np.arange(w) + 0.5) / w)[None, :].repeat(h, 0)
    v = (1.0 - (np.arange(h) + 0.5) / h)[:, None].repeat(w, 1)
    return u, v


def bake(tex: np.ndarray, normals: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Multiply ``tex`` by Lambertian shading from :data:`LIGHT_DIR` for per-texel object-space ``normals``.

    The renderer's own lighting is a headlight (it follows the camera), which would give the same surface point a
    different colour in every view; baking a world-fixed light into the texture and rendering unlit keeps the
    scene view-consistent, like a diffuse nerf_synthetic object, while still showing its 3D shape.
    """
    r = np.asarray(model, np.float64)[:3, :3]
    n = np.asarray(normals, np.float64) @ r.T
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    shade = AMBIENT + (1.0 - AMBIENT) * np.clip(n @ LIGHT_DIR, 0.0, None)
    return (tex[..., :3] * shade[..., None]).astype(np.float32)


def sphere_normals(tex):
    u, v = _texel_angles(tex)
    lon, lat = 2 * math.pi * u, math.pi * (v - 0.5)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)


def torus_normals(tex):
    u, v = _texel_angles(tex)
    lam, phi = 2 * math.pi * u, 2 * math.pi * v
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], -1)


def tube_normals(tex):
    u, _ = _texel_angles(tex)
    lam = 2 * math.pi * u
    return np.stack([np.cos(lam), np.sin(lam), np.zeros_like(lam)], -1)


def flat(tex, normal):
    return np.broadcast_to(np.asarray(normal, np.float64), tex.shape[:2] + (3,))


def capped_post(radius: float, height: float, segments: int, tex: np.ndarray, model: np.ndarray,
          name: str) -> list[TexturedMesh]:
    """A capped cylinder as side + top cap, each with its own baked texture (the bottom rests on the ground)."""
    side = P.cylinder(radius, height, segments, caps=False, texture=bake(tex, tube_normals(tex), model),
                      model=model, name=name)
    top = P.disc(radius, segments, texture=bake(tex, flat(tex, (0, 0, 1)), model),
                 model=model @ P.trs((0.0, 0.0, height / 2)), name=f"{name}_top")
    return [side, top]


def box_faces(size: float, tex: np.ndarray, model: np.ndarray, name: str) -> list[TexturedMesh]:
    """The box as six single-face meshes, so each face gets its own (constant) baked shading."""
    b = P.box(size, model=model)
    faces = []
    for k in range(6):
        vs = slice(4 * k, 4 * k + 4)
        faces.append(TexturedMesh(b.positions[vs], b.normals[vs], b.uvs[vs], b.faces[2 * k:2 * k + 2] - 4 * k,
                                  bake(tex, flat(tex, b.normals[4 * k]), model), model=model, name=f"{name}_{k}"))
    return faces


def studio_objects(texture_size: int = 512, seed: int = 0) -> list[TexturedMesh]:
    """A checkered sphere on a striped pedestal at the origin, a zone-plate box, an upright fish-scale torus and a
    striped post on a checkered ground disc (z = −0.3), with a world-fixed light baked into the textures (render
    them unlit). The sphere contains the origin, so every view's centre pixel sees an object."""
    n = texture_size
    ground = tint(T.checkerboard(n, cells=32), (0.18, 0.2, 0.24), (0.85, 0.83, 0.78))
    sphere_tex = tint(T.checkerboard(n, cells=24), (0.55, 0.08, 0.1), (0.98, 0.92, 0.8))
    zone = tint(T.zone_plate(n), (0.05, 0.12, 0.35), (0.95, 0.95, 0.88))
    scales_tex = T.fish_scales(n, seed, scales=24.0)
    m_ground, m_sphere = P.trs((0.0, 0.0, -0.3)), P.trs((0.0, 0.0, 0.2))
    m_torus = P.trs((-0.58, 0.4, 0.06), (90.0, 0.0, 40.0))
    return [
        P.disc(1.05, 128, texture=bake(ground, flat(ground, (0, 0, 1)), m_ground), model=m_ground, name="ground"),
        *capped_post(0.1, 0.16, 48, T.stripes(n, seed + 1), P.trs((0.0, 0.0, -0.22)), "pedestal"),
        P.uv_sphere(0.35, 96, 48, texture=bake(sphere_tex, sphere_normals(sphere_tex), m_sphere), model=m_sphere,
                    name="sphere"),
        *box_faces(0.42, zone, P.trs((0.56, 0.5, -0.09), (0.0, 0.0, 25.0)), "box"),
        P.torus(0.27, 0.09, 96, 32, texture=bake(scales_tex, torus_normals(scales_tex), m_torus), model=m_torus,
                name="torus"),
        *capped_post(0.14, 0.5, 64, T.stripes(n, seed + 2), P.trs((0.12, -0.66, -0.05)), "post"),
    ]


SCENES: dict[str, Callable[[int, int], list[TexturedMesh]]] = {"studio_objects": studio_objects}


def build_scene(spec: SceneSpec) -> list[TexturedMesh]:
    """The meshes of ``spec.name`` with ``spec.texture_size`` textures (deterministic for a given spec)."""
    return SCENES[spec.name](spec.texture_size, spec.seed)


def render_view(renderer: MeshRenderer, meshes: list[TexturedMesh], camera: Camera) -> np.ndarray:
    """Ground truth of one view: HxWx4 float32, 16 samples per pixel, transparent background, premultiplied colour
    (the renderer's convention), unlit because the scene's lighting is baked into its textures."""
    return renderer.render(meshes, camera, filter="supersampled", background=(0.0, 0.0, 0.0, 0.0),
                           lighting=RENDER_LIGHTING)


PRESETS: dict[str, SceneSpec] = {
    # unit tests: seconds on 2 CPU cores, every scale still present
    "tiny": SceneSpec(resolution=32, n_train=8, n_val=2, n_test=2, texture_size=128),
    # the demo workspace: trains in minutes on a CPU, zoom 1/8…8 → 16…1024 px test images
    "default": SceneSpec(),
    # nerf_synthetic-sized (800 px, 100/100/200) with the Blender stmt zoom-out scales; GPU-scale work
    "paper": SceneSpec(resolution=800, n_train=100, n_val=100, n_test=200, scales=(1 / 8, 1 / 4, 1 / 2, 1.0),
                       texture_size=1024),
}
