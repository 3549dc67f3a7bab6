"""The "gl" rasterizer backend: the torch reference's image, in real time on any OpenGL 4.3 GPU or on software GL.

Why it matches the reference (shared/research/gl_splat.md §2): the tile rasterizer sorts every tile's splats by the
same per-splat key, so its per-pixel order is one global stable sort by view-space z. Drawing one primitive per
splat in that order, front to back with "under" blending into an RGBA32F target, and evaluating the reference's
per-pixel rule at pixel centres gives the same sum. What must be exact is the projection (pixel-unit dilation, the
1.3·tan(fov) Jacobian clamp, Mip-Splatting's compensation), the sort key and the α rules. The primitive only has
to cover every pixel the reference can composite the splat into: the rectangle α ≥ 1/255 box ∩ the reference's
tile rectangle ∩ the viewport (which also bounds a splat that would cover the screen many times); it is one
triangle around that rectangle or around the cut-off ellipse, whichever is smaller, clipped to the rectangle in
the fragment shader. The one rule not reproduced is the reference's early stop (T < 1e-4): past it the reference
skips the rest, GL adds them at that tiny transmittance (≤ 1e-4 per pixel). On GPUs the frame is drawn in batches
with those saturated pixels frozen in between (depth test), which also skips their fragments.

Pipeline per frame: a compute shader projects every Gaussian once (``shaders/splat_preprocess.comp``); the depth
order is re-sorted on the calling thread only when the view direction changed (z = f·p − f·c, so translation
never changes it); the GL thread draws ``shaders/splat.vert``/``splat.frag`` and reads back colour, alpha, depth
and (when asked) the per-pixel count. Uploads are cached per tensor set, so a static model is uploaded once.
Forward only: training keeps the torch (or CUDA) backend.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from render.splat.projection import FRUSTUM_CLAMP, ScreenFilter, covariance3d, camera_position
from render.splat.types import BackendUnavailable, RasterOutput

__all__ = ["ResortPolicy", "DepthOrder", "rasterize_gl", "last_stats", "MIN_GL_VERSION", "CACHE_BYTES"]

MIN_GL_VERSION = 430          # compute shaders and storage buffers
CACHE_BYTES = 3 * 2**30       # host + GL bytes of uploaded scenes kept (least recently used goes first) ...
CACHE_SCENES = 4              # ... and at most this many (a followed training run uploads every snapshot)
_SHADERS = Path(__file__).with_name("shaders")
_SPLAT_BYTES = 64             # 4 uvec4 per splat (see splat_preprocess.comp)
TEX_WIDTH = 4096              # the Gaussians' texture is this wide (a power of two) and as tall as needed
T_MIN = 1e-4                  # the reference's stop threshold on transmittance
BATCHES = 12                  # draws per frame on GPUs; between them saturated pixels are masked out
MIN_BATCH = 4096              # no batching below 2 × this many splats


# ----- depth order ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResortPolicy:
    """When to re-sort: only if the view direction turned by more than ``max_angle_deg``.

    z = f·p − f·c for the forward vector f and camera centre c, so the order depends on f alone: a pure translation
    never re-sorts. 0 (the default) re-sorts on any rotation, which keeps the reference's exact order.
    """

    max_angle_deg: float = 0.0

    def needs_resort(self, previous: np.ndarray | None, forward: np.ndarray) -> bool:
        if previous is None:
            return True
        if self.max_angle_deg <= 0.0:
            return not np.array_equal(previous, forward)
        cos = float(np.clip(np.dot(previous, forward) / (np.linalg.norm(previous) * np.linalg.norm(forward)),
                            -1.0, 1.0))
        return math.degrees(math.acos(cos)) > self.max_angle_deg


def _sortable_u32(x: np.ndarray) -> np.ndarray:
    """float32 → uint32 with the same order (flip all bits of negatives, the sign bit of the rest)."""
    u = x.astype(np.float32).view(np.uint32)
    return np.where(u & np.uint32(0x80000000), ~u, u | np.uint32(0x80000000))


class DepthOrder:
    """All splats sorted by f·p (stable: ties keep index order, as the reference's radix sort does).

    One 64-bit key per splat (sortable z bits << 32 | index) makes numpy's unstable sort give the stable order at
    quicksort speed (1M splats ≈ 10 ms). The GL thread draws the splats of this order that its preprocessing found
    visible (in front of the near plane, on screen, α ≥ 1/255 somewhere).
    """

    def __init__(self, means: np.ndarray) -> None:
        self.means = means
        self.forward: np.ndarray | None = None
        self.order = np.zeros(0, np.uint32)
        self.revision = 0                      # bumped on every re-sort

    def update(self, forward: np.ndarray, policy: ResortPolicy) -> bool:
        """Re-sort for ``forward`` if the policy says so; returns whether it did."""
        forward = np.asarray(forward, np.float32)
        if not policy.needs_resort(self.forward, forward):
            return False
        fp = self.means @ forward
        n = len(fp)
        key = (_sortable_u32(fp).astype(np.uint64) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
        key.sort()
        self.order = (key & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        self.forward = forward.copy()
        self.revision += 1
        return True


# ----- uploaded scenes -----------------------------------------------------------------------------------------
class _Scene:
    """Host arrays of one tensor set, its GL buffers (made on the GL thread) and its depth order."""

    def __init__(self, tensors: tuple[torch.Tensor, ...]) -> None:
        means, quats, scales, opacities, colors = tensors
        self.tensors = tensors                              # strong refs: ids cannot be reused while cached
        self.versions = tuple(t._version for t in tensors)
        f32 = dict(dtype=torch.float32)
        with torch.no_grad():
            cov = covariance3d(quats.detach().to(**f32), scales.detach().to(**f32))
        self.n = int(means.shape[0])
        m = means.detach().to(**f32).cpu()
        cols = colors.detach().to(**f32).cpu().reshape(self.n, colors[0].numel() if self.n else 3)
        # The texture layout of splat_preprocess.comp: (mean, opacity), Σ's six entries, colour coefficients.
        rows = torch.cat([m, opacities.detach().to(**f32).cpu()[:, None],
                          cov[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]].cpu(), torch.zeros(self.n, 2), cols], 1)
        self.stride = -(-rows.shape[1] // 4)  # texels per Gaussian
        rows = torch.nn.functional.pad(rows, (0, 4 * self.stride - rows.shape[1])).reshape(-1)
        self.rows = max(1, -(-rows.numel() // (4 * TEX_WIDTH)))  # texture height
        self.texels: np.ndarray | None = np.zeros(self.rows * TEX_WIDTH * 4, np.float32)
        self.texels[:rows.numel()] = rows.numpy()
        self.means = np.ascontiguousarray(m.numpy())
        self.order = DepthOrder(self.means)
        self.lock = threading.Lock()
        self.gl: dict[str, Any] = {}
        self.nbytes = self.texels.nbytes + self.means.nbytes + self.n * (_SPLAT_BYTES + 16 + 8 + 4)

    def matches(self, tensors: tuple[torch.Tensor, ...]) -> bool:
        return all(a is b for a, b in zip(self.tensors, tensors)) and \
            self.versions == tuple(t._version for t in tensors)

    def release_gl(self) -> None:
        for buf in self.gl.values():
            buf.release()
        self.gl.clear()


class _SceneCache:
    """Least-recently-used scenes by identity of their tensors, bounded by :data:`CACHE_BYTES`."""

    def __init__(self) -> None:
        self._scenes: OrderedDict[tuple[int, ...], _Scene] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tensors: tuple[torch.Tensor, ...]) -> _Scene:
        key = tuple(id(t) for t in tensors)
        with self._lock:
            scene = self._scenes.get(key)
            if scene is not None and scene.matches(tensors):
                self._scenes.move_to_end(key)
                return scene
        scene = _Scene(tensors)  # outside the lock: building a 1M scene takes a while
        with self._lock:
            old = self._scenes.pop(key, None)
            self._scenes[key] = scene
            evicted = [old] if old is not None else []
            while len(self._scenes) > 1 and (len(self._scenes) > CACHE_SCENES or
                                             sum(s.nbytes for s in self._scenes.values()) > CACHE_BYTES):
                evicted.append(self._scenes.popitem(last=False)[1])
        for s in evicted:
            _release_on_gl_thread(s)
        return scene

    def clear(self) -> None:
        with self._lock:
            scenes = list(self._scenes.values())
            self._scenes.clear()
        for s in scenes:
            _release_on_gl_thread(s)


def _release_on_gl_thread(scene: _Scene) -> None:
    if scene.gl:
        from render.gl import gl_thread

        gl_thread().submit(lambda ctx: scene.release_gl())


_CACHE = _SceneCache()


def clear_cache() -> None:
    """Drop every uploaded scene (tests; freeing memory after closing a big scene)."""
    _CACHE.clear()


# ----- the GL side -----------------------------------------------------------------------------------------------
@dataclass
class FrameStats:
    """Where the last frame's time went (seconds), for the bench and the view's info line."""

    sorted: bool = False
    sort: float = 0.0
    upload: float = 0.0
    preprocess: float = 0.0
    draw: float = 0.0
    readback: float = 0.0
    drawn: int = 0


_STATS = FrameStats()


def last_stats() -> FrameStats:
    """Timings of the most recent :func:`rasterize_gl` call."""
    return _STATS


class _Renderer:
    """Programs and the render target of one GL context (made on the GL thread on first use)."""

    def __init__(self, ctx) -> None:
        if ctx.version_code < MIN_GL_VERSION:
            raise BackendUnavailable(f"needs OpenGL {MIN_GL_VERSION // 100}.{MIN_GL_VERSION % 100 // 10} (compute "
                                     f"shaders); this context is {ctx.version_code // 100}."
                                     f"{ctx.version_code % 100 // 10} ({ctx.info.get('GL_RENDERER', '?')})")
        self.ctx = ctx
        src = {name: (_SHADERS / name).read_text() for name in ("splat_preprocess.comp", "splat.vert", "splat.frag",
                                                                 "fullscreen.vert", "saturated.frag")}
        renderer = str(ctx.info.get("GL_RENDERER", "")).lower()
        software = any(k in renderer for k in ("llvmpipe", "softpipe", "swrast"))
        self.max_groups = int((ctx.info.get("GL_MAX_COMPUTE_WORK_GROUP_COUNT") or (65535,))[0])
        self.max_texture = int(ctx.info.get("GL_MAX_TEXTURE_SIZE", 16384))
        self.preprocess = ctx.compute_shader(src["splat_preprocess.comp"].replace("TEX_WIDTH", str(TEX_WIDTH)))
        frag = src["splat.frag"].split("\n", 1)
        self.programs, self.vaos = {}, {}
        for counts in (False, True):  # with and without the per-pixel count
            fs = frag[0] + ("\n#define COUNT\n" if counts else "\n") + frag[1]
            self.programs[counts] = ctx.program(vertex_shader=src["splat.vert"], fragment_shader=fs)
            self.vaos[counts] = ctx.vertex_array(self.programs[counts], [])
        self.mask_program = ctx.program(vertex_shader=src["fullscreen.vert"], fragment_shader=src["saturated.frag"])
        self.mask_vao = ctx.vertex_array(self.mask_program, [])
        self.mask_program["t_min"].value = T_MIN
        self.max_block = int(ctx.info.get("GL_MAX_SHADER_STORAGE_BLOCK_SIZE", 2**27))
        # Batches with saturated pixels masked in between: a large saving where early depth tests are cheap (GPUs),
        # none on a software rasterizer, where a rejected pixel costs about as much as a shaded one (measured).
        self.batches = 1 if software else BATCHES
        self.size: tuple[int, int] | None = None
        self.target: dict[str, Any] = {}

    def _target(self, width: int, height: int) -> dict[str, Any]:
        import moderngl

        if self.size != (width, height):
            for obj in self.target.values():
                obj.release()
            ctx = self.ctx
            color = ctx.texture((width, height), 4, dtype="f4")
            depth = ctx.renderbuffer((width, height), 4, dtype="f4")
            zbuf = ctx.depth_renderbuffer((width, height))
            counts = ctx.texture((width, height), 1, dtype="u4")
            color.filter = moderngl.NEAREST, moderngl.NEAREST
            self.target = {"color": color, "depth": depth, "zbuf": zbuf, "counts": counts,
                           "fbo": ctx.framebuffer([color, depth], zbuf),
                           "mask_fbo": ctx.framebuffer(depth_attachment=zbuf)}
            self.size = (width, height)
        return self.target

    def _upload(self, scene: _Scene) -> None:
        import moderngl

        rows = scene.rows
        if scene.n * _SPLAT_BYTES > self.max_block or rows > self.max_texture:
            limit = min(self.max_block // _SPLAT_BYTES, self.max_texture * TEX_WIDTH // scene.stride)
            raise BackendUnavailable(f"{scene.n:,} Gaussians exceed this GL's limits ({limit:,} at this SH degree)")
        if scene.gl:
            return
        ctx = self.ctx
        tex = ctx.texture((TEX_WIDTH, rows), 4, scene.texels, dtype="f4")
        tex.filter = moderngl.NEAREST, moderngl.NEAREST
        scene.gl["gauss"] = tex
        scene.texels = None  # the GL copy is the one used from now on (a 1M-Gaussian scene: 240 MB)
        # GL buffers cannot be empty: a zero-Gaussian scene gets one-element buffers and draws nothing
        scene.gl["splats"] = ctx.buffer(reserve=max(scene.n, 1) * _SPLAT_BYTES)
        scene.gl["screen"] = ctx.buffer(reserve=max(scene.n, 1) * 16)
        scene.gl["order"] = ctx.buffer(reserve=max(scene.n, 1) * 4)

    def render(self, scene: _Scene, u: dict[str, Any], width: int, height: int, counts: bool,
               stats: FrameStats) -> tuple[np.ndarray, ...]:
        ctx = self.ctx
        t0 = time.perf_counter()
        self._upload(scene)
        t1 = time.perf_counter()

        cs = self.preprocess
        for name, value in u.items():
            member = cs.get(name, None)  # a uniform the compiler found unused has no location
            if member is not None:
                member.value = value
        scene.gl["gauss"].use(location=0)
        scene.gl["splats"].bind_to_storage_buffer(4)
        scene.gl["screen"].bind_to_storage_buffer(5)
        step = self.max_groups * 128
        for base in range(0, scene.n, step):
            count = min(step, scene.n - base)
            cs["base"].value, cs["count"].value = base, count
            cs.run(-(-count // 128))
        ctx.memory_barrier()
        screen = np.frombuffer(scene.gl["screen"].read(size=scene.n * 16), np.float32).reshape(-1, 4) \
            if scene.n else np.zeros((0, 4), np.float32)
        t2 = time.perf_counter()

        # Only the splats that will draw, in depth order: a third of a typical scene is off-screen or culled, and
        # a hidden splat costs the vertex stage as much as a visible one.
        seq = scene.order.order
        drawn = seq[screen[seq, 3] > 0]
        if drawn.size:
            scene.gl["order"].write(drawn.tobytes())

        tgt = self._target(width, height)
        if counts:
            tgt["counts"].write(np.zeros((height, width), np.uint32).tobytes())
        fbo = tgt["fbo"]
        fbo.use()
        ctx.viewport = (0, 0, width, height)
        fbo.depth_mask = True
        fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        n_draw = int(drawn.size)
        if n_draw > 0:
            self._draw(scene, tgt, n_draw, width, height, counts)
        ctx.finish()
        t3 = time.perf_counter()

        rgba = np.frombuffer(fbo.read(components=4, dtype="f4", attachment=0), np.float32)
        depth = np.frombuffer(fbo.read(components=1, dtype="f4", attachment=1), np.float32)
        count_img = np.frombuffer(tgt["counts"].read(), np.uint32).reshape(height, width)[::-1] if counts else None
        t4 = time.perf_counter()
        stats.upload, stats.preprocess, stats.draw, stats.readback = t1 - t0, t2 - t1, t3 - t2, t4 - t3
        stats.drawn = n_draw
        return (rgba.reshape(height, width, 4)[::-1], depth.reshape(height, width)[::-1], count_img, screen)

    def _draw(self, scene: _Scene, tgt: dict[str, Any], n_draw: int, width: int, height: int, counts: bool) -> None:
        """Blend the n_draw splats of the order buffer front to back; with several batches, pixels that reached the
        stop threshold are frozen between them (depth 0), so the early depth test skips everything behind."""
        import moderngl

        ctx, prog, vao, fbo = self.ctx, self.programs[counts], self.vaos[counts], tgt["fbo"]
        scene.gl["splats"].bind_to_storage_buffer(4)
        scene.gl["order"].bind_to_storage_buffer(6)
        if counts:
            tgt["counts"].bind_to_image(0, read=True, write=True)
        tgt["color"].use(location=0)
        prog["size"].value = (float(width), float(height))
        prog["height"].value = float(height)
        batches = self.batches if self.batches > 1 and n_draw > 2 * MIN_BATCH else 1
        batch = -(-n_draw // batches)
        ctx.disable(moderngl.CULL_FACE | moderngl.DEPTH_TEST)
        if batches > 1:
            ctx.enable(moderngl.DEPTH_TEST)
            ctx.depth_func = "<"
        ctx.blend_equation = moderngl.FUNC_ADD
        ctx.blend_func = moderngl.ONE_MINUS_DST_ALPHA, moderngl.ONE
        try:
            for start in range(0, n_draw, batch):
                if start:
                    ctx.disable(moderngl.BLEND)
                    tgt["mask_fbo"].use()
                    ctx.depth_func = "1"
                    self.mask_vao.render(moderngl.TRIANGLES, vertices=3)
                    ctx.depth_func = "<"
                    fbo.use()
                fbo.depth_mask = False
                ctx.enable(moderngl.BLEND)
                prog["first"].value = start
                vao.render(moderngl.TRIANGLES, vertices=3 * min(batch, n_draw - start))
        finally:
            ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
            ctx.disable(moderngl.BLEND | moderngl.DEPTH_TEST)
            fbo.depth_mask = True
        ctx.memory_barrier()


_RENDERERS: dict[int, _Renderer] = {}


def _renderer(ctx) -> _Renderer:
    r = _RENDERERS.get(id(ctx))
    if r is None or r.ctx is not ctx:
        r = _RENDERERS[id(ctx)] = _Renderer(ctx)
    return r


# ----- the backend -----------------------------------------------------------------------------------------------
def rasterize_gl(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                 colors: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, *,
                 sh_degree: int | None, filter: ScreenFilter, background: torch.Tensor, near: float,
                 tile_size: int, counts: bool = True, policy: ResortPolicy = ResortPolicy()) -> RasterOutput:
    """The reference's forward pass on OpenGL (validated arguments, see :func:`render.splat.api.rasterize`).

    ``counts=False`` skips the per-pixel count (an atomic per fragment; with it the draw takes ~40% longer on
    llvmpipe); n_contrib is then None. Raises :class:`BackendUnavailable` when no GL 4.3 context exists or the
    scene exceeds a driver limit.
    """
    from render.gl import GLUnavailable, gl_thread

    if width > 65535 or height > 65535:
        raise BackendUnavailable(f"{width}x{height} is larger than the GL backend's 65535-pixel rectangles")
    try:
        thread = gl_thread()
    except GLUnavailable as e:
        raise BackendUnavailable(str(e)) from e
    import moderngl  # importable once a GL thread is up
    stats = FrameStats()
    raw_rgb = sh_degree is None
    scene = _CACHE.get((means, quats, scales, opacities, colors))  # RGB or SH: the same texel layout
    vm = viewmat.detach().to("cpu", torch.float64).numpy()
    Kn = K.detach().to("cpu", torch.float64).numpy()
    rot, trans = vm[:3, :3], vm[:3, 3]
    fx, fy, cx, cy = Kn[0, 0], Kn[1, 1], Kn[0, 2], Kn[1, 2]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    slack = FRUSTUM_CLAMP - 1.0
    campos = camera_position(viewmat.detach().to("cpu", torch.float32)).numpy()
    u = {"R0": tuple(rot[0]), "R1": tuple(rot[1]), "R2": tuple(rot[2]), "T": tuple(trans),
         "campos": tuple(float(v) for v in campos), "intr": (fx, fy, cx, cy),
         "lims": ((width - cx) / fx + slack * tan_x, cx / fx + slack * tan_x,
                  (height - cy) / fy + slack * tan_y, cy / fy + slack * tan_y),
         "size": (int(width), int(height)), "tile": int(tile_size), "near_z": float(near),
         "dilation": float(filter.dilation), "compensate": bool(filter.compensate),
         "degree": -1 if sh_degree is None else int(sh_degree), "stride": scene.stride, "raw_rgb": raw_rgb,
         "gauss": 0}
    with scene.lock:  # the order and the GL copy of it belong to this frame until it is read back
        t0 = time.perf_counter()
        stats.sorted = scene.order.update(rot[2], policy)
        stats.sort = time.perf_counter() - t0
        try:
            rgba, depth, count_img, screen = thread.call(
                lambda ctx: _renderer(ctx).render(scene, u, int(width), int(height), counts, stats))
        except moderngl.Error as e:  # a driver that cannot compile or run our shaders: the dispatcher falls back
            first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BackendUnavailable(f"GL backend failed: {first_line}") from e
    global _STATS
    _STATS = stats

    dev, dt = means.device, means.dtype
    bg = background.detach().to("cpu", torch.float32).numpy()
    trans_img = 1.0 - rgba[..., 3]
    color = rgba[..., :3] + trans_img[..., None] * bg
    as_t = lambda a, dtype=dt: torch.from_numpy(np.ascontiguousarray(a)).to(device=dev, dtype=dtype)  # noqa: E731
    return RasterOutput(color=as_t(color), alpha=as_t(rgba[..., 3]), depth=as_t(depth),
                        means2d=as_t(screen[:, :2]), radii=as_t(screen[:, 2], torch.int32),
                        n_contrib=None if count_img is None else as_t(count_img.astype(np.int32), torch.int32),
                        backend="gl")
