"""Building the CUDA sources in ``cuda/`` without a GPU: the compile options the runtime will use, and a PTX compile
with ``nvcc`` (or CuPy's low-level NVRTC, which works without a driver) for the compile gate.

The kernels are compiled at first use by CuPy (``RawModule``) on a GPU machine; here they are only compiled, so a
syntax or type error is caught on the development machine, with the same options and defines.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CUDA_DIR = Path(__file__).resolve().parents[2] / "cuda"
NVRTC_OPTIONS = ("--std=c++17", f"-I{CUDA_DIR}")  # what RawModule gets at run time
ARCH = "sm_90"                                     # H100/H200, the GPUs the project is lent


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
