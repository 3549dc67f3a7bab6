"""The walkthrough's texture modes (a torch-free module, so CLI choices and option dataclasses load fast)."""
from __future__ import annotations

MODES = ("nearest", "bilinear", "trilinear", "aniso16", "ngssf", "reference")
MODE_LABELS = ("nearest (1 sample)", "GL bilinear", "GL trilinear mipmaps", "GL anisotropic 16x", "NGSSF (1 query)",
               "supersampled reference")
EVAL_MODES = ("nearest", "bilinear", "trilinear", "aniso16", "ngssf")
