"""kill -9 during checkpoint writes (bench/kill9.py, 5 kills per family here, 50 in its long mode): after every kill
the checkpoint on disk loads with the family's own loader, at most one stale temp file sits beside it, and a clean
run and a resume succeed afterwards and leave no temp file."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from kill9 import families, kill_family  # noqa: E402


@pytest.mark.parametrize("family", sorted(families()))
def test_kill_9_in_checkpoint_writes_never_leaves_a_corrupt_checkpoint(family, tmp_path):
    stats = kill_family(family, kills=5, root=tmp_path, seed=1)
    assert stats["kills"] == 5 and stats["checkpoint_loads"] == 5 and stats["in_write"] == 3
    assert stats["finished_before_kill"] < 5     # the kills did land
    assert stats["resumed"] and stats["max_stale_temps"] <= 1
