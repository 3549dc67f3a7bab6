"""The bundled UNBOUNDED synthetic scene "garden360" and the spec of a 360° dataset rendered from it.

Mip-NeRF 360 exists because real captures have content at every depth: an object in the middle, a ground that runs
to the horizon, trees and houses at tens of metres, mountains and a sky at "infinity". A bounded object scene
cannot test the contraction, the s-space sampling or far-field anti-aliasing, so this scene puts textured content
at every depth (world z up, units ≈ metres):

- near (< 1.3 from the origin): a checkered sphere on a striped pedestal, a zone-plate box, a fish-scale torus, a
  striped post and a checkered bench — the bounded scene's kit (same textures, same baked world-fixed sun);
- the ground: a disc of radius ``ground_radius`` (100) with log-polar UVs, so its checker cells grow in proportion
  to distance and stay a few pixels wide on screen from near the cameras to the horizon instead of turning into
  sub-pixel noise that no 16-sample ground truth could integrate;
- middle distance (9–60): trees (striped trunks, fish-scale crowns) and checkered houses;
- far: a band of mountains (a vertical strip whose top edge is the ridge line) at ``mountain_radius`` (600), with
  forest, rock and snow textures, and a sky dome at ``dome_radius`` (900) with a blue gradient, clouds and a sun.

The environment closes the scene, so every pixel of every view is covered: images are opaque (no alpha), as in
the real Mip-NeRF 360 dataset. Cameras sit on a jittered ring band around the objects, looking inward; their
near/far planes (0.05 / 2000 by default) keep the dome inside the frustum with a 24-bit depth buffer resolving
~1 m at 900 m (nothing else is out there to z-fight with).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable

import numpy as np

from assets import primitives as P
from assets import textures as T
from assets.synthetic_scene import (  # the bounded scene's baking helpers: one lighting model for both scenes
    bake,
    box_faces,
    capped_post,
    flat,
    sphere_normals,
    tint,
    torus_normals,
    tube_normals,
)
from render.camera import Camera
from render.mesh import TexturedMesh
from render.mesh_renderer import MAX_SUPERSAMPLED_SIDE, MeshRenderer

__all__ = ["UnboundedSceneSpec", "PRESETS", "SCENES", "build_scene", "sample_cameras", "garden360", "render_view",
           "render_depth", "SPLIT_IDS", "OBJECTS_RADIUS", "SKY_HORIZON", "SKY_ZENITH", "DEFAULT_SCALES"]

DEFAULT_SCALES = (1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0)
MAX_GT_SIDE = MAX_SUPERSAMPLED_SIDE // 4  # beyond this the renderer cannot keep 4x4 samples per pixel
RENDER_LIGHTING = False  # the sun is baked into the textures: render unlit so views agree
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}  # independent RNG streams per split
OBJECTS_RADIUS = 1.3  # every near object lies within this horizontal distance of the origin
TREES_MIN_DISTANCE = 9.0  # mid-distance content starts here (cameras stay well inside)
SKY_HORIZON = (0.60, 0.76, 0.95)  # sky colour at the horizon and at the zenith (blue ≫ red: easy to recognise)
SKY_ZENITH = (0.14, 0.33, 0.80)


@dataclass(frozen=True)
class UnboundedSceneSpec:
    """What to render: scene, image size at scale 1, views per split, the 360° camera rig and the test scales.

    Cameras: eye = target + r·(cos e·cos a, cos e·sin a, sin e) with r = ``radius``·(1 ± ``radius_jitter``),
    e uniform in sin(e) over ``elevation_deg`` and a uniform, looking at target = (0, 0, ``target_height``).
    ``scales`` are test sampling rates (round(s·W) × round(s·H) pixels, intrinsics × s). ``near``/``far`` are the
    render cameras' clip planes; ``far`` must reach past the dome from every camera.
    """

    name: str = "garden360"
    width: int = 128
    height: int = 96
    n_train: int = 100
    n_val: int = 10
    n_test: int = 20
    fov_x: float = math.radians(65.0)
    radius: float = 3.5
    radius_jitter: float = 0.15
    elevation_deg: tuple[float, float] = (2.0, 28.0)
    target_height: float = 0.45
    scales: tuple[float, ...] = DEFAULT_SCALES
    supersample: int = 16
    seed: int = 0
    texture_size: int = 512
    ground_radius: float = 100.0
    mountain_radius: float = 600.0
    dome_radius: float = 900.0
    near: float = 0.05
    far: float = 2000.0

    def __post_init__(self) -> None:
        if self.name not in SCENES:
            raise ValueError(f"unknown scene {self.name!r}; known: {', '.join(sorted(SCENES))}")
        for k in ("width", "height"):
            v = getattr(self, k)
            if int(v) != v or v < 4:
                raise ValueError(f"{k} must be an integer >= 4, got {v!r}")
        for k in ("n_train", "n_val", "n_test"):
            if int(getattr(self, k)) != getattr(self, k) or getattr(self, k) < 1:
                raise ValueError(f"{k} must be an integer >= 1, got {getattr(self, k)!r}")
        if not 0 < self.fov_x < math.pi:
            raise ValueError(f"fov_x must be in (0, pi) radians, got {self.fov_x}")
        if not 0 <= self.radius_jitter < 1:
            raise ValueError(f"radius_jitter must be in [0, 1), got {self.radius_jitter}")
        if not self.radius * (1 - self.radius_jitter) > OBJECTS_RADIUS + 0.5:
            raise ValueError(f"radius {self.radius} (jitter {self.radius_jitter}) puts cameras inside the objects "
                             f"(they reach {OBJECTS_RADIUS}); use a radius of at least {OBJECTS_RADIUS + 0.6}")
        if not self.radius * (1 + self.radius_jitter) < TREES_MIN_DISTANCE - 3.5:
            raise ValueError(f"radius {self.radius} (jitter {self.radius_jitter}) reaches the trees at "
                             f"{TREES_MIN_DISTANCE}; keep cameras within {TREES_MIN_DISTANCE - 3.5}")
        scales = tuple(float(s) for s in self.scales)
        if not scales or any(not (math.isfinite(s) and s > 0) for s in scales):
            raise ValueError(f"scales must be positive numbers, got {self.scales!r}")
        if any(round(s * min(self.width, self.height)) < 1 for s in scales):
            raise ValueError(f"scales {self.scales} give images under 1 pixel at {self.width}x{self.height}")
        object.__setattr__(self, "scales", tuple(sorted(set(scales))))
        lo, hi = self.elevation_deg
        if not -90 < lo <= hi < 90:
            raise ValueError(f"elevation_deg must satisfy -90 < low <= high < 90, got {self.elevation_deg}")
        lowest = self.target_height + self.radius * (1 + self.radius_jitter) * min(0.0, math.sin(math.radians(lo)))
        if lowest < 0.2:
            raise ValueError(f"the lowest camera would be {lowest:.2f} above the ground (< 0.2); raise elevation_deg "
                             "or target_height")
        if int(self.texture_size) != self.texture_size or self.texture_size < 16:
            raise ValueError(f"texture_size must be an integer >= 16, got {self.texture_size!r}")
        if self.supersample != 16:
            raise ValueError(f"supersample must be 16 (the mesh renderer's supersampled filter), got "
                             f"{self.supersample}")
        if not TREES_MIN_DISTANCE + 60 < self.ground_radius < self.mountain_radius < self.dome_radius:
            raise ValueError(f"need {TREES_MIN_DISTANCE + 60} < ground_radius < mountain_radius < dome_radius, got "
                             f"{self.ground_radius}, {self.mountain_radius}, {self.dome_radius}")
        if not 0 < self.near <= 0.1:
            raise ValueError(f"near must be in (0, 0.1] (the ground under the lowest camera is ~0.2 away), "
                             f"got {self.near}")
        reach = self.dome_radius + self.radius * (1 + self.radius_jitter) + self.target_height
        if not self.far >= 1.05 * reach:
            raise ValueError(f"far {self.far} clips the sky dome (up to {reach:.0f} from a camera); use "
                             f"far >= {1.05 * reach:.0f}")
        biggest = round(max(scales) * max(self.width, self.height))
        if biggest > MAX_GT_SIDE:
            raise ValueError(f"the largest test image ({biggest} px at scale {max(scales)}) exceeds {MAX_GT_SIDE} px, "
                             "beyond which the renderer cannot keep 16 samples per pixel; lower the size or scales")

    @staticmethod
    def preset(name: str) -> "UnboundedSceneSpec":
        """A named preset (see :data:`PRESETS`), with one clear error for unknown names."""
        try:
            return PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown unbounded dataset preset {name!r}; valid: {', '.join(PRESETS)}") from None

    def with_(self, **changes: Any) -> "UnboundedSceneSpec":
        return replace(self, **changes)

    @property
    def target(self) -> np.ndarray:
        """The point every camera looks at (the centre of the object cluster)."""
        return np.array([0.0, 0.0, self.target_height])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists) that :meth:`from_dict` inverts; stored in multiscale.json."""
        d = asdict(self)
        d["scales"] = [float(s) for s in self.scales]
        d["elevation_deg"] = [float(e) for e in self.elevation_deg]
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "UnboundedSceneSpec":
        d = dict(d)
        for k in ("scales", "elevation_deg"):
            if k in d:
                d[k] = tuple(d[k])
        return UnboundedSceneSpec(**d)


def sample_cameras(spec: UnboundedSceneSpec, split: str) -> list[Camera]:
    """Seeded inward-looking cameras on the ring band around the objects (see :class:`UnboundedSceneSpec`).

    Each split has its own RNG stream and draws one (elevation, azimuth, radius) triple per view, so changing one
    split's size leaves the other splits unchanged and view i is the same for every n > i.
    """
    if split not in SPLIT_IDS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLIT_IDS)}")
    n = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}[split]
    rng = np.random.default_rng([spec.seed, SPLIT_IDS[split], 360])
    lo, hi = (math.sin(math.radians(e)) for e in spec.elevation_deg)
    r = rng.random((n, 3))
    el = np.arcsin(lo + (hi - lo) * r[:, 0])
    az = 2 * math.pi * r[:, 1]
    rad = spec.radius * (1.0 + spec.radius_jitter * (2.0 * r[:, 2] - 1.0))
    eyes = spec.target + rad[:, None] * np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1)
    return [Camera.look_at(e, spec.target, (0.0, 0.0, 1.0), fov_x=spec.fov_x, width=spec.width,
                           height=spec.height, near=spec.near, far=spec.far) for e in eyes]


# ----------------------------------------------------------------------------------------------------------------
# procedural environment textures
# ----------------------------------------------------------------------------------------------------------------
def _value_noise(h: int, w: int, cells_y: int, cells_x: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth lattice noise in [0, 1] on an h×w grid, periodic in x (the longitude wraps without a seam)."""
    lattice = rng.random((cells_y + 1, cells_x))
    y = (np.arange(h) + 0.5) / h * cells_y
    x = (np.arange(w) + 0.5) / w * cells_x
    y0, x0 = np.minimum(np.floor(y).astype(int), cells_y - 1), np.floor(x).astype(int)
    fy, fx = y - y0, x - x0
    sy, sx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)  # smoothstep: no creases on the lattice lines
    x1 = (x0 + 1) % cells_x
    top = lattice[y0][:, x0] * (1 - sx) + lattice[y0][:, x1] * sx
    bot = lattice[y0 + 1][:, x0] * (1 - sx) + lattice[y0 + 1][:, x1] * sx
    return top * (1 - sy[:, None]) + bot * sy[:, None]


def _fbm(h: int, w: int, cells_y: int, cells_x: int, octaves: int, rng: np.random.Generator) -> np.ndarray:
    """Fractal noise: octaves of value noise at doubling frequency and halving amplitude (detail at every scale)."""
    total, amp, norm = np.zeros((h, w)), 1.0, 0.0
    for k in range(octaves):
        total += amp * _value_noise(h, w, cells_y << k, cells_x << k, rng)
        norm += amp
        amp *= 0.5
    return total / norm


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


SUN_DIR_DEG = (40.0, 35.0)  # (longitude, latitude) of the sun disc painted on the dome


def sky_texture(size: int, seed: int = 0) -> np.ndarray:
    """Equirectangular dome texture, (2·size) × (4·size): blue gradient, fractal clouds and a sun above the
    horizon; dark distant fields below it (only a sliver of it shows past the ground's edge)."""
    h, w = 2 * size, 4 * size
    rng = np.random.default_rng([seed, 501])
    lat = 90.0 - 180.0 * (np.arange(h) + 0.5) / h  # row 0 = north pole (texture row 0 is v = 1)
    lon = 360.0 * (np.arange(w) + 0.5) / w
    t = np.clip(lat / 90.0, 0.0, 1.0)[:, None, None] ** 0.5
    sky = np.asarray(SKY_HORIZON) * (1 - t) + np.asarray(SKY_ZENITH) * t
    sky = np.broadcast_to(sky, (h, w, 3)).copy()
    clouds = _fbm(h, w, 6, 12, 6, rng)
    cover = _smoothstep(0.56, 0.72, clouds) * _smoothstep(4.0, 14.0, lat)[:, None] * 0.85
    sky = sky * (1 - cover[..., None]) + np.array([0.97, 0.97, 0.99]) * cover[..., None]
    la, lo = np.radians(lat)[:, None], np.radians(lon)[None, :]
    sl, so = (math.radians(a) for a in SUN_DIR_DEG[::-1])
    cos_d = np.sin(la) * math.sin(sl) + np.cos(la) * math.cos(sl) * np.cos(lo - so)
    sun = _smoothstep(math.cos(math.radians(2.4)), math.cos(math.radians(1.8)), cos_d)
    sky = sky * (1 - sun[..., None]) + np.array([1.0, 0.96, 0.82]) * sun[..., None]
    fields = _fbm(h, w, 8, 64, 4, rng)[..., None]
    ground = np.array([0.20, 0.28, 0.14]) * (0.7 + 0.6 * fields)
    out = np.where((lat < 0)[:, None, None], ground, sky)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _ridge_profile(n: int, seed: int) -> np.ndarray:
    """Ridge elevation in [0, 1] at n longitudes: seeded harmonics, sharpened into peaks (periodic)."""
    rng = np.random.default_rng([seed, 502])
    theta = 2 * np.pi * np.arange(n) / n
    p = np.zeros(n)
    for k in (2, 3, 5, 8, 13, 21, 34, 55):
        p += k ** -0.75 * (0.5 + 0.5 * np.cos(k * theta + rng.uniform(0, 2 * np.pi)))
    p = (p - p.min()) / (p.max() - p.min())
    return p ** 1.3  # broad valleys, sharper peaks


MOUNTAIN_ELEVATION_DEG = (2.0, 14.0)  # ridge line elevation range seen from the origin
MOUNTAIN_BOTTOM = -0.1  # band bottom as a fraction of its radius (below every camera's horizon beyond the ground)


def mountain_texture(size: int, seed: int, z_lo: float, z_hi: float, snowline: float) -> np.ndarray:
    """Texture of the mountain band, size × (8·size), rows = absolute height from z_hi (top) to z_lo (bottom):
    forest below z = 0, hazy layered rock above it, snow above ``snowline`` (all seamless in longitude)."""
    h, w = size, 8 * size
    rng = np.random.default_rng([seed, 503])
    z = z_hi - (z_hi - z_lo) * (np.arange(h) + 0.5) / h
    rock_n = _fbm(h, w, 4, 64, 5, rng)
    u = (np.arange(w) + 0.5) / w
    strata = 0.5 + 0.5 * np.sin(2 * np.pi * (z[:, None] / (z_hi - z_lo) * 24.0 + 3.0 * rock_n))
    gullies = 0.5 + 0.5 * np.sin(2 * np.pi * (360.0 * u[None, :] + 6.0 * rock_n))
    shade = 0.45 + 0.6 * rock_n + 0.15 * strata + 0.25 * gullies
    rock = np.array([0.28, 0.29, 0.36]) * shade[..., None]
    haze = 0.2
    rock = rock * (1 - haze) + np.asarray(SKY_HORIZON) * haze
    snow_n = _fbm(h, w, 4, 64, 4, rng)
    snow_w = _smoothstep(-0.04, 0.04, (z[:, None] - snowline) / (z_hi - z_lo) + 0.12 * (snow_n - 0.5))
    snow = np.array([0.92, 0.93, 0.97]) * (0.9 + 0.1 * snow_n[..., None])
    out = rock * (1 - snow_w[..., None]) + snow * snow_w[..., None]
    trees = _fbm(h, w, 8, 256, 3, rng)
    forest = np.array([0.10, 0.22, 0.12]) * (0.6 + 0.8 * trees[..., None])
    out = np.where((z < 0)[:, None, None], forest, out)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# environment meshes
# ----------------------------------------------------------------------------------------------------------------
def log_polar_ground(radius: float, texture: np.ndarray, *, inner: float = 0.1, rings: int = 128,
                     segments: int = 192, angular_repeats: int = 24) -> list[TexturedMesh]:
    """The ground (z = 0, facing +z) out to ``radius``: a polar grid from ``inner`` outwards whose UVs are
    (ln r, θ), so the texture repeats ``angular_repeats`` times around and its cells stay square with a size
    proportional to r — roughly constant on screen for a camera near the centre — plus a small centre disc."""
    k = np.log(radius / inner)
    r = inner * np.exp(k * np.arange(rings + 1) / rings)
    th = 2 * np.pi * np.arange(segments + 1) / segments
    TH, R = np.meshgrid(th, r, indexing="ij")  # rows: θ (segments+1), columns: r (rings+1)
    pos = np.stack([R * np.cos(TH), R * np.sin(TH), np.zeros_like(R)], -1).reshape(-1, 3)
    radial_repeats = angular_repeats * k / (2 * np.pi)  # square cells: Δ(ln r) per repeat = 2π/angular_repeats
    uv = np.stack([np.log(R / inner) / k * radial_repeats, TH / (2 * np.pi) * angular_repeats], -1).reshape(-1, 2)
    nrm = np.tile([0.0, 0.0, 1.0], (len(pos), 1))
    i, j = np.meshgrid(np.arange(segments), np.arange(rings), indexing="ij")
    a = i * (rings + 1) + j
    b, d = a + 1, a + rings + 1
    c = d + 1
    # columns grow outward (+x at θ = 0), rows grow with θ (+y): (outward) × (θ) = +z, so a-b-c is CCW from above
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    ring = TexturedMesh(pos, nrm, uv, faces, texture, name="ground")
    centre = P.disc(inner * 1.01, 32, texture=texture, name="ground_centre")
    return [ring, centre]


def mountain_band(radius: float, texture: np.ndarray, profile: np.ndarray, z_lo: float,
                  z_hi: float) -> TexturedMesh:
    """A vertical strip around the z axis at ``radius`` from z_lo up to the ridge line
    z = radius·tan(elevation(θ)); v maps absolute height z_lo..z_hi, so snow sits at the same height on every
    peak. Normals face the origin (the band is seen from inside)."""
    n = len(profile)
    lo_deg, hi_deg = MOUNTAIN_ELEVATION_DEG
    th = 2 * np.pi * np.arange(n + 1) / n
    top = radius * np.tan(np.radians(lo_deg + (hi_deg - lo_deg) * np.append(profile, profile[0])))
    Z = np.stack([np.full(n + 1, z_lo), top])  # rows: bottom, top
    pos = np.stack([radius * np.cos(th)[None].repeat(2, 0), radius * np.sin(th)[None].repeat(2, 0), Z],
                   -1).reshape(-1, 3)
    nrm = np.stack([-np.cos(th), -np.sin(th), np.zeros_like(th)], -1)[None].repeat(2, 0).reshape(-1, 3)
    uv = np.stack([(th / (2 * np.pi))[None].repeat(2, 0), (Z - z_lo) / (z_hi - z_lo)], -1).reshape(-1, 2)
    j = np.arange(n)
    a, b, c, d = j, j + 1, j + 1 + (n + 1), j + (n + 1)
    faces = np.concatenate([np.stack([a, c, b], -1), np.stack([a, d, c], -1)])  # CCW seen from the origin
    return TexturedMesh(pos, nrm, uv, faces, texture, name="mountains")


def _tree(pos: tuple[float, float], trunk_h: float, crown_r: float, bark: np.ndarray, leaves: np.ndarray,
          k: int) -> list[TexturedMesh]:
    x, y = pos
    m_trunk = P.trs((x, y, trunk_h / 2))
    m_crown = P.trs((x, y, trunk_h + 0.7 * crown_r))
    trunk = P.cylinder(0.08 * crown_r + 0.15, trunk_h, 32, caps=False, model=m_trunk, name=f"trunk_{k}",
                       texture=bake(bark, tube_normals(bark), m_trunk))
    crown = P.uv_sphere(crown_r, 48, 24, texture=bake(leaves, sphere_normals(leaves), m_crown), model=m_crown,
                        name=f"crown_{k}")
    return [trunk, crown]


def garden360(spec: UnboundedSceneSpec) -> list[TexturedMesh]:
    """All meshes of the garden360 scene for ``spec`` (deterministic for a given spec); render them unlit."""
    n, seed = spec.texture_size, spec.seed
    # near: the bounded scene's kit, standing on the ground (z = 0)
    sphere_tex = tint(T.checkerboard(n, cells=24), (0.55, 0.08, 0.1), (0.98, 0.92, 0.8))
    zone = tint(T.zone_plate(n), (0.05, 0.12, 0.35), (0.95, 0.95, 0.88))
    scales_tex = T.fish_scales(n, seed, scales=24.0)
    bench_tex = tint(T.checkerboard(n, cells=16), (0.30, 0.16, 0.06), (0.85, 0.62, 0.35))
    m_sphere, m_torus = P.trs((0.0, 0.0, 0.73)), P.trs((-0.75, 0.5, 0.37), (90.0, 0.0, 40.0))
    meshes = [
        *capped_post(0.16, 0.35, 48, T.stripes(n, seed + 1), P.trs((0.0, 0.0, 0.175)), "pedestal"),
        P.uv_sphere(0.38, 96, 48, texture=bake(sphere_tex, sphere_normals(sphere_tex), m_sphere), model=m_sphere,
                    name="sphere"),
        *box_faces(0.5, zone, P.trs((0.8, 0.55, 0.25), (0.0, 0.0, 25.0)), "box"),
        P.torus(0.28, 0.09, 96, 32, texture=bake(scales_tex, torus_normals(scales_tex), m_torus), model=m_torus,
                name="torus"),
        *capped_post(0.13, 0.9, 64, T.stripes(n, seed + 2), P.trs((0.25, -0.85, 0.45)), "post"),
        *box_faces((0.75, 0.3, 0.24), bench_tex, P.trs((-0.6, -0.65, 0.12), (0.0, 0.0, -30.0)), "bench"),
    ]
    # the ground, to ground_radius
    grass = tint(T.checkerboard(n, cells=8), (0.16, 0.30, 0.10), (0.42, 0.58, 0.24))
    grass = grass * (0.85 + 0.15 * T.stripes(n, seed + 3)[..., :1])
    meshes += log_polar_ground(spec.ground_radius, bake(grass, flat(grass, (0, 0, 1)), np.eye(4)),
                               rings=max(32, n // 4), segments=max(64, n // 2))
    # middle distance: trees and houses at seeded places between TREES_MIN_DISTANCE and 60
    rng = np.random.default_rng([seed, 504])
    bark = tint(T.stripes(n, seed + 4), (0.18, 0.11, 0.05), (0.45, 0.32, 0.2))
    leaves = tint(T.fish_scales(n, seed + 5, scales=16.0)[..., 1:2].repeat(3, -1), (0.05, 0.2, 0.06),
                   (0.35, 0.62, 0.2))
    brick = tint(T.checkerboard(n, cells=32), (0.45, 0.18, 0.12), (0.85, 0.7, 0.6))
    n_trees, n_houses = 10, 5
    az = 2 * np.pi * (np.arange(n_trees + n_houses) + rng.uniform(0.1, 0.9, n_trees + n_houses)) / (n_trees + n_houses)
    az = rng.permutation(az)
    dist = np.exp(rng.uniform(math.log(TREES_MIN_DISTANCE + 3), math.log(60.0), n_trees + n_houses))
    for k in range(n_trees):
        crown = rng.uniform(1.5, 3.0)
        meshes += _tree((dist[k] * math.cos(az[k]), dist[k] * math.sin(az[k])), rng.uniform(2.0, 4.0), crown, bark,
                        leaves, k)
    for k in range(n_trees, n_trees + n_houses):
        size = rng.uniform(3.0, 6.0, 3) * np.array([1.0, 1.0, 0.8])
        m = P.trs((dist[k] * math.cos(az[k]), dist[k] * math.sin(az[k]), size[2] / 2), (0.0, 0.0,
                                                                                         rng.uniform(0, 90)))
        meshes += box_faces(tuple(size), brick, m, f"house_{k}")
    # far: mountains, then the sky dome
    rm = spec.mountain_radius
    z_lo, z_hi = MOUNTAIN_BOTTOM * rm, rm * math.tan(math.radians(MOUNTAIN_ELEVATION_DEG[1]))
    snowline = rm * math.tan(math.radians(0.45 * MOUNTAIN_ELEVATION_DEG[1]))
    profile = _ridge_profile(max(512, 4 * n), seed)
    meshes.append(mountain_band(rm, mountain_texture(n, seed, z_lo, z_hi, snowline), profile, z_lo, z_hi))
    meshes.append(P.uv_sphere(spec.dome_radius, 256, 128, texture=sky_texture(n, seed), name="sky"))
    return meshes


SCENES: dict[str, Callable[[UnboundedSceneSpec], list[TexturedMesh]]] = {"garden360": garden360}


def build_scene(spec: UnboundedSceneSpec) -> list[TexturedMesh]:
    """The meshes of ``spec.name`` (deterministic for a given spec)."""
    return SCENES[spec.name](spec)


def render_view(renderer: MeshRenderer, meshes: list[TexturedMesh], camera: Camera) -> np.ndarray:
    """Ground truth of one view: HxWx4 float32 with 16 samples per pixel, unlit (the sun is baked in). Alpha is
    coverage and must be 1 everywhere (the environment closes the scene); a value below 1 means a hole or a far
    plane that clips the dome."""
    return renderer.render(meshes, camera, filter="supersampled", background=(0.0, 0.0, 0.0, 0.0),
                           lighting=RENDER_LIGHTING)


def render_depth(renderer: MeshRenderer, meshes: list[TexturedMesh], camera: Camera) -> np.ndarray:
    """Depth along the view axis at every pixel centre (HxW float32, inf where nothing was hit)."""
    return renderer.render_uv(meshes, camera, lighting=False).depth


PRESETS: dict[str, UnboundedSceneSpec] = {
    # unit tests: seconds on 2 CPU cores, every test scale still present (4x3 … 256x192 px)
    "tiny": UnboundedSceneSpec(width=32, height=24, n_train=12, n_val=2, n_test=2, texture_size=128),
    # the demo workspace: 128x96 at scale 1, test ground truth from 16x12 to 1024x768
    "default": UnboundedSceneSpec(),
    # roughly the Mip-NeRF 360 factor-4 resolution and a 1-in-8 test hold-out; GPU-scale work
    "paper": UnboundedSceneSpec(width=1240, height=824, n_train=200, n_val=25, n_test=25,
                                scales=(1 / 8, 1 / 4, 1 / 2, 1.0), texture_size=1024),
}
