"""SR view: a photo at any continuous zoom through nearest / bicubic / LIIF / GaussianSR, split between two of them,
with pretend-LR PSNR and the per-pixel Gaussians when zoomed in far (methods/gaussiansr/live_source.py)."""
from __future__ import annotations

from typing import Any

import dearpygui.dearpygui as dpg

from app.views import register_view
from app.views.base import OPTIONS_WIDTH, View, one_line
from app.widgets.options_form import HELP_COLOR
from methods.gaussiansr.live_source import MODE_LABELS, VIEW_MODES, SRSource

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".*")
LABELS = dict(zip(VIEW_MODES, MODE_LABELS))


@register_view
class SRView(View):
    name = "sr"

    def create_source(self) -> SRSource:
        return SRSource()

    def build_extra(self, parent: int | str) -> None:
        self.add_open_file(parent, "Open image ...", IMAGE_EXTS, self.open_image)
        self.tags["psnr"] = dpg.add_text("", parent=parent, tag=f"{self.name}.psnr", wrap=OPTIONS_WIDTH - 20)
        dpg.add_text("Zoom = magnification (x3.7 works). Pretend-LR shows a downscaled copy: at zoom = its factor "
                     "the picture is the original's size, and PSNR compares with it.", parent=parent,
                     wrap=OPTIONS_WIDTH - 20, color=HELP_COLOR)

    def open_image(self, path: str) -> bool:
        """Show an image file (kept until another bundled photo is picked); a bad file is one line in the view."""
        try:
            self.opened = self.source.open_image(path)
        except Exception as e:  # noqa: BLE001 - the view keeps showing what it showed
            self.show_error(f"cannot open {path}: {one_line(e)}")
            return False
        self.clear_error()
        for note in self.source.notes:
            self.studio.notify(note)
        self.center = [0.0, 0.0]
        self.last_request = None
        return True

    def internal_options(self) -> dict[str, Any]:
        return {"opened": self.opened_until_picked()}

    def info(self) -> str:
        fin = self.worker.latest()
        aux = fin.frame.aux if fin is not None else {}
        note = aux.get("note", "")
        if note and note != self.error_text:
            self.show_error(note)
        psnr = {m: v for m, v in (aux.get("psnr") or {}).items() if v is not None}
        factor = aux.get("factor", 1.0)
        text = (f"pretend-LR x{factor:g} PSNR (RGB, centre crop): "
                + " | ".join(f"{LABELS.get(m, m)} {v:.2f} dB" for m, v in sorted(psnr.items(), key=lambda kv: -kv[1]))
                if psnr else "")
        dpg.set_value(self.tags["psnr"], text)
        modes = aux.get("modes", {})
        parts = [" | ".join(LABELS.get(modes[s], modes[s]) for s in ("left", "right") if s in modes)]
        if "lr_size" in aux:
            w, h = aux["lr_size"]
            parts.append(f"{w}x{h} shown at x{aux.get('zoom', 1.0):.2f}")
        if psnr:
            best = max(psnr.items(), key=lambda kv: kv[1])
            parts.append(f"PSNR {LABELS.get(best[0], best[0])} {best[1]:.2f} dB")
        return " · ".join(p for p in parts if p)
