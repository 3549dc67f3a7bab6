"""Bundled, ready-to-use scale-space fields for the studio (trained with the ``cpu`` preset on bundled photos).

A demo file holds only the calibrated field (no optimiser state) plus the name and size of the photo it was trained
on, so the view can show the exact blur of the same picture next to it. Rebuild one with
``python main.py train ngssf astronaut --bundle``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from methods.io import load_checkpoint, save_checkpoint

DEMO_DIR = Path(__file__).resolve().parents[2] / "assets" / "ngssf"
DEMO_KIND = "ngssf_demo"
DEMO_NAMES: tuple[str, ...] = ("astronaut", "chelsea")


@dataclass
class DemoField:
    name: str
    field: object          # a calibrated NeuralField (eval mode)
    image: np.ndarray      # HxWx3 in [0, 1]: the training picture
    meta: dict


def demo_path(name: str) -> Path:
    return DEMO_DIR / f"{name}.pt"


def available_demos() -> list[str]:
    return [n for n in DEMO_NAMES if demo_path(n).is_file()]


def load_demo(name: str = "astronaut") -> DemoField:
    """The bundled field for photo ``name``; a clear error if it is missing or unreadable."""
    from methods.ngssf.modalities import load_picture
    from methods.ngssf.neural_field import NeuralField

    path = demo_path(name)
    if not path.is_file():
        have = ", ".join(available_demos()) or "none"
        raise ValueError(f"no bundled NGSSF demo '{name}' (available: {have}); "
                         f"train one with: python main.py train ngssf {name} --bundle")
    p = load_checkpoint(path, kind=DEMO_KIND, max_version=1, expected_keys=("field", "photo", "size"))
    field = NeuralField.from_checkpoint(p["field"])
    field.eval()
    image, _ = load_picture(str(p["photo"]), int(p["size"]))
    return DemoField(name, field, image, {k: v for k, v in p.items() if k != "field"})


def bundle_demo(field, photo: str, size: int, *, name: str | None = None, extra: dict | None = None) -> Path:
    """Write ``field`` as the demo for ``photo`` (atomically, into assets/ngssf/)."""
    payload = {"field": field.to_checkpoint(), "photo": photo, "size": int(size), **(extra or {})}
    return save_checkpoint(demo_path(name or photo), payload, kind=DEMO_KIND, version=1)
