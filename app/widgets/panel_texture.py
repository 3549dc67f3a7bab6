"""An image item that shows float RGBA frames cheaply under software GL.

Dear PyGui re-uploads a *raw* texture every frame (measured: ~9 ms per 800k pixels on llvmpipe) even when it did
not change, while a *static* texture is uploaded once but costs ~20 ms to create. So frames that keep coming
(dragging, training previews) go to a raw texture, and once the panel has been still for ``rest_s`` the last frame
is copied into a static texture and the raw one is deleted. A new frame switches back.
"""
from __future__ import annotations

import time

import dearpygui.dearpygui as dpg
import numpy as np


class PanelTexture:
    def __init__(self, registry: int | str, parent: int | str, width: int, height: int,
                 rest_s: float = 0.3) -> None:
        self.registry, self.width, self.height, self.rest_s = registry, int(width), int(height), rest_s
        # A raw texture reads from this memory: one buffer for the panel's life, frames copied in place.
        self.buffer = np.zeros(self.width * self.height * 4, np.float32)
        self.raw: int | str | None = dpg.add_raw_texture(self.width, self.height, self.buffer,
                                                          format=dpg.mvFormat_Float_rgba, parent=registry)
        self.static: int | str | None = None
        self.image = dpg.add_image(self.raw, parent=parent, width=self.width, height=self.height)
        self._last_frame = time.monotonic()

    @property
    def mode(self) -> str:
        return "raw" if self.raw is not None else "static"

    def show(self, rgba: np.ndarray) -> None:
        """Display a new (height, width, 4) float32 frame."""
        np.copyto(self.buffer, rgba.reshape(-1))
        if self.raw is None:
            self.raw = dpg.add_raw_texture(self.width, self.height, self.buffer, format=dpg.mvFormat_Float_rgba,
                                           parent=self.registry)
            dpg.configure_item(self.image, texture_tag=self.raw)
            self._delete("static")
        else:
            dpg.set_value(self.raw, self.buffer)
        self._last_frame = time.monotonic()

    def tick(self) -> None:
        """Call once per UI frame: freeze into a static texture once no frame came for ``rest_s``."""
        if self.raw is not None and time.monotonic() - self._last_frame > self.rest_s:
            self.static = dpg.add_static_texture(self.width, self.height, self.buffer, parent=self.registry)
            dpg.configure_item(self.image, texture_tag=self.static)
            self._delete("raw")

    def _delete(self, which: str) -> None:
        tag = getattr(self, which)
        if tag is not None and dpg.does_item_exist(tag):
            dpg.delete_item(tag)
        setattr(self, which, None)

    def destroy(self) -> None:
        if dpg.does_item_exist(self.image):
            dpg.delete_item(self.image)
        self._delete("raw")
        self._delete("static")
