"""``main.py walk``: the neural-texture walkthrough in a full glfw window.

Same source, renderer and render worker as the studio's Walkthrough view (no second implementation): the window
thread only polls input, submits requests and shows finished frames, so it keeps drawing while NGSSF renders.
Cursor captured, mouse look, hold W/A/S/D + Space/Shift to fly, 1-6 pick the texture mode, R records (encoded
in the background), C saves a screenshot, ESC quits. Renders at a preview scale while you move (from the last
full render time) and at full resolution when still.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from methods.cli import positive_float, size_arg
from methods.neural_texture.modes import MODE_LABELS, MODES

KEYS = {"w": "W", "a": "A", "s": "S", "d": "D", "space": "SPACE", "shift": "LEFT_SHIFT"}
MOUSE_WARMUP_EVENTS = 3  # the first cursor events after capture jump (the reference skips 10 frames for this)

DISPLAY_VS = """
#version 330
out vec2 v_uv;
void main() {
    vec2 p = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);  // one triangle covering the screen
    v_uv = p;  // the texture holds the frame bottom row first, as GL expects
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
"""
DISPLAY_FS = """
#version 330
uniform sampler2D u_frame;
in vec2 v_uv;
out vec4 f_color;
void main() { f_color = vec4(texture(u_frame, v_uv).rgb, 1.0); }
"""


def add_walk_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=size_arg, default="1800x1000", metavar="WxH", help="window size")
    p.add_argument("--mode", default="ngssf", choices=MODES, help="texture mode to start in (keys 1-6 switch)")
    p.add_argument("--speed", type=positive_float, default=0.5, help="flying speed, fish units per second")
    p.add_argument("--screenshot", default="", metavar="PNG",
                   help="run for --seconds, save the window there and exit (docs, tests)")
    p.add_argument("--seconds", type=positive_float, default=5.0, help="how long to run before --screenshot")
    p.add_argument("--keys", default="", help="keys held from the start (scripted runs), e.g. 'w' to fly forward")


def overlay(image: np.ndarray, text: str) -> np.ndarray:
    """The frame as uint8 RGB with a status line drawn at the top left (Pillow's built-in font)."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.round(np.clip(image[..., :3], 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = draw.textbbox((6, 4), text)
    draw.rectangle((x0 - 4, y0 - 3, x1 + 4, y1 + 3), fill=(0, 0, 0))
    draw.text((6, 4), text, fill=(255, 220, 90))
    return np.asarray(img)


def run_walk(args: argparse.Namespace) -> int:  # noqa: C901 - one event loop, kept in one place on purpose
    import glfw

    from app.display import display_available

    if not display_available() or not glfw.init():
        print("mipstudio: walk needs a display; run `xvfb-run -a python3 main.py walk`, or render headless with "
              "`python3 main.py render walkthrough --out DIR` / `eval walkthrough`", file=sys.stderr)
        return 2
    import moderngl
    import torch

    from app.jobs_manager import JobManager
    from app.render_worker import DynamicResolution, RenderWorker
    from methods.neural_texture.live_source import (
        WalkthroughOptions,
        walkthrough_source,
    )
    from methods.neural_texture.recorder import (
        EncodeRecordingJob,
        PoseRecorder,
        next_numbered,
    )
    from render.camera import frame_camera
    from render.controls import FlyController
    from render.device import studio_torch_threads
    from render.live import RenderRequest

    torch.set_num_threads(studio_torch_threads())
    width, height = args.size
    glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
    glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
    glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
    window = glfw.create_window(width, height, "mipstudio walk", None, None)
    if not window:
        glfw.terminate()
        print("mipstudio: cannot open an OpenGL 3.3 window here (glfw); use the studio or `render walkthrough`",
              file=sys.stderr)
        return 2
    glfw.make_context_current(window)
    glfw.swap_interval(0)
    glfw.set_input_mode(window, glfw.CURSOR, glfw.CURSOR_DISABLED)
    ctx = moderngl.create_context()
    prog = ctx.program(vertex_shader=DISPLAY_VS, fragment_shader=DISPLAY_FS)
    vao = ctx.vertex_array(prog, [])
    texture = None

    source = walkthrough_source()
    worker = RenderWorker(source, name="walk")
    jobs = JobManager()
    fly = FlyController.from_camera(frame_camera(source.framing(), width, height))
    fly.speed = float(args.speed)
    dynres = DynamicResolution()
    state = {"mode": args.mode, "quit": False, "mouse": None, "events": 0, "record": None, "shot": False,
             "message": ""}
    held = {k for k in args.keys.split(",") if k in KEYS}

    def on_key(win, key, scancode, action, mods) -> None:
        if action != glfw.PRESS:
            return
        if key == glfw.KEY_ESCAPE:
            state["quit"] = True
        elif glfw.KEY_1 <= key <= glfw.KEY_1 + len(MODES) - 1:
            state["mode"] = MODES[key - glfw.KEY_1]
        elif key == glfw.KEY_R:
            state["toggle_record"] = True
        elif key == glfw.KEY_C:
            state["shot"] = True

    def on_cursor(win, x, y) -> None:
        last = state["mouse"]
        state["mouse"] = (x, y)
        state["events"] += 1
        if last is not None and state["events"] > MOUSE_WARMUP_EVENTS:
            fly.look(x - last[0], y - last[1])
            dynres.touch()

    glfw.set_key_callback(window, on_key)
    glfw.set_cursor_pos_callback(window, on_cursor)
    start = last = time.monotonic()
    shown_version, frame_times, status, last_request = -1, [], "", None
    out_root = Path.cwd() / "mipstudio_output" / "walkthrough"
    try:
        while not glfw.window_should_close(window) and not state["quit"]:
            now = time.monotonic()
            dt, last = now - last, now
            glfw.poll_events()
            keys = [k for k, name in KEYS.items() if glfw.get_key(window, getattr(glfw, f"KEY_{name}")) == glfw.PRESS]
            if args.screenshot and now - start >= args.seconds:
                held.clear()  # scripted keys are released at --seconds so the screenshot is a still, full frame
            keys += [k for k in held if k not in keys]
            if keys:
                fly.update(keys, dt)
                dynres.touch()
            if state.pop("toggle_record", False):
                if state["record"] is None:
                    state["record"] = PoseRecorder()
                else:
                    folder = out_root / time.strftime("walk_%Y%m%d_%H%M%S")
                    jobs.submit(EncodeRecordingJob(source.renderer, state["record"].frames, folder,
                                                   mode=state["mode"]))
                    state["record"], state["message"] = None, f"encoding -> {folder}"
            fw, fh = glfw.get_framebuffer_size(window)
            base = frame_camera(source.framing(), fw, fh)
            cam = fly.camera(base)
            if state["record"] is not None:
                state["record"].add(cam)
            scale = dynres.scale(worker.last_full_seconds) if dynres.interacting() else 1.0
            req_cam = cam.scaled(scale) if scale < 1.0 else cam
            req = RenderRequest(req_cam.width, req_cam.height, camera=req_cam, render_scale=scale,
                                preview=scale < 1.0, options=WalkthroughOptions(mode=state["mode"]))
            if not req.same_as(last_request):  # an unchanged view is not rendered again
                last_request = req
                worker.submit(req, (req_cam.width, req_cam.height))
            fin = worker.latest()
            if fin is not None and fin.version != shown_version:
                shown_version = fin.version
                frame_times = [t for t in frame_times if now - t < 2.0] + [now]
                fps = (len(frame_times) - 1) / max(frame_times[-1] - frame_times[0], 1e-6) if len(frame_times) > 1 \
                    else 0.0
                rec = f" · REC {len(state['record'].frames)}" if state["record"] is not None else ""
                rate = f"{fps:.1f} fps" if len(frame_times) > 1 else "still"  # renders/s over the last 2 s
                status = (f"{MODE_LABELS[MODES.index(fin.request.options.mode)]} · {rate} · "
                          f"{fin.request.width}x{fin.request.height}{' (preview)' if fin.request.preview else ''}"
                          f"{rec}{' · ' + state['message'] if state['message'] else ''}"
                          f" · keys 1-6 mode, WASD fly, R rec, C shot, ESC quit")
                img = overlay(fin.frame.image, status)
                if texture is None or texture.size != (img.shape[1], img.shape[0]):
                    if texture is not None:
                        texture.release()
                    texture = ctx.texture((img.shape[1], img.shape[0]), 3, alignment=1)
                texture.write(np.ascontiguousarray(img[::-1]).tobytes())  # GL rows go bottom-up
            if worker.error:
                state["message"] = worker.error
            if state.pop("shot", False) and texture is not None:
                path = next_numbered(out_root / "screenshots")
                path.parent.mkdir(parents=True, exist_ok=True)
                _save_window(ctx, fw, fh, path)
                state["message"] = f"saved {path}"
            ctx.screen.use()
            ctx.viewport = (0, 0, fw, fh)
            ctx.clear(0.08, 0.09, 0.11)
            if texture is not None:
                texture.use(0)
                vao.render(moderngl.TRIANGLES, vertices=3)
            glfw.swap_buffers(window)
            done = fin is not None and not fin.request.preview and fin.version == shown_version
            if args.screenshot and now - start >= args.seconds and done and worker.wait_idle(0.0):
                _save_window(ctx, fw, fh, Path(args.screenshot))
                print(f"screenshot: {args.screenshot} ({status})")
                break
            spare = 1 / 60 - (time.monotonic() - now)
            if spare > 0:
                time.sleep(spare)
    finally:
        worker.stop()
        for h in jobs.jobs:  # a recording still encoding finishes before the process ends
            if not h.finished:
                print(f"finishing: {h.snapshot().name} ...", file=sys.stderr)
                h.wait(600)
        jobs.shutdown(timeout=5.0)
        glfw.terminate()
    return 0


def _save_window(ctx, w: int, h: int, path: Path) -> None:
    from assets.cache import atomic_save_image

    raw = ctx.screen.read(viewport=(0, 0, w, h), components=3)
    img = np.frombuffer(raw, np.uint8).reshape(h, w, 3)[::-1]
    atomic_save_image(path, img.astype(np.float32) / 255.0)
