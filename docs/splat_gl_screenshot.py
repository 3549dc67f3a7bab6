"""Screenshot of the Splat view on the OpenGL backend with a 100k-Gaussian scene (docs/splat_gl_view.png):
xvfb-run -a -s "-screen 0 1600x900x24" python3 docs/splat_gl_screenshot.py [N [OUT.png]]

Writes a synthetic N-Gaussian scene (default 100,000; `export-demo-ply --gaussians N`), opens it, orbits the camera
for a few seconds the way a drag does (dynamic-resolution previews), lets the view settle on a full-size frame and
saves the window while the frame rate of the orbit is still on screen (info line and status bar). Prints the
preview and full-frame rates it measured."""
import os
import sys
import tempfile
import time

os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), "tests"))
import dearpygui.dearpygui as dpg  # noqa: E402
from guitools import settle  # noqa: E402

from app.shell import Studio, StudioConfig  # noqa: E402
from methods.gaussians.demo import big_scene  # noqa: E402
from methods.gaussians.ply import save_ply  # noqa: E402

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
shot = sys.argv[2] if len(sys.argv) > 2 else "docs/splat_gl_view.png"
ply = save_ply(big_scene(n), os.path.join(tempfile.mkdtemp(prefix="mipstudio-shot-"), f"scene_{n}.ply"))
studio = Studio(StudioConfig(width=1600, height=900, views=("splat",), ply=str(ply)))
studio.setup()
view = studio.views["splat"]
settle(studio, view, 300)

t0, seen = time.monotonic(), set()
while time.monotonic() < t0 + 6.0:  # orbit like a left-drag, 3 s right and 3 s back: previews at dynamic resolution
    view.orbit.rotate(3.0 if time.monotonic() < t0 + 3.0 else -3.0, 0.0)
    view.dynres.touch()
    view.camera_touched = True
    studio.frame()
    fin = view.worker.latest()
    if fin is not None and fin.request.preview:
        seen.add(fin.version)
preview_fps = len(seen) / (time.monotonic() - t0)
settle(studio, view, 120)
studio.frame()
studio.save_screenshot(shot)
fin = view.worker.latest()
print(f"wrote {shot}: {n:,} Gaussians, backend {fin.frame.aux.get('backend')}, "
      f"{len(seen)} previews at {preview_fps:.1f} fps while orbiting, full {fin.request.width}x{fin.request.height} "
      f"frame {fin.seconds * 1000:.0f} ms")
print("status bar:", dpg.get_value(studio.tags["status"]))
studio.close()
