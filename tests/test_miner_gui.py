"""The MINER view in the real studio: it fits the photo in the background, then the zoom slider picks the pyramid
level (named in the info line) and the overlays and the compare split draw."""
from __future__ import annotations

import math

import numpy as np
import pytest
from guitools import run_until, settle

pytestmark = pytest.mark.gui


@pytest.fixture()
def view(studio):
    import dearpygui.dearpygui as dpg

    v = studio.views["miner"]
    v.form.set("image", "astronaut")
    v.form.set("overlay", "none")
    v.form.set("compare", "off")
    v.center = [0.0, 0.0]
    dpg.set_value(v.tags["zoom"], 0.0)
    v.source.fit("astronaut", wait=True)
    assert run_until(studio, lambda: "level 0:" in v.info(), timeout=60)
    return v


def test_the_zoom_slider_changes_the_level_in_the_info_line(studio, view):
    import dearpygui.dearpygui as dpg

    from methods.miner.live_source import BACKGROUND

    def covered_width(img) -> int:
        return int((np.abs(img - BACKGROUND).max(-1) > 1e-3).any(0).sum())

    assert "MINER level 0.00" in view.info() and "PSNR" in view.info()
    dpg.set_value(view.tags["zoom"], math.log2(0.25))
    settle(studio, view, 60)
    assert run_until(studio, lambda: "MINER level 2.00" in view.info(), timeout=30)
    assert "level 2:" in view.info()
    assert abs(covered_width(view.last_image()[..., :3]) - 64) <= 1      # 256 px at zoom 1/4
    dpg.set_value(view.tags["zoom"], math.log2(0.35))
    settle(studio, view, 60)
    assert run_until(studio, lambda: "(1-2 blend)" in view.info(), timeout=30)
    pw = view.worker.latest().request.width
    assert abs(covered_width(view.last_image()[..., :3]) - min(pw, round(256 * 0.35))) <= 2


def test_overlays_and_the_compare_split_draw(studio, view):
    base = view.worker.latest().frame.image.copy()
    view.form.set("overlay", "blocks")
    settle(studio, view, 60)
    tinted = view.worker.latest().frame.image
    assert np.abs(tinted - base).max() > 0.1
    view.form.set("overlay", "none")
    view.form.set("compare", "original")
    settle(studio, view, 60)
    img = view.worker.latest().frame.image
    mid = img.shape[1] // 2
    assert np.allclose(img[:, mid - 1:mid + 1], (1.0, 0.85, 0.2), atol=1e-3)
    view.form.set("compare", "off")


def test_the_train_button_and_open_show_a_job_and_a_checkpoint_level_by_level(studio, view, tmp_path):
    from assets.cache import atomic_save_image
    from assets.photos import load_photo

    png = tmp_path / "small.png"
    atomic_save_image(png, load_photo("coffee", 128))
    handle = view.start_training(image=str(png), preset="test_tiny", out_dir=str(tmp_path / "run"))
    assert handle is not None and handle in studio.jobs.jobs
    assert run_until(studio, lambda: handle.finished and "level 0:" in view.info(), timeout=120)
    assert "/64 blocks active" in view.info()     # 128² in 16² blocks
    assert view.worker.latest().frame.aux["size"] == (128, 128)
    # the checkpoint it wrote opens the same; a broken one is one line and the picture stays
    assert view.open_path(str(tmp_path / "run" / "miner.pt"))
    assert run_until(studio, lambda: "level 0:" in view.info()
                     and view.worker.latest().frame.aux.get("origin", "").endswith("miner.pt"), timeout=60)
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x00" * 100)
    assert not view.open_path(str(bad))
    assert "cannot open" in view.error_text and "broken.pt" in view.error_text and "\n" not in view.error_text
    # picking a bundled photo replaces what was opened (read without a frame between: chelsea is never fitted)
    assert view.read_options().opened.startswith("checkpoint:")
    view.form.set("image", "chelsea")
    assert view.read_options().opened == ""
    view.form.set("image", "astronaut")
    assert run_until(studio, lambda: view.worker.latest().frame.aux.get("origin") == "astronaut", timeout=60)
