"""Screenshots of the neural-texture walkthrough for the README (run from the repository root):

    xvfb-run -a -s "-screen 0 1600x900x24" python3 docs/walkthrough_screenshots.py

docs/walkthrough_split.png: the Walkthrough view, split NGSSF | GL trilinear, zoomed out to 1/2 with the PSNR of
both halves against the 4x4 supersampled reference. docs/walk_window.png comes from
`python3 main.py walk --size 1280x720 --seconds 6 --screenshot docs/walk_window.png`.
"""
import math
import os
import sys
import time

os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
sys.path.insert(0, os.getcwd())
import dearpygui.dearpygui as dpg  # noqa: E402

from app.shell import Studio, StudioConfig  # noqa: E402

studio = Studio(StudioConfig(width=1500, height=700, views=("walkthrough",)))
studio.setup()
view = studio.views["walkthrough"]
dpg.set_value(view.tags["split"], "GL trilinear mipmaps")
dpg.set_value(view.tags["compare"], True)
dpg.set_value(view.tags["zoom"], math.log2(0.5))
end = time.monotonic() + float(os.environ.get("SHOT_SECONDS", "20"))
while time.monotonic() < end:
    studio.frame()
view.worker.wait_idle(60)
for _ in range(5):
    studio.frame()
studio.save_screenshot("docs/walkthrough_split.png")
print("wrote docs/walkthrough_split.png:", dpg.get_value(view.tags["info"]))
studio.close()
