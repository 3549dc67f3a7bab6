"""Families are plugins for the GUI too: a family defined in a temporary module (named in MIPSTUDIO_PLUGINS,
no shared file edited) shows up in the Views menu with generated widgets, renders, and its job is in the Jobs
panel; the suite's xdotool-dependent GUI paths also pass with xdotool hidden."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[1]

TINY_FAMILY = '''
from dataclasses import dataclass

import numpy as np

from methods.jobs import FunctionJob, Progress
from methods.plugin import Family, JobSpec, SourceSpec
from render.live import Frame
from render.options import option


@dataclass(frozen=True)
class GradientOptions:
    tint: str = option("red", choices=("red", "green"), help="which channel carries the gradient")
    gain: float = option(1.0, min=0.0, max=1.0, help="gradient strength")


class GradientSource:
    Options = GradientOptions
    image_size = (64, 64)

    def render(self, request):
        o = request.options
        img = np.zeros((request.height, request.width, 3), np.float32)
        img[..., 0 if o.tint == "red" else 1] = o.gain * np.linspace(0, 1, request.width)[None]
        return Frame(img)


@dataclass(frozen=True)
class CountOptions:
    steps: int = option(3, min=1, max=10, help="how many")


def _count(o):
    def run(progress, should_stop):
        for k in range(o.steps):
            progress(Progress(k + 1, o.steps))
        return {"counted": o.steps}
    return FunctionJob("tiny count", run)


FAMILY = Family("tinyfam", "Tiny family", jobs=(JobSpec("Tiny count job", CountOptions, _count),),
                sources=(SourceSpec("tiny_gradient", "Tiny gradient view", GradientSource),))
'''

SCRIPT = '''
import json, sys, time
sys.path.insert(0, {root!r})
import dearpygui.dearpygui as dpg
from app.shell import Studio, StudioConfig
st = Studio(StudioConfig(width=1000, height=700, title="mipstudio-plugin-test", views=("tiny_gradient",)))
st.setup()
view = st.views["tiny_gradient"]
deadline = time.monotonic() + 60
while time.monotonic() < deadline and (view.worker.latest() is None or view.uploaded_version < 0):
    st.frame()
img = view.last_image()
dpg.set_value(view.tags["tint"], "green")
deadline = time.monotonic() + 30
while time.monotonic() < deadline and not (view.worker.latest() is not None
                                            and view.worker.latest().request.options.tint == "green"):
    st.frame()
green = view.worker.latest().frame.image
handle = st.start_job("Tiny count job", steps=4)
deadline = time.monotonic() + 30
while time.monotonic() < deadline and not handle.finished:
    st.frame()
menu = [dpg.get_item_label(st.tags[k]) for k in st.tags if k.startswith("menu.")]
print(json.dumps({{"menu": menu, "launchers": dpg.get_item_configuration(st.tags["launcher"])["items"],
                  "red": float(img[..., 0].max()), "green_r": float(green[..., 0].max()),
                  "green_g": float(green[..., 1].max()), "job": handle.snapshot().status.name,
                  "result": handle.result}}))
st.close()
'''


def test_a_family_in_a_temporary_module_gets_a_view_and_a_job_in_the_studio(x_display, tmp_path):
    (tmp_path / "tinyfam_gui.py").write_text(TINY_FAMILY)
    env = {**os.environ, "MIPSTUDIO_PLUGINS": "tinyfam_gui",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(ROOT))], env=env, capture_output=True,
                          text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "Tiny gradient view" in out["menu"] and "Splat (3DGS / Mip-Splatting)" in out["menu"]
    assert "Tiny count job" in out["launchers"]
    assert out["red"] > 0.9  # the generic view rendered the source with its default options
    assert out["green_r"] == 0.0 and out["green_g"] > 0.9  # a generated widget changed the typed option
    assert out["job"] == "DONE" and out["result"] == {"counted": 4}


@pytest.mark.skipif(shutil.which("xdotool") is None, reason="without xdotool the main run already takes the "
                                                            "fallback paths")
def test_the_gui_tests_pass_with_xdotool_hidden(x_display):
    """test_gui.py uses real X input where xdotool exists; this runs its input tests again on the fallback paths
    (MIPSTUDIO_NO_XDOTOOL=1 hides xdotool from them), so both paths are exercised in every run."""
    env = {**os.environ, "MIPSTUDIO_NO_XDOTOOL": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(ROOT / "tests" / "test_gui.py"), "-k",
                           "job_runs_in_the_background or every_registered_view or fly_mode or dragging"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    tail = textwrap.shorten(proc.stdout[-2000:], 2000)
    assert proc.returncode == 0, tail
    assert "2 passed, 2 skipped" in proc.stdout, tail  # fly/drag need real input: skipped, the others pass
