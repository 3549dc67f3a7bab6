"""``main.py render ngssf``: a trained field at any Gaussian scale, written as an image (2D fields) or as a
smoothed mesh (3D SDF fields: marching cubes of the zero level set, PLY/OBJ)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from render.tensors import to_numpy


def parse_cov(text: str, dim: int) -> float | torch.Tensor:
    """"1e-3" (a variance) or "a,b,c" (2D covariance [[a,b],[b,c]]) or six values xx,xy,xz,yy,yz,zz (3D)."""
    vals = [float(v) for v in text.split(",") if v.strip()]
    if len(vals) == 1:
        return vals[0]
    need = {2: 3, 3: 6}[dim]
    if len(vals) != need:
        raise ValueError(f"--cov for a {dim}D field needs 1 value (variance) or {need} (upper triangle), "
                         f"got {len(vals)}")
    m = torch.zeros(dim, dim)
    iu = torch.triu_indices(dim, dim)
    m[iu[0], iu[1]] = torch.tensor(vals)
    return m + m.triu(1).T


def load_any_field(spec: str):
    """A training checkpoint path or the name of a bundled demo field."""
    from methods.ngssf.demo import DEMO_NAMES, load_demo

    if spec in DEMO_NAMES and not Path(spec).is_file():
        return load_demo(spec).field
    from methods.ngssf.train import load_field

    return load_field(spec)[0]


def render_field(spec: str, cov_text: str, out: str, size: int = 512, res: int = 128) -> str:
    """Write ``out`` and return a one-line summary."""
    from methods.field import eval_grid

    field = load_any_field(spec)
    cov = parse_cov(cov_text, field.dim)
    cov_arg = None if isinstance(cov, float) and cov == 0.0 else cov
    suffix = Path(out).suffix.lower()
    t0 = time.perf_counter()
    if field.dim == 3:
        from methods.ngssf.signals import export_mesh, extract_mesh

        if suffix not in (".ply", ".obj"):
            raise ValueError(f"a 3D field exports a mesh: use a .ply or .obj output, not '{suffix or out}'")
        mesh = extract_mesh(field, res=res, cov=cov_arg)
        if len(mesh.faces) == 0:
            raise ValueError(f"no surface at this scale (the smoothed SDF has no zero crossing); try a smaller "
                             f"variance than {cov_text}")
        export_mesh(mesh, out)
        return f"wrote {out}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces ({res}³ grid, " \
               f"{time.perf_counter() - t0:.1f} s)"
    if field.dim != 2:
        raise ValueError(f"cannot render a {field.dim}D field")
    if suffix not in (".png", ".jpg", ".jpeg"):
        raise ValueError(f"a 2D field renders an image: use a .png or .jpg output, not '{suffix or out}'")
    from assets.cache import atomic_save_image

    img = to_numpy(eval_grid(field, (size, size), cov_arg))
    if img.shape[-1] == 1:  # scalar fields (Ackley) as grey
        lo, hi = float(img.min()), float(img.max())
        img = np.repeat((img - lo) / max(hi - lo, 1e-12), 3, axis=-1)
    else:
        img = (np.clip(img, -1, 1) + 1) / 2
    atomic_save_image(out, img)
    return f"wrote {out} ({size}x{size}, {time.perf_counter() - t0:.1f} s)"
