"""The fuzz suite's malformed files opened in the real studio, through each view's file-dialog callback. After each
one the view shows one line naming the file, keeps its picture and its place in the studio, and the UI keeps
drawing (the frame counter advances)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from guitools import run_for, run_until, settle
from test_fuzz_inputs import CASES, Seeds

pytestmark = pytest.mark.gui

VIEWS = {"ply": "splat", "mipmap": "splat", "image": "sr"}  # fuzz kind -> the view that opens it
CHECKPOINT_VIEWS = {"miner": "miner", "nerf360": "nerf360"}   # checkpoints of the families whose views open them


def _route(case) -> str | None:
    if case.kind == "checkpoint":
        return CHECKPOINT_VIEWS.get(case.name.split(":")[1])
    return VIEWS.get(case.kind)


def _sample(seeds: Seeds, folder):
    """(case, view, path) for every malformed file a view opens, each copied under a unique name."""
    out = []
    for i, case in enumerate(c for c in CASES if c.expect == "fail"):
        view = _route(case)
        if view is None:
            continue
        argv, _ = case.build(seeds, folder)
        src = next(Path(a) for a in argv if Path(a).name.startswith("case"))
        dest = (src.parent if case.kind == "mipmap" else folder) / f"fuzz{i:03d}_{src.name}"  # a stack's PLYs
        shutil.copyfile(src, dest)                                                             # sit beside it
        out.append((case.name, view, dest))
    return out


def test_malformed_files_opened_in_the_studio_are_one_line_each_and_it_keeps_drawing(studio, tmp_path_factory):
    import dearpygui.dearpygui as dpg

    seeds = Seeds(tmp_path_factory.mktemp("fuzz_gui_seeds"))
    folder = tmp_path_factory.mktemp("fuzz_gui_files")
    sample = _sample(seeds, folder)
    assert len(sample) >= 30 and len({v for _, v, _ in sample}) == 4, len(sample)
    pictures = {}
    for name in {view for _, view, _ in sample}:
        settle(studio, studio.views[name])
        pictures[name] = studio.views[name].last_image().copy()
    for case, name, path in sample:
        view = studio.views[name]
        view.clear_error()
        frames = studio.frame_count
        dialog = view.tags["dialog"]
        dpg.get_item_callback(dialog)(dialog, {"file_path_name": str(path)})  # what choosing the file does
        assert run_until(studio, lambda: bool(view.error_text), 20), f"{case}: no error shown for {path.name}"
        assert studio.frame_count > frames, case
        assert path.name in view.error_text and "\n" not in view.error_text, (case, view.error_text)
        assert "Traceback" not in view.error_text
        assert name in studio.views, f"{case}: the {name} view was closed"
    run_for(studio, 0.3)
    for name, before in pictures.items():  # every view still shows what it showed
        view = studio.views[name]
        view.clear_error()
        settle(studio, view)
        assert np.array_equal(view.last_image(), before), name
