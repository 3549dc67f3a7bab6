"""Screenshots of the MINER view (docs/miner_view.png, docs/miner_blocks.png; with a checkpoint also
docs/miner_checkpoint.png):
xvfb-run -a -s "-screen 0 1600x900x24" python3 docs/miner_screenshots.py [RUN/miner.pt]

The view fits astronaut (256² centre square, the view preset) in the background, level by level. Then: zoom 0.35
(levels 1 and 2 blended) split with the original; and zoom 2 with the active/pruned block overlay of level 0. A
checkpoint (e.g. of ``train miner mosaic:4096``) is opened and shown at zoom 0.6 (levels 0 and 1 blended) with the
active/pruned overlay of level 1, split with the original."""
import math
import os
import sys

os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), "tests"))
import dearpygui.dearpygui as dpg  # noqa: E402
from guitools import run_until, settle  # noqa: E402

from app.shell import Studio, StudioConfig  # noqa: E402

studio = Studio(StudioConfig(width=1600, height=900, views=("miner",)))
studio.setup()
view = studio.views["miner"]
view.form.set("image", "astronaut")
settle(studio, view, 60)
view.source.fit("astronaut", wait=True)
run_until(studio, lambda: "level 0:" in view.info() and "baseline" not in view.info(), timeout=120)
view.form.set("compare", "baseline")
view.form.set("split", 0.5)
dpg.set_value(view.tags["zoom"], math.log2(2.5))
settle(studio, view, 300)
studio.frame()
studio.save_screenshot("docs/miner_view.png")
print("compare:", view.info())
view.form.set("compare", "off")
view.form.set("overlay", "blocks")
dpg.set_value(view.tags["zoom"], math.log2(1.5))
settle(studio, view, 300)
studio.frame()
studio.save_screenshot("docs/miner_blocks.png")
print("blocks:", view.info())
if len(sys.argv) > 1:
    assert view.open_path(sys.argv[1]), view.error_text
    view.form.set("compare", "original")
    view.form.set("split", 0.6)
    dpg.set_value(view.tags["zoom"], math.log2(0.6))
    run_until(studio, lambda: "level 1:" in view.info() and "reconstructing" not in view.info(), timeout=300)
    settle(studio, view, 300)
    studio.frame()
    studio.save_screenshot("docs/miner_checkpoint.png")
    print("checkpoint:", view.info())
studio.close()
