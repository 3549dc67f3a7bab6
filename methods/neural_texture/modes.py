"""The walkthrough's texture modes (a torch-free module, so CLI choices and option dataclasses load fast)."""
from __future__ import annotations

MODES = ("nearest", "bilinear", "trilinear", "aniso16", "ngssf", "reference")
MODE_LABELS = ("nearest (1 sample)", "GL bilinear", "GL trilinear mipmaps", "GL anisotropic 16x", "NGSSF (1 query)",
               "supersampled reference")
EVAL_MODES = ("nearest", "bilinear", "trilinear", "aniso16", "ngssf")

# A supersampled (box-filtered) pixel has variance 1/12 px² per axis; the footprint Gaussian σ = w/2 px matches it
# at w = 2/√12 ≈ 0.577. w = 1 is the NGSSF paper's σ = ½ px. Measured on the default path at 1/4x (fish PSNR vs
# 16×16 supersampling): w = 1 → 29.2 dB, 0.577 → 31.0 dB.
BOX_MATCHED_WIDTH = round(2 / 12 ** 0.5, 3)
