"""Training pairs for arbitrary-scale SR (research sr_miner.md A3, the ``sr-implicit-downsampled`` recipe): one
random scale per batch, random HR crops of round(lr_size * s)², flips and transposes, LR = antialiased bicubic
resize to lr_size², and ``samples`` random HR pixels per crop as targets."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from methods.gaussiansr.evaluate import resize
from methods.gaussiansr.model import normalise


@dataclass
class Batch:
    lr: torch.Tensor       # (B, 3, lr, lr) normalised
    coords: torch.Tensor   # (B, S, 2) (x, y) in [-1, 1], HR pixel centres
    cell: torch.Tensor     # (B, 2)
    target: torch.Tensor   # (B, S, 3) normalised
    scale: float


def training_images(photos: list[np.ndarray], min_side: int) -> list[torch.Tensor]:
    """(3, H, W) tensors: each photo, plus a half-size copy of large ones (more detail per crop: a 192² crop of a
    1411² photo is mostly smooth). Images smaller than ``min_side`` are left out."""
    out = []
    for p in photos:
        t = torch.as_tensor(np.ascontiguousarray(p), dtype=torch.float32)
        versions = [t]
        if min(t.shape[:2]) >= 2 * max(min_side, 300):
            versions.append(resize(t, t.shape[0] // 2, t.shape[1] // 2))
        out += [v.permute(2, 0, 1).contiguous() for v in versions if min(v.shape[:2]) >= min_side]
    return out


class CropSampler:
    """Draws :class:`Batch` es from a list of images with its own seeded generator (state saved with checkpoints)."""

    def __init__(self, images: list[torch.Tensor], lr_size: int, samples: int, scale_range: tuple[float, float],
                 seed: int = 0) -> None:
        self.lr_size, self.samples, self.scale_range = lr_size, samples, scale_range
        self.images = [im for im in images if min(im.shape[1:]) >= round(lr_size * scale_range[1])]
        if not self.images:
            raise ValueError(f"no training image is at least {round(lr_size * scale_range[1])} px on its shorter "
                             f"side (lr_size x scale_max); give larger images")
        self.rng = np.random.default_rng(seed)

    def __call__(self, batch: int) -> Batch:
        r = self.rng
        s = float(r.uniform(*self.scale_range))
        hr_size = round(self.lr_size * s)
        lrs, coords, targets = [], [], []
        n = min(self.samples, hr_size * hr_size)
        for _ in range(batch):
            im = self.images[int(r.integers(len(self.images)))]
            y, x = int(r.integers(im.shape[1] - hr_size + 1)), int(r.integers(im.shape[2] - hr_size + 1))
            crop = im[:, y:y + hr_size, x:x + hr_size]
            if r.random() < 0.5:
                crop = crop.flip(2)
            if r.random() < 0.5:
                crop = crop.flip(1)
            if r.random() < 0.5:
                crop = crop.transpose(1, 2)
            hwc = crop.permute(1, 2, 0)
            lrs.append(resize(hwc, self.lr_size, self.lr_size).permute(2, 0, 1))
            idx = torch.from_numpy(r.choice(hr_size * hr_size, n, replace=False))
            py, px = idx // hr_size, idx % hr_size
            coords.append(torch.stack([-1.0 + (2.0 * px + 1.0) / hr_size, -1.0 + (2.0 * py + 1.0) / hr_size], -1))
            targets.append(hwc[py, px])
        cell = torch.full((batch, 2), 2.0 / hr_size)
        return Batch(normalise(torch.stack(lrs)), torch.stack(coords).float(), cell, normalise(torch.stack(targets)), s)
