"""Screenshots of the NeRF view and its sampler probe (docs/):
xvfb-run -a -s "-screen 0 1600x900x24" python3 docs/nerf360_screenshots.py

Shot 1: the bundled model in rgb at zoom 2. Shot 2: depth mode with the probe on the pixel of the largest depth jump
(a depth edge), found from the model's own depth map of the same camera."""
import os
import sys

os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), "tests"))
import dearpygui.dearpygui as dpg  # noqa: E402
import numpy as np  # noqa: E402
from guitools import run_for, run_until, settle  # noqa: E402

from app.shell import Studio, StudioConfig  # noqa: E402
from methods.nerf360.live_source import NerfOptions  # noqa: E402
from render.live import RenderRequest  # noqa: E402

studio = Studio(StudioConfig(width=1600, height=900, views=("nerf360",)))
studio.setup()
view = studio.views["nerf360"]
dpg.set_value(view.tags["zoom"], 1.0)  # zoom 2: 256 px across, cones half the training radius
settle(studio, view, 300)
studio.save_screenshot("docs/nerf360_view.png")
print("wrote docs/nerf360_view.png")

req = view.uploaded_request
depth = view.source.render(RenderRequest(req.width, req.height, camera=req.camera,
                                         options=NerfOptions(mode="depth", progressive=False)))
log_d = depth.image.mean(-1)  # log-depth colour ramp: brightness falls with depth
gy, gx = np.gradient(log_d)
g = np.hypot(gx, gy)
g[:4], g[-4:], g[:, :4], g[:, -4:] = 0, 0, 0, 0
y, x = np.unravel_index(int(np.argmax(g)), g.shape)
print(f"depth edge at pixel ({x}, {y}) of {req.width}x{req.height}")
view.form.set("mode", "depth")
settle(studio, view, 300)
view.probe_at((x + 0.5) / req.width, (y + 0.5) / req.height)
run_until(studio, lambda: view.last_probe() is not None and not view.probing, 60)
dpg.configure_item(view.probe_panel.tags["window"], pos=(640, 300), width=950, height=560)
run_for(studio, float(os.environ.get("SHOT_SECONDS", "2")))
studio.save_screenshot("docs/nerf360_probe.png")
print("wrote docs/nerf360_probe.png", view.last_probe().summary())
studio.close()
