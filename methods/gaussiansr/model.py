"""GaussianSR and the LIIF baseline in pure torch (research sr_miner.md A2, A7, A8).

Both models encode the LR image once (:meth:`SRModel.encode`) and then answer queries at any continuous points
(:meth:`SRModel.query`), so one code path serves training (random HR pixels), evaluation and the SR view (only the
visible region, chunked so memory stays bounded).

GaussianSR: every LR pixel carries a 2D Gaussian (sigma_x, sigma_y, rho, opacity) mixed from a learnable bank by a
per-pixel classifier (Gumbel-softmax while training, a deterministic choice at eval). The first ``splat_channels``
features are splatted: a query point sums feature x opacity x exp(-d^T Sigma^-1 d / 2) over its KxK nearest LR
pixels, d in LR pixels from the pixel's centre. No tiles, so Gaussians cross what were tile borders in the released
code; the remaining features are sampled bicubically. An LTE decoder (Fourier basis with learned frequencies, the
cell size entering through a phase) maps the features to RGB.

LIIF: the 3x3-unfolded latent of the four nearest LR pixels, each decoded with its relative position and the cell
size, blended by the area of the opposite rectangle (local ensemble).

Coordinates are (x, y) in [-1, 1] with pixel centres at -1 + (2i + 1) / size (:func:`pixel_centres`).
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from methods.gaussiansr.config import ModelConfig

RHO_MAX = 0.99        # |rho| bound, keeps every Sigma positive definite
SIGMA_EPS = 1e-5      # added to the diagonal, as the released code does
TILE = 7              # the released code's tile: faithful mode averages parameters per position in a 7x7 tile
QUERY_CHUNK = 16_384  # points per query chunk: 256² x4 takes 2.1 s at 16k, 3.2-3.5 s at 65k (cache, 2 cores)


# ----- coordinates --------------------------------------------------------------------------------------------------
def pixel_centres(h: int, w: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(h, w, 2) pixel-centre coordinates (x, y) in [-1, 1] (LIIF's make_coord convention, x first)."""
    ys = -1.0 + (2.0 * torch.arange(h, device=device, dtype=torch.float32) + 1.0) / h
    xs = -1.0 + (2.0 * torch.arange(w, device=device, dtype=torch.float32) + 1.0) / w
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)


def to_lr_pixels(coords: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Continuous LR pixel coordinates (u, v) of (x, y) points: pixel j's centre is at u = j."""
    return (coords[..., 0] + 1.0) * (w / 2.0) - 0.5, (coords[..., 1] + 1.0) * (h / 2.0) - 0.5


def gather_pixels(feat: torch.Tensor, jx: torch.Tensor, jy: torch.Tensor) -> torch.Tensor:
    """feat (B, C, H, W) at integer pixels (jx, jy) (B, Q), clamped to the image: (B, Q, C)."""
    b, c, h, w = feat.shape
    idx = (jy.clamp(0, h - 1) * w + jx.clamp(0, w - 1)).long()
    return torch.gather(feat.reshape(b, c, h * w), 2, idx[:, None, :].expand(b, c, idx.shape[1])).transpose(1, 2)


def sample_bicubic(feat: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """feat (B, C, H, W) sampled bicubically at (x, y) points (B, Q, 2): (B, Q, C). Pixel centres are exact."""
    out = F.grid_sample(feat, coords[:, :, None, :], mode="bicubic", align_corners=False, padding_mode="border")
    return out[..., 0].transpose(1, 2)


def normalise(img: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the range both models see and predict (research A2 item 12)."""
    return (img - 0.5) / 0.5


# ----- encoder ------------------------------------------------------------------------------------------------------
class ResBlock(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(n, n, 3, padding=1), nn.Conv2d(n, n, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(F.relu(self.c1(x)))


class EDSRBaseline(nn.Module):
    """EDSR-baseline without the upsampler: head conv, residual blocks, a conv, and a global skip."""

    def __init__(self, n_resblocks: int, n_feats: int) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, n_feats, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(n_feats) for _ in range(n_resblocks)],
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        return x + self.body(x)


def mlp(n_in: int, hidden: int, layers: int, n_out: int, act: type[nn.Module]) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(n_in if i == 0 else hidden, hidden), act()]
    return nn.Sequential(*mods, nn.Linear(hidden if layers else n_in, n_out))


# ----- the models ---------------------------------------------------------------------------------------------------
@dataclass
class Encoded:
    """What :meth:`SRModel.encode` computed for a batch of LR images (normalised to [-1, 1])."""

    lr: torch.Tensor                     # (B, 3, h, w) the normalised input (for the bicubic skip)
    feat: torch.Tensor                   # (B, C, h, w) encoder features
    gauss: torch.Tensor | None = None    # (B, 4, h, w) sigma_x, sigma_y, rho, opacity per LR pixel (GaussianSR)
    choice: torch.Tensor | None = None   # (B, h, w) the bank entry each pixel chose (eval, argmax)


class SRModel(nn.Module, abc.ABC):
    """Shared interface: ``encode(lr)`` once, ``query(enc, coords, cell)`` any number of times. Abstract: each
    model (GaussianSR, LIIF) defines its own ``query``."""

    config: ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = EDSRBaseline(config.n_resblocks, config.n_feats)

    def encode(self, lr: torch.Tensor) -> Encoded:
        return Encoded(lr=lr, feat=self.encoder(lr))

    @abc.abstractmethod
    def query(self, enc: Encoded, coords: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """RGB (normalised) at (x, y) points (B, Q, 2); ``cell`` (B, 2) is one output pixel's size in [-1, 1]
        units, (2 / W_out, 2 / H_out)."""

    def query_grid(self, enc: Encoded, grid: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """RGB (normalised) on a regular (H, W, 2) grid of points spaced one ``cell`` apart: (H, W, 3). The same
        values as :meth:`query` on its points; models may share work between neighbours."""
        return self.query(enc, grid.reshape(1, -1, 2), cell)[0].reshape(*grid.shape[:2], 3)

    def _skip(self, enc: Encoded, coords: torch.Tensor) -> torch.Tensor | float:
        return sample_bicubic(enc.lr, coords) if self.config.rgb_skip else 0.0

    def forward(self, lr: torch.Tensor, coords: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        return self.query(self.encode(lr), coords, cell)


class GaussianBank(nn.Module):
    """``size`` learnable Gaussians. Init as released: sigmas on a grid over ``sigma_range`` (a 10x10 grid for
    100), rho 0, opacity sigmoid(1) = 0.731. Stored unconstrained (log sigma, atanh-like rho, logit opacity)."""

    def __init__(self, size: int, sigma_range: tuple[float, float]) -> None:
        super().__init__()
        side = math.ceil(math.sqrt(size))
        grid = torch.linspace(math.log(sigma_range[0]), math.log(sigma_range[1]), side)
        sx, sy = torch.meshgrid(grid, grid, indexing="ij")
        self.log_sigma = nn.Parameter(torch.stack([sx.flatten(), sy.flatten()], 1)[:size].clone())
        self.rho_raw = nn.Parameter(torch.zeros(size))
        self.opacity_logit = nn.Parameter(torch.ones(size))

    def params(self) -> torch.Tensor:
        """(size, 4): sigma_x, sigma_y (LR pixels), rho in (-0.99, 0.99), opacity in (0, 1)."""
        return torch.cat([self.log_sigma.exp(), RHO_MAX * torch.tanh(self.rho_raw)[:, None],
                          torch.sigmoid(self.opacity_logit)[:, None]], 1)


def tile_average(params: torch.Tensor) -> torch.Tensor:
    """The released code's quirk (research A2 item 6): parameters averaged over the batch and over every pixel at
    the same position within a 7x7 tile, i.e. 49 parameter sets shared by all tiles of all images."""
    b, c, h, w = params.shape
    pos = ((torch.arange(h, device=params.device) % TILE)[:, None] * TILE
           + (torch.arange(w, device=params.device) % TILE)[None, :]).flatten()
    sums = torch.zeros(c, TILE * TILE, device=params.device, dtype=params.dtype)
    sums = sums.index_add(1, pos, params.sum(0).reshape(c, h * w))
    counts = torch.zeros(TILE * TILE, device=params.device, dtype=params.dtype).index_add(
        0, pos, torch.full((h * w,), float(b), device=params.device, dtype=params.dtype))
    return (sums / counts.clamp_min(1))[:, pos].reshape(1, c, h, w).expand(b, c, h, w)


def splat(feat: torch.Tensor, gauss: torch.Tensor, coords: torch.Tensor, neighbours: int,
          centre_offset: float = 0.0) -> torch.Tensor:
    """Features of the Gaussians of the ``neighbours``² LR pixels nearest each point, summed: (B, Q, C).

    feat (B, C, h, w); gauss (B, 4, h, w) = sigma_x, sigma_y, rho, opacity; coords (B, Q, 2). Pixel j's Gaussian
    is centred on its centre (u = j) shifted by ``centre_offset`` LR pixels (-0.5: the cell's corner, as released).
    Pixels outside the image contribute nothing. Weight: opacity x exp(-d^T Sigma^-1 d / 2), peak 1 (as released).
    """
    _, _, h, w = feat.shape
    u, v = to_lr_pixels(coords, h, w)
    cu, cv = torch.round(u - centre_offset), torch.round(v - centre_offset)  # nearest Gaussian centre
    r = neighbours // 2
    both = torch.cat([feat, gauss], 1)
    out = 0.0
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            jx, jy = cu + dx, cv + dy
            inside = ((jx >= 0) & (jx < w) & (jy >= 0) & (jy < h)).to(feat.dtype)
            g = gather_pixels(both, jx, jy)
            f, sx, sy, rho, op = g[..., :-4], g[..., -4], g[..., -3], g[..., -2], g[..., -1]
            ddx, ddy = u - (jx + centre_offset), v - (jy + centre_offset)
            a, c, b = sx * sx + SIGMA_EPS, sy * sy + SIGMA_EPS, rho * sx * sy
            det = a * c - b * b
            maha = (c * ddx * ddx - 2.0 * b * ddx * ddy + a * ddy * ddy) / det
            out = out + f * (inside * op * torch.exp(-0.5 * maha))[..., None]
    return out


class GaussianSR(SRModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        c = config
        self.classifier = nn.Conv2d(c.n_feats, c.bank_size, 3, padding=1)
        self.bank = GaussianBank(c.bank_size, c.sigma_range)
        n_in = c.n_feats * c.decoder_kernel ** 2
        self.coef = nn.Linear(n_in, 2 * c.n_freq)
        self.freq = nn.Linear(n_in, 2 * c.n_freq)
        self.phase = nn.Linear(2, c.n_freq, bias=False)
        self.mlp = mlp(2 * c.n_freq, c.hidden, c.layers, 3, nn.GELU)

    def encode(self, lr: torch.Tensor) -> Encoded:
        feat = self.encoder(lr)
        logits = self.classifier(feat)
        choice = None
        if self.training:
            weights = F.gumbel_softmax(logits, tau=1.0, hard=False, dim=1)
        elif self.config.eval_choice == "argmax":
            choice = logits.argmax(1)
            weights = F.one_hot(choice, logits.shape[1]).permute(0, 3, 1, 2).to(feat.dtype)
        else:
            weights = torch.softmax(logits, 1)
        gauss = torch.einsum("bkhw,kp->bphw", weights, self.bank.params())
        if self.config.faithful:
            gauss = tile_average(gauss)
        return Encoded(lr=lr, feat=feat, gauss=gauss, choice=choice)

    def features(self, enc: Encoded, coords: torch.Tensor) -> torch.Tensor:
        """The HR feature at (x, y) points: splatted first channels, bicubic rest. (B, Q, n_feats)."""
        k = self.config.splat_channels
        offset = -0.5 if self.config.faithful else 0.0
        splatted = splat(enc.feat[:, :k], enc.gauss, coords, self.config.neighbours, offset)
        if self.config.faithful:
            splatted = splatted.clamp(0.0, 1.0)
        if k == enc.feat.shape[1]:
            return splatted
        return torch.cat([splatted, sample_bicubic(enc.feat[:, k:], coords)], -1)

    def query(self, enc: Encoded, coords: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        if self.config.decoder_kernel == 3:  # a 3x3 convolution on the HR feature map = a linear map of 9 neighbours
            offs = torch.tensor([(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], device=coords.device,
                                dtype=coords.dtype)
            b, q = coords.shape[:2]
            nine = coords[:, None] + offs[None, :, None, :] * cell[:, None, None, :]      # (B, 9, Q, 2)
            f = self.features(enc, nine.reshape(b, 9 * q, 2))                          # one call for all nine
            g = f.reshape(b, 9, q, -1).transpose(1, 2).reshape(b, q, -1)
        else:
            g = self.features(enc, coords)
        weight, bias = self._coef_freq()
        return self._decode(enc, coords, cell, F.linear(g, weight, bias))

    def query_grid(self, enc: Encoded, grid: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """On a regular grid the 3x3 neighbours of a point are its grid neighbours: each HR feature is computed once
        instead of nine times (the features of a one-point border are computed for the edge points), and the 3x3
        linear map is one convolution (channels-last, so its output is already one row per point)."""
        if self.config.decoder_kernel != 3:
            return super().query_grid(enc, grid, cell)
        hh, ww = grid.shape[:2]
        xs, ys = grid[0, :, 0], grid[:, 0, 1]
        dx, dy = cell[0, 0:1], cell[0, 1:2]
        xs = torch.cat([xs[:1] - dx, xs, xs[-1:] + dx])
        ys = torch.cat([ys[:1] - dy, ys, ys[-1:] + dy])
        padded = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)
        f = self.features(enc, padded.reshape(1, -1, 2))[0].reshape(hh + 2, ww + 2, -1)
        weight, bias = self._coef_freq()
        c = f.shape[-1]
        kernel = weight.reshape(-1, 3, 3, c).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        cf = F.conv2d(f.permute(2, 0, 1)[None].contiguous(memory_format=torch.channels_last), kernel, bias)
        coords = grid.reshape(1, -1, 2)
        return self._decode(enc, coords, cell, cf.permute(0, 2, 3, 1).reshape(1, hh * ww, -1))[0].reshape(hh, ww, 3)

    def _coef_freq(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``coef`` and ``freq`` as one linear map whose outputs are [coef | x frequencies | y frequencies]: one
        matmul, and the phase is two multiply-adds on contiguous halves (the checkpoint layout is unchanged)."""
        n = self.config.n_freq
        order = torch.cat([torch.arange(0, 2 * n, 2), torch.arange(1, 2 * n, 2)]).to(self.freq.weight.device)
        return (torch.cat([self.coef.weight, self.freq.weight[order]]),
                torch.cat([self.coef.bias, self.freq.bias[order]]))

    def _decode(self, enc: Encoded, coords: torch.Tensor, cell: torch.Tensor, cf: torch.Tensor) -> torch.Tensor:
        """LTE: learned frequencies and amplitudes (``cf`` = [coef | freq_x | freq_y] from the HR features), the
        position within the LR cell, and the cell size through a phase; an MLP on the Fourier basis."""
        n = self.config.n_freq
        coef, fx, fy = cf[..., :2 * n], cf[..., 2 * n:3 * n], cf[..., 3 * n:]
        h, w = enc.feat.shape[-2:]
        u, v = to_lr_pixels(coords, h, w)
        rx, ry = 2.0 * (u - torch.round(u)), 2.0 * (v - torch.round(v))  # within the LR cell, [-1, 1]
        rel_cell = cell * torch.tensor([w, h], device=cell.device, dtype=cell.dtype)  # 2 / scale
        z = torch.addcmul(fx * rx[..., None], fy, ry[..., None]) + self.phase(rel_cell)[:, None, :]
        z = math.pi * z
        basis = torch.cat([torch.cos(z), torch.sin(z)], -1) * coef
        return self.mlp(basis) + self._skip(enc, coords)


class LIIF(SRModel):
    """LIIF with feature unfolding and the local ensemble (research A7), the baseline on the same encoder."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.mlp = mlp(9 * config.n_feats + 4, config.hidden, config.layers, 3, nn.ReLU)

    def encode(self, lr: torch.Tensor) -> Encoded:
        feat = self.encoder(lr)
        b, c, h, w = feat.shape
        return Encoded(lr=lr, feat=F.unfold(feat, 3, padding=1).reshape(b, 9 * c, h, w))

    def query(self, enc: Encoded, coords: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        h, w = enc.feat.shape[-2:]
        u, v = to_lr_pixels(coords, h, w)
        rel_cell = cell * torch.tensor([w, h], device=cell.device, dtype=cell.dtype)
        preds, areas = [], []
        for sy in (-1, 1):
            for sx in (-1, 1):
                # the LR pixel half a pixel away in each direction: the four around the point
                jx = torch.floor(u + 0.5 + 0.5 * sx - 1e-6 * sx).clamp(0, w - 1)
                jy = torch.floor(v + 0.5 + 0.5 * sy - 1e-6 * sy).clamp(0, h - 1)
                rel = 2.0 * torch.stack([u - jx, v - jy], -1)
                inp = torch.cat([gather_pixels(enc.feat, jx, jy), rel,
                                 rel_cell[:, None, :].expand(-1, rel.shape[1], -1)], -1)
                preds.append(self.mlp(inp))
                areas.append((rel[..., 0] * rel[..., 1]).abs() + 1e-9)
        total = sum(areas)
        # each prediction weighted by the area of the rectangle opposite it
        out = sum(p * (a / total)[..., None] for p, a in zip(preds, areas[::-1]))
        return out + self._skip(enc, coords)


MODELS: dict[str, type[SRModel]] = {"gaussiansr": GaussianSR, "liif": LIIF}


def build_model(config: ModelConfig) -> SRModel:
    return MODELS[config.kind](config)


# ----- whole images and regions ------------------------------------------------------------------------------------
def receptive_margin(config: ModelConfig) -> int:
    """LR pixels around a region on which its features depend: one per 3x3 conv of the encoder (and the classifier),
    plus the decoders' reach (the KxK splat neighbourhood, LIIF's 3x3 unfold of a neighbour, bicubic's 2 pixels).
    Encoding a crop with this margin gives the whole image's features inside it."""
    return 2 * config.n_resblocks + 3 + config.neighbours // 2 + 3


def to_crop(coords: torch.Tensor, cell: torch.Tensor, box: tuple[int, int, int, int], h: int, w: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-image (x, y) coordinates and cell size -> those of the LR crop ``box`` = (y0, y1, x0, x1) of an h x w
    image (the crop's own [-1, 1] frame, as its encoding sees it)."""
    y0, y1, x0, x1 = box
    cw, ch = x1 - x0, y1 - y0
    # pixel position p = (x + 1) / 2 * w in the image is x' = 2 (p - x0) / cw - 1 in the crop
    scale = torch.tensor([w / cw, h / ch], device=coords.device, dtype=coords.dtype)
    offset = torch.tensor([(w - 2.0 * x0) / cw - 1.0, (h - 2.0 * y0) / ch - 1.0], device=coords.device,
                          dtype=coords.dtype)
    return coords * scale + offset, cell * scale


@torch.no_grad()
def upscale(model: SRModel, lr: torch.Tensor, out_h: int, out_w: int, *, chunk: int = QUERY_CHUNK,
            region: tuple[int, int, int, int] | None = None, tile: int = 384) -> torch.Tensor:
    """The (out_h, out_w) super-resolution of ``lr`` (H, W, 3) in [0, 1] as (rows, cols, 3) in [0, 1].

    ``region`` = (y0, y1, x0, x1) renders only those output pixels. Memory is bounded for any size: the LR image is
    encoded in tiles of ``tile`` pixels plus :func:`receptive_margin` (identical features), and queries go in chunks
    of ``chunk`` points."""
    model.eval()
    dev = next(model.parameters()).device
    h, w = lr.shape[:2]
    y0, y1, x0, x1 = region if region is not None else (0, out_h, 0, out_w)
    out = torch.zeros(y1 - y0, x1 - x0, 3, device=dev)
    m = receptive_margin(model.config) if max(h, w) > tile else 0
    first = lambda t, n_lr, n_out: max(0, math.ceil(t * n_out / n_lr - 0.5))  # noqa: E731 - first output index
    cell = torch.tensor([[2.0 / out_w, 2.0 / out_h]], device=dev)
    for ty in range(0, h, tile):
        r0, r1 = max(y0, first(ty, h, out_h)), min(y1, first(ty + tile, h, out_h) if ty + tile < h else out_h)
        for tx in range(0, w, tile):
            c0, c1 = max(x0, first(tx, w, out_w)), min(x1, first(tx + tile, w, out_w) if tx + tile < w else out_w)
            if r1 <= r0 or c1 <= c0:
                continue
            box = (max(0, ty - m), min(h, ty + tile + m), max(0, tx - m), min(w, tx + tile + m))
            crop = lr[box[0]:box[1], box[2]:box[3]].to(dev)
            enc = model.encode(normalise(crop.permute(2, 0, 1)[None]))
            xs = -1.0 + (2.0 * torch.arange(c0, c1, device=dev, dtype=torch.float32) + 1.0) / out_w
            rows = max(1, chunk // (c1 - c0))
            for q0 in range(r0, r1, rows):
                q1 = min(r1, q0 + rows)
                ys = -1.0 + (2.0 * torch.arange(q0, q1, device=dev, dtype=torch.float32) + 1.0) / out_h
                grid, cl = to_crop(torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1), cell, box, h, w)
                out[q0 - y0:q1 - y0, c0 - x0:c1 - x0] = model.query_grid(enc, grid, cl)
    return (out * 0.5 + 0.5).clamp(0.0, 1.0)
