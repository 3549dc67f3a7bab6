"""The fish's neural texture: an NGSSF *texture* field of the fish's 1024² texture, trained with the project's own
NGSSF trainer (cpu preset) and calibration, bundled as a field-only file (no optimiser state).

Reproduce the bundled file with ``python3 main.py train neural_texture`` (≈ 7 min on 2 cores).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from methods.io import load_checkpoint, save_checkpoint

TEXTURE_FIELD = Path(__file__).resolve().parents[2] / "assets" / "neural_texture" / "fish_texture.pt"
KIND = "neural_texture"


def fish_mesh(texture_size: int = 1024):
    """The fish (cached OBJ + PNG) as a TexturedMesh."""
    from assets.fish import fish_paths, load_fish

    return load_fish(*fish_paths(texture_size))


def load_texture_field(path: str | Path | None = None) -> tuple[Any, dict]:
    """(calibrated NeuralField in eval mode, metadata) from a bundled file or a training checkpoint."""
    from methods.ngssf.neural_field import NeuralField

    path = Path(path) if path else TEXTURE_FIELD
    if not path.is_file():
        raise ValueError(f"{path}: no neural-texture field; run `python3 main.py train neural_texture` or pass "
                         f"--field CHECKPOINT")
    try:
        p = load_checkpoint(path, kind=KIND, max_version=1, expected_keys=("field", "texture_size"))
        meta = {k: v for k, v in p.items() if k != "field"}
    except Exception:  # noqa: BLE001 - maybe an NGSSF training checkpoint instead of a bundle
        from methods.ngssf.train import load_field

        field, meta = load_field(path)
        meta = {**meta, "texture_size": int((meta.get("config") or {}).get("image_size") or 1024)}
        return field, meta
    field = NeuralField.from_checkpoint(p["field"])
    field.eval()
    return field, meta


def bundle_texture_field(field, texture_size: int, path: str | Path | None = None, **extra: Any) -> Path:
    """Write the field alone (atomically) as the bundled neural texture."""
    payload = {"field": field.to_checkpoint(), "texture_size": int(texture_size), **extra}
    return save_checkpoint(Path(path) if path else TEXTURE_FIELD, payload, kind=KIND, version=1)
