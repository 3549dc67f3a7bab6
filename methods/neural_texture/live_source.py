"""Live source of the Walkthrough view: the fish in any texture mode, a split of two modes, and on demand the
PSNR/SSIM of the shown frame against the supersampled reference."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from methods.metrics import psnr, ssim
from methods.neural_texture.modes import BOX_MATCHED_WIDTH, MODE_LABELS, MODES
from methods.neural_texture.renderer import WalkthroughRenderer
from render.live import Frame, Framing, RenderRequest
from render.mesh_source import mesh_framing
from render.options import option

SPLIT_CHOICES = ("off",) + MODES
SPLIT_LABELS = ("off",) + MODE_LABELS
SPLIT_LINE = (1.0, 0.85, 0.2)


@dataclass(frozen=True)
class WalkthroughOptions:
    mode: str = option("ngssf", choices=MODES, labels=MODE_LABELS, widget="radio", label="texture",
                       help="how the texture is filtered: GL hardware filters, one NGSSF query per pixel, or the "
                            "4x4 supersampled reference")
    split: str = option("off", choices=SPLIT_CHOICES, labels=SPLIT_LABELS, label="right half",
                        help="show another mode in the right half of the panel (split view)")
    filter_width: float = option(BOX_MATCHED_WIDTH, min=0.25, max=4.0, label="filter width",
                                 help="NGSSF footprint σ = width/2 pixels: 0.577 matches a supersampled (box) "
                                      "pixel's variance, 1 is the paper's σ = ½ px; larger blurs more")
    lighting: bool = option(True, help="the same Lambert term for every mode, applied after the texture lookup")
    compare: bool = option(False, label="PSNR vs reference",
                           help="also render the 4x4 supersampled reference and score the shown frame against it")


class WalkthroughSource:
    """Renders requests through one :class:`WalkthroughRenderer` (shared with ``walk`` and the CLI)."""

    Options = WalkthroughOptions

    def __init__(self, renderer: WalkthroughRenderer, problem: str = "") -> None:
        self.renderer = renderer
        self.problem = problem  # why NGSSF is unavailable, if it is
        self._framing = mesh_framing([renderer.mesh])
        self._lock = threading.Lock()

    def framing(self) -> Framing:
        return self._framing

    def describe(self) -> str:
        tex = self.renderer.texture_size[0]
        field = "neural texture loaded" if self.renderer.field is not None else f"no neural texture: {self.problem}"
        return f"fish · texture {tex}px · {field}"

    def render(self, request: RenderRequest) -> Frame:
        if request.camera is None:
            raise ValueError("the Walkthrough view needs a 3D camera")
        o: WalkthroughOptions = request.options
        cam = request.camera
        t0 = time.perf_counter()
        with self._lock:  # one GL renderer; NGSSF queries are heavy, two at once would only thrash 2 cores
            left = self.renderer.render(cam, o.mode, filter_width=o.filter_width, lighting=o.lighting)
            timings = {o.mode: left.seconds}
            image = left.image
            if o.split != "off" and o.split != o.mode:
                right = self.renderer.render(cam, o.split, filter_width=o.filter_width, lighting=o.lighting)
                timings[o.split] = right.seconds
                half = cam.width // 2
                image = np.concatenate([left.image[:, :half], right.image[:, half:]], axis=1)
                image[:, max(half - 1, 0):half + 1] = SPLIT_LINE
            aux: dict = {"mode": o.mode, "split": o.split, "queries": left.queries}
            if o.compare:
                ref = self.renderer.render(cam, "reference", lighting=o.lighting).image
                aux["psnr"] = float(psnr(left.image, ref))
                aux["ssim"] = float(ssim(left.image, ref))
                if o.split != "off" and o.split != o.mode:
                    aux["psnr_split"] = float(psnr(right.image, ref))
        timings["render"] = time.perf_counter() - t0
        return Frame(image, aux=aux, timings=timings)


def walkthrough_source() -> WalkthroughSource:
    """The fish with the bundled neural texture (or, without it, every mode but NGSSF and a one-line reason)."""
    from methods.neural_texture.texture import fish_mesh, load_texture_field

    mesh = fish_mesh()
    try:
        field, meta = load_texture_field()
        problem = ""
    except Exception as e:  # noqa: BLE001 - GL modes still work; the reason shows in the view
        field, meta, problem = None, {}, str(e).splitlines()[0] if str(e) else type(e).__name__
    return WalkthroughSource(WalkthroughRenderer(mesh, field, int(meta.get("texture_size", 0)) or None), problem)
