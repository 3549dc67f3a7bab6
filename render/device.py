"""Which compute device renders and trains: CUDA when torch sees a GPU, else the CPU."""
from __future__ import annotations

import os
from functools import lru_cache


@lru_cache(maxsize=1)
def compute_device():
    import torch

    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


@lru_cache(maxsize=1)
def device_description() -> str:
    """A short human string for the status bar, e.g. 'CUDA: NVIDIA H100' or 'CPU (2 threads)'."""
    import torch

    if torch.cuda.is_available():
        return f"CUDA: {torch.cuda.get_device_name(0)}"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'s' if n != 1 else ''})"


def process_memory_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc; falls back to peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (2**20 if sys.platform == "darwin" else 1024)
