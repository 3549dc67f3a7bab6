"""Read and write the standard 3DGS ``.ply`` so that models move freely between mipstudio and other tools.

Layout (what the reference trainer writes and every splat viewer reads): one ``vertex`` element, binary
little-endian, all ``float``:

    x y z nx ny nz f_dc_0..2 f_rest_0..(3K−4) opacity scale_0..2 rot_0..3 [filter_3D]

- values are stored pre-activation (logit opacity, log scale, raw wxyz quaternion with ``rot_0`` = w);
- ``f_rest`` is **channel-major**: all R coefficients of bands ≥ 1, then all G, then all B; its count (0, 9, 24, 45)
  gives the SH degree (0..3);
- normals are written as zeros and ignored on load;
- ``filter_3D`` is Mip-Splatting's optional 63rd property.

Reading is lenient about encoding (ASCII, big-endian and non-float32 numeric properties are converted to float32,
extra properties ignored) and strict about content: anything unusable raises :class:`PlyError` with one line naming
the file, the problem and what to do, because that line is what the GUI and the CLI show.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from methods.gaussians.model import GaussianModel, num_sh_coeffs
from methods.io import atomic_write
from render.tensors import to_numpy

__all__ = ["PlyError", "load_ply", "save_ply", "ply_property_names"]

_F_REST_TO_DEGREE = {3 * (num_sh_coeffs(d) - 1): d for d in range(4)}  # {0: 0, 9: 1, 24: 2, 45: 3}
_BASE_REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                  "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
_F_REST_RE = re.compile(r"^f_rest_(\d+)$")


class PlyError(ValueError):
    """A PLY file cannot be used as a Gaussian model; ``str(err)`` is one human-readable line."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        super().__init__(" ".join(f"{Path(path).name}: {problem}".split()))
        self.path = Path(path)


def ply_property_names(sh_degree: int, *, with_filter_3d: bool = False) -> list[str]:
    """The vertex properties in file order for a model of SH degree ``sh_degree`` (62 for degree 3)."""
    n_rest = 3 * (num_sh_coeffs(sh_degree) - 1)
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(n_rest)]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    return names + (["filter_3D"] if with_filter_3d else [])


def _compact(names: list[str]) -> str:
    """'scale_0, scale_1, scale_2, opacity' -> 'scale_0..2, opacity' so a missing-property line stays short."""
    out: list[str] = []
    i = 0
    while i < len(names):
        m = re.match(r"^(.*_)(\d+)$", names[i])
        j = i
        if m:
            while (j + 1 < len(names) and re.match(rf"^{re.escape(m.group(1))}(\d+)$", names[j + 1])
                   and int(names[j + 1][len(m.group(1)):]) == int(m.group(2)) + (j + 1 - i)):
                j += 1
        out.append(names[i] if j == i else f"{names[i]}..{int(m.group(2)) + (j - i)}")
        i = j + 1
    return ", ".join(out)


# ----- saving -----------------------------------------------------------------------------------------------------
def _model_columns(model: GaussianModel, bake_3d_filter: bool) -> tuple[list[str], np.ndarray]:
    n = model.num_gaussians
    with torch.no_grad():
        log_scales = to_numpy(model.log_scales).astype(np.float32)
        logit_op = to_numpy(model.logit_opacities).astype(np.float32)
        if bake_3d_filter:
            if model.filter_3d is None:
                raise ValueError("cannot bake the 3D filter: this model has none (compute it with compute_3d_filter "
                                 "from the training cameras, or save without bake_3d_filter)")
            # float64 so that neither the exp/log of tiny scales nor the logit of opacities near 1 lose precision.
            s2 = np.exp(2.0 * to_numpy(model.log_scales.double()))
            f2 = np.square(to_numpy(model.filter_3d.double()))[:, None]
            s2f = s2 + f2
            log_scales = (0.5 * np.log(s2f)).astype(np.float32)
            o = 1.0 / (1.0 + np.exp(-to_numpy(model.logit_opacities.double())))
            o = np.clip(o * np.sqrt(np.prod(s2, axis=1) / np.prod(s2f, axis=1)), 1e-30, None)
            logit_op = (np.log(o) - np.log1p(-o)).astype(np.float32)
        sh_rest = to_numpy(model.sh_rest).astype(np.float32)
        cols = [
            to_numpy(model.means).astype(np.float32),
            np.zeros((n, 3), np.float32),
            to_numpy(model.sh_dc).astype(np.float32).reshape(n, 3),
            np.ascontiguousarray(sh_rest.transpose(0, 2, 1)).reshape(n, -1),  # (N,K,3) -> (N,3,K): channel-major
            logit_op.reshape(n, 1),
            log_scales,
            to_numpy(model.quats).astype(np.float32),
        ]
        with_filter = model.filter_3d is not None and not bake_3d_filter
        if with_filter:
            cols.append(to_numpy(model.filter_3d).astype(np.float32).reshape(n, 1))
    return ply_property_names(model.max_sh_degree, with_filter_3d=with_filter), np.concatenate(cols, axis=1)


def save_ply(model: GaussianModel, path: str | os.PathLike, *, bake_3d_filter: bool = False) -> Path:
    """Write ``model`` as a standard 3DGS PLY (atomically; returns the path).

    A model with a 3D filter gets the extra ``filter_3D`` property. ``bake_3d_filter`` instead writes the filtered
    scales log(s′) and opacities logit(o′) into the standard 62 properties, so viewers without Mip-Splatting's 3D
    filter show the filtered model (they still need its 2D filter to match exactly).
    """
    names, data = _model_columns(model, bake_3d_filter)
    header = "\n".join(["ply", "format binary_little_endian 1.0", f"element vertex {data.shape[0]}",
                        *(f"property float {name}" for name in names), "end_header"]) + "\n"
    body = np.ascontiguousarray(data, dtype="<f4").tobytes()

    def write(f) -> None:
        f.write(header.encode("ascii"))
        f.write(body)

    return atomic_write(path, write)


# ----- loading ----------------------------------------------------------------------------------------------------
_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}
_MAX_HEADER = 1 << 20


def _fast_vertex(path: Path) -> np.ndarray | None:
    """The vertex block as ONE structured read, dtype from the header — for the binary files every 3DGS tool writes
    (plyfile's general reader walks them property by property: ~5 s per 100k Gaussians, this ~0.05 s).

    Returns None whenever the file is anything else (ASCII, list properties in the vertex element, a vertex element
    after another element, an odd header), so the general reader handles it with its own messages; raises only for
    a truncated vertex block. Elements after the vertex element (faces, …) are not read."""
    with open(path, "rb") as f:
        head = f.read(_MAX_HEADER)
    raw_lines, offset = [], 0
    while True:  # header lines up to the one that IS end_header (a comment may mention it)
        nl = head.find(b"\n", offset)
        if nl < 0:
            return None
        line = head[offset:nl].rstrip(b"\r")
        offset = nl + 1
        if line.strip() == b"end_header":
            break
        raw_lines.append(line)
    try:
        lines = [line.decode("ascii") for line in raw_lines]
    except UnicodeDecodeError:
        return None
    fmt, elements = None, []  # [(name, count, [(prop, dtype code)])]
    for line in lines[1:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) == 3 and words[2] == "1.0":
            fmt = {"binary_little_endian": "<", "binary_big_endian": ">"}.get(words[1])
            if fmt is None:
                return None
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            if any(e[0] == words[1] for e in elements):
                return None  # a repeated element name: the full parser decides
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and len(elements) > 1:
            continue  # elements after the first are never read here
        elif words[0] == "property" and len(words) == 3 and elements and words[1] in _PLY_TYPES:
            elements[-1][2].append((words[2], _PLY_TYPES[words[1]]))
        else:
            return None  # list properties in the vertex element, unknown types, anything unusual
    if fmt is None or not elements or elements[0][0] != "vertex" or not elements[0][2]:
        return None
    names = [name for name, _ in elements[0][2]]
    if len(set(names)) != len(names):
        return None
    count = elements[0][1]
    dtype = np.dtype([(name, fmt + code) for name, code in elements[0][2]])
    size = os.path.getsize(path) - offset
    if size < count * dtype.itemsize:
        raise PlyError(path, "data is truncated (the file ends before all vertices); it was cut off while "
                             "copying or writing, re-export or re-copy it")
    if len(elements) == 1 and size > count * dtype.itemsize:
        raise PlyError(path, f"{size - count * dtype.itemsize:,} bytes follow the {count:,} vertices the header "
                             "declares: its vertex count or property types do not match the data; re-export it")
    return np.fromfile(path, dtype=dtype, count=count, offset=offset)


def _read_vertex(path: Path) -> np.ndarray:
    """The vertex element's structured array, every failure mapped to a one-line :class:`PlyError`."""
    import plyfile

    if not path.exists():
        raise PlyError(path, f"file not found ({path}); check the path")
    if not path.is_file():
        raise PlyError(path, f"not a file ({path})")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:3] != b"ply" or magic[3:4] not in (b"\n", b"\r"):
        raise PlyError(path, "not a PLY file (it does not start with 'ply'); pick a 3D Gaussian .ply")
    fast = _fast_vertex(path)
    if fast is not None:
        return fast
    try:
        data = plyfile.PlyData.read(str(path), mmap=False)
    except plyfile.PlyElementParseError as e:
        if "end-of-file" in str(e):
            raise PlyError(path, "data is truncated (the file ends before all vertices); it was cut off while "
                                 "copying or writing, re-export or re-copy it") from None
        raise PlyError(path, f"unreadable PLY data ({e}); re-export the file") from None
    except (plyfile.PlyParseError, UnicodeDecodeError, ValueError, EOFError) as e:
        raise PlyError(path, f"malformed PLY header ({' '.join(str(e).split())}); re-export the file") from None
    elements = {el.name: el for el in data.elements}
    if "vertex" not in elements:
        found = ", ".join(elements) or "none"
        raise PlyError(path, f"no 'vertex' element (elements: {found}); a 3D Gaussian PLY stores one per Gaussian")
    vertex = elements["vertex"].data
    lists = [name for name in vertex.dtype.names or () if vertex.dtype[name].kind == "O"]
    if lists:
        raise PlyError(path, f"vertex properties {_compact(lists)} are lists; a 3D Gaussian PLY has scalars only")
    return vertex


def load_ply(path: str | os.PathLike, *, device: str | torch.device = "cpu", nonfinite: str = "drop") -> GaussianModel:
    """Load a 3DGS / Mip-Splatting PLY. The SH degree comes from the ``f_rest`` count; ``filter_3D`` is read when
    present. The active SH degree is set to the maximum (a finished model renders with all bands).

    Gaussians with NaN/Inf in any used property are dropped (``nonfinite="drop"``; one diverged Gaussian should not
    cost the user the scene) and ``model.load_note`` says how many, in one line ("" when none); with
    ``nonfinite="error"`` — or when every Gaussian is bad — they are a :class:`PlyError` instead."""
    if nonfinite not in ("drop", "error"):
        raise ValueError(f"nonfinite must be 'drop' or 'error', got {nonfinite!r}")
    path = Path(path)
    vertex = _read_vertex(path)
    names = list(vertex.dtype.names or ())
    present = set(names)
    missing = [p for p in _BASE_REQUIRED if p not in present]
    if missing:
        hint = ("; this looks like a plain point cloud, not a trained Gaussian model — use it to initialise training"
                if {"red", "green", "blue"} & present or "f_dc_0" not in present else "")
        raise PlyError(path, f"missing required properties {_compact(missing)}{hint}")
    rest_idx = sorted(int(m.group(1)) for m in map(_F_REST_RE.match, names) if m)
    if len(rest_idx) not in _F_REST_TO_DEGREE:
        raise PlyError(path, f"has {len(rest_idx)} f_rest_* properties, expected 0, 9, 24 or 45 (SH degree 0-3); "
                             "the file is not a standard 3DGS export")
    if rest_idx != list(range(len(rest_idx))):
        gaps = sorted(set(range(len(rest_idx))) - set(rest_idx))
        raise PlyError(path, f"f_rest_* properties are not numbered 0..{len(rest_idx) - 1} "
                             f"(missing {_compact([f'f_rest_{i}' for i in gaps])}); the file is damaged")
    n = int(vertex.shape[0])
    if n == 0:
        raise PlyError(path, "has 0 vertices (an empty model); nothing to load")
    degree = _F_REST_TO_DEGREE[len(rest_idx)]
    used = [*_BASE_REQUIRED, *(f"f_rest_{i}" for i in rest_idx)] + (["filter_3D"] if "filter_3D" in present else [])
    nonnumeric = [p for p in used if vertex.dtype[p].kind not in "fiu"]
    if nonnumeric:
        raise PlyError(path, f"properties {_compact(nonnumeric)} are not numeric")
    cols = {p: np.asarray(vertex[p]).astype(np.float32) for p in used}  # also converts byte order / f8 / ints
    bad = {p: int(np.count_nonzero(~np.isfinite(c))) for p, c in cols.items()}
    bad = {p: k for p, k in bad.items() if k}
    note = ""
    if bad:
        total = sum(bad.values())
        rows = np.zeros(n, bool)
        for p in bad:
            rows |= ~np.isfinite(cols[p])
        n_bad = int(rows.sum())
        if nonfinite == "error" or n_bad == n:
            everything = f"all {n} Gaussians have them; " if n_bad == n else ""
            raise PlyError(path, f"{total} NaN/Inf values (in {_compact(list(bad))}); {everything}the model diverged "
                                 "or the file is corrupt — re-export it from an earlier checkpoint")
        cols = {p: c[~rows] for p, c in cols.items()}
        note = (f"{path.name}: dropped {n_bad:,} of {n:,} Gaussians with NaN/Inf values (in {_compact(list(bad))}); "
                "the rest are shown")
        n -= n_bad

    def stack(keys: list[str]) -> torch.Tensor:
        if not keys:  # SH degree 0 has no f_rest columns
            return torch.zeros(n, 0)
        return torch.from_numpy(np.stack([cols[k] for k in keys], axis=1))

    k_rest = num_sh_coeffs(degree) - 1
    sh_rest = stack([f"f_rest_{i}" for i in rest_idx]).reshape(n, 3, k_rest).transpose(1, 2).contiguous()
    model = GaussianModel(
        stack(["x", "y", "z"]),
        stack(["rot_0", "rot_1", "rot_2", "rot_3"]),
        stack(["scale_0", "scale_1", "scale_2"]),
        torch.from_numpy(cols["opacity"].copy()),
        stack(["f_dc_0", "f_dc_1", "f_dc_2"]).reshape(n, 1, 3),
        sh_rest,
        max_sh_degree=degree,
        active_sh_degree=degree,
        filter_3d=torch.from_numpy(cols["filter_3D"].copy()) if "filter_3D" in cols else None,
    )
    model = model if str(device) == "cpu" else model.to(device)
    model.load_note = note
    return model
