"""GaussianSR as a Mipmap-GS zoom-in pseudo-GT provider (methods/gaussians/mipmap.py's registry): the base model's
renders super-resolved to a zoom-in level's size by the bundled GaussianSR model, in place of bicubic. Registered by
this family's plugin, so the finetune job and ``--pseudo-gt-in`` offer it wherever the family is installed."""
from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def _model():
    from methods.gaussiansr.cli import bundled_checkpoint
    from methods.gaussiansr.train import load_sr_model

    path = bundled_checkpoint("gaussiansr")
    if not path.is_file():
        raise ValueError(f"pseudo-GT 'gaussiansr' needs the bundled model {path}; run `main.py train gaussiansr "
                         f"--bundle` or pick --pseudo-gt-in bicubic")
    return load_sr_model(path)[0]


def gaussiansr_upsample(images: np.ndarray, size: tuple[int, int], gt: np.ndarray | None = None) -> np.ndarray:
    """(N, H, W, 3) renders in [0, 1] -> (N, h, w, 3) at ``size`` = (w, h), each super-resolved by GaussianSR."""
    import torch

    from methods.gaussiansr.model import upscale

    model = _model()
    w, h = size
    out = [upscale(model, torch.from_numpy(np.ascontiguousarray(im, dtype=np.float32)), h, w).numpy()
           for im in images]
    return np.stack(out).astype(np.float32) if out else np.zeros((0, h, w, 3), np.float32)


def register() -> None:
    from methods.gaussians.mipmap import PSEUDO_GT, PseudoGT, register_pseudo_gt

    if "gaussiansr" not in PSEUDO_GT:
        register_pseudo_gt(PseudoGT("gaussiansr", gaussiansr_upsample, zoom_out=False, zoom_in=True))
