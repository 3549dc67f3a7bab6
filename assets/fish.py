"""The procedural fish: a textured mesh whose fine scale pattern aliases visibly as soon as it is minified.

Geometry (world z-up, the fish swims along +x, about 2 units long, centred at the origin):
- body of revolution along x with an elliptical cross-section whose half-height follows a monotone spline
  profile (pointed nose at x = +1, deepest a third of the way back, narrow peduncle, closed at both ends);
  internally everything is built nose-at-−x and turned 180° about z at the end;
- a forked tail fin, a dorsal fin and an anal fin as single sheets in the x-z plane (renderers light them
  two-sided).

UV atlas (v = 0 at the bottom, OBJ convention): the body owns the top three quarters, unwrapped by arc length
along the body (u) and around the elliptical cross-section (v, seam along the back), so texels are nearly square
on the surface; the fins share the bottom quarter (tail left half, dorsal/anal right half). Every region has an
edge-replicated (body: wrapped around) gutter so bilinear taps do not bleed across regions at full resolution.

The texture is :func:`assets.textures.fish_scales` plus a smooth head, eyes, gill arc, mouth and lateral line
painted in 3D surface coordinates, and fin rays on the fins.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from assets.cache import atomic_save_image, atomic_write_text, cached
from assets.images import read_image
from render.mesh import TexturedMesh

FISH_VERSION = 1
DEFAULT_TEXTURE_SIZE = 1024

X_NOSE, X_END = -1.0, 0.78           # body extent along x
MAX_HALF_HEIGHT = 0.30               # deepest point of the body (half-height)
ASPECT = 0.5                         # half-width / half-height: a laterally compressed fish
BODY_V0 = 0.25                       # body region of the atlas: v in [BODY_V0, 1]

# (t along the body in [0,1], half-height / MAX_HALF_HEIGHT): pointed nose, deep shoulder, narrow peduncle.
_PROFILE = np.array([
    [0.00, 0.00], [0.04, 0.30], [0.12, 0.62], [0.25, 0.90], [0.38, 1.00], [0.55, 0.86],
    [0.72, 0.55], [0.86, 0.27], [0.93, 0.21], [0.975, 0.15], [1.00, 0.00],
])


# ----- body profile -----------------------------------------------------------------------------------------
def _half_height(t: np.ndarray) -> np.ndarray:
    from scipy.interpolate import PchipInterpolator

    return MAX_HALF_HEIGHT * np.clip(PchipInterpolator(_PROFILE[:, 0], _PROFILE[:, 1])(np.clip(t, 0, 1)), 0, None)


def _centre_z(t: np.ndarray) -> np.ndarray:
    """The axis dips slightly mid-body: a rounder belly than back reads as 'fish'."""
    return -0.025 * np.sin(np.pi * np.clip(t, 0, 1)) ** 2


def _x_of_t(t):
    return X_NOSE + (X_END - X_NOSE) * t


def _theta_of_v(n: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Arc-length parametrisation of the cross-section: tables (v_body, theta), theta = 0 on the back."""
    th = np.linspace(0.0, 2 * np.pi, n)
    y, z = ASPECT * np.sin(th), np.cos(th)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(y), np.diff(z)))])
    return s / s[-1], th


def _u_of_t(t: np.ndarray) -> np.ndarray:
    """u along the body: arc length of the outline divided by √girth (girth clamped at 40 % of the maximum).

    Pure arc length stretches texels around the narrow peduncle; dividing by the girth (conformal) would need
    a much wider atlas. √girth splits the difference (area-weighted texel aspect: median ≈1.4, 90th pct ≈2),
    and makes scales smaller toward the tail, as on real fish. The clamp stops the tips eating the atlas.
    """
    tt = np.linspace(0, 1, 4096)
    x = _x_of_t(tt)
    hh = _half_height(tt)
    z = _centre_z(tt) + hh
    girth = np.sqrt(np.maximum(hh, 0.4 * MAX_HALF_HEIGHT))
    ds = np.hypot(np.diff(x), np.diff(z)) / (0.5 * (girth[1:] + girth[:-1]))
    s = np.concatenate([[0.0], np.cumsum(ds)])
    return np.interp(t, tt, s / s[-1])


# ----- geometry ---------------------------------------------------------------------------------------------
def smooth_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals, shared by vertices at the same position (UV seams, collapsed tips)."""
    pos = np.asarray(positions, np.float64)
    key = np.round(pos / 1e-6).astype(np.int64)
    _, weld = np.unique(key, axis=0, return_inverse=True)
    weld = weld.reshape(-1)
    a, b, c = (pos[faces[:, k]] for k in range(3))
    fn = np.cross(b - a, c - a)  # length = 2 × area: area weighting for free
    acc = np.zeros((weld.max() + 1, 3))
    for k in range(3):
        np.add.at(acc, weld[faces[:, k]], fn)
    n = acc[weld]
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    fallback = np.array([0.0, 0.0, 1.0])
    n = np.where(norm > 1e-12, n / np.maximum(norm, 1e-30), fallback)
    return n.astype(np.float32)


def _body(n_x: int, n_theta: int, tex_size: int, pad: int):
    i = np.arange(n_x)
    t = 0.5 - 0.5 * np.cos(np.pi * i / (n_x - 1))           # rings cluster at the nose and the tail end
    vtab, thtab = _theta_of_v()
    v_body = np.linspace(0.0, 1.0, n_theta + 1)               # seam duplicated: v = 0 and v = 1 on the back
    theta = np.interp(v_body, vtab, thtab)
    hh = _half_height(t)[:, None]
    x = np.broadcast_to(_x_of_t(t)[:, None], (n_x, n_theta + 1))
    y = ASPECT * hh * np.sin(theta)[None, :]
    z = _centre_z(t)[:, None] + hh * np.cos(theta)[None, :]
    pos = np.stack([x, y, z], -1).reshape(-1, 3)
    u = _u_of_t(t)
    body_rows = int(round((1 - BODY_V0) * tex_size)) - 2 * pad
    uu = (pad + u * (tex_size - 2 * pad)) / tex_size
    vv = 1.0 - (pad + v_body * body_rows) / tex_size
    uv = np.stack(np.broadcast_arrays(uu[:, None], vv[None, :]), -1).reshape(-1, 2)

    idx = np.arange(n_x * (n_theta + 1)).reshape(n_x, n_theta + 1)
    a, b = idx[:-1, :-1], idx[1:, :-1]
    c, d = idx[1:, 1:], idx[:-1, 1:]
    tri1 = np.stack([a, b, c], -1)  # (along +x) × (around, back → +y side) points outward: CCW from outside
    tri2 = np.stack([a, c, d], -1)
    tri1 = tri1[:-1]                 # last ring is the collapsed tail point: (a, b, c) degenerates there
    tri2 = tri2[1:]                  # first ring is the collapsed nose point: (a, c, d) degenerates there
    faces = np.concatenate([tri1.reshape(-1, 3), tri2.reshape(-1, 3)])
    return pos, uv, faces


def _sheet(points: np.ndarray, uvs: np.ndarray):
    """A grid of points (n_s, n_t, 3) and UVs (n_s, n_t, 2) -> vertices and triangles, CCW seen from +y."""
    n_s, n_t = points.shape[:2]
    idx = np.arange(n_s * n_t).reshape(n_s, n_t)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    p = points.reshape(-1, 3)
    e1, e2 = p[faces[:, 1]] - p[faces[:, 0]], p[faces[:, 2]] - p[faces[:, 0]]
    if np.cross(e1, e2)[:, 1].sum() < 0:  # make every sheet face +y so normals agree with the winding
        faces = faces[:, ::-1]
    return p, uvs.reshape(-1, 2), faces


def _region_uv(s, t, u0, u1, v0, v1, tex_size, pad):
    """Map s, t in [0,1] into atlas rectangle [u0,u1]x[v0,v1] shrunk by the gutter."""
    g = pad / tex_size
    return np.stack([u0 + g + s * (u1 - u0 - 2 * g), v0 + g + t * (v1 - v0 - 2 * g)], -1)


def _tail_fin(tex_size: int, pad: int, n_s: int = 14, n_t: int = 28):
    s = np.linspace(0, 1, n_s)[:, None]
    t = np.linspace(-1, 1, n_t)[None, :]
    x0 = 0.60
    h0 = 0.9 * float(_half_height(np.array([(x0 - X_NOSE) / (X_END - X_NOSE)]))[0])
    tip_h, notch_x, tip_x = 0.36, 0.80, 1.00
    x_trail = notch_x + (tip_x - notch_x) * np.abs(t) ** 1.3
    x = x0 + s * (x_trail - x0)
    z = t * (h0 + (tip_h - h0) * s ** 0.8)
    z = z + float(_centre_z(np.array([(x0 - X_NOSE) / (X_END - X_NOSE)]))[0]) * (1 - s)
    pts = np.stack(np.broadcast_arrays(x, np.zeros_like(x), z), -1)
    # across the fin (t) -> u, root to edge (s) -> v: keeps fin texels close to square
    uv = _region_uv(*np.broadcast_arrays((t + 1) / 2, s), 0.0, 0.5, 0.0, BODY_V0, tex_size, pad)
    return _sheet(pts, uv)


def _median_fin(x_a: float, x_b: float, height: float, sweep: float, up: bool, tex_size: int, pad: int,
                n_s: int = 20, n_t: int = 10):
    """Dorsal (up) or anal (down) fin: base sunk slightly into the body, swept-back rounded outline."""
    s = np.linspace(0, 1, n_s)[:, None]
    t = np.linspace(0, 1, n_t)[None, :]
    xb = x_a + s * (x_b - x_a)
    tb = (xb - X_NOSE) / (X_END - X_NOSE)
    sign = 1.0 if up else -1.0
    zb = _centre_z(tb) + sign * (_half_height(tb) - 0.012)
    prof = s ** 0.35 * (1 - s) ** 0.9
    prof = 0.04 + 0.96 * prof / prof.max()  # never zero: collapsed columns would make degenerate triangles
    x = xb + sweep * t * prof
    z = zb + sign * height * prof * t
    pts = np.stack(np.broadcast_arrays(x, np.zeros_like(x), z), -1)
    uv = _region_uv(*np.broadcast_arrays(s, t), 0.5, 1.0, 0.0, BODY_V0, tex_size, pad)
    return _sheet(pts, uv)


# ----- texture ----------------------------------------------------------------------------------------------
def _body_texture(h: int, w: int, seed: int) -> np.ndarray:
    """Scales with a smooth head, eyes, gill arc, mouth and lateral line, painted via each texel's 3D point."""
    from scipy.ndimage import uniform_filter

    from assets.textures import fish_scales

    scales = fish_scales(w, seed, height=h, scales=40.0, ss=2)
    pitch = h / max(2, round(h / (w / 40.0)))
    box = max(1, int(round(pitch)))  # one scale period: box-averaging it twice removes the scale pattern
    smooth = uniform_filter(uniform_filter(scales, (box, box, 1), mode="wrap"), (box, box, 1), mode="wrap")

    # 3D surface point of every texel centre (inverse of the UV unwrap)
    tt = np.linspace(0, 1, 4096)
    u = (np.arange(w) + 0.5) / w
    t = np.interp(u, _u_of_t(tt), tt)
    vtab, thtab = _theta_of_v()
    theta = np.interp((np.arange(h) + 0.5) / h, vtab, thtab)
    hh = _half_height(t)[None, :]
    x = np.broadcast_to(_x_of_t(t)[None, :], (h, w))
    y = ASPECT * hh * np.sin(theta)[:, None]
    zc = _centre_z(t)[None, :]
    z = zc + hh * np.cos(theta)[:, None]
    side = np.abs(np.sin(theta))[:, None]

    gill_x = -0.60 - 0.06 * ((z - zc) / np.maximum(hh, 1e-6)) ** 2   # arc bulging toward the tail
    head = np.clip((gill_x - x) / 0.02 + 0.5, 0, 1)[..., None]          # 1 in front of the gill arc
    img = scales * (1 - head) + (smooth * 1.1 + 0.05) * head
    gill = np.exp(-((x - gill_x) / 0.006) ** 2) * (side > 0.25)
    img = img * (1 - 0.7 * gill[..., None])

    lateral_z = zc + 0.28 * hh
    lateral = np.exp(-((z - lateral_z) / 0.0045) ** 2) * (x > gill_x) * (x < 0.68) * (side > 0.3)
    dash = 0.5 + 0.5 * np.cos(2 * np.pi * x / 0.018)
    img = img * (1 - (0.55 * lateral * dash)[..., None])

    mouth = np.exp(-((z - (zc - 0.012)) / 0.006) ** 2) * np.clip((-0.93 - x) / 0.01, 0, 1)
    img = img * (1 - 0.8 * mouth[..., None])

    t_eye = (-0.80 - X_NOSE) / (X_END - X_NOSE)
    hh_e = float(_half_height(np.array([t_eye]))[0])
    zc_e = float(_centre_z(np.array([t_eye]))[0])
    th_e = math.radians(62.0)  # above the equator
    for sgn in (1.0, -1.0):
        ex, ey, ez = -0.80, sgn * ASPECT * hh_e * math.sin(th_e), zc_e + hh_e * math.cos(th_e)
        d = np.sqrt((x - ex) ** 2 + (y - ey) ** 2 + (z - ez) ** 2)
        iris = np.clip((0.052 - d) / 0.004, 0, 1)[..., None]
        pupil = np.clip((0.028 - d) / 0.003, 0, 1)[..., None]
        ring = 0.85 + 0.15 * np.cos(2 * np.pi * d / 0.009)[..., None]
        glint = np.clip((0.008 - np.sqrt((x - ex + 0.01) ** 2 + (z - ez - 0.01) ** 2 + (y - ey) ** 2)) / 0.002,
                        0, 1)[..., None]
        img = img * (1 - iris) + np.array([0.95, 0.72, 0.18]) * ring * iris
        img = img * (1 - pupil) + 0.02 * pupil
        img = img * (1 - glint) + glint
    return np.clip(img, 0, 1).astype(np.float32)


def _fin_texture(h: int, w: int) -> np.ndarray:
    """Fin rays: dark rays ~4 texels apart across u, segmented by faint joints along v; orange→gold to the edge."""
    v = (np.arange(h) + 0.5)[:, None] / h          # 0 = top row of the region = fin edge (v high)
    uu = (np.arange(w) + 0.5)[None, :]
    root = np.array([0.85, 0.38, 0.12])
    edge = np.array([0.98, 0.86, 0.45])
    base = root + (edge - root) * (1 - v)[..., None]
    ray = 0.5 + 0.5 * np.cos(2 * np.pi * uu / 4.0)
    joints = 0.5 + 0.5 * np.cos(2 * np.pi * (np.arange(h)[:, None] + 0.5) / 11.0)
    shade = (0.62 + 0.38 * ray) * (0.9 + 0.1 * joints)
    return np.clip(base * np.broadcast_to(shade, (h, w))[..., None], 0, 1).astype(np.float32)


def fish_texture(size: int = DEFAULT_TEXTURE_SIZE, seed: int = 0) -> np.ndarray:
    """The fish's UV atlas (size x size x 3): body in the top three quarters, fins below, with gutters."""
    if int(size) != size or size < 64:
        raise ValueError(f"fish texture size must be an integer >= 64, got {size!r}")
    size = int(size)
    pad = _pad(size)
    body_h = int(round((1 - BODY_V0) * size))
    tex = np.empty((size, size, 3), np.float32)
    body = _body_texture(body_h - 2 * pad, size - 2 * pad, seed)
    body = np.pad(body, ((pad, pad), (0, 0), (0, 0)), mode="wrap")            # seam runs along the back
    tex[:body_h] = np.pad(body, ((0, 0), (pad, pad), (0, 0)), mode="edge")
    fin_h = size - body_h
    half = size // 2
    for c0, c1 in ((0, half), (half, size)):
        fin = _fin_texture(fin_h - 2 * pad, c1 - c0 - 2 * pad)
        tex[body_h:, c0:c1] = np.pad(fin, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    return tex


def _pad(size: int) -> int:
    return max(2, size // 256)


# ----- public API -------------------------------------------------------------------------------------------
def make_fish(texture_size: int = DEFAULT_TEXTURE_SIZE, *, n_x: int = 96, n_theta: int = 64,
              seed: int = 0) -> TexturedMesh:
    """Build the fish mesh and its texture; the same arguments always give identical arrays."""
    if n_x < 8 or n_theta < 8:
        raise ValueError(f"fish resolution too low: n_x={n_x}, n_theta={n_theta} (need >= 8)")
    tex = fish_texture(texture_size, seed)
    pad = _pad(int(texture_size))
    parts = [
        _body(n_x, n_theta, int(texture_size), pad),
        _tail_fin(int(texture_size), pad),
        _median_fin(-0.28, 0.30, 0.27, 0.16, True, int(texture_size), pad),
        _median_fin(0.22, 0.50, 0.13, 0.08, False, int(texture_size), pad),
    ]
    positions, uvs, faces, normals = [], [], [], []
    base = 0
    for p, uv, f in parts:
        positions.append(p)
        uvs.append(uv)
        normals.append(smooth_normals(p, f))
        faces.append(f + base)
        base += len(p)
    # Built nose-at-−x (the profile reads nose → tail); turn 180° about z so the fish swims toward +x.
    # A rotation, not a mirror: winding and normals stay outward.
    flip = np.array([-1.0, -1.0, 1.0], np.float32)
    return TexturedMesh(np.concatenate(positions) * flip, np.concatenate(normals) * flip, np.concatenate(uvs),
                        np.concatenate(faces), tex, name="fish")


def _fmt_rows(tag: str, arr: np.ndarray) -> str:
    fmt = tag + " " + " ".join(["%.9g"] * arr.shape[1])
    return "\n".join(fmt % tuple(row) for row in arr.tolist())


def write_obj(mesh: TexturedMesh, obj_path: str | os.PathLike, png_path: str | os.PathLike | None = None) -> \
        tuple[Path, Path]:
    """Write ``mesh`` as OBJ (v/vt/vn, shared indices) + MTL + texture PNG next to it, each atomically.

    Everything is encoded in memory first and the OBJ is written last, so a failure never leaves an OBJ that
    points at a missing or truncated texture.
    """
    obj_path = Path(obj_path)
    png_path = Path(png_path) if png_path is not None else obj_path.with_suffix(".png")
    mtl_path = obj_path.with_suffix(".mtl")
    for p in (obj_path, png_path):
        if not p.parent.exists():
            raise FileNotFoundError(f"cannot write {p}: folder {p.parent} does not exist")
        if not p.parent.is_dir():
            raise NotADirectoryError(f"cannot write {p}: {p.parent} is not a folder")
    mat = re.sub(r"[^A-Za-z0-9_]", "_", mesh.name) or "mesh"
    tex_ref = os.path.relpath(png_path, mtl_path.parent).replace(os.sep, "/")
    mtl = (f"# mipstudio material\nnewmtl {mat}\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\n"
           f"map_Kd {tex_ref}\n")
    f1 = mesh.faces.astype(np.int64) + 1
    face_lines = "\n".join("f %d/%d/%d %d/%d/%d %d/%d/%d" % (a, a, a, b, b, b, c, c, c) for a, b, c in f1.tolist())
    obj = "\n".join([
        f"# mipstudio {mesh.name}: {len(mesh.positions)} vertices, {len(mesh.faces)} triangles",
        f"mtllib {mtl_path.name}", f"o {mat}",
        _fmt_rows("v", mesh.positions), _fmt_rows("vt", mesh.uvs), _fmt_rows("vn", mesh.normals),
        f"usemtl {mat}", "s 1", face_lines, ""])
    created: list[Path] = []
    try:  # each file is atomic; on failure also remove the ones this call created, so no half set remains
        for path, write in ((png_path, lambda: atomic_save_image(png_path, mesh.texture)),
                            (mtl_path, lambda: atomic_write_text(mtl_path, mtl)),
                            (obj_path, lambda: atomic_write_text(obj_path, obj))):
            existed = path.exists()
            write()
            if not existed:
                created.append(path)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return obj_path, png_path


def write_fish(out_dir: str | os.PathLike, texture_size: int = DEFAULT_TEXTURE_SIZE) -> tuple[Path, Path]:
    """Write ``fish.obj`` (+ ``fish.mtl``) and ``fish.png`` into an existing folder; returns (obj, png)."""
    out = Path(out_dir)
    if not out.is_dir():
        kind = "is not a folder" if out.exists() else "does not exist"
        raise (NotADirectoryError if out.exists() else FileNotFoundError)(f"write_fish: {out} {kind}")
    mesh = make_fish(texture_size)
    return write_obj(mesh, out / "fish.obj", out / "fish.png")


def _parse_index(tok: str, n: int, path: Path, lineno: int) -> int:
    k = int(tok)
    idx = k - 1 if k > 0 else n + k
    if k == 0 or not 0 <= idx < n:
        raise ValueError(f"{path}:{lineno}: index {k} out of range (have {n})")
    return idx


def load_obj(obj_path: str | os.PathLike, png_path: str | os.PathLike | None = None, *,
             name: str | None = None) -> TexturedMesh:
    """Read a triangle/polygon OBJ with UVs into a :class:`TexturedMesh` (texture from ``png_path`` or the
    MTL's ``map_Kd``). Corners that share one index for v/vt/vn keep the file's vertex order exactly."""
    obj_path = Path(obj_path)
    try:
        text = obj_path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise OSError(f"cannot read OBJ {obj_path}: {e.strerror or e}") from e
    v, vt, vn, corners, mtllib = [], [], [], [], None
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        tag, args = parts[0], parts[1:]
        try:
            if tag == "v":
                v.append([float(a) for a in args[:3]])
                if len(args) < 3:
                    raise ValueError
            elif tag == "vt":
                vt.append([float(a) for a in args[:2]] + [0.0] * (2 - len(args[:2])))
                if not args:
                    raise ValueError
            elif tag == "vn":
                vn.append([float(a) for a in args[:3]])
                if len(args) < 3:
                    raise ValueError
            elif tag == "f":
                if len(args) < 3:
                    raise ValueError
                poly = []
                for a in args:
                    fields = (a.split("/") + ["", ""])[:3]
                    poly.append((_parse_index(fields[0], len(v), obj_path, lineno),
                                 _parse_index(fields[1], len(vt), obj_path, lineno) if fields[1] else -1,
                                 _parse_index(fields[2], len(vn), obj_path, lineno) if fields[2] else -1))
                corners.extend(c for k in range(1, len(poly) - 1) for c in (poly[0], poly[k], poly[k + 1]))
            elif tag == "mtllib" and mtllib is None and args:
                mtllib = line.split(None, 1)[1].split("#", 1)[0].strip()
        except ValueError as e:
            if str(e).startswith(str(obj_path)):
                raise
            raise ValueError(f"{obj_path}:{lineno}: malformed '{tag}' line: {line.strip()[:80]}") from None
    if not corners:
        raise ValueError(f"{obj_path}: no faces")
    c = np.array(corners, dtype=np.int64)
    if (c[:, 1] < 0).any():
        raise ValueError(f"{obj_path}: faces without texture coordinates (vt) cannot be textured")
    v_arr, vt_arr = np.array(v, np.float64), np.array(vt, np.float64)
    vn_arr = np.array(vn, np.float64) if vn else None
    has_n = vn_arr is not None and (c[:, 2] >= 0).all()
    same = (c[:, 0] == c[:, 1]).all() and (not has_n or (c[:, 0] == c[:, 2]).all()) and len(vt) == len(v) \
        and (not has_n or len(vn) == len(v))
    if same:  # the layout write_obj produces: keep vertex order for exact round trips
        pos, uvs = v_arr, vt_arr
        nrm = vn_arr if has_n else None
        faces = c[:, 0].reshape(-1, 3)
    else:
        key = c if has_n else c[:, :2]
        uniq, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first)                     # first-appearance order
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        uniq = uniq[order]
        faces = rank[inverse.reshape(-1)].reshape(-1, 3)
        pos, uvs = v_arr[uniq[:, 0]], vt_arr[uniq[:, 1]]
        nrm = vn_arr[uniq[:, 2]] if has_n else None
    if nrm is None:
        nrm = smooth_normals(pos, faces)
    else:
        nrm = nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)

    if png_path is None:
        png_path = _texture_from_mtl(obj_path, mtllib)
    if png_path is None:
        texture = np.ones((1, 1, 3), np.float32)
    else:
        raw = read_image(png_path)  # one-line ValueError when the texture is not an image
        texture = raw.astype(np.float32) / float(np.iinfo(raw.dtype).max if raw.dtype.kind in "ui" else 1.0)
        if texture.ndim == 2:
            texture = np.repeat(texture[..., None], 3, axis=2)
        if texture.shape[2] == 2:  # grey + alpha
            texture = np.concatenate([np.repeat(texture[..., :1], 3, axis=2), texture[..., 1:]], axis=2)
    return TexturedMesh(pos, nrm, uvs, faces, texture, name=name or obj_path.stem)


def _texture_from_mtl(obj_path: Path, mtllib: str | None) -> Path | None:
    if not mtllib:
        return None
    mtl = obj_path.parent / mtllib
    try:
        lines = mtl.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise OSError(f"cannot read material file {mtl} named by {obj_path}: {e.strerror or e}") from e
    for line in lines:
        parts = line.split("#", 1)[0].split()
        if parts and parts[0] == "map_Kd" and len(parts) > 1:
            return mtl.parent / parts[-1]  # options (-s, -o …) come before the file name
    return None


def load_fish(obj_path: str | os.PathLike, png_path: str | os.PathLike | None = None) -> TexturedMesh:
    """Load a fish written by :func:`write_fish` (or any textured OBJ)."""
    return load_obj(obj_path, png_path, name="fish")


def fish_paths(texture_size: int = DEFAULT_TEXTURE_SIZE) -> tuple[Path, Path]:
    """(obj, png) of the fish in the asset cache, generated on first use only."""
    folder = cached(f"fish{int(texture_size)}", lambda d: write_fish(d, texture_size), version=FISH_VERSION)
    return folder / "fish.obj", folder / "fish.png"
