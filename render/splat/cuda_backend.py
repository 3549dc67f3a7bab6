"""The "cuda" rasterizer backend: the kernels of ``cuda/`` launched through CuPy, wrapped in one autograd Function.

Status: written on a machine without a GPU. The kernels' math and data flow are checked there on the CPU
(tests/test_cuda_math.py); ``bench/gpu_check.sh`` runs this launch code and the ``gpu`` tests on a GPU. Because a
wrong image is worse than a slow one, the first call on a device runs a self-check (:func:`self_check`): a small
random scene, forward and backward, against the torch reference. If it fails (or the kernels do not compile) the
backend declines every call with that reason in one line and the dispatcher falls back to torch.
``MIPSTUDIO_CUDA_BACKEND=0`` switches the backend off altogether.

Data flow per frame (forward): Σ from quaternions and scales (torch) -> ``preprocess`` -> tiles touched and their
inclusive scan (torch) -> ``emit_keys`` -> stable sort of the 64-bit (tile | depth) keys (``torch.sort``) ->
``tile_ranges`` -> ``render_tiles``. Backward: ``render_tiles_backward`` (per-splat gradients with atomics) ->
``preprocess_backward``. Buffers are shared with torch without copies (``cupy.asarray`` on CUDA tensors), and
kernels run on torch's current stream.
"""
from __future__ import annotations

import ctypes
import functools
import math
import os

import numpy as np
import torch

from render.splat.cuda_build import CUDA_DIR, NVRTC_OPTIONS, camera_struct
from render.splat.projection import ScreenFilter, camera_position, covariance3d
from render.splat.sh import SH_C0
from render.splat.types import BackendUnavailable, RasterOutput

ENABLE_ENV = "MIPSTUDIO_CUDA_BACKEND"
TILE = 16
THREADS = 256


def unavailable_reason() -> str | None:
    """Why the backend cannot run here (None when it can)."""
    if not torch.cuda.is_available():
        return "no CUDA device"
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CuPy is not installed (pip install -e '.[cuda]')"
    return None


@functools.lru_cache(maxsize=1)
def _kernels() -> dict:
    import cupy

    out = {}
    for src, names in (("splat_preprocess.cu", ("preprocess", "preprocess_backward")),
                       ("splat_raster.cu", ("emit_keys", "tile_ranges", "render_tiles", "render_tiles_backward"))):
        module = cupy.RawModule(code=(CUDA_DIR / src).read_text(), options=NVRTC_OPTIONS)
        for name in names:
            out[name] = module.get_function(name)
    return out


def _cp(t: torch.Tensor):
    import cupy

    return cupy.asarray(t)  # zero-copy (__cuda_array_interface__)


def _launch(name: str, grid, block, args) -> None:
    import cupy

    with cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):
        _kernels()[name](grid, block, args)


def _groups(n: int) -> tuple[int]:
    return (max(1, -(-n // THREADS)),)


class _Rasterize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, quats, scales, opacities, sh, means2d, cam_bytes, campos, bg, degree: int,
                width: int, height: int):
        dev = means.device
        n, coeffs = means.shape[0], sh.shape[1]
        i32, f32 = np.int32, np.float32
        cam = torch.frombuffer(bytearray(cam_bytes), dtype=torch.uint8).to(dev)
        with torch.no_grad():
            cov = covariance3d(quats, scales)[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]].contiguous()
        out_f = torch.zeros(n, 10, device=dev)
        out_i = torch.zeros(n, 5, dtype=torch.int32, device=dev)
        rgb = torch.zeros(n, 3, device=dev)
        cx, cy, cz = (f32(v) for v in campos)
        if n:
            _launch("preprocess", _groups(n), (THREADS,),
                    (i32(n), _cp(means), _cp(cov), _cp(opacities), _cp(sh), i32(coeffs), i32(degree), _cp(cam),
                     cx, cy, cz, _cp(out_f), _cp(out_i), _cp(rgb)))
        spans = (out_i[:, 3] - out_i[:, 1]) * (out_i[:, 4] - out_i[:, 2])
        touched = torch.where(out_i[:, 0] > 0, spans, torch.zeros_like(spans))
        ends = torch.cumsum(touched, 0, dtype=torch.int32)
        total = int(ends[-1]) if n else 0
        gx, gy = -(-width // TILE), -(-height // TILE)
        ranges = torch.zeros(gx * gy * 2, dtype=torch.int32, device=dev)
        values = torch.zeros(max(total, 1), dtype=torch.int32, device=dev)
        if total:
            keys = torch.zeros(total, dtype=torch.int64, device=dev)  # tile < 2^31: the keys are non-negative
            _launch("emit_keys", _groups(n), (THREADS,),
                    (i32(n), _cp(out_f), _cp(out_i), _cp(ends), i32(gx), _cp(keys), _cp(values)))
            keys, perm = torch.sort(keys, stable=True)
            values = values[perm].contiguous()
            _launch("tile_ranges", _groups(total), (THREADS,), (i32(total), _cp(keys), _cp(ranges)))
        color = torch.zeros(height, width, 3, device=dev)
        alpha = torch.zeros(height, width, device=dev)
        depth = torch.zeros(height, width, device=dev)
        count = torch.zeros(height, width, dtype=torch.int32, device=dev)
        last = torch.zeros(height, width, dtype=torch.int32, device=dev)
        bgf = [f32(v) for v in bg]
        _launch("render_tiles", (gx, gy), (TILE, TILE),
                (_cp(ranges), _cp(values), _cp(out_f), _cp(rgb), i32(width), i32(height), *bgf, _cp(color),
                 _cp(alpha), _cp(depth), _cp(count), _cp(last)))
        ctx.save_for_backward(means, quats, scales, opacities, sh, cam, out_f, out_i, rgb, ranges, values, alpha,
                              last)
        ctx.meta = (degree, width, height, (cx, cy, cz), bgf)
        ctx.mark_non_differentiable(count)
        return color, alpha, depth, count, out_f[:, :2].clone(), out_i[:, 0].clone()

    @staticmethod
    def backward(ctx, g_color, g_alpha, g_depth, _g_count, _g_m2d, _g_radii):
        means, quats, scales, opacities, sh, cam, out_f, out_i, rgb, ranges, values, alpha, last = ctx.saved_tensors
        degree, width, height, (cx, cy, cz), bgf = ctx.meta
        dev, n, coeffs = means.device, means.shape[0], sh.shape[1]
        i32 = np.int32
        z = lambda *shape: torch.zeros(*shape, device=dev)  # noqa: E731
        g_mean2d, g_conic, g_op, g_rgb, g_z = z(n, 2), z(n, 3), z(n), z(n, 3), z(n)
        gx, gy = -(-width // TILE), -(-height // TILE)
        gc = (g_color if g_color is not None else z(height, width, 3)).contiguous()
        ga = (g_alpha if g_alpha is not None else z(height, width)).contiguous()
        gd = (g_depth if g_depth is not None else z(height, width)).contiguous()
        _launch("render_tiles_backward", (gx, gy), (TILE, TILE),
                (_cp(ranges), _cp(values), _cp(out_f), _cp(rgb), i32(width), i32(height), *bgf, _cp(alpha),
                 _cp(last), _cp(gc), _cp(gd), _cp(ga), _cp(g_mean2d), _cp(g_conic), _cp(g_op), _cp(g_rgb),
                 _cp(g_z)))
        g_means, g_quats, g_scales, g_opac, g_sh = z(n, 3), z(n, 4), z(n, 3), z(n), z(n, coeffs, 3)
        if n:
            _launch("preprocess_backward", _groups(n), (THREADS,),
                    (i32(n), _cp(means), _cp(quats), _cp(scales), _cp(opacities), _cp(sh), i32(coeffs),
                     i32(degree), _cp(cam), cx, cy, cz, _cp(out_i), _cp(g_mean2d), _cp(g_conic), _cp(g_op),
                     _cp(g_rgb), _cp(g_z), _cp(g_means), _cp(g_quats), _cp(g_scales), _cp(g_opac), _cp(g_sh)))
        # the screen-space mean gradient goes to the means2d input, the leaf densification reads
        return g_means, g_quats, g_scales, g_opac, g_sh, g_mean2d, None, None, None, None, None, None


# The self-check's bounds: the image is a sum of a few hundred float32 terms (the GPU tests hold 1e-4 on real
# scenes); gradients are atomically accumulated in arbitrary order, so they are compared as a relative norm.
CHECK_IMAGE_TOL = 1e-4
CHECK_GRAD_TOL = 1e-3


def _check_scene(device: torch.device) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, int, int]:
    """600 Gaussians (SH degree 1) in front of a 96x64 camera, some beyond the frustum: a scene that covers
    overlap, early termination, culling and every per-splat gradient."""
    g = torch.Generator().manual_seed(7)
    n, w, h = 600, 96, 64
    z = 1.0 + 4.0 * torch.rand(n, generator=g)
    xy = (torch.rand(n, 2, generator=g) - 0.5) * 1.6 * z[:, None]
    tensors = [torch.cat([xy, z[:, None]], 1), torch.randn(n, 4, generator=g),
               torch.exp(-4.0 + 2.0 * torch.rand(n, 3, generator=g)), 0.05 + 0.9 * torch.rand(n, generator=g),
               0.4 * torch.randn(n, 4, 3, generator=g)]
    K = torch.tensor([[80.0, 0, w / 2], [0, 80.0, h / 2], [0, 0, 1]])
    return [t.to(device).requires_grad_(True) for t in tensors], torch.eye(4, device=device), K.to(device), w, h


def self_check(device: torch.device) -> str | None:
    """None when the CUDA kernels reproduce the torch reference on :func:`_check_scene` (image, alpha, depth within
    CHECK_IMAGE_TOL; gradients of every input within CHECK_GRAD_TOL relative), else the reason in a few words."""
    return _self_check_cached(torch.device(device).index or 0)


@functools.lru_cache(maxsize=None)
def _self_check_cached(index: int) -> str | None:
    from render.splat.torch_ref import rasterize_torch

    try:
        _kernels()
    except Exception as e:  # noqa: BLE001 - NVRTC/driver errors come as many types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return f"the kernels did not compile ({first[:160]})"
    return compare_backends(rasterize_cuda_unchecked, rasterize_torch, torch.device("cuda", index))


def compare_backends(candidate, reference, device: torch.device) -> str | None:
    """None when ``candidate`` reproduces ``reference`` (both with the backend signature of render.splat.api) on
    :func:`_check_scene`, else what differs, in a few words."""
    from render.splat.projection import FILTERS

    results = []
    for fn in (candidate, reference):
        tensors, viewmat, K, w, h = _check_scene(device)
        with torch.enable_grad():
            out = fn(*tensors, viewmat, K, w, h, sh_degree=1, filter=FILTERS["mip"],
                     background=torch.tensor([0.2, 0.3, 0.4], device=device), near=0.2, tile_size=TILE)
            weights = torch.linspace(-1.0, 1.0, w * h * 5, device=device).reshape(h, w, 5)
            loss = (torch.cat([out.color, out.alpha[..., None], out.depth[..., None]], -1) * weights).sum()
            loss.backward()
        results.append((out, [t.grad for t in tensors]))
    (mine, g_mine), (ref, g_ref) = results
    for name in ("color", "alpha", "depth"):
        want = getattr(ref, name).detach()
        diff = float((getattr(mine, name).detach() - want).abs().max())
        if not diff <= CHECK_IMAGE_TOL * max(1.0, float(want.abs().max())):  # depth: relative to its range
            return f"self-check against the torch reference failed ({name} max |diff| {diff:.2g})"
    for name, a, b in zip(("means", "quats", "scales", "opacities", "sh"), g_mine, g_ref):
        rel = float((a - b).norm() / b.norm().clamp_min(1e-12)) if a is not None else math.inf
        if not rel <= CHECK_GRAD_TOL:
            return f"self-check against the torch reference failed ({name} gradient off by {rel:.2g} relative)"
    return None


def rasterize_cuda(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                   colors: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, *,
                   sh_degree: int | None, filter: ScreenFilter, background: torch.Tensor, near: float,
                   tile_size: int, counts: bool = True) -> RasterOutput:  # noqa: ARG001 - the count is free here
    """The reference's forward and backward with CUDA kernels (validated arguments, see render.splat.api); declines
    (BackendUnavailable) without CuPy or when the device's :func:`self_check` failed."""
    reason = unavailable_reason() or self_check(means.device)
    if reason is not None:
        raise BackendUnavailable(reason)
    return rasterize_cuda_unchecked(means, quats, scales, opacities, colors, viewmat, K, width, height,
                                    sh_degree=sh_degree, filter=filter, background=background, near=near,
                                    tile_size=tile_size)


def rasterize_cuda_unchecked(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                             colors: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, *,
                             sh_degree: int | None, filter: ScreenFilter, background: torch.Tensor, near: float,
                             tile_size: int, counts: bool = True) -> RasterOutput:  # noqa: ARG001
    """:func:`rasterize_cuda` without the self-check (the self-check and the GPU tests call this)."""
    if tile_size != TILE:
        raise BackendUnavailable(f"the CUDA kernels use {TILE}-px tiles, not {tile_size}")
    f32 = dict(dtype=torch.float32)
    if sh_degree is None:  # plain RGB as an SH DC term that +0.5 maps back (negative RGB would be clamped at 0)
        sh, degree = ((colors - 0.5) / SH_C0)[:, None, :], 0
    else:
        sh, degree = colors, int(sh_degree)
    cam = camera_struct(viewmat.detach().cpu().numpy(), K.detach().cpu().numpy(), width, height,
                        dilation=filter.dilation, compensate=filter.compensate, near=near, tile=tile_size)
    campos = camera_position(viewmat.detach().to("cpu", torch.float32)).tolist()
    # The screen-space mean gradient (densification) lands in .grad of this leaf: an input of the Function whose
    # backward returns it. Its values are set to the projected means afterwards (nothing saved it for backward).
    means2d = torch.zeros(means.shape[0], 2, device=means.device, requires_grad=torch.is_grad_enabled())
    args = [t.to(**f32).contiguous() for t in (means, quats, scales, opacities, sh)]
    color, alpha, depth, count, m2d, radii = _Rasterize.apply(
        *args, means2d, bytes(ctypes.string_at(ctypes.addressof(cam), ctypes.sizeof(cam))), campos,
        background.detach().cpu().tolist(), degree, int(width), int(height))
    with torch.no_grad():
        means2d.copy_(m2d)
    return RasterOutput(color=color, alpha=alpha, depth=depth, means2d=means2d, radii=radii.to(torch.int32),
                        n_contrib=count, backend="cuda")


def enabled() -> bool:
    """Registered unless ``MIPSTUDIO_CUDA_BACKEND=0`` (it only ever accepts CUDA tensors, so CPU-only installs never
    call it)."""
    return os.environ.get(ENABLE_ENV, "") != "0"
