"""Rasterise textured meshes with a choice of texture filter: the GL side of "what happens when you zoom out".

Each filter mode is the hardware's own answer to minification (point sampling, bilinear, mip-mapped trilinear,
anisotropic); ``"supersampled"`` is the reference they are judged against: 4×4 bilinear samples per pixel (the
frame is rendered at 4× width and height without mipmaps, then box-averaged). Geometry edges get MSAA in every
other mode — the fragment shader still runs once per pixel under MSAA, so the texture filter's behaviour is what
shows, not the antialiasing of silhouettes.

All GL work runs on the process-wide GL thread (:func:`render.gl.gl_call`); :meth:`MeshRenderer.render` may be
called from any thread. GPU copies of meshes are cached per mesh object and freed when the mesh is garbage
collected (or on :meth:`MeshRenderer.forget` / :meth:`MeshRenderer.release`).
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from render.camera import Camera
from render.gl import OffscreenTarget, gl_call
from render.mesh import TexturedMesh

# GL enums (same values moderngl exposes), kept literal so importing this module needs no GL.
GL_NEAREST = 0x2600
GL_LINEAR = 0x2601
GL_LINEAR_MIPMAP_LINEAR = 0x2703
GL_TRIANGLES = 0x0004

MAX_SUPERSAMPLED_SIDE = 8192  # 512² at 4× = 2048²; beyond this the reference costs too much memory on llvmpipe

# Eye space (GL: x right, y up, +z toward the viewer): a light near the camera, slightly above and to the left.
_LIGHT_EYE = np.array([-0.3, 0.4, 0.866], np.float64) / np.linalg.norm([-0.3, 0.4, 0.866])

VERTEX_SHADER = """
#version 330
uniform mat4 u_mvp;
uniform mat3 u_normal_matrix;   // inverse-transpose of model-view: normals to eye space
in vec3 in_pos;
in vec3 in_normal;
in vec2 in_uv;
out vec3 v_normal;
out vec2 v_uv;
void main() {
    gl_Position = u_mvp * vec4(in_pos, 1.0);
    v_normal = u_normal_matrix * in_normal;
    v_uv = in_uv;
}
"""

# The lighting term, shared by the textured pass and the UV G-buffer pass so that a texture looked up elsewhere
# (a neural texture) is lit exactly like the GL modes.
SHADE_GLSL = """
uniform vec3 u_light;           // unit, eye space
uniform float u_lighting;       // 1 = shaded, 0 = texture colour only
float shade_term(vec3 normal) {
    vec3 n = normalize(normal);
    if (!gl_FrontFacing) n = -n;  // fins are single sheets: light both sides
    return mix(1.0, 0.35 + 0.65 * max(dot(n, u_light), 0.0), u_lighting);
}
"""

FRAGMENT_SHADER = """
#version 330
uniform sampler2D u_texture;
""" + SHADE_GLSL + """
in vec3 v_normal;
in vec2 v_uv;
out vec4 f_color;
void main() {
    vec3 albedo = texture(u_texture, v_uv).rgb;
    f_color = vec4(albedo * shade_term(v_normal), 1.0);
}
"""

# UV G-buffer: (u, v, UV chart + 1, lighting term) per pixel, float32, no MSAA (UVs must never be averaged across
# an edge or a seam). v follows OpenGL/OBJ (0 = bottom row of the texture); 0 in the chart channel = background.
GBUFFER_VERTEX_SHADER = """
#version 330
uniform mat4 u_mvp;
uniform mat3 u_normal_matrix;
uniform float u_chart_offset;
in vec3 in_pos;
in vec3 in_normal;
in vec2 in_uv;
in float in_chart;
out vec3 v_normal;
out vec2 v_uv;
flat out float v_chart;
void main() {
    gl_Position = u_mvp * vec4(in_pos, 1.0);
    v_normal = u_normal_matrix * in_normal;
    v_uv = in_uv;
    v_chart = in_chart + u_chart_offset + 1.0;
}
"""

GBUFFER_FRAGMENT_SHADER = """
#version 330
""" + SHADE_GLSL + """
in vec3 v_normal;
in vec2 v_uv;
flat in float v_chart;
out vec4 f_color;
void main() {
    f_color = vec4(v_uv, v_chart, shade_term(v_normal));
}
"""


def uv_charts(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """Per-vertex UV chart index: faces sharing a vertex index are one chart, so a UV seam (positions duplicated
    with other UVs) or a separate part starts a new chart. Union-find over the faces' vertex indices."""
    parent = np.arange(n_vertices)

    def root(i: np.ndarray) -> np.ndarray:
        while True:
            p = parent[i]
            if np.array_equal(p, i):
                return i
            parent[i] = parent[p]  # path halving, vectorised
            i = parent[i]

    f = np.asarray(faces, np.int64)
    for a, b in ((0, 1), (1, 2)):
        while True:  # hook roots until every face's corners share one root
            ra, rb = root(f[:, a]), root(f[:, b])
            diff = ra != rb
            if not diff.any():
                break
            lo, hi = np.minimum(ra[diff], rb[diff]), np.maximum(ra[diff], rb[diff])
            parent[hi] = lo
    roots = root(np.arange(n_vertices))
    _, chart = np.unique(roots, return_inverse=True)
    return chart.astype(np.float32)


@dataclass(frozen=True)
class UVFrame:
    """One UV G-buffer frame, row 0 = top: ``uv`` (H, W, 2) in OpenGL texture convention, ``mask`` (H, W) bool
    coverage, ``chart`` (H, W) int UV chart id (−1 on background; differences never cross charts), ``shade``
    (H, W) the lighting term the GL modes multiply the texture by, ``depth`` (H, W) eye-space distance along the
    view axis (inf on background)."""

    uv: np.ndarray
    mask: np.ndarray
    chart: np.ndarray
    shade: np.ndarray
    depth: np.ndarray


@dataclass(frozen=True)
class FilterMode:
    """How textures are sampled. ``supersample`` > 1 renders at that factor per axis and box-averages."""

    name: str
    min_filter: int
    mag_filter: int
    mipmaps: bool
    anisotropy: float = 1.0
    supersample: int = 1
    msaa: bool = True
    description: str = ""


FILTER_MODES: dict[str, FilterMode] = {m.name: m for m in (
    FilterMode("nearest", GL_NEAREST, GL_NEAREST, False, description="one texel per pixel: maximal aliasing"),
    FilterMode("bilinear", GL_LINEAR, GL_LINEAR, False, description="4 texels per pixel, no mipmaps: aliases"),
    FilterMode("trilinear", GL_LINEAR_MIPMAP_LINEAR, GL_LINEAR, True,
               description="mipmaps: isotropic prefilter, blurs at grazing angles"),
    FilterMode("anisotropic", GL_LINEAR_MIPMAP_LINEAR, GL_LINEAR, True, anisotropy=16.0,
               description="mipmaps + up to 16 taps along the pixel footprint's long axis"),
    FilterMode("supersampled", GL_LINEAR, GL_LINEAR, False, supersample=4, msaa=False,
               description="reference: 4x4 bilinear samples per pixel, box-averaged"),
)}


def filter_mode(name: str) -> FilterMode:
    """The :class:`FilterMode` called ``name`` (ValueError listing the valid ones otherwise)."""
    mode = FILTER_MODES.get(name)
    if mode is None:
        raise ValueError(f"unknown texture filter {name!r}; valid: {', '.join(FILTER_MODES)}")
    return mode


class _GpuMesh:
    """GL copies of one mesh plus the arrays they were made from (identity decides when to re-upload)."""

    def __init__(self, mesh: TexturedMesh) -> None:
        self.ref = weakref.ref(mesh)
        self.key = id(mesh)
        self.geometry_src: tuple | None = None
        self.texture_src: np.ndarray | None = None
        self.vbo = self.ibo = self.vao = self.gvao = self.cbo = self.texture = None
        self.charts: np.ndarray | None = None
        self.finalizer: weakref.finalize | None = None

    def release_geometry(self) -> None:
        for obj in (self.vao, self.gvao, self.cbo, self.vbo, self.ibo):
            if obj is not None:
                obj.release()
        self.vao = self.gvao = self.cbo = self.vbo = self.ibo = None
        self.charts = None
        self.geometry_src = None

    def release_texture(self) -> None:
        if self.texture is not None:
            self.texture.release()
        self.texture = None
        self.texture_src = None

    def release(self) -> None:
        self.release_geometry()
        self.release_texture()
        if self.finalizer is not None:
            self.finalizer.detach()
            self.finalizer = None


def _texture_bytes(texture: np.ndarray) -> tuple[bytes, int, int]:
    """float HxWx{3,4} (row 0 top) -> RGBA8 bytes, bottom row first as GL expects for v = 0 at the bottom."""
    h, w, c = texture.shape
    rgba = np.ones((h, w, 4), np.float32)
    rgba[:, :, :c] = texture
    rgba = np.round(np.clip(rgba[::-1], 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(rgba).tobytes(), w, h


def _mat_bytes(m: np.ndarray) -> bytes:
    return np.ascontiguousarray(np.asarray(m, np.float32).T).tobytes()  # GL wants column-major


class MeshRenderer:
    """Draws :class:`TexturedMesh` lists with a :class:`Camera` into RGBA float32 images.

    One instance can serve many threads (all GL work is serialised on the GL thread). ``msaa`` is the requested
    sample count for geometry edges; drivers cap it (llvmpipe: 4).
    """

    def __init__(self, msaa: int = 8) -> None:
        self.msaa = int(msaa)
        self._meshes: dict[int, _GpuMesh] = {}
        self._dead: list[_GpuMesh] = []
        self._dead_lock = threading.Lock()
        self._prog = None
        self._gprog = None
        self._samplers: dict[str, object] = {}
        self._targets: dict[tuple[int, int, int], OffscreenTarget] = {}
        self.uploads = 0  # geometry + texture uploads so far: lets callers verify caching

    # ----- public -------------------------------------------------------------------------------------------
    def render(self, meshes: Sequence[TexturedMesh], camera: Camera, *, filter: str = "trilinear",
               background: Sequence[float] = (0.0, 0.0, 0.0, 0.0), lighting: bool = True) -> np.ndarray:
        """Render to (H, W, 4) float32, row 0 = top, alpha = coverage composited over ``background``.

        RGB is premultiplied by alpha (identical to straight colour wherever the mesh covers the pixel fully);
        ``background`` is straight RGBA and composited with the "over" operator.
        """
        mode = filter_mode(filter)
        bg = np.asarray(background, np.float32).reshape(-1)
        if bg.shape != (4,) or not np.all(np.isfinite(bg)):
            raise ValueError(f"background must be 4 finite numbers (RGBA), got {background!r}")
        meshes = list(meshes)
        for m in meshes:
            if not isinstance(m, TexturedMesh):
                raise ValueError(f"render() takes TexturedMesh objects, got {type(m).__name__}")
        img, k = gl_call(lambda ctx: self._render_gl(ctx, meshes, camera, mode, bool(lighting)))
        if k > 1:  # box-average the supersampled frame, alpha included
            img = img.reshape(camera.height, k, camera.width, k, 4).mean(axis=(1, 3), dtype=np.float64)
            img = img.astype(np.float32)
        bg_premult = np.concatenate([bg[:3] * bg[3], bg[3:]])
        out = img + (1.0 - img[..., 3:4]) * bg_premult
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def render_uv(self, meshes: Sequence[TexturedMesh], camera: Camera, *, lighting: bool = True) -> UVFrame:
        """The UV G-buffer of the meshes seen by ``camera`` (one sample per pixel, pixel centres)."""
        meshes = list(meshes)
        for m in meshes:
            if not isinstance(m, TexturedMesh):
                raise ValueError(f"render_uv() takes TexturedMesh objects, got {type(m).__name__}")
        img, zbuf = gl_call(lambda ctx: self._render_uv_gl(ctx, meshes, camera, bool(lighting)))
        chart = np.rint(img[..., 2]).astype(np.int32) - 1
        mask = chart >= 0
        n, f = camera.near, camera.far
        ndc = zbuf.astype(np.float64) * 2.0 - 1.0  # window depth -> NDC -> eye distance (perspective inverse)
        depth = np.where(mask, 2.0 * n * f / np.maximum(f + n - ndc * (f - n), 1e-30), np.inf).astype(np.float32)
        return UVFrame(np.ascontiguousarray(img[..., :2]), mask, chart, np.ascontiguousarray(img[..., 3]), depth)

    def forget(self, mesh: TexturedMesh) -> None:
        """Free the GL copies of ``mesh`` now (they are re-made if it is rendered again)."""
        ref, key = weakref.ref(mesh), id(mesh)  # the GL thread may keep its last callable alive: no strong ref

        def _free(ctx) -> None:
            entry = self._meshes.get(key)
            if entry is not None and entry.ref() is ref():
                del self._meshes[key]
                entry.release()
        gl_call(_free)

    def release(self) -> None:
        """Free every GL object this renderer owns; it stays usable (objects are re-created on demand)."""
        def _free(ctx) -> None:
            for entry in self._meshes.values():
                entry.release()
            self._meshes.clear()
            self._collect_dead()
            for s in self._samplers.values():
                s.release()
            self._samplers.clear()
            for t in self._targets.values():
                t.release()
            self._targets.clear()
            for name in ("_prog", "_gprog"):
                if getattr(self, name) is not None:
                    getattr(self, name).release()
                    setattr(self, name, None)
        gl_call(_free)

    @property
    def gpu_entries(self) -> int:
        """GL mesh copies held right now, including those of collected meshes awaiting release."""
        return len(self._meshes)

    @property
    def cached_meshes(self) -> int:
        """How many live meshes have GL copies (copies of collected meshes are freed at the next render)."""
        return sum(1 for e in list(self._meshes.values()) if e.ref() is not None)

    # ----- GL thread ----------------------------------------------------------------------------------------
    def _render_gl(self, ctx, meshes: list[TexturedMesh], camera: Camera, mode: FilterMode,
                   lighting: bool) -> tuple[np.ndarray, int]:
        self._collect_dead()
        max_side = min(int(ctx.info.get("GL_MAX_RENDERBUFFER_SIZE", 4096)), MAX_SUPERSAMPLED_SIDE)
        k = max(1, min(mode.supersample, max_side // max(camera.width, camera.height)))
        cam = camera.scaled(k) if k > 1 else camera
        target = self._target(ctx, cam.width, cam.height, self.msaa if mode.msaa else 0)
        prog = self._program(ctx)
        sampler = self._sampler(ctx, mode)
        view, proj = cam.view_matrix_gl(), cam.projection_matrix_gl()
        prog["u_light"].value = tuple(float(x) for x in _LIGHT_EYE)
        prog["u_lighting"].value = 1.0 if lighting else 0.0
        prog["u_texture"].value = 0

        target.use((0.0, 0.0, 0.0, 0.0))
        ctx.enable(ctx.DEPTH_TEST)
        ctx.disable(ctx.CULL_FACE | ctx.BLEND)
        try:
            for mesh in meshes:
                entry = self._upload(ctx, mesh)
                mv = view @ np.asarray(mesh.model, np.float64)
                prog["u_mvp"].write(_mat_bytes(proj @ mv))
                prog["u_normal_matrix"].write(_mat_bytes(np.linalg.inv(mv[:3, :3]).T))
                entry.texture.use(location=0)
                sampler.use(location=0)
                entry.vao.render(GL_TRIANGLES)
            img = target.read()
        finally:
            meshes.clear()  # the GL thread may hold this call's closure until its next job: drop mesh refs
            sampler.clear(location=0)  # do not leave our sampler overriding other GL users' texture state
            ctx.disable(ctx.DEPTH_TEST)
        return img, k

    def _render_uv_gl(self, ctx, meshes: list[TexturedMesh], camera: Camera,
                      lighting: bool) -> tuple[np.ndarray, np.ndarray]:
        self._collect_dead()
        target = self._target(ctx, camera.width, camera.height, 0)
        prog = self._gbuffer_program(ctx)
        view, proj = camera.view_matrix_gl(), camera.projection_matrix_gl()
        prog["u_light"].value = tuple(float(x) for x in _LIGHT_EYE)
        prog["u_lighting"].value = 1.0 if lighting else 0.0
        target.use((0.0, 0.0, 0.0, 0.0))
        ctx.enable(ctx.DEPTH_TEST)
        ctx.disable(ctx.CULL_FACE | ctx.BLEND)
        offset = 0
        try:
            for mesh in meshes:
                entry = self._upload(ctx, mesh)
                if entry.gvao is None:
                    entry.charts = uv_charts(mesh.faces, len(mesh.positions))
                    entry.cbo = ctx.buffer(np.ascontiguousarray(entry.charts).tobytes())
                    entry.gvao = ctx.vertex_array(prog, [(entry.vbo, "3f 3f 2f", "in_pos", "in_normal", "in_uv"),
                                                         (entry.cbo, "1f", "in_chart")],
                                                  index_buffer=entry.ibo, index_element_size=4)
                prog["u_chart_offset"].value = float(offset)
                offset += int(entry.charts.max()) + 1 if len(entry.charts) else 0
                mv = view @ np.asarray(mesh.model, np.float64)
                prog["u_mvp"].write(_mat_bytes(proj @ mv))
                prog["u_normal_matrix"].write(_mat_bytes(np.linalg.inv(mv[:3, :3]).T))
                entry.gvao.render(GL_TRIANGLES)
            img = target.read()
            depth = target.read_depth()
        finally:
            meshes.clear()
            ctx.disable(ctx.DEPTH_TEST)
        return img, depth

    def _gbuffer_program(self, ctx):
        if self._gprog is None:
            self._gprog = ctx.program(vertex_shader=GBUFFER_VERTEX_SHADER, fragment_shader=GBUFFER_FRAGMENT_SHADER)
        return self._gprog

    def _program(self, ctx):
        if self._prog is None:
            self._prog = ctx.program(vertex_shader=VERTEX_SHADER, fragment_shader=FRAGMENT_SHADER)
        return self._prog

    def _sampler(self, ctx, mode: FilterMode):
        s = self._samplers.get(mode.name)
        if s is None:
            aniso = min(mode.anisotropy, float(getattr(ctx, "max_anisotropy", 1.0) or 1.0))
            s = ctx.sampler(repeat_x=True, repeat_y=True, filter=(mode.min_filter, mode.mag_filter),
                            anisotropy=max(1.0, aniso))
            self._samplers[mode.name] = s
        return s

    def _target(self, ctx, w: int, h: int, samples: int) -> OffscreenTarget:
        key = (w, h, samples)
        t = self._targets.get(key)
        if t is None:
            if len(self._targets) >= 3:  # sizes change when panels resize: keep only the recent few
                oldest = next(iter(self._targets))
                self._targets.pop(oldest).release()
            t = OffscreenTarget(ctx, w, h, samples)
            self._targets[key] = t
        return t

    def _collect_dead(self) -> None:
        with self._dead_lock:  # the finalizers hold this very list: empty it in place, never replace it
            dead = list(self._dead)
            self._dead.clear()
        for entry in dead:
            if self._meshes.get(entry.key) is entry:
                del self._meshes[entry.key]
            entry.release()

    def _upload(self, ctx, mesh: TexturedMesh) -> _GpuMesh:
        entry = self._meshes.get(id(mesh))
        if entry is not None and entry.ref() is not mesh:  # id reused by a new object before GC bookkeeping ran
            entry.release()
            entry = None
        if entry is None:
            entry = _GpuMesh(mesh)
            entry.finalizer = weakref.finalize(mesh, self._mark_dead, self._dead, self._dead_lock, entry)
            self._meshes[id(mesh)] = entry
        geometry = (mesh.positions, mesh.normals, mesh.uvs, mesh.faces)
        if entry.geometry_src is None or any(a is not b for a, b in zip(entry.geometry_src, geometry)):
            entry.release_geometry()
            data = np.hstack([mesh.positions, mesh.normals, mesh.uvs]).astype(np.float32)
            entry.vbo = ctx.buffer(np.ascontiguousarray(data).tobytes())
            entry.ibo = ctx.buffer(np.ascontiguousarray(mesh.faces, np.int32).tobytes())
            entry.vao = ctx.vertex_array(self._program(ctx),
                                         [(entry.vbo, "3f 3f 2f", "in_pos", "in_normal", "in_uv")],
                                         index_buffer=entry.ibo, index_element_size=4)
            entry.geometry_src = geometry
            self.uploads += 1
        if entry.texture_src is not mesh.texture:
            entry.release_texture()
            data, w, h = _texture_bytes(mesh.texture)
            entry.texture = ctx.texture((w, h), 4, data, alignment=1)
            entry.texture.build_mipmaps()  # built once; samplers decide whether to use them
            entry.texture_src = mesh.texture
            self.uploads += 1
        return entry

    @staticmethod
    def _mark_dead(dead: list, lock: threading.Lock, entry: _GpuMesh) -> None:
        # Runs wherever the mesh is collected (any thread): only queue; GL objects are freed on the GL thread.
        with lock:
            dead.append(entry)
