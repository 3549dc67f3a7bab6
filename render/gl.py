"""OpenGL context ownership (DESIGN §4).

A moderngl context is bound to the thread that made it, and an EGL context made on the Dear PyGui thread breaks
DPG's GLX context (BadAccess). So all offscreen GL work in mipstudio runs on **one dedicated GL thread** that owns
a standalone EGL context: callers hand it a function ``fn(ctx)`` and get the result back (:func:`gl_call`). The
GUI's render workers, the CLI and the tests all use the same path, so headless behaviour is what the GUI shows.
"""
from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

import numpy as np

T = TypeVar("T")


class GLUnavailable(RuntimeError):
    """No OpenGL 3.3 context could be created (missing EGL/Mesa libraries)."""


def create_headless_context():
    """A standalone moderngl context: EGL first (works without any display), then the default backend."""
    import moderngl

    errors = []
    for kwargs in ({"backend": "egl"}, {}):
        try:
            return moderngl.create_standalone_context(require=330, **kwargs)
        except Exception as e:  # noqa: BLE001 - report every backend's reason in one line
            errors.append(f"{kwargs.get('backend', 'default')}: {e}")
    raise GLUnavailable("cannot create an OpenGL 3.3 context (" + "; ".join(errors) +
                        "). Install Mesa EGL: apt-get install libegl1 libgl1-mesa-dri")


class GLThread:
    """A daemon thread owning one moderngl context; runs submitted callables in order."""

    def __init__(self) -> None:
        self._q: "queue.Queue[tuple[Callable[[Any], Any], Future] | None]" = queue.Queue()
        self._ready = threading.Event()
        self._init_error: BaseException | None = None
        self.ctx = None
        self.info: dict[str, str] = {}
        self._thread = threading.Thread(target=self._loop, name="mipstudio-gl", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._init_error is not None:
            raise GLUnavailable(str(self._init_error)) from self._init_error

    def _loop(self) -> None:
        try:
            self.ctx = create_headless_context()
            self.info = {k: str(self.ctx.info.get(k, "")) for k in ("GL_RENDERER", "GL_VERSION", "GL_VENDOR")}
        except BaseException as e:  # noqa: BLE001
            self._init_error = e
            self._ready.set()
            return
        self._ready.set()
        while True:
            item = self._q.get()
            if item is None:
                break
            fn, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(self.ctx))
            except BaseException as e:  # noqa: BLE001 - delivered to the caller
                fut.set_exception(e)
            del item, fn, fut  # do not keep the last job's arguments (meshes, arrays) alive while idle
        self.ctx.release()

    def submit(self, fn: Callable[[Any], T]) -> "Future[T]":
        fut: Future = Future()
        if threading.current_thread() is self._thread:  # re-entrant call from GL code: run inline
            fut.set_result(fn(self.ctx))
            return fut
        self._q.put((fn, fut))
        return fut

    def call(self, fn: Callable[[Any], T], timeout: float | None = None) -> T:
        return self.submit(fn).result(timeout)

    def stop(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=5)


_gl_thread: GLThread | None = None
_gl_lock = threading.Lock()


def gl_thread() -> GLThread:
    """The process-wide GL thread, started on first use."""
    global _gl_thread
    with _gl_lock:
        if _gl_thread is None:
            _gl_thread = GLThread()
        return _gl_thread


def gl_call(fn: Callable[[Any], T], timeout: float | None = None) -> T:
    """Run ``fn(ctx)`` on the GL thread and return its result (re-raises its exception)."""
    return gl_thread().call(fn, timeout)


class OffscreenTarget:
    """A colour (RGBA float32) + depth framebuffer with optional MSAA; ``read()`` returns top-row-first pixels.

    Create, use and release it inside GL-thread functions only.
    """

    def __init__(self, ctx, width: int, height: int, samples: int = 0) -> None:
        self.ctx, self.width, self.height = ctx, int(width), int(height)
        max_samples = int(ctx.max_samples) if samples else 0
        self.samples = min(samples, max_samples)
        size = (self.width, self.height)
        self.color = ctx.renderbuffer(size, 4, dtype="f4", samples=self.samples)
        self.depth = ctx.depth_renderbuffer(size, samples=self.samples)
        self.fbo = ctx.framebuffer([self.color], self.depth)
        if self.samples:
            self._resolve_color = ctx.renderbuffer(size, 4, dtype="f4")
            self._resolve = ctx.framebuffer([self._resolve_color])
        else:
            self._resolve = None

    def use(self, clear_color=(0.0, 0.0, 0.0, 0.0)) -> None:
        self.fbo.use()
        self.ctx.viewport = (0, 0, self.width, self.height)
        self.fbo.clear(*clear_color, depth=1.0)

    def read(self) -> np.ndarray:
        """HxWx4 float32, row 0 = top of the image (GL stores bottom row first)."""
        src = self.fbo
        if self._resolve is not None:
            self.ctx.copy_framebuffer(self._resolve, self.fbo)
            src = self._resolve
        raw = src.read(components=4, dtype="f4", attachment=0)
        img = np.frombuffer(raw, dtype=np.float32).reshape(self.height, self.width, 4)
        return np.ascontiguousarray(img[::-1])

    def read_depth(self) -> np.ndarray:
        """HxW float32 window depth in [0, 1] (1 = far/background), row 0 = top. Single-sample targets only."""
        if self.samples:
            raise ValueError("read_depth() needs a target without MSAA")
        raw = self.fbo.read(components=1, dtype="f4", attachment=-1)
        return np.ascontiguousarray(np.frombuffer(raw, dtype=np.float32).reshape(self.height, self.width)[::-1])

    def release(self) -> None:
        for obj in (self.fbo, self.color, self.depth):
            obj.release()
        if self._resolve is not None:
            self._resolve.release()
            self._resolve_color.release()


def gl_info() -> dict[str, str]:
    """Renderer/version strings of the GL thread's context (starts it if needed)."""
    return dict(gl_thread().info)


os.environ.setdefault("__GLVND_DISALLOW_PATCHING", "1")
