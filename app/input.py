"""One snapshot of mouse and keyboard per UI frame.

Polling once per frame (instead of DPG key/drag callbacks) gives hold-to-fly motion scaled by frame time and lets
views compute drag deltas themselves (DPG's drag delta is cumulative, see DESIGN §4). Wheel events only arrive as
callbacks, which DPG may run on another thread, so they are accumulated under a lock.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import dearpygui.dearpygui as dpg

# Key name -> DPG key codes (either Shift counts). Views speak in names, never in DPG codes.
KEYMAP: dict[str, tuple[int, ...]] = {
    "w": (dpg.mvKey_W,), "a": (dpg.mvKey_A,), "s": (dpg.mvKey_S,), "d": (dpg.mvKey_D,),
    "space": (dpg.mvKey_Spacebar,), "shift": (dpg.mvKey_LShift, dpg.mvKey_RShift),
    "r": (dpg.mvKey_R,), "c": (dpg.mvKey_C,), "escape": (dpg.mvKey_Escape,),
    "ctrl": (dpg.mvKey_LControl, dpg.mvKey_RControl), "z": (dpg.mvKey_Z,), "i": (dpg.mvKey_I,),
    "delete": (dpg.mvKey_Delete,),
}
BUTTONS = (dpg.mvMouseButton_Left, dpg.mvMouseButton_Right, dpg.mvMouseButton_Middle)
LEFT, RIGHT, MIDDLE = BUTTONS


@dataclass(frozen=True)
class InputFrame:
    """Mouse position in viewport pixels, buttons/keys held, keys newly pressed, wheel steps and frame time."""

    mouse: tuple[float, float]
    buttons: frozenset[int]
    keys_down: frozenset[str]
    keys_pressed: frozenset[str]
    wheel: float
    dt: float

    def inside(self, rect: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = rect
        return x0 <= self.mouse[0] < x1 and y0 <= self.mouse[1] < y1


@dataclass
class InputPoller:
    """Builds an :class:`InputFrame` each frame; owns the wheel handler."""

    _wheel: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _prev_keys: frozenset[str] = frozenset()
    injected_keys: set[str] = field(default_factory=set)  # for scripted demos; tests use real X key events

    def install(self) -> None:
        with dpg.handler_registry():
            dpg.add_mouse_wheel_handler(callback=self._on_wheel)

    def _on_wheel(self, sender, app_data) -> None:
        with self._lock:
            self._wheel += float(app_data)

    def add_wheel(self, steps: float) -> None:
        with self._lock:
            self._wheel += steps

    def poll(self, dt: float) -> InputFrame:
        with self._lock:
            wheel, self._wheel = self._wheel, 0.0
        keys = {name for name, codes in KEYMAP.items() if any(dpg.is_key_down(c) for c in codes)}
        keys |= self.injected_keys
        keys = frozenset(keys)
        pressed = keys - self._prev_keys
        self._prev_keys = keys
        buttons = frozenset(b for b in BUTTONS if dpg.is_mouse_button_down(b))
        mx, my = dpg.get_mouse_pos(local=False)
        return InputFrame((float(mx), float(my)), buttons, keys, pressed, wheel, dt)
