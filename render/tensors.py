"""The one way tensors leave torch: ``to_numpy`` detaches and copies to the host first, so code written and tested
on CPU keeps working when the tensor comes from a model on CUDA (a bare ``.numpy()`` raises there)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["to_numpy"]


def to_numpy(t: torch.Tensor | np.ndarray | Any) -> np.ndarray:
    """``t.detach().cpu().numpy()`` for a tensor (shares memory when it already lives on the CPU); numpy arrays
    and anything ``np.asarray`` accepts pass through."""
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return np.asarray(t)
