"""Building the CUDA sources in ``cuda/`` without a GPU: the compile options the runtime will use, and a PTX compile
with ``nvcc`` (or CuPy's low-level NVRTC, which works without a driver) for the compile gate.

The kernels are compiled at first use by CuPy (``RawModule``) on a GPU machine; here they are only compiled, so a
syntax or type error is caught on the development machine, with the same options and defines.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from pathlib import Path

CUDA_DIR = Path(__file__).resolve().parents[2] / "cuda"
NVRTC_OPTIONS = ("--std=c++17", f"-I{CUDA_DIR}")  # what RawModule gets at run time
ARCH = "sm_90"                                     # H100/H200, the GPUs the project is lent


class CameraStruct(ctypes.Structure):
    """``splat::Camera`` of cuda/splat_math.cuh, field for field (the CPU shim reports its size to check)."""

    _fields_ = [("R", ctypes.c_float * 9), ("t", ctypes.c_float * 3), ("fx", ctypes.c_float), ("fy", ctypes.c_float),
                ("cx", ctypes.c_float), ("cy", ctypes.c_float), ("lim", ctypes.c_float * 4),
                ("width", ctypes.c_int), ("height", ctypes.c_int), ("tile", ctypes.c_int),
                ("near_z", ctypes.c_float), ("dilation", ctypes.c_float), ("compensate", ctypes.c_int)]


def camera_struct(viewmat, K, width: int, height: int, *, dilation: float, compensate: bool, near: float = 0.2,
                  tile: int = 16) -> CameraStruct:
    """The kernels' camera from a (4, 4) world-to-camera matrix and (3, 3) intrinsics (array-likes), with the
    reference's Jacobian clamp limits (render/splat/projection.py)."""
    import numpy as np

    from render.splat.projection import FRUSTUM_CLAMP

    vm, k = np.asarray(viewmat, np.float64), np.asarray(K, np.float64)
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    slack = FRUSTUM_CLAMP - 1.0
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lim = ((width - cx) / fx + slack * tan_x, cx / fx + slack * tan_x,
           (height - cy) / fy + slack * tan_y, cy / fy + slack * tan_y)
    return CameraStruct((ctypes.c_float * 9)(*vm[:3, :3].ravel()), (ctypes.c_float * 3)(*vm[:3, 3]), fx, fy, cx, cy,
                        (ctypes.c_float * 4)(*lim), int(width), int(height), int(tile), float(near), float(dilation),
                        int(bool(compensate)))


class CompilerMissing(RuntimeError):
    """Neither nvcc nor CuPy's NVRTC is installed."""


def sources() -> list[Path]:
    """The kernel sources (``cuda/*.cu``)."""
    return sorted(CUDA_DIR.glob("*.cu"))


def compile_ptx(source: Path, arch: str = ARCH) -> str:
    """PTX of one ``.cu`` with the runtime options; warnings are errors. Raises RuntimeError with the compiler's
    log on failure, :class:`CompilerMissing` when no compiler is installed."""
    nvcc = shutil.which("nvcc")
    if nvcc is not None:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.ptx"
            proc = subprocess.run([nvcc, "-ptx", f"-arch={arch}", "-Werror", "all-warnings", *NVRTC_OPTIONS,
                                   str(source), "-o", str(out)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"nvcc failed on {source.name}:\n{proc.stderr.strip()}")
            return out.read_text()
    try:
        from cupy.cuda import nvrtc
    except ImportError as e:
        raise CompilerMissing("no nvcc on PATH and no CuPy (pip install cupy-cuda12x) to compile cuda/*.cu") from e
    prog = nvrtc.createProgram(source.read_text(), source.name, [], [])
    options = [f"-arch={arch.replace('sm_', 'compute_')}", *NVRTC_OPTIONS]
    try:
        nvrtc.compileProgram(prog, options)
    except nvrtc.NVRTCError as e:
        raise RuntimeError(f"NVRTC failed on {source.name}:\n{nvrtc.getProgramLog(prog)}") from e
    log = nvrtc.getProgramLog(prog).strip()
    if "warning" in log:
        raise RuntimeError(f"NVRTC warned on {source.name}:\n{log}")
    return nvrtc.getPTX(prog).decode() if isinstance(nvrtc.getPTX(prog), bytes) else nvrtc.getPTX(prog)
