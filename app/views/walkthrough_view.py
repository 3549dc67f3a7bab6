"""Walkthrough view: fly around the fish with its texture filtered by the GL hardware, by one NGSSF query per
pixel, or supersampled; R records (video + UV frames + camera path, encoded as a background job), C saves a
numbered screenshot. The rendering is methods/neural_texture (shared with ``main.py render/eval walkthrough``)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import dearpygui.dearpygui as dpg

from app.views import register_view
from app.views.base import OPTIONS_WIDTH, View, one_line
from app.widgets.options_form import HELP_COLOR


def output_root() -> Path:
    """Where recordings and screenshots go: $MIPSTUDIO_OUTPUT/walkthrough, else ./mipstudio_output/walkthrough."""
    return Path(os.environ.get("MIPSTUDIO_OUTPUT") or Path.cwd() / "mipstudio_output") / "walkthrough"


@register_view
class WalkthroughView(View):
    name = "walkthrough"

    def create_source(self):
        self.recording = None  # a PoseRecorder while R is on
        self.last_recording = None  # (job handle, folder)
        self.last_screenshot: Path | None = None
        return super().create_source()

    def build_extra(self, parent: int | str) -> None:
        t, n = self.tags, self.name
        dpg.add_separator(parent=parent)
        t["speed"] = dpg.add_slider_float(label="speed", min_value=0.05, max_value=5.0, default_value=self.fly.speed,
                                          format="%.2f /s", width=OPTIONS_WIDTH - 116, parent=parent,
                                          tag=f"{n}.speed")
        with dpg.group(horizontal=True, parent=parent):
            t["record"] = dpg.add_button(label="Record (R)", callback=lambda: self.toggle_recording())
            dpg.add_button(label="Shot (C)", callback=lambda: self.screenshot())
        t["record_status"] = dpg.add_text("", parent=parent, wrap=OPTIONS_WIDTH - 20, tag=f"{n}.record_status")
        dpg.add_text(f"Files go to {output_root()}. Fly: hold W/A/S/D, Space/Shift; drag to look. Click the "
                     f"picture first so keys reach the view.", parent=parent, wrap=OPTIONS_WIDTH - 20,
                     color=HELP_COLOR)
        dpg.set_value(t["camera_mode"], "Fly")

    # ----- R and C ------------------------------------------------------------------------------------------
    def handle_input(self, inp, has_focus: bool) -> bool:
        changed = super().handle_input(inp, has_focus)
        if has_focus and "r" in inp.keys_pressed:  # edge-triggered: one press, one action
            self.toggle_recording()
        if has_focus and "c" in inp.keys_pressed:
            self.screenshot()
        return changed

    def toggle_recording(self):
        """Start collecting camera poses, or stop and encode them (a job in the Jobs panel); returns the job
        handle when stopping."""
        from methods.neural_texture.recorder import EncodeRecordingJob, PoseRecorder

        if self.recording is None:
            self.recording = PoseRecorder()
            self._record_pose()
            return None
        poses, self.recording = self.recording.frames, None
        o = self.options
        folder = output_root() / time.strftime("walk_%Y%m%d_%H%M%S")
        k = 1
        while folder.exists():
            folder = folder.with_name(f"{folder.name.split('-')[0]}-{k}")
            k += 1
        job = EncodeRecordingJob(self.source.renderer, poses, folder, mode=o.mode, filter_width=o.filter_width,
                                 lighting=o.lighting)
        handle = self.studio.jobs.submit(job)
        self.last_recording = (handle, folder)
        return handle

    def _record_pose(self) -> None:
        if self.recording is not None and self.panel_size[0]:
            self.recording.add(self.current_camera(*self.panel_size, self.zoom))

    def screenshot(self) -> Path | None:
        """Save what the panel shows as the next numbered PNG."""
        from assets.cache import atomic_save_image
        from methods.neural_texture.recorder import next_numbered

        img = self.last_image()
        if img is None:
            return None
        folder = output_root() / "screenshots"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = next_numbered(folder)
            atomic_save_image(path, img[..., :3])
        except Exception as e:  # noqa: BLE001 - a read-only folder is a message, not a crash
            self.show_error(f"cannot save a screenshot in {folder}: {one_line(e)}")
            return None
        self.last_screenshot = path
        return path

    # ----- per frame ----------------------------------------------------------------------------------------
    def update(self, inp, has_focus: bool) -> None:
        if "speed" in self.tags and self.fly is not None:
            self.fly.speed = float(dpg.get_value(self.tags["speed"]))
        self._record_pose()
        super().update(inp, has_focus)

    def info(self) -> str:
        parts = [super().info()]
        fin = self.worker.latest()
        aux = fin.frame.aux if fin is not None else {}
        if "psnr" in aux:
            parts.append(f"{aux['mode']}: PSNR {aux['psnr']:.2f} dB / SSIM {aux['ssim']:.3f} vs 4x4 reference"
                         + (f" · {aux['split']}: {aux['psnr_split']:.2f} dB" if "psnr_split" in aux else ""))
        status = ""
        if self.recording is not None:
            status = f"recording: {len(self.recording.frames)} frames (R stops)"
        elif self.last_recording is not None:
            handle, folder = self.last_recording
            snap = handle.snapshot()
            status = (f"saved {folder}" if snap.status.name == "DONE" else
                      f"encoding {snap.step}/{snap.total} -> {folder.name}" if not snap.finished else
                      f"recording {snap.status.value}: {one_line(snap.error or '')}")
        if self.last_screenshot is not None and not status:
            status = f"screenshot {self.last_screenshot}"
        dpg.set_value(self.tags["record_status"], status)
        return " · ".join(p for p in parts if p)
