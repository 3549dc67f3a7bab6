"""Timing helpers shared by the benches (run as scripts, so they import this as ``timing``)."""
from __future__ import annotations

import time
from typing import Callable


def _times(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls: robust to the odd slow call on a shared 2-core machine."""
    t = sorted(_times(fn, repeats))
    return t[len(t) // 2]


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` calls: for I/O, where the first read may pay for a cold page cache."""
    return min(_times(fn, repeats))
