"""What a scale-space field is trained on: a signal plus the way training points are drawn from it.

Modalities differ only in data (pictures/textures are RGB images, Ackley an analytic 2D function, meshes a signed
distance), frequency spread (σ²_a) and whether anisotropic covariances make sense; the trainer never branches on
them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from methods.field import Field

TRAIN_BOUND = 1.2  # points are drawn beyond [-1, 1] so the field learns the mirrored border (reflection padding)


@dataclass
class TrainingSignal:
    """``sample(n, generator) -> (x (n, d), y (n, C))``; ``image`` (HxWx3 in [0, 1]) for pictures only."""

    modality: str
    label: str
    field: Field
    sample: Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
    image: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return self.field.dim

    @property
    def channels(self) -> int:
        return self.field.channels

    @property
    def anisotropic(self) -> bool:
        return self.field.anisotropic


def uniform_sampler(signal: Field, bound: float = TRAIN_BOUND):
    """Uniform points in [-bound, bound]^d with the signal's unsmoothed values as targets."""

    def sample(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = (torch.rand(n, signal.dim, generator=generator) * 2 - 1) * bound
        with torch.no_grad():
            return x, signal(x)

    return sample


def load_picture(spec: str, size: int | None = None) -> tuple[np.ndarray, str]:
    """A bundled photo name (see assets.photos) or an image file → (HxWx3 float32 in [0, 1], label).

    ``size`` resizes to size×size (centre crop) so CPU training and evaluation stay affordable."""
    from assets.images import load_rgb

    img, label, _ = load_rgb(spec, size)
    return img, label


def picture_signal(spec: str, size: int | None = 256, modality: str = "picture") -> TrainingSignal:
    """RGB picture/texture in [-1, 1] (the paper's value range), bilinear with reflection padding."""
    from methods.ngssf.signals import GridField

    img, label = load_picture(spec, size)
    grid = GridField(img * 2.0 - 1.0)
    return TrainingSignal(modality, label, grid, uniform_sampler(grid), image=img, meta={"source": spec})


def ackley_signal() -> TrainingSignal:
    """Ackley/10 on [-1, 1]² (isotropic smoothing only: it is the multiscale-optimisation test function)."""
    from methods.ngssf.signals import AckleyField

    f = AckleyField()
    return TrainingSignal("ackley", "ackley", f, uniform_sampler(f))


def mesh_signal(spec: str, pool: int = 200_000, seed: int = 0) -> TrainingSignal:
    """Signed distance (negative inside) of a mesh file or a bundled shape (see BUNDLED_SHAPES); the training
    pool mixes uniform and near-surface points and is drawn once (exact SDFs are slow)."""
    from methods.ngssf.signals import SDFField

    sdf = SDFField.from_mesh(_mesh_from_spec(spec))
    x_pool, y_pool = sdf.sample_training_points(pool, torch.Generator().manual_seed(seed))

    def sample(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, x_pool.shape[0], (n,), generator=generator)
        return x_pool[idx], y_pool[idx]

    return TrainingSignal("mesh", Path(spec).stem, sdf, sample, meta={"source": spec})


BUNDLED_SHAPES: dict[str, Callable[[], object]] = {
    "sphere": lambda: __import__("trimesh").creation.icosphere(subdivisions=4),
    "torus": lambda: __import__("trimesh").creation.torus(major_radius=1.0, minor_radius=0.35),
    "capsule": lambda: __import__("trimesh").creation.capsule(height=1.2, radius=0.45),
}


def _mesh_from_spec(spec: str):
    """A bundled closed shape or a mesh file (SDFs need a watertight surface to have an inside)."""
    import trimesh

    if spec in BUNDLED_SHAPES:
        return BUNDLED_SHAPES[spec]()
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"mesh '{spec}' is neither a file nor a bundled shape ({', '.join(BUNDLED_SHAPES)})")
    try:
        mesh = trimesh.load(path, force="mesh")
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"cannot read mesh {path}: {e}") from None
    if len(getattr(mesh, "faces", [])) == 0:
        raise ValueError(f"{path}: no triangles found")
    import numpy as np

    v = np.asarray(mesh.vertices, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{path}: {int((~np.isfinite(v)).any(1).sum())} vertices have NaN/Inf coordinates; "
                         "repair or re-export the mesh")
    if float(np.ptp(v, axis=0).max()) <= 0.0:
        raise ValueError(f"{path}: every vertex is at the same point (a degenerate mesh)")
    return mesh


MODALITIES: dict[str, Callable[..., TrainingSignal]] = {
    "picture": picture_signal,
    "texture": lambda spec, size=1024: picture_signal(spec, size, modality="texture"),
    "ackley": lambda spec="ackley", **_: ackley_signal(),
    "mesh": lambda spec, **_: mesh_signal(spec),
}


def make_signal(modality: str, spec: str, **kwargs) -> TrainingSignal:
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality '{modality}'; choose one of {', '.join(MODALITIES)}")
    return MODALITIES[modality](spec, **kwargs)
