"""Which compute device renders and trains: CUDA when torch sees a GPU, else the CPU."""
from __future__ import annotations

import os
from functools import lru_cache


@lru_cache(maxsize=1)
def compute_device():
    import torch

    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def studio_torch_threads() -> int:
    """Torch threads the studio uses: all cores but one, which stays with the UI thread (headless commands use
    torch's default, every core)."""
    return max(1, (os.cpu_count() or 2) - 1)


@lru_cache(maxsize=1)
def cuda_device_name() -> str | None:
    """The first GPU's name (e.g. 'NVIDIA H200'), None without CUDA."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def device_description(threads: int | None = None) -> str:
    """A short human string for the status bar, e.g. 'CUDA: NVIDIA H100' or 'CPU: 2 cores, torch 1 thread'.

    ``threads`` is the torch thread count to report (default: the current setting), so the status bar and
    ``main.py info`` describe the same configuration in the same words."""
    import torch

    if cuda_device_name() is not None:
        return f"CUDA: {cuda_device_name()}"
    n = torch.get_num_threads() if threads is None else int(threads)
    cores = os.cpu_count() or 1
    return f"CPU: {cores} core{'s' if cores != 1 else ''}, torch {n} thread{'s' if n != 1 else ''}"


def device_summary() -> str:
    """What ``main.py info`` prints: the studio's configuration and the headless one, in the status bar's words."""
    import torch

    if torch.cuda.is_available():
        return device_description()
    return (f"{device_description(studio_torch_threads())} in the studio (one core left to the UI); "
            f"headless commands: torch {torch.get_num_threads()} threads")


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
