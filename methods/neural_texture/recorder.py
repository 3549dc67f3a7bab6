"""Recording a walkthrough: the view collects camera poses while R is on (cheap, on the UI thread); stopping turns
them into a job that renders every pose at full resolution in the shown mode and writes

    <folder>/video.mp4      what was shown (H.264 4:4:4 via imageio-ffmpeg, high quality)
    <folder>/uv/NNNNN.png   the UV G-buffer frames as 16-bit RGBA PNGs (u, v, 0, coverage), like the NGSSF
                            reference's UV sequences (v as OpenGL stores it: 0 = bottom of the texture)
    <folder>/path.json      the camera path (methods/neural_texture/path.py format, plus the mode and options)

into a temporary folder renamed into place at the end, so a cancelled or failed recording leaves nothing behind.
``render walkthrough --path <folder>/path.json`` reproduces the video's frames.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from methods.jobs import JobCancelled, Progress, ProgressFn, StopFn
from methods.neural_texture.modes import BOX_MATCHED_WIDTH
from methods.neural_texture.path import PathFrame
from render.camera import Camera

VIDEO_FPS = 30


@dataclass
class PoseRecorder:
    """Camera poses sampled at most ``fps`` times per second of wall time (the UI runs faster)."""

    fps: float = VIDEO_FPS
    frames: list[PathFrame] = field(default_factory=list)
    _last: float = -1e9

    def add(self, camera: Camera, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now - self._last < 1.0 / self.fps - 1e-6:
            return False
        self._last = now
        self.frames.append(PathFrame.from_camera(camera))
        return True


def next_numbered(folder: Path, suffix: str = ".png", digits: int = 5) -> Path:
    """``folder/NNNNN.suffix`` numbered on from the highest existing number (never overwrites)."""
    nums = [int(p.stem) for p in folder.glob(f"*{suffix}") if p.stem.isdigit()] if folder.is_dir() else []
    return folder / f"{(max(nums) + 1 if nums else 0):0{digits}d}{suffix}"


@dataclass
class EncodeRecordingJob:
    """Renders recorded poses and writes video, UV frames and path (see the module docstring)."""

    renderer: Any  # WalkthroughRenderer
    frames: list[PathFrame]
    out_dir: Path
    mode: str = "ngssf"
    filter_width: float = BOX_MATCHED_WIDTH
    lighting: bool = True
    name: str = "encode walkthrough recording"

    def run(self, progress: ProgressFn, should_stop: StopFn) -> dict:
        import imageio.v2 as imageio

        from assets.images import encode_png16

        if not self.frames:
            raise ValueError("the recording has no frames (hold R a little longer)")
        out = Path(self.out_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "uv").mkdir(parents=True)
        n = len(self.frames)
        try:
            w0, h0 = self.frames[0].width // 2 * 2, self.frames[0].height // 2 * 2  # H.264 wants even sizes
            # yuv444p: 4:2:0 chroma subsampling shifts dark colours by 2 levels (39.5 dB against the same render);
            # full chroma keeps the video within ~0.5 level of the frames `render walkthrough` reproduces
            writer = imageio.get_writer(tmp / "video.mp4", fps=VIDEO_FPS, codec="libx264", quality=10,
                                        pixelformat="yuv444p", macro_block_size=2, ffmpeg_log_level="error")
            try:
                for i, fr in enumerate(self.frames):
                    if should_stop():
                        raise JobCancelled()
                    cam = fr.camera()
                    img = self.renderer.render(cam, self.mode, filter_width=self.filter_width,
                                               lighting=self.lighting).image
                    g = self.renderer.renderer.render_uv([self.renderer.mesh], cam)
                    uv16 = np.zeros(g.uv.shape[:2] + (4,), np.uint16)
                    uv16[..., :2] = np.round(np.clip(g.uv, 0, 1) * 65535)
                    uv16[..., 3] = g.mask * 65535
                    (tmp / "uv" / f"{i:05d}.png").write_bytes(encode_png16(uv16))
                    writer.append_data(np.round(np.clip(img[:h0, :w0], 0, 1) * 255).astype(np.uint8))
                    progress(Progress(i + 1, n, message=f"frame {i + 1}/{n}", preview=img))
            finally:
                writer.close()
            doc = {"frames": [f.to_json() for f in self.frames], "mode": self.mode,
                   "filter_width": self.filter_width, "lighting": self.lighting, "fps": VIDEO_FPS}
            (tmp / "path.json").write_text(json.dumps(doc, indent=1))
            if out.exists():
                raise ValueError(f"{out} already exists; not overwriting it")
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return {"folder": str(out), "frames": n}
