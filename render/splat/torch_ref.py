"""Pure-torch tile rasterizer: the reference every faster backend is tested against.

It follows the 3DGS forward pass rule for rule (research notes §1.5): 16×16 tiles, Gaussians binned to the tiles
their mean ± radius square touches and sorted front to back by camera z per tile, α = min(0.99, o·exp(power)),
skip power > 0 and α < 1/255, and stop a pixel (without compositing) when T·(1 − α) would drop below 1e-4.
Pixel (row i, column j) is evaluated at (j + 0.5, i + 0.5). α is computed as exp(power + ln o), equal to
o·exp(power) up to rounding, which saves a full-size pass.

It is vectorised over (tile, pixel, Gaussian) triples instead of looping: tiles are processed in chunks of padded
(tiles, pixels, K) tensors and transmittance comes from a cumulative product. The skip and stop rules are masks,
so autograd's gradient is exactly the gradient of the rule as written. Memory is bounded per chunk; when
gradients are needed over a large scene each chunk is checkpointed (recomputed in backward) so the saved
activations do not grow with the number of (pixel, Gaussian) pairs.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.checkpoint import checkpoint

from render.splat.projection import ScreenFilter, camera_position, project_gaussians
from render.splat.sh import sh_to_rgb
from render.splat.types import RasterOutput
from render.tensors import to_numpy

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
T_MIN = 1e-4
_Q_FLOOR = -30.0  # exp(−30) ≈ 1e-13 ≪ 1/255

# Memory for one (tiles, pixels, K) block, counting ~16 live temporaries of that size; CHUNK_ELEMENTS overrides.
CHUNK_BYTES = 200 * 2**20
_LIVE_PER_ELEMENT = 16
CHUNK_ELEMENTS: int | None = None
# With gradients, checkpoint chunks once the activations autograd would keep exceed this many bytes.
CHECKPOINT_ABOVE_BYTES = 1 << 30
_SAVED_PER_ELEMENT = 8  # full-size tensors autograd keeps per block (measured: ~7)


def rasterize_torch(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                    colors: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, *,
                    sh_degree: int | None, filter: ScreenFilter, background: torch.Tensor, near: float,
                    tile_size: int, counts: bool = True) -> RasterOutput:  # noqa: ARG001 - the count is free here
    """Whole pipeline on validated inputs (see :func:`render.splat.api.rasterize` for the contract)."""
    proj = project_gaussians(means, quats, scales, opacities, viewmat, K, width, height, filter=filter,
                             near=near, tile_size=tile_size)
    if proj.means2d.requires_grad:
        proj.means2d.retain_grad()
    if sh_degree is None:
        rgb = colors
    else:
        dirs = means - camera_position(viewmat)
        dirs = dirs / torch.linalg.vector_norm(dirs, dim=-1, keepdim=True).clamp_min(1e-12)
        rgb = sh_to_rgb(colors, dirs, sh_degree)
    color, alpha, depth, n_contrib = composite(proj.means2d, proj.conics, proj.opacities, rgb, proj.depths,
                                               proj.radii, proj.tile_min, proj.tile_max, width, height,
                                               background, tile_size=tile_size)
    return RasterOutput(color=color, alpha=alpha, depth=depth, means2d=proj.means2d, radii=proj.radii,
                        n_contrib=n_contrib)


def bin_gaussians(radii: torch.Tensor, tile_min: torch.Tensor, tile_max: torch.Tensor, depths: torch.Tensor,
                  n_tiles: int, grid_x: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Gaussian, tile) pairs sorted by (tile, depth): returns gaussian ids (P,), per-tile start and count.

    Equivalent to the 3DGS 64-bit key (tile << 32 | depth bits) radix sort; ties in depth keep index order.
    """
    dev = radii.device
    vis = torch.nonzero(radii > 0).squeeze(1)
    m = vis.numel()
    empty = torch.zeros(n_tiles, dtype=torch.int64, device=dev)
    if m == 0:
        return torch.zeros(0, dtype=torch.int64, device=dev), empty, empty
    lo, hi = tile_min[vis], tile_max[vis]
    span = hi - lo
    counts = span[:, 0] * span[:, 1]
    total = int(counts.sum())
    owner = torch.repeat_interleave(torch.arange(m, device=dev), counts)
    first = torch.cumsum(counts, 0) - counts
    k = torch.arange(total, device=dev) - first[owner]
    w = span[owner, 0]
    tile = (lo[owner, 1] + k // w) * grid_x + lo[owner, 0] + k % w
    rank = torch.empty(m, dtype=torch.int64, device=dev)
    rank[torch.sort(depths[vis].detach(), stable=True).indices] = torch.arange(m, device=dev)
    order = torch.argsort(tile * m + rank[owner])
    gauss = vis[owner[order]]
    tile_count = torch.bincount(tile, minlength=n_tiles)
    tile_start = torch.cumsum(tile_count, 0) - tile_count
    return gauss, tile_start, tile_count


def _plan_chunks(counts: np.ndarray, pixels: int, budget: int) -> list[tuple[np.ndarray, int]]:
    """Group non-empty tiles (ascending count) so tiles × pixels × K_max stays near ``budget``.

    Returns (tile ids, K-block size) per chunk; a tile whose list alone exceeds the budget gets K split into
    blocks that are composited one after another with the transmittance carried over.
    """
    tiles = np.nonzero(counts)[0]
    tiles = tiles[np.argsort(counts[tiles], kind="stable")]
    chunks, start = [], 0
    for i in range(len(tiles)):
        kmax = int(counts[tiles[i]])
        if i > start and (i - start + 1) * pixels * kmax > budget:
            chunks.append(tiles[start:i])
            start = i
    if start < len(tiles):
        chunks.append(tiles[start:])
    out = []
    for ch in chunks:
        kmax = int(counts[ch[-1]])
        out.append((ch, max(1, min(kmax, budget // (len(ch) * pixels)))))
    return out


def _composite_block(feats: torch.Tensor, origin: torch.Tensor, trans: torch.Tensor, done: torch.Tensor | None,
                     tile_size: int):
    """Composite one K-block of depth-sorted Gaussians into a chunk of tiles.

    feats (T, K, 10) = mean(2), conic(3), opacity, rgb(3), depth, with opacity 0 marking padding; origin (T, 2)
    tile corners in pixels; trans (T, P) transmittance so far; done (T, P) pixels that already hit the stop rule
    (None for the first block). Returns colour+depth increments (T, P, 4), new transmittance, new done mask (or
    None) and the composited count (T, P).

    The quadratic form is split by the tile's pixel grid: the x², y² terms are per column / per row (T, S, K) and
    only the cross term and what follows are full (T, S·S, K) passes, which dominate the cost.
    """
    n_t, n_k = feats.shape[0], feats.shape[1]
    mx, my, ca, cb, cc, opac = feats[..., 0], feats[..., 1], feats[..., 2], feats[..., 3], feats[..., 4], feats[..., 5]
    offs = torch.arange(tile_size, dtype=feats.dtype, device=feats.device) + 0.5
    dx = mx[:, None, :] - (origin[:, 0, None, None] + offs[None, :, None])  # (T, S, K), by pixel column
    dy = my[:, None, :] - (origin[:, 1, None, None] + offs[None, :, None])  # (T, S, K), by pixel row
    # log o is folded into the per-column term so that q = power + log o and α = exp(q) in one full pass.
    # Gaussians with o < 1/255 can never pass the α test; they (and padding) get log o = −inf, NaN-free in backward.
    live = opac >= ALPHA_MIN
    log_o = torch.where(live, torch.log(torch.where(live, opac, torch.ones_like(opac))),
                        torch.full_like(opac, -math.inf))
    qx = (-0.5 * ca)[:, None, :] * dx * dx + log_o[:, None, :]
    qy = (-0.5 * cc)[:, None, :] * dy * dy
    q = torch.addcmul(qx[:, None, :, :] + qy[:, :, None, :], (-cb)[:, None, None, :] * dx[:, None, :, :],
                      dy[:, :, None, :]).reshape(n_t, tile_size * tile_size, n_k)
    # exp of very negative inputs hits the CPU's denormal slow path (~20× slower); anything below −30 is far
    # under the α ≥ 1/255 cut, so clamping there changes no result and no gradient.
    alpha = torch.clamp_max(torch.exp(torch.clamp_min(q, _Q_FLOOR)), ALPHA_MAX)
    # 3DGS skips power > 0 (only reachable by rounding for a positive-definite conic) and α < 1/255. Masks are
    # applied by multiplication: on CPU that is several times cheaper than torch.where, and the gradient is the same.
    use = (q <= log_o[:, None, :]) & (alpha >= ALPHA_MIN)
    if done is not None:
        use = use & ~done[..., None]
    alpha = alpha * use
    t_all = torch.cumprod(torch.cat([trans[..., None], 1.0 - alpha], dim=-1), dim=-1)
    with torch.no_grad():  # the stop rule: T·(1−α) < 1e-4 ends the pixel before that Gaussian is composited
        stopped = t_all[..., -1] < T_MIN  # T is non-increasing, so checking the end finds every stop
        any_stop = bool(stopped.any())
    if any_stop:
        keep = t_all[..., 1:].detach() >= T_MIN  # exactly the Gaussians before the first stop
        use = use & keep
        alpha = alpha * keep
        t_all = torch.cumprod(torch.cat([trans[..., None], 1.0 - alpha], dim=-1), dim=-1)
        done = stopped if done is None else done | stopped
    weight = alpha * t_all[..., :-1]
    acc = torch.bmm(weight, feats[..., 6:10])  # (T, P, 4): Σ w·rgb and Σ w·z
    n = use.sum(-1, dtype=torch.int32)
    return acc, t_all[..., -1].clone(), done, n  # clone: a view would pin all of t_all in memory


def composite(means2d: torch.Tensor, conics: torch.Tensor, opacities: torch.Tensor, colors: torch.Tensor,
              depths: torch.Tensor, radii: torch.Tensor, tile_min: torch.Tensor, tile_max: torch.Tensor,
              width: int, height: int, background: torch.Tensor, *, tile_size: int = 16,
              chunk_elements: int | None = None,
              use_checkpoint: bool | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Front-to-back alpha compositing of projected Gaussians into (color, alpha, depth, n_contrib) images."""
    dev, dt = means2d.device, means2d.dtype
    gx, gy = math.ceil(width / tile_size), math.ceil(height / tile_size)
    n_tiles, pixels = gx * gy, tile_size * tile_size
    budget = chunk_elements or CHUNK_ELEMENTS or CHUNK_BYTES // (_LIVE_PER_ELEMENT * means2d.element_size())
    gauss, tile_start, tile_count = bin_gaussians(radii, tile_min, tile_max, depths, n_tiles, gx)

    feats = torch.cat([means2d, conics, opacities[:, None], colors, depths[:, None]], dim=-1)
    needs_grad = torch.is_grad_enabled() and feats.requires_grad
    if use_checkpoint is None:
        pairs = int(tile_count.sum()) * pixels
        use_checkpoint = needs_grad and pairs * _SAVED_PER_ELEMENT * feats.element_size() > CHECKPOINT_ABOVE_BYTES
    use_checkpoint = use_checkpoint and needs_grad

    chunk_tiles, acc_parts, t_parts, n_parts = [], [], [], []
    counts_np = to_numpy(tile_count)
    for tiles_np, kblock in _plan_chunks(counts_np, pixels, budget):
        tiles = torch.as_tensor(tiles_np, device=dev)
        origin = torch.stack([tiles % gx, tiles // gx], dim=-1).to(dt) * tile_size
        start, count = tile_start[tiles], tile_count[tiles]
        trans = torch.ones(len(tiles_np), pixels, dtype=dt, device=dev)
        done = None
        acc = torch.zeros(len(tiles_np), pixels, 4, dtype=dt, device=dev)
        ncon = torch.zeros(len(tiles_np), pixels, dtype=torch.int32, device=dev)
        kmax = int(counts_np[tiles_np[-1]])
        for k0 in range(0, kmax, kblock):
            kk = torch.arange(k0, min(k0 + kblock, kmax), device=dev)
            valid = kk[None, :] < count[:, None]
            idx = torch.where(valid, start[:, None] + kk[None, :], torch.zeros_like(valid, dtype=torch.int64))
            f = feats[gauss[idx]]
            f = torch.cat([f[..., :5], torch.where(valid, f[..., 5], torch.zeros_like(f[..., 5]))[..., None],
                           f[..., 6:]], dim=-1)  # padding gets opacity 0
            if use_checkpoint:
                d_acc, trans, done, n = checkpoint(_composite_block, f, origin, trans, done, tile_size,
                                                   use_reentrant=False)
            else:
                d_acc, trans, done, n = _composite_block(f, origin, trans, done, tile_size)
            acc, ncon = acc + d_acc, ncon + n
            if done is not None and bool(done.all()):
                break
        chunk_tiles.append(tiles)
        acc_parts.append(acc)
        t_parts.append(trans)
        n_parts.append(ncon)

    acc_t = torch.zeros(n_tiles, pixels, 4, dtype=dt, device=dev)
    t_t = torch.ones(n_tiles, pixels, dtype=dt, device=dev)
    n_t = torch.zeros(n_tiles, pixels, dtype=torch.int32, device=dev)
    if chunk_tiles:
        ids = torch.cat(chunk_tiles)
        acc_t = acc_t.index_copy(0, ids, torch.cat(acc_parts))
        t_t = t_t.index_copy(0, ids, torch.cat(t_parts))
        n_t = n_t.index_copy(0, ids, torch.cat(n_parts))

    def to_image(t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(gy, gx, tile_size, tile_size, *t.shape[2:]).transpose(1, 2)
        return t.reshape(gy * tile_size, gx * tile_size, *t.shape[4:])[:height, :width]

    trans_img, acc_img = to_image(t_t), to_image(acc_t)
    color = acc_img[..., :3] + trans_img[..., None] * background.to(dt)
    return color, 1.0 - trans_img, acc_img[..., 3], to_image(n_t)
