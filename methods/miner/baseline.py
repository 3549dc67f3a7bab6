"""The fair baseline for MINER: one coordinate MLP over the whole image (SIREN, or ReLU on Fourier features) with
the same number of parameters as the MINER representation it is compared with, trained on the same image for the
same time (research sr_miner.md B1: MINER's claim is speed at equal accuracy and size)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from methods.jobs import Progress, ProgressFn, StopFn


@dataclass(frozen=True)
class BaselineConfig:
    kind: str = "siren"           # "siren" (sine, omega0 30) or "fourier" (Gaussian Fourier features + ReLU)
    width: int = 256
    layers: int = 3               # hidden layers
    omega0: float = 30.0
    fourier_features: int = 256
    fourier_sigma: float = 10.0
    lr: float = 1e-4
    batch: int = 65536            # random pixels per step
    seed: int = 0

    def with_(self, **changes: Any) -> "BaselineConfig":
        return replace(self, **changes)


class Sine(nn.Module):
    def __init__(self, omega0: float) -> None:
        super().__init__()
        self.omega0 = omega0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega0 * x)


def build_mlp(cfg: BaselineConfig, channels: int = 3) -> nn.Module:
    g = torch.Generator().manual_seed(cfg.seed)
    n_in = 2 * cfg.fourier_features if cfg.kind == "fourier" else 2
    sizes = [n_in] + [cfg.width] * (cfg.layers + 1) + [channels]
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        if cfg.kind == "siren":  # Sitzmann et al.'s init
            bound = 1.0 / a if i == 0 else math.sqrt(6.0 / a) / cfg.omega0
            with torch.no_grad():
                lin.weight.uniform_(-bound, bound, generator=g)
        mods.append(lin)
        if i < len(sizes) - 2:
            mods.append(Sine(cfg.omega0) if cfg.kind == "siren" else nn.ReLU())
    net = nn.Sequential(*mods)
    if cfg.kind == "fourier":
        net = FourierMLP(net, torch.randn(2, cfg.fourier_features, generator=g) * cfg.fourier_sigma)
    return net


class FourierMLP(nn.Module):
    def __init__(self, mlp: nn.Module, basis: torch.Tensor) -> None:
        super().__init__()
        self.mlp = mlp
        self.register_buffer("basis", basis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 2 * math.pi * x @ self.basis
        return self.mlp(torch.cat([torch.sin(z), torch.cos(z)], -1))


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def width_for(params: int, cfg: BaselineConfig, channels: int = 3) -> int:
    """The hidden width whose MLP has the parameter count closest to ``params``."""
    n_in = 2 * cfg.fourier_features if cfg.kind == "fourier" else 2
    L = cfg.layers

    def n(w: int) -> int:
        return n_in * w + w + L * (w * w + w) + w * channels + channels

    # n(w) = L w^2 + (n_in + 1 + L + channels) w + channels
    a, b, c = L, n_in + 1 + L + channels, channels - params
    w = max(1, round((-b + math.sqrt(b * b - 4 * a * c)) / (2 * a))) if L else max(1, round(-c / b))
    return min((max(1, w + d) for d in (-1, 0, 1)), key=lambda x: abs(n(x) - params))


class BaselineTrainer:
    """Trains the MLP on random pixel batches until ``budget_s`` seconds of training (reports excluded); PSNR is
    estimated every ``report_every_s`` on a fixed random subset of 65,536 pixels (an MSE estimate within ~1 %)."""

    def __init__(self, cfg: BaselineConfig, image: np.ndarray | torch.Tensor, budget_s: float,
                 report_every_s: float = 5.0, name: str = "") -> None:
        self.cfg, self.budget_s, self.report_every_s = cfg, budget_s, report_every_s
        self.image = torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32)
        h, w, c = self.image.shape
        self.name = name or f"baseline {cfg.kind} {cfg.width}x{cfg.layers}"
        self.net = build_mlp(cfg, c)
        self.values = self.image.reshape(-1, c)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.subset = torch.randperm(h * w, generator=self.gen)[:65536]
        self.seconds = 0.0
        self.history: dict[str, list[float]] = {"seconds": [], "psnr": []}

    def coords(self, idx: torch.Tensor) -> torch.Tensor:
        h, w = self.image.shape[:2]
        return torch.stack([-1.0 + (2.0 * (idx % w) + 1.0) / w, -1.0 + (2.0 * (idx // w) + 1.0) / h], -1)

    @torch.no_grad()
    def estimate_psnr(self) -> float:
        from methods.miner.train import psnr_of

        return psnr_of(self.net(self.coords(self.subset)), self.values[self.subset])

    @torch.no_grad()
    def render(self, chunk: int = 65536) -> torch.Tensor:
        h, w, c = self.image.shape
        idx = torch.arange(h * w)
        out = torch.cat([self.net(self.coords(idx[i:i + chunk])) for i in range(0, h * w, chunk)])
        return out.reshape(h, w, c).clamp(0, 1)

    def run(self, progress: ProgressFn, should_stop: StopFn) -> dict[str, Any]:
        opt = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)
        n = self.values.shape[0]
        next_report, step = 0.0, 0
        while self.seconds < self.budget_s and not should_stop():
            t = time.perf_counter()
            idx = torch.randint(n, (min(self.cfg.batch, n),), generator=self.gen)
            loss = (self.net(self.coords(idx)) - self.values[idx]).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            self.seconds += time.perf_counter() - t
            step += 1
            if self.seconds >= next_report or self.seconds >= self.budget_s:
                psnr = self.estimate_psnr()
                self.history["seconds"].append(self.seconds)
                self.history["psnr"].append(psnr)
                next_report = self.seconds + self.report_every_s
                progress(Progress(min(int(self.seconds), int(self.budget_s)), int(self.budget_s), {"psnr": psnr},
                                  message=f"step {step}, PSNR ~{psnr:.2f} dB"))
        return {"seconds": self.seconds, "steps": step, "params": count_params(self.net)}
