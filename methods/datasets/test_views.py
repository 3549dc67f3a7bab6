"""The test views of a multi-scale dataset as ground truth for a live view: pick the dataset scale nearest to a
zoom, and the exact camera and image of a test view at that scale (loaded lazily, cached per scale)."""
from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

from render.camera import Camera


class MultiscaleTestViews:
    """``root`` is a nerf_synthetic-format folder with ``multiscale.json`` (or only full-scale test views)."""

    def __init__(self, root: str | Path, white_background: bool) -> None:
        from methods.datasets import read_multiscale

        self.root, self.white = Path(root), bool(white_background)
        ms = read_multiscale(self.root) or {"splits": {"test": []}}
        self.scales = sorted({1.0, *(float(e["scale"]) for e in ms["splits"].get("test", []))})
        self._cache: dict[float, Any] = {}
        self._lock = threading.Lock()

    def at(self, scale: float):
        """The test split at one of :attr:`scales` (a methods.datasets Dataset)."""
        from methods.datasets import load_nerf_synthetic

        with self._lock:
            if scale not in self._cache:
                self._cache[scale] = load_nerf_synthetic(self.root, "test", scale=scale, white_background=self.white)
            return self._cache[scale]

    def __len__(self) -> int:
        return len(self.at(1.0).cameras)

    def nearest_scale(self, s: float) -> float:
        """The dataset scale closest to ``s`` in log space (zoom 3 → 4, zoom 0.3 → 1/4)."""
        return min(self.scales, key=lambda x: abs(math.log2(x) - math.log2(s)))

    def view(self, index: int, zoom: float, train_scale: float = 1.0) -> tuple[Camera, float]:
        """Camera of test view ``index`` at the dataset scale nearest to ``zoom`` (relative to the scale the model
        was trained at) and that scale; its image is ``at(scale).images[index]``."""
        scale = self.nearest_scale(train_scale * zoom)
        return self.at(scale).cameras[index], scale
