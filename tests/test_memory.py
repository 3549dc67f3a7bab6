"""The studio's heap policy (app/memory.py): after a big block is freed, glibc's defaults carve later frame-sized
buffers out of the arena (where, freed, they stay resident); under the policy they are mapped on their own and go
back to the OS when freed. Each case runs in a fresh interpreter: mallopt settings are process-wide."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.memory import heap_mb

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import ctypes, json, sys
sys.path.insert(0, {root!r})
from app.memory import HeapPolicy, apply_heap_policy, heap_mb
applied = apply_heap_policy(HeapPolicy()) if {policy} else None
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
big = libc.malloc(24 << 20); ctypes.memset(big, 1, 24 << 20); libc.free(big)  # raises glibc's dynamic threshold
before = heap_mb()
blocks = [libc.malloc(3 << 20) for _ in range(8)]                             # 8 frame-sized buffers
for b in blocks: ctypes.memset(b, 1, 3 << 20)
during = heap_mb()
for b in blocks: libc.free(b)
after = heap_mb()
print(json.dumps({{"applied": applied, "before": before, "during": during, "after": after}}))
"""


def _probe(policy: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT), policy=policy)], capture_output=True,
                         text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not heap_mb(), reason="glibc's mallinfo2 is not available")
def test_frame_sized_blocks_are_mapped_and_returned_under_the_policy_and_not_by_default():
    default, policy = _probe(False), _probe(True)
    assert policy["applied"] is True
    # defaults: after the 24 MB block, 3 MB blocks come from the arena, and stay there free once released
    assert default["during"]["heap_mapped_mb"] - default["before"]["heap_mapped_mb"] < 1
    assert default["after"]["heap_free_mb"] >= 20
    # policy: each 3 MB block is mapped on its own (24 MB more mapped) and unmapped on free (nothing left held)
    assert policy["during"]["heap_mapped_mb"] - policy["before"]["heap_mapped_mb"] >= 23
    assert policy["after"]["heap_mapped_mb"] <= policy["before"]["heap_mapped_mb"] + 0.5
    assert policy["after"]["heap_free_mb"] < 4
