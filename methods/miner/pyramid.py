"""The Laplacian pyramid MINER represents (research sr_miner.md B2): area downsampling by 2 and bilinear x2
upsampling (align_corners=False), so R_{J-1} = I_{J-1} and R_j = I_j - UP2(I_{j+1}) reconstruct I exactly; and the
block views of a level (b x b tiles, row-major block order).

Images are (H, W, C) float tensors; every function is pure and shape-checked by its caller (the trainer pads the
image to a multiple of b x 2^(J-1) first)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def down2(img: torch.Tensor) -> torch.Tensor:
    """Area (2x2 mean) downsampling of an (H, W, C) image with even sides."""
    h, w, c = img.shape
    return img.reshape(h // 2, 2, w // 2, 2, c).mean(dim=(1, 3))


def up2(img: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 upsampling (pixel centres, align_corners=False, edges clamped) of an (H, W, C) image."""
    return F.interpolate(img.permute(2, 0, 1)[None], scale_factor=2.0, mode="bilinear",
                         align_corners=False)[0].permute(1, 2, 0)


def gaussian_pyramid(img: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[I_0 = img, I_1, ..., I_{J-1}], each half the size of the previous."""
    out = [img]
    for _ in range(levels - 1):
        out.append(down2(out[-1]))
    return out


def laplacian_pyramid(img: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[R_0, ..., R_{J-1}]: R_{J-1} = I_{J-1}, R_j = I_j - UP2(I_{j+1})."""
    g = gaussian_pyramid(img, levels)
    return [g[j] - up2(g[j + 1]) for j in range(levels - 1)] + [g[-1]]


def collapse(residuals: list[torch.Tensor], level: int = 0) -> torch.Tensor:
    """Level ``level`` of the image from a Laplacian pyramid (exact inverse of :func:`laplacian_pyramid` at 0)."""
    out = residuals[-1]
    for j in range(len(residuals) - 2, level - 1, -1):
        out = up2(out) + residuals[j]
    return out


def to_blocks(img: torch.Tensor, b: int) -> torch.Tensor:
    """(H, W, C) -> (H/b * W/b, b*b, C): blocks in row-major order, pixels row-major inside a block."""
    h, w, c = img.shape
    return img.reshape(h // b, b, w // b, b, c).permute(0, 2, 1, 3, 4).reshape(-1, b * b, c)


def from_blocks(blocks: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`to_blocks`: (n, b*b, C) -> (H, W, C)."""
    n, bb, c = blocks.shape
    b = round(bb ** 0.5)
    return blocks.reshape(h // b, w // b, b, b, c).permute(0, 2, 1, 3, 4).reshape(h, w, c)


def pad_to_multiple(img: torch.Tensor, m: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Edge-replicate the bottom/right so both sides are multiples of ``m``; returns (padded, original (H, W))."""
    h, w = img.shape[:2]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        img = F.pad(img.permute(2, 0, 1)[None], (0, pw, 0, ph), mode="replicate")[0].permute(1, 2, 0)
    return img.contiguous(), (h, w)


def local_coords(b: int) -> torch.Tensor:
    """(b*b, 2) (x, y) pixel-centre coordinates in [-1, 1] of a block's pixels, row-major (see config.py)."""
    t = -1.0 + (2.0 * torch.arange(b, dtype=torch.float32) + 1.0) / b
    ys, xs = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)
