"""Datasets: loaders for the real formats (nerf_synthetic, nerfstudio transforms) and the synthetic-scene generator.

Loaders return plain numpy images plus :class:`render.camera.Camera` lists, so every method trains on the same
data structures whether the scene came from disk or from :mod:`methods.datasets.generate`.
"""
from methods.datasets.nerf_synthetic import (
    Dataset,
    DatasetError,
    area_resize,
    load_nerf_synthetic,
    load_transforms_cameras,
    read_multiscale,
    scale_label,
)
from methods.datasets.generate import GenerateSyntheticDataset, default_dataset_path, ensure_dataset

__all__ = ["Dataset", "DatasetError", "area_resize", "load_nerf_synthetic", "load_transforms_cameras",
           "read_multiscale", "scale_label", "GenerateSyntheticDataset", "default_dataset_path", "ensure_dataset"]
