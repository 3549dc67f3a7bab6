"""3D Gaussian Splatting models (3DGS + Mip-Splatting's 3D filter): parameters, PLY I/O, densification.

GUI-free; rendering goes through ``render.splat`` (imported lazily by :meth:`GaussianModel.render`).
"""
from methods.gaussians.densify import (
    DENSIFY_PRESETS,
    DensifyConfig,
    DensifyStats,
    LearningRates,
    densify_and_prune,
    make_optimizer,
    position_lr,
    reset_opacity,
    update_position_lr,
)
from methods.gaussians.filter3d import compute_3d_filter
from methods.gaussians.model import PARAM_NAMES, SH_C0, GaussianModel
from methods.gaussians.ply import PlyError, load_ply, save_ply

__all__ = [
    "DENSIFY_PRESETS",
    "DensifyConfig",
    "DensifyStats",
    "GaussianModel",
    "LearningRates",
    "PARAM_NAMES",
    "PlyError",
    "SH_C0",
    "compute_3d_filter",
    "densify_and_prune",
    "load_ply",
    "make_optimizer",
    "position_lr",
    "reset_opacity",
    "save_ply",
    "update_position_lr",
]
