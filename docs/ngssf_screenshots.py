"""Screenshots of the Scale-space view in anisotropic and foveated modes (docs/):

    xvfb-run -a -s "-screen 0 1600x900x24" python3 docs/ngssf_screenshots.py
"""
import os, sys, time
os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
sys.path.insert(0, os.getcwd())
import dearpygui.dearpygui as dpg
from app.shell import Studio, StudioConfig

studio = Studio(StudioConfig(width=1500, height=640, views=("scale_space",)))
studio.setup()
view = studio.views["scale_space"]

def run(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        studio.frame()

def shot(path, **vals):
    for k, v in vals.items():
        dpg.set_value(view.tags[k], v)
    run(float(os.environ.get("SHOT_SECONDS", "12")))
    studio.save_screenshot(path)
    print("wrote", path)

run(3)
shot("docs/ngssf_anisotropic.png", mode="anisotropic", variance=-3.0, ratio=8.0, angle=30.0, compare=True)
import subprocess
subprocess.run(["xdotool", "mousemove", "250", "362"], check=False)  # the fovea follows the cursor: her face
shot("docs/ngssf_foveated.png", mode="foveated", variance=-2.0, compare=True)
studio.close()
