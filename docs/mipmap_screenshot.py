"""The Splat view blending two Mipmap-GS levels (README image), from the stmt benchmark's cached zoom-out 3DGS base:

    xvfb-run -a -s "-screen 0 1600x900x24" python3 docs/mipmap_screenshot.py [STMT_MODEL_DIR]

Finetunes a ¼ and ½ stack (300 steps each, area pseudo-GT) of the cached base into /tmp/mipmap_demo, opens it in
the Splat view at zoom 0.35 (between the levels) and saves docs/mipmap_blend.png.
"""
import glob
import math
import os
import sys

os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
sys.path.insert(0, os.getcwd())

import main  # noqa: E402
from assets.cache import cache_dir  # noqa: E402
from methods.datasets import ensure_dataset  # noqa: E402
from methods.gaussians.ply import save_ply  # noqa: E402
from methods.gaussians.train import load_trained_model  # noqa: E402

ckpt = sys.argv[1] if len(sys.argv) > 1 else sorted(glob.glob(str(cache_dir() / "stmt" / "*" / "zoom_out" / "3dgs" /
                                                                   "checkpoint.pt")))[-1]
model, cfg, _ = load_trained_model(ckpt)
save_ply(model, "/tmp/mipmap_demo_base.ply")
root = ensure_dataset("default")
assert main.main(["finetune", "gaussians", "--ply", "/tmp/mipmap_demo_base.ply", "--dataset", str(root), "--scales",
                  "1/4,1/2", "--pseudo-gt-out", "area", "--iterations", "300", "--out", "/tmp/mipmap_demo"]) == 0

import dearpygui.dearpygui as dpg  # noqa: E402

from app.shell import Studio, StudioConfig  # noqa: E402

studio = Studio(StudioConfig(width=1500, height=700, views=("splat",)))
studio.setup()
view = studio.views["splat"]
assert view.open_stack("/tmp/mipmap_demo/mipmap.json")
dpg.set_value(view.tags["zoom"], math.log2(0.35))
studio.settled_screenshot("docs/mipmap_blend.png", 15)
print("wrote docs/mipmap_blend.png:", dpg.get_value(view.tags["info"]))
studio.close()
