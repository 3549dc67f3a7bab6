"""The NGSSF neural field F(x, Σ) = MLP(γ(x) ⊙ [w, w]), w_i = exp(−sqrt(a_iᵀ (cΣ) a_i)), c the calibration.

One forward pass smooths by any Gaussian — isotropic, anisotropic or per point — with no filtering at query time.
Configs are plain dataclasses; presets and per-modality frequency spreads are dicts, not string if/elif chains.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import nn

from methods.ngssf.encoding import FourierEncoding, modulation
from methods.field import Field
from methods.ngssf.lipschitz import LipschitzMLP

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class FieldConfig:
    """Architecture of a neural field. ``freq_var`` is σ²_a of the half-normal frequency lengths (cycles/unit)."""

    frequencies: int = 512
    freq_var: float = 2000.0
    hidden: int = 1024
    layers: int = 3
    dim: int = 2
    channels: int = 3
    seed: int = 0
    anisotropic: bool = True


FIELD_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"frequencies": 512, "hidden": 1024, "layers": 3},  # the reference's 4x1024 net (~6.3 M params)
    "cpu": {"frequencies": 512, "hidden": 256, "layers": 3},     # 1024→256 first layer: trainable on a laptop
    "tiny": {"frequencies": 512, "hidden": 64, "layers": 3},     # tests and quick previews
}

MODALITY_FREQ_VAR: dict[str, float] = {"picture": 2000.0, "texture": 2000.0, "mesh": 100.0, "ackley": 50.0}

ISOTROPIC_MODALITIES: frozenset[str] = frozenset({"ackley"})  # the reference refuses covariance matrices there


def field_config(preset: str, modality: str, dim: int, channels: int, **overrides: Any) -> FieldConfig:
    """The config for a preset × modality (e.g. ``field_config("cpu", "picture", 2, 3)``)."""
    if preset not in FIELD_PRESETS:
        raise ValueError(f"unknown field preset {preset!r}; valid: {', '.join(sorted(FIELD_PRESETS))}")
    if modality not in MODALITY_FREQ_VAR:
        raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(sorted(MODALITY_FREQ_VAR))}")
    cfg = FieldConfig(**FIELD_PRESETS[preset], freq_var=MODALITY_FREQ_VAR[modality], dim=dim, channels=channels,
                      anisotropic=modality not in ISOTROPIC_MODALITIES)
    return replace(cfg, **overrides)


class NeuralField(nn.Module, Field):
    """Neural Gaussian scale-space field. ``field(x, cov)`` takes *true* covariances (validated by
    :func:`~methods.field.normalize_cov`); :meth:`forward` takes already-normalised ones for training."""

    smooth_exact = False
    calibration: torch.Tensor
    __call__ = Field.__call__  # validation first; nn.Module.__call__ would skip it

    def __init__(self, config: FieldConfig = FieldConfig()):
        super().__init__()
        self.config = config
        self.dim, self.channels, self.anisotropic = config.dim, config.channels, config.anisotropic
        self.name = "neural field"
        self.encoding = FourierEncoding(config.dim, config.frequencies, config.freq_var, config.seed)
        g = torch.Generator().manual_seed(config.seed)
        self.mlp = LipschitzMLP(self.encoding.out_features, config.hidden, config.layers, config.channels, g)
        self.register_buffer("calibration", torch.tensor(1.0))

    def features(self, x: torch.Tensor, cov: torch.Tensor | None) -> torch.Tensor:
        """γ(x) damped by w(cΣ) on both the cos and the sin block, (B, 2m)."""
        feats = self.encoding(x)
        w = modulation(self.encoding.A, None if cov is None else cov * self.calibration)
        if w is None:
            return feats
        if feats.requires_grad or w.requires_grad:
            return (feats.view(x.shape[0], 2, -1) * w[:, None, :]).view(x.shape[0], -1)
        feats.view(x.shape[0], 2, -1).mul_(w[:, None, :])
        return feats

    infer_chunk = 4096  # without gradients, work in slices whose temporaries stay in cache and off mmap (~3x faster)

    def forward(self, x: torch.Tensor, cov: torch.Tensor | None = None) -> torch.Tensor:
        """(B, channels) from points (B, d) and ``None`` or true covariances (B, d, d); differentiable."""
        n, step = x.shape[0], self.infer_chunk
        if torch.is_grad_enabled() or n <= step:
            return self.mlp(self.features(x, cov))
        out = x.new_empty(n, self.channels)
        for s in range(0, n, step):
            out[s:s + step] = self.mlp(self.features(x[s:s + step], None if cov is None else cov[s:s + step]))
        return out

    def evaluate(self, x: torch.Tensor, cov: torch.Tensor | None) -> torch.Tensor:
        return self.forward(x, cov)

    # ----------------------------------------------------------------------------------------------- checkpoints
    def to_checkpoint(self) -> dict[str, Any]:
        """{"version", "config", "state"}: plain data for ``torch.save`` (A and the calibration included)."""
        return {"version": CHECKPOINT_VERSION, "config": asdict(self.config),
                "state": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> "NeuralField":
        """Rebuild a field from :meth:`to_checkpoint` output; any mismatch raises a one-line ValueError."""
        if not isinstance(ckpt, dict) or not {"version", "config", "state"} <= set(ckpt):
            raise ValueError("neural field checkpoint must be a dict with 'version', 'config' and 'state'")
        if ckpt["version"] != CHECKPOINT_VERSION:
            raise ValueError(f"neural field checkpoint version {ckpt['version']!r} is not supported "
                             f"(expected {CHECKPOINT_VERSION})")
        cfg_dict = ckpt["config"]
        known = {f.name for f in fields(FieldConfig)}
        if not isinstance(cfg_dict, dict) or set(cfg_dict) - known:
            extra = sorted(set(cfg_dict) - known) if isinstance(cfg_dict, dict) else cfg_dict
            raise ValueError(f"neural field checkpoint config has unknown keys {extra}; valid: {sorted(known)}")
        field = cls(FieldConfig(**cfg_dict))
        field.load_checked(ckpt["state"])
        return field

    def load_checked(self, state: dict[str, torch.Tensor]) -> None:
        """``load_state_dict`` with a one-line error naming missing/unexpected keys or shape mismatches."""
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"neural field state mismatch: missing {missing[:4]}, unexpected {unexpected[:4]}")
        bad = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
               if tuple(torch.as_tensor(state[k]).shape) != tuple(v.shape)]
        if bad:
            raise ValueError(f"neural field state shape mismatch (checkpoint vs config): {'; '.join(bad[:3])}")
        self.load_state_dict(state)
        self.mlp.invalidate_cache()


def field_from_preset(preset: str, modality: str, dim: int, channels: int, **overrides: Any) -> NeuralField:
    """Shorthand for ``NeuralField(field_config(...))``."""
    return NeuralField(field_config(preset, modality, dim, channels, **overrides))


__all__ = ["FieldConfig", "FIELD_PRESETS", "MODALITY_FREQ_VAR", "ISOTROPIC_MODALITIES", "field_config",
           "field_from_preset", "NeuralField"]
