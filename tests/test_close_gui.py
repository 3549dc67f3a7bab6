"""Closing the studio ends its worker threads: renders, jobs, and the threads a view's source runs itself (the MINER
view fitting an opened image). A daemon thread still inside torch when the interpreter exits is ended with
pthread_exit, which aborts the process (seen once in ten soak exits before close() stopped the sources)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[1]

SCRIPT = '''
import json, sys, time
sys.path.insert(0, {root!r})
import numpy as np
from app.shell import Studio, StudioConfig, threads_still_working
from assets.cache import atomic_save_image
rng = np.random.default_rng(0)
atomic_save_image({image!r}, rng.random((96, 96, 3)))
st = Studio(StudioConfig(width=1000, height=700, title="mipstudio-close-test", views=("miner", "sr")))
st.setup()
opened = st.views["miner"].open_path({image!r})
handle = st.start_job("Fit tiny MLP to an image (demo)", steps=100_000, size=64)
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not (handle.snapshot().step > 0 and any(
        n.startswith("miner-") for n in threads_still_working())):
    st.frame()
before = threads_still_working()
t0 = time.monotonic()
st.close()
print(json.dumps({{"opened": opened, "before": before, "after": threads_still_working(),
                  "close_s": time.monotonic() - t0}}))
'''


def test_closing_the_studio_ends_renders_jobs_and_the_miner_fits(x_display, tmp_path):
    script = SCRIPT.format(root=str(ROOT), image=str(tmp_path / "noise.png"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "terminate called" not in proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["opened"] is True
    prefixes = {name.split("-")[0] for name in out["before"]}
    assert {"render", "job", "miner"} <= prefixes, out["before"]  # all three kinds were running
    assert out["after"] == [], out  # and none is left once close() returns
