"""Gaussian splatting: EWA projection, SH colour and tile rasterization behind one dispatching API."""
from render.splat.api import Backend, RasterOutput, backends, rasterize, rasterize_camera, register_backend
from render.splat.projection import FILTERS, Projection, ScreenFilter, project_gaussians

__all__ = ["Backend", "RasterOutput", "backends", "rasterize", "rasterize_camera", "register_backend", "FILTERS",
           "Projection", "ScreenFilter", "project_gaussians"]
