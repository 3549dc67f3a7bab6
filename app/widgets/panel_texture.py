"""An image item that shows float RGBA frames cheaply under software GL.

Dear PyGui re-uploads a *raw* texture every frame (measured: ~9 ms per 800k pixels on llvmpipe) even when it did
not change; a *dynamic* texture is uploaded only when its value is set. So frames that keep coming (dragging,
training previews) go to a raw texture, and once the panel has been still for ``rest_s`` the last frame is set on
the dynamic texture and the image shows that one. Both textures live as long as the panel: creating and deleting
textures on every switch leaked ~0.7 MB/s in a session of file opens and zooms (bench/soak.py).

For the same reason a panel that changes size within the textures' capacity (some slack around the first size)
keeps them and shows the top-left part (``uv_max``): an error line appearing above the image shrinks the panel by
a line, and re-creating the textures for each such change leaked ~0.35 MB per bad file opened.
"""
from __future__ import annotations

import time

import dearpygui.dearpygui as dpg
import numpy as np


STAGE_FRAMES = 4  # frames between setting the still texture and showing it: its upload can lag under load
SLACK = 48      # capacity beyond the first size, in pixels, rounded up to a multiple of 64
MIN_USE = 0.5   # a panel whose own capacity would be less than this share of the current one gets new textures


def capacity(n: int) -> int:
    return -(-(n + SLACK) // 64) * 64


class PanelTexture:
    def __init__(self, registry: int | str, parent: int | str, width: int, height: int,
                 rest_s: float = 0.3) -> None:
        self.registry, self.width, self.height, self.rest_s = registry, int(width), int(height), rest_s
        self.cap_w, self.cap_h = capacity(self.width), capacity(self.height)
        # A raw texture reads from this memory: one buffer for the panel's life, frames copied in place.
        self.buffer = np.zeros(self.cap_w * self.cap_h * 4, np.float32)
        self.raw = dpg.add_raw_texture(self.cap_w, self.cap_h, self.buffer, format=dpg.mvFormat_Float_rgba,
                                       parent=registry)
        self.still = dpg.add_dynamic_texture(self.cap_w, self.cap_h, self.buffer, parent=registry)
        self.image = dpg.add_image(self.raw, parent=parent, width=self.width, height=self.height,
                                   uv_max=self._uv_max())
        self._showing = "raw"
        self._staged = 0  # frames since the still texture got the current frame
        self._last_frame = time.monotonic()

    def _uv_max(self) -> tuple[float, float]:
        return self.width / self.cap_w, self.height / self.cap_h

    def resize(self, width: int, height: int) -> bool:
        """Show a (width, height) part of the same textures; False if that does not fit them (make a new panel)."""
        width, height = int(width), int(height)
        if width > self.cap_w or height > self.cap_h or \
                capacity(width) * capacity(height) < MIN_USE * self.cap_w * self.cap_h:  # much smaller: new ones
            return False
        self.width, self.height = width, height
        dpg.configure_item(self.image, width=width, height=height, uv_max=self._uv_max())
        return True

    @property
    def mode(self) -> str:
        """'raw' while frames come, 'static' once the panel shows its still texture."""
        return "raw" if self._showing == "raw" else "static"

    def show(self, rgba: np.ndarray) -> None:
        """Display a new (height, width, 4) float32 frame."""
        np.copyto(self.buffer.reshape(self.cap_h, self.cap_w, 4)[:self.height, :self.width], rgba)
        self._staged = 0
        if self._showing != "raw":
            dpg.configure_item(self.image, texture_tag=self.raw)
            self._showing = "raw"
        self._last_frame = time.monotonic()

    def tick(self) -> None:
        """Call once per UI frame: show the still texture once no frame came for ``rest_s``."""
        if self._showing == "raw" and time.monotonic() - self._last_frame > self.rest_s:
            if self._staged == 0:  # a dynamic texture uploads with a later frame: switch only once it has
                dpg.set_value(self.still, self.buffer)
            self._staged += 1
            if self._staged > STAGE_FRAMES:
                dpg.configure_item(self.image, texture_tag=self.still)
                self._showing = "still"

    def destroy(self) -> None:
        for tag in (self.image, self.raw, self.still):
            if dpg.does_item_exist(tag):
                dpg.delete_item(tag)
