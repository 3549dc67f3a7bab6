"""Screenshots of the neural-texture walkthrough for the README (run from the repository root):

    xvfb-run -a -s "-screen 0 1600x900x24" python3 docs/walkthrough_screenshots.py

docs/walkthrough_split.png: the Walkthrough view, split NGSSF | GL trilinear, zoomed out to 1/2 with the PSNR of
both halves against the 4x4 supersampled reference. docs/walk_window.png comes from
`python3 main.py walk --size 1280x720 --seconds 6 --screenshot docs/walk_window.png`.
"""
import math
import os
import sys

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
studio.settled_screenshot("docs/walkthrough_split.png", float(os.environ.get("SHOT_SECONDS", "20")))
print("wrote docs/walkthrough_split.png:", dpg.get_value(view.tags["info"]))
studio.close()

# docs/walkthrough_modes.png: one path frame seen at 1/4x (4x focal, rendered at 1/16 size), each mode upscaled x6
# with nearest neighbour, next to the 16x16 supersampled reference, with its PSNR over the fish.
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from methods.metrics import psnr  # noqa: E402
from methods.neural_texture.live_source import walkthrough_source  # noqa: E402
from methods.neural_texture.path import DEFAULT_PATH, read_path  # noqa: E402
from methods.neural_texture.renderer import box_downsample  # noqa: E402

r = walkthrough_source().renderer
low = read_path(DEFAULT_PATH)[16].camera(4.0).scaled(1 / 16)
full = low.scaled(16)
ref = box_downsample(r.render(full, "bilinear").image, 16)
cover = box_downsample(r.renderer.render_uv([r.mesh], full).mask[..., None].astype(np.float32), 16)[..., 0] > 0
tiles = []
for mode, label in (("nearest", "nearest"), ("trilinear", "GL trilinear"), ("aniso16", "GL aniso 16x"),
                    ("ngssf", "NGSSF, 1 query"), ("reference", "16x16 reference")):
    img = ref if mode == "reference" else r.render(low, mode).image
    big = Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)).resize(
        (img.shape[1] * 6, img.shape[0] * 6), Image.NEAREST)
    text = label if mode == "reference" else f"{label}: {psnr(img, ref, mask=cover):.1f} dB"
    ImageDraw.Draw(big).text((8, 6), text, fill=(255, 220, 90))
    tiles.append(np.asarray(big))
row1 = np.concatenate(tiles[:3], axis=1)
row2 = np.concatenate(tiles[3:] + [np.zeros_like(tiles[0])], axis=1)
Image.fromarray(np.concatenate([row1, row2], axis=0)).save("docs/walkthrough_modes.png")
print("wrote docs/walkthrough_modes.png")
