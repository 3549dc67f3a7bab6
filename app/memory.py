"""The studio's heap over a long session (glibc malloc).

glibc keeps memory a thread freed in that thread's arena for reuse, and after a large block is freed it raises its
mmap threshold (up to 32 MB), so later frame-sized buffers and tensors are carved out of arenas instead of being
mapped and unmapped. A studio session runs every training job on a thread of its own and allocates a few MB per
rendered frame. With the defaults a 4-minute soak (bench/soak.py --heap default) held 473 MB of freed heap, RSS
894 MB; capping the arenas and fixing the mmap threshold hands such blocks back to the OS when they are freed:
78 MB held, RSS 722 MB, UI frame time within 5 %. Elsewhere than glibc nothing changes.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from functools import lru_cache

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's mallopt parameters (malloc.h)


@dataclass(frozen=True)
class HeapPolicy:
    """glibc settings applied once when the studio starts."""

    arena_max: int = 2             # arenas shared by all threads (glibc's default: 8 per core, one per new thread)
    mmap_threshold_mb: float = 1.0  # blocks this big or bigger are mapped on their own and unmapped on free
    trim_threshold_mb: float = 8.0  # free memory at the top of the main heap above this goes back to the OS


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                                "uordblks", "fordblks", "keepcost")]


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    """glibc, loaded once (the soak samples the heap every 10 s), with mallinfo2's return type set; None elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc has both; musl and others do not
        if hasattr(libc, "mallinfo2"):
            libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):
        return None


def apply_heap_policy(policy: HeapPolicy) -> bool:
    """Set ``policy`` with mallopt; False where the C library is not glibc (or refused a setting)."""
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(M_ARENA_MAX, int(policy.arena_max)) == 1
    ok &= libc.mallopt(M_MMAP_THRESHOLD, int(policy.mmap_threshold_mb * 2 ** 20)) == 1
    ok &= libc.mallopt(M_TRIM_THRESHOLD, int(policy.trim_threshold_mb * 2 ** 20)) == 1
    return bool(ok)


def heap_mb() -> dict[str, float]:
    """glibc's heap in MB: ``heap_used_mb`` held by live allocations (``heap_mapped_mb`` of it in blocks mapped on
    their own) and ``heap_free_mb`` free but still held (fragmentation, idle arenas); {} elsewhere."""
    libc = _libc()
    fn = getattr(libc, "mallinfo2", None) if libc is not None else None
    if fn is None:
        return {}
    m = fn()
    return {"heap_used_mb": round((m.uordblks + m.hblkhd) / 2 ** 20, 1), "heap_mapped_mb": round(m.hblkhd / 2 ** 20, 1),
            "heap_free_mb": round(m.fordblks / 2 ** 20, 1)}


def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS (``malloc_trim``; ctypes releases the GIL, so the UI keeps drawing).
    Called when a job ends: what its thread freed would otherwise stay resident until reused."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
