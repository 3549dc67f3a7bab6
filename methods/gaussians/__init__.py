"""3D Gaussian Splatting models (3DGS + Mip-Splatting's 3D filter): parameters, PLY I/O, densification.

GUI-free; rendering goes through ``render.splat`` (imported lazily by :meth:`GaussianModel.render`). The names
below are imported on first use, so importing a submodule that needs no torch (``config``, ``plugin``, ``cli``)
does not load torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DENSIFY_PRESETS": "config",
    "DensifyConfig": "config",
    "LearningRates": "config",
    "DensifyStats": "densify",
    "densify_and_prune": "densify",
    "make_optimizer": "densify",
    "position_lr": "densify",
    "reset_opacity": "densify",
    "update_position_lr": "densify",
    "compute_3d_filter": "filter3d",
    "PARAM_NAMES": "model",
    "SH_C0": "model",
    "GaussianModel": "model",
    "PlyError": "ply",
    "load_ply": "ply",
    "save_ply": "ply",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'methods.gaussians' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"methods.gaussians.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
