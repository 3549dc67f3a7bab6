"""Screenshots of the SR view (docs/sr_split.png, docs/sr_gaussians.png):
xvfb-run -a -s "-screen 0 1600x900x24" python3 docs/sr_screenshots.py

Split mode: chelsea shown at 1/4 (pretend-LR x4) and magnified x7, GaussianSR left of the line and bicubic right,
with the PSNR of both against the original in the options panel. Then zoomed in x14 on an eye with the Gaussian
overlay: each LR pixel's chosen bank entry drawn as its 1-sigma ellipse."""
import math
import os
import sys

os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), "tests"))
import dearpygui.dearpygui as dpg  # noqa: E402
from guitools import settle  # noqa: E402

from app.shell import Studio, StudioConfig  # noqa: E402

studio = Studio(StudioConfig(width=1600, height=900, views=("sr",)))
studio.setup()
view = studio.views["sr"]
view.form.set("image", "chelsea")
view.form.set("compare", "bicubic")
view.form.set("split", 0.5)
dpg.set_value(view.tags["zoom"], math.log2(7.0))
settle(studio, view, 300)
studio.frame()
studio.save_screenshot("docs/sr_split.png")
print("split:", view.info(), "|", dpg.get_value(view.tags["psnr"]))
view.center = [-17.0, -9.0]  # the cat's left eye, in LR pixels from the image centre
dpg.set_value(view.tags["zoom"], math.log2(14.0))
settle(studio, view, 300)
studio.frame()
studio.save_screenshot("docs/sr_gaussians.png")
print("overlay:", view.info())
studio.close()
