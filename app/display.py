"""Is there an X display we can open? Dear PyGui aborts the process without one, so ask Xlib first."""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

NO_DISPLAY_HINT = ("mipstudio: no display found (DISPLAY is unset or unreachable). Run the studio under a virtual "
                   "display with `xvfb-run -a python main.py`, or use the headless commands: `python main.py --help`.")


def display_available() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    if os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY"):
        return True  # XWayland is not guaranteed, but GLFW's Wayland backend may work
    if not os.environ.get("DISPLAY"):
        return False
    lib = ctypes.util.find_library("X11")
    if lib is None:
        return True  # cannot check; let GLFW try
    x11 = ctypes.CDLL(lib)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = x11.XOpenDisplay(None)
    if not handle:
        return False
    x11.XCloseDisplay(handle)
    return True


@contextlib.contextmanager
def virtual_display(size: str = "1600x1000x24"):
    """Yield a usable DISPLAY: the current one, or a private Xvfb started (and stopped) here.

    Raises FileNotFoundError when there is no display and no Xvfb binary (apt-get install xvfb).
    """
    if display_available():
        yield os.environ.get("DISPLAY", "")
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise FileNotFoundError("no display and no Xvfb binary (apt-get install xvfb)")
    old = os.environ.get("DISPLAY")
    for num in range(90, 140):
        if Path(f"/tmp/.X11-unix/X{num}").exists() or Path(f"/tmp/.X{num}-lock").exists():
            continue
        proc = subprocess.Popen([xvfb, f":{num}", "-screen", "0", size, "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.environ["DISPLAY"] = f":{num}"
        deadline = time.monotonic() + 5
        while proc.poll() is None and not display_available() and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None and display_available():
            try:
                yield os.environ["DISPLAY"]
            finally:
                proc.terminate()
                proc.wait(timeout=5)
                _restore_display(old)
            return
        proc.kill()
        _restore_display(old)
    raise RuntimeError("could not start Xvfb on any display number 90-139")


def _restore_display(old: str | None) -> None:
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
