"""Per-block MLPs evaluated as one batched matmul (research sr_miner.md B2): every layer is a (n_blocks, in, out)
weight and an (n_blocks, 1, out) bias; a forward pass over any subset of blocks is ``baddbmm`` on their rows.

Parameters are plain tensors in a dict (not an nn.Module) because the trainer keeps a *slice* of them trainable
and drops rows (with their optimiser state) as blocks converge: :class:`RowAdam` is Adam/RAdam over such rows, so
pruning a block is ``keep`` on every tensor, with nothing left behind."""
from __future__ import annotations

import math

import torch

from methods.miner.config import MinerConfig

Params = dict[str, torch.Tensor]


def n_inputs(cfg: MinerConfig) -> int:
    return 4 * cfg.pe_freqs if cfg.pe_freqs else 2


def encode(x: torch.Tensor, pe_freqs: int) -> torch.Tensor:
    """(…, 2) coordinates -> [sin(2^k x), cos(2^k x)] features (kwea123's PE, no pi, no raw x) or x itself."""
    if not pe_freqs:
        return x
    z = x[..., None, :] * (2.0 ** torch.arange(pe_freqs, dtype=x.dtype, device=x.device))[:, None]
    z = z.flatten(-2)
    return torch.cat([torch.sin(z), torch.cos(z)], -1)


def layer_shapes(cfg: MinerConfig, width: int, channels: int) -> list[tuple[int, int]]:
    sizes = [n_inputs(cfg)] + [width] * (cfg.hidden_layers + 1) + [channels]
    return list(zip(sizes[:-1], sizes[1:]))


def init_params(cfg: MinerConfig, level: int, n_blocks: int, channels: int, generator: torch.Generator) -> Params:
    """Fresh parameters for ``n_blocks`` blocks of pyramid ``level`` (0 = finest).

    paper (sine): c = 2^-(coarse index); first layer U(+-c / in), hidden U(+-sqrt(6 c / in) / omega0), last
    U(+-sqrt(c / F) / omega0), so finer levels start with smaller outputs. lightning (gauss): U(+-1 / sqrt(in)) and
    widths a = 0.1."""
    width = cfg.width(level)
    shapes = layer_shapes(cfg, width, channels)
    c = 2.0 ** -(cfg.levels - 1 - level)
    p: Params = {}
    for i, (n_in, n_out) in enumerate(shapes):
        if cfg.activation == "sine":
            bound = (c / n_in if i == 0 else math.sqrt(6 * c / n_in) / cfg.omega0 if i < len(shapes) - 1
                     else math.sqrt(c / width) / cfg.omega0)
        else:
            bound = 1.0 / math.sqrt(n_in)
        p[f"w{i}"] = (torch.rand(n_blocks, n_in, n_out, generator=generator) * 2 - 1) * bound
        p[f"b{i}"] = (torch.rand(n_blocks, 1, n_out, generator=generator) * 2 - 1) * bound
        if cfg.activation == "gauss" and i < len(shapes) - 1:
            p[f"a{i}"] = torch.full((n_blocks, 1, 1), 0.1)
    if cfg.output == "lightning" and level < cfg.levels - 1:
        p["a_out"] = torch.full((n_blocks, 1, 1), 0.1)
    return p


def forward(cfg: MinerConfig, level: int, p: Params, x: torch.Tensor, scale: torch.Tensor | None = None
            ) -> torch.Tensor:
    """Outputs (n, P, C) of the n blocks whose parameter rows are ``p`` at local coordinates ``x`` ((n or 1, P, 2)).
    ``scale`` (n, 1, 1): the lightning output's per-block amplitude (max |residual|)."""
    n = p["w0"].shape[0]
    h = encode(x, cfg.pe_freqs).expand(n, -1, -1)
    last = sum(1 for k in p if k.startswith("w")) - 1
    for i in range(last):
        if cfg.activation == "sine":  # sin(omega0 (h W + b)) with omega0 folded into the small W and b
            h = torch.sin(torch.baddbmm(cfg.omega0 * p[f"b{i}"], h, cfg.omega0 * p[f"w{i}"]))
        else:
            z = torch.baddbmm(p[f"b{i}"], h, p[f"w{i}"])
            h = torch.exp(-0.5 * (z / p[f"a{i}"]) ** 2)
    out = torch.baddbmm(p[f"b{last}"], h, p[f"w{last}"])
    if cfg.output == "lightning":
        if level == cfg.levels - 1:
            return torch.sigmoid(out)
        return torch.sin(p["a_out"] * out) * (scale if scale is not None else 1.0)
    return out


def share_from_parent(parent: Params, parent_grid: tuple[int, int]) -> Params:
    """Children's parameters = their parent block's / 2 (the paper's theta_j^q <- theta_{j+1}^parent(q) / 2): each
    block of a (gh, gw) grid has the 2x2 children below it in the next finer (2 gh, 2 gw) grid."""
    gh, gw = parent_grid
    out = {}
    for k, v in parent.items():
        grid = v.reshape(gh, gw, *v.shape[1:])
        out[k] = grid.repeat_interleave(2, 0).repeat_interleave(2, 1).reshape(4 * gh * gw, *v.shape[1:]) / 2.0
    return out


def count(p: Params, rows: int | None = None) -> int:
    """Trainable numbers in ``rows`` blocks (all rows if None)."""
    return sum((v[0].numel() * (v.shape[0] if rows is None else rows)) for v in p.values())


class RowAdam:
    """Adam (or RAdam) over parameter tensors whose first axis is the block; ``keep(mask)`` drops rows together with
    their moments. All rows share the step count (they start together at a level's first epoch)."""

    def __init__(self, params: Params, lr: float, kind: str = "adam", betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.kind, self.betas, self.eps, self.lr = params, kind, betas, eps, lr
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def tick(self) -> None:
        """Advance the shared step count (once per optimiser step of all rows, before :meth:`step` calls)."""
        self.t += 1

    def step(self, grads: Params, rows: slice = slice(None)) -> None:
        """Update ``rows`` from ``grads`` (same keys, gradients of those rows) at the current step count."""
        b1, b2 = self.betas
        t = self.t
        rect = 1.0
        if self.kind == "radam":
            rho_inf = 2.0 / (1.0 - b2) - 1.0
            rho_t = rho_inf - 2.0 * t * b2 ** t / (1.0 - b2 ** t)
            rect = (math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                    if rho_t > 5.0 else None)
        with torch.no_grad():
            for k, g in grads.items():
                m, v, p = self.m[k][rows], self.v[k][rows], self.params[k][rows]
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                m_hat = m / (1 - b1 ** t)
                if rect is None:  # RAdam's first steps: un-adapted momentum SGD
                    p.sub_(self.lr * m_hat)
                else:
                    p.sub_(self.lr * rect * m_hat / ((v / (1 - b2 ** t)).sqrt() + self.eps))

    def keep(self, mask: torch.Tensor) -> None:
        with torch.no_grad():
            for d in (self.params, self.m, self.v):
                for k in list(d):
                    d[k] = d[k][mask].contiguous()
        for k in self.params:
            self.params[k].requires_grad_(True)

    def state(self) -> dict:
        return {"m": self.m, "v": self.v, "t": self.t}
