"""MINER view: a bundled photo fitted in the background, an opened image file, a ``train miner`` checkpoint of any
size, or the Jobs-panel training job followed level by level (methods/miner/live_source.py does the work)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import dearpygui.dearpygui as dpg

from app.views import register_view
from app.views.base import OPTIONS_WIDTH, View, one_line
from app.views.sr_view import IMAGE_EXTS
from app.widgets.options_form import HELP_COLOR
from methods.miner.live_source import MinerSource

TRAIN_JOB = "Train MINER"


@register_view
class MinerView(View):
    name = "miner"

    def create_source(self) -> MinerSource:
        return MinerSource()

    def build_extra(self, parent: int | str) -> None:
        self.add_open_file(parent, "Open image / miner.pt ...", (".pt",) + IMAGE_EXTS, self.open_path)
        dpg.add_text("Zoom out: coarser pyramid levels (1/2 = level 1). Open a train miner checkpoint to see a large "
                     "image; an image file is fitted here in its 512 px centre.", parent=parent,
                     wrap=OPTIONS_WIDTH - 20, color=HELP_COLOR)
        self.train_form = self.add_train_form(parent, TRAIN_JOB, self.start_training)

    # ----- what is shown ------------------------------------------------------------------------------------------
    def open_path(self, path: str) -> bool:
        """A ``.pt`` opens as a checkpoint, anything else as an image to fit; a bad file is one line in the view."""
        try:
            key = (self.source.open_checkpoint(path) if Path(path).suffix.lower() == ".pt"
                   else self.source.open_image(path))
        except Exception as e:  # noqa: BLE001 - the view keeps showing what it showed
            self.show_error(f"cannot open {path}: {one_line(e)}")
            return False
        self.stop_following()
        self._show(key)
        return True

    def start_training(self, **overrides: Any):
        """Start the Jobs-panel MINER job with the form's options (``overrides`` win) and show its levels as they
        finish (the source publishes each one; the Jobs panel has the progress). Returns the job handle or None."""
        values = {**(self.train_form.values() if self.train_form else {}), **overrides}
        started = self.start_job(TRAIN_JOB, values, "MINER training")
        if started is None:
            return None
        self.stop_following()
        self._show(self.source.follow_trainer(started[1]))
        return started[0]

    def _show(self, key: str) -> None:
        self.clear_error()
        for note in self.source.notes:
            self.studio.notify(note)
        self.opened = key
        self.center = [0.0, 0.0]
        self.last_request = None

    def internal_options(self) -> dict[str, Any]:
        return {"opened": self.opened_until_picked()}
