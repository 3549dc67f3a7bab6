"""Public entry point of the Gaussian-splatting rasterizer: argument checks and backend dispatch.

Backends register a :class:`Backend`; :func:`rasterize` validates once, then hands the normalised arguments to a
backend. ``backend=None`` (training, evaluation) takes the highest-priority *differentiable* backend that accepts
the tensors' device; ``"auto"`` (display) the highest-priority one of all, forward-only ones included unless
gradients are needed: CUDA, then GL, then torch. A named backend that cannot serve the call (no GL 4.3, not
installed) falls back along the same chain and the output's ``note`` says why in one line. The pure torch
reference accepts every device, so it is always the last resort and the ground truth. The CUDA kernels register
as ``Backend("cuda", lambda d: d.type == "cuda", ..., priority=10)``: CUDA tensors go to them first.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from render.splat.projection import FILTERS, NEAR_PLANE
from render.splat.sh import MAX_SH_DEGREE, num_sh_bases
from render.splat import cuda_backend
from render.splat.gl_backend import rasterize_gl
from render.splat.torch_ref import rasterize_torch
from render.splat.types import BackendUnavailable, RasterOutput

__all__ = ["Backend", "BackendUnavailable", "RasterOutput", "BACKEND_CHOICES", "register_backend", "backends",
           "rasterize", "rasterize_camera"]

# What a user can ask for (the Splat view's combo, ``--backend``); a known name that is not registered here
# (no CuPy, say) falls back with a note instead of failing.
BACKEND_CHOICES = ("auto", "cuda", "gl", "torch")


@dataclass(frozen=True)
class Backend:
    """A rasterizer implementation; ``fn`` takes the validated arguments of :func:`rasterize` and may raise
    :class:`BackendUnavailable` to hand the call to the next backend. Forward-only backends set
    ``differentiable=False`` and are never used when gradients are needed."""

    name: str
    accepts: Callable[[torch.device], bool]
    fn: Callable[..., RasterOutput]
    priority: int = 0
    differentiable: bool = True


_BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    """Add (or replace, by name) a backend."""
    _BACKENDS[backend.name] = backend


def backends() -> dict[str, Backend]:
    """The registered backends by name."""
    return dict(_BACKENDS)


register_backend(Backend("torch", lambda device: True, rasterize_torch, priority=0))
register_backend(Backend("gl", lambda device: True, rasterize_gl, priority=5, differentiable=False))
if cuda_backend.enabled():  # CUDA tensors only; declines after a failed first-use self-check (cuda_backend.py)
    register_backend(Backend("cuda", lambda device: device.type == "cuda", cuda_backend.rasterize_cuda, priority=10))


def _candidates(device: torch.device, name: str | None, needs_grad: bool) -> tuple[list[Backend], str]:
    """Backends to try in order, and a note when the named one is not registered."""
    usable = sorted((b for b in _BACKENDS.values() if b.accepts(device) and (b.differentiable or not needs_grad)),
                    key=lambda b: -b.priority)
    if name is None:
        return [b for b in usable if b.differentiable], ""
    if name == "auto":
        return usable, ""
    if name not in _BACKENDS:
        if name in BACKEND_CHOICES:
            return usable, f"{name}: not available in this install"
        raise ValueError(f"unknown backend '{name}'; choose one of {', '.join(BACKEND_CHOICES)}")
    b = _BACKENDS[name]
    if not b.accepts(device):
        raise ValueError(f"backend '{name}' does not run on device {device}")
    if needs_grad and not b.differentiable:
        raise ValueError(f"backend '{name}' renders forward only; train with the torch or cuda backend "
                         f"(or render under torch.no_grad())")
    return [b] + [x for x in usable if x is not b], ""


def _check(name: str, t: object, shape: tuple[int | None, ...]) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name} must be float32 or float64, got {t.dtype}")
    if t.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}")
    if not _known_finite(t):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or inf")
        _remember_finite(t)
    return t


# Tensors already checked for NaN/inf, by identity and in-place version: a displayed 1M-Gaussian model is the same
# tensors frame after frame, and re-checking its 48M SH values cost ~120 ms per frame.
_FINITE: dict[int, tuple[weakref.ref, int]] = {}
_FINITE_MIN_ELEMENTS = 1 << 16


def _known_finite(t: torch.Tensor) -> bool:
    hit = _FINITE.get(id(t))
    return hit is not None and hit[0]() is t and hit[1] == t._version


def _remember_finite(t: torch.Tensor) -> None:
    if t.numel() < _FINITE_MIN_ELEMENTS:
        return
    if len(_FINITE) > 64:
        _FINITE.clear()
    _FINITE[id(t)] = (weakref.ref(t), t._version)


def rasterize(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
              colors: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, *,
              sh_degree: int | None = None, filter: str = "3dgs",
              background: Sequence[float] | torch.Tensor = (0.0, 0.0, 0.0), near: float = NEAR_PLANE,
              tile_size: int = 16, backend: str | None = None, counts: bool = True) -> RasterOutput:
    """Render N Gaussians from one pinhole camera.

    means (N,3); quats (N,4) wxyz, normalised here; scales (N,3) and opacities (N,) already activated; colors
    (N,3) RGB or (N,K,3) SH coefficients evaluated up to ``sh_degree`` (default: all K = (d+1)² bands) with the
    3DGS "+0.5, clamp ≥ 0" activation. viewmat (4,4) OpenCV world-to-camera, K (3,3) intrinsics (cast to the
    Gaussians' dtype). ``filter`` is a key of :data:`render.splat.projection.FILTERS`. Differentiable w.r.t. all
    Gaussian tensors; ``means2d.grad`` is kept for densification. ``backend``: None, "auto" or a name (module
    docstring). ``counts=False`` lets a backend skip the per-pixel count; ``n_contrib`` may then be None.
    """
    means = _check("means", means, (None, 3))
    n = means.shape[0]
    quats = _check("quats", quats, (n, 4))
    scales = _check("scales", scales, (n, 3))
    opacities = _check("opacities", opacities, (n,))
    if isinstance(colors, torch.Tensor) and colors.ndim == 3:
        colors = _check("colors", colors, (n, None, 3))
        kc = colors.shape[1]
        full = round(kc ** 0.5) - 1
        if sh_degree is None:
            if num_sh_bases(full) != kc or full > MAX_SH_DEGREE:
                raise ValueError(f"colors has {kc} SH coefficients per channel; expected (d+1)² with d ≤ "
                                 f"{MAX_SH_DEGREE}")
            sh_degree = full
        elif not 0 <= sh_degree <= MAX_SH_DEGREE or num_sh_bases(sh_degree) > kc:
            raise ValueError(f"sh_degree={sh_degree} needs {num_sh_bases(max(sh_degree, 0))} SH coefficients "
                             f"(≤ degree {MAX_SH_DEGREE}), colors has {kc}")
    else:
        colors = _check("colors", colors, (n, 3))
        if sh_degree is not None:
            raise ValueError("sh_degree given but colors is (N, 3) RGB; pass SH coefficients as (N, K, 3)")
    for name, t in (("quats", quats), ("scales", scales), ("opacities", opacities), ("colors", colors)):
        if t.dtype != means.dtype or t.device != means.device:
            raise ValueError(f"{name} must match means in dtype and device ({means.dtype}, {means.device}), "
                             f"got {t.dtype}, {t.device}")
    viewmat = _check("viewmat", viewmat, (4, 4)).to(device=means.device, dtype=means.dtype)
    K = _check("K", K, (3, 3)).to(device=means.device, dtype=means.dtype)
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise ValueError("K must have positive focal lengths")
    if int(width) != width or int(height) != height or width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive integers, got {width}x{height}")
    if int(tile_size) != tile_size or tile_size <= 0:
        raise ValueError(f"tile_size must be a positive integer, got {tile_size}")
    if not near > 0:
        raise ValueError(f"near must be positive, got {near}")
    if filter not in FILTERS:
        raise ValueError(f"unknown filter '{filter}'; choose one of {', '.join(FILTERS)}")
    bg = torch.as_tensor(background, dtype=means.dtype, device=means.device)
    if bg.shape != (3,) or not bool(torch.isfinite(bg).all()):
        raise ValueError(f"background must be 3 finite values, got {tuple(bg.shape)}")

    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (means, quats, scales, opacities, colors))
    chain, note = _candidates(means.device, backend, needs_grad)
    notes = [note] if note else []
    for impl in chain:
        try:
            out = impl.fn(means, quats, scales, opacities, colors, viewmat, K, int(width), int(height),
                          sh_degree=sh_degree, filter=FILTERS[filter], background=bg, near=float(near),
                          tile_size=int(tile_size), counts=counts)
        except BackendUnavailable as e:
            notes.append(f"{impl.name}: {e}")
            continue
        out.backend = impl.name
        if notes:
            out.note = "; ".join(notes) + f" - rendered with {impl.name}"
        return out
    raise BackendUnavailable("; ".join(notes) or f"no rasterizer backend for device {means.device}")


def rasterize_camera(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                     colors: torch.Tensor, camera, **kw) -> RasterOutput:
    """:func:`rasterize` with viewmat, K and image size taken from a :class:`render.camera.Camera`.

    The camera's own ``near`` (a GL clip plane) is not used: splats keep the 3DGS cull distance unless ``near=``
    is passed.
    """
    viewmat = torch.tensor(np.asarray(camera.world_to_cam), dtype=means.dtype, device=means.device)
    K = torch.tensor(np.asarray(camera.K), dtype=means.dtype, device=means.device)
    return rasterize(means, quats, scales, opacities, colors, viewmat, K, camera.width, camera.height, **kw)
