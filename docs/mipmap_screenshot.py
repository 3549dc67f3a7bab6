"""The Splat view blending two Mipmap-GS levels (README image), from the levels the stmt benchmark cached:

    python3 main.py eval gaussians --direction out --methods mipmap-3dgs-area-nodensify-free-3000  # the levels
    xvfb-run -a -s "-screen 0 1600x900x24" python3 docs/mipmap_screenshot.py [ROW]

Assembles ROW's cached zoom-out levels (default: the free-viewing stack, area pseudo-GT, no densification, 3000
steps) into /tmp/mipmap_demo/mipmap.json, opens it in the Splat view at zoom ×0.35 (between the ¼ and ½ levels) and
saves docs/mipmap_blend.png: the real window, plus a nearest-neighbour 5× magnification of the panel's centre pasted
into its top-right corner (the object is ~40 px wide at this sampling rate) and labelled as such.
"""
import glob
import math
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
sys.path.insert(0, os.getcwd())

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from assets.cache import cache_dir  # noqa: E402
from methods.datasets import ensure_dataset  # noqa: E402
from methods.gaussians.mipmap import MipLevel, MipStack  # noqa: E402

row = sys.argv[1] if len(sys.argv) > 1 else "mipmap-3dgs-area-nodensify-free-3000"
found = sorted(glob.glob(str(cache_dir() / "stmt" / "*" / "zoom_out" / "mipmap" / (row + "-" + "[0-9a-f]" * 8))))
if not found:
    sys.exit(f"no cached levels for {row}; run: python3 main.py eval gaussians --direction out --methods {row}")
levels_dir = Path(found[-1])
out = Path("/tmp/mipmap_demo")
shutil.rmtree(out, ignore_errors=True)
(out / "levels").mkdir(parents=True)
shutil.copyfile(levels_dir.parents[2] / "zoom_out" / "3dgs" / "point_cloud.ply", out / "base.ply")
levels = []
for d in sorted(levels_dir.glob("x*"), key=lambda p: float(p.name[1:])):
    shutil.copyfile(d / "point_cloud.ply", out / "levels" / f"{d.name}.ply")
    levels.append(MipLevel(float(d.name[1:]), f"levels/{d.name}.ply"))
MipStack("base.ply", tuple(levels), 1.0, "area", "free",
         {"method": "3dgs", "dataset": str(ensure_dataset("default"))}).write(out / "mipmap.json")

import dearpygui.dearpygui as dpg  # noqa: E402

from app.shell import Studio, StudioConfig  # noqa: E402

studio = Studio(StudioConfig(width=1500, height=700, views=("splat",)))
studio.setup()
view = studio.views["splat"]
assert view.open_stack(str(out / "mipmap.json"))
dpg.set_value(view.tags["zoom"], math.log2(0.35))
shot = Path("docs/mipmap_blend.png")
studio.settled_screenshot(str(shot), 15)
info = dpg.get_value(view.tags["info"])
(x0, y0), (w, h) = dpg.get_item_rect_min(view.tags["image"]), dpg.get_item_rect_size(view.tags["image"])
studio.close()

img = Image.open(shot).convert("RGB")
cx, cy, r, k = int(x0 + w / 2), int(y0 + h / 2), 36, 5
crop = img.crop((cx - r, cy - r, cx + r, cy + r)).resize((2 * r * k, 2 * r * k), Image.NEAREST)
px, py = int(x0 + w) - crop.width - 12, int(y0) + 12
img.paste(crop, (px, py))
d = ImageDraw.Draw(img)
d.rectangle((px - 1, py - 1, px + crop.width, py + crop.height), outline=(230, 80, 40), width=2)
d.rectangle((cx - r, cy - r, cx + r, cy + r), outline=(230, 80, 40), width=1)
d.text((px + 6, py + crop.height - 16), f"centre, {k}x nearest-neighbour (added to the screenshot)", fill=(230, 80, 40))
tmp = shot.with_suffix(".tmp.png")
img.save(tmp)
os.replace(tmp, shot)
print("wrote", shot, "—", info, "—", np.asarray(img).shape)
