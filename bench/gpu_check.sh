#!/usr/bin/env bash
# The one script to run when a GPU is lent (cuda/README.md): environment, the compile gate and the CPU parity of the
# shared math (tests/test_cuda_math.py), then the CUDA backend against the torch reference on the GPU
# (tests/test_cuda_gpu.py). Everything it prints also goes under $OUT. Needs torch with CUDA, CuPy, pytest, numpy;
# no GUI packages (the tests it runs import none). Expected run time on an H100/H200: well under 8 minutes.
#
#   OUT=/tmp/gpu_check bash bench/gpu_check.sh
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export MIPSTUDIO_CUDA_BACKEND=1
cd "$(dirname "$0")/.."

{
  echo "# environment"
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'NO CUDA')"
  python3 -c "import cupy; print('cupy', cupy.__version__, 'nvrtc', cupy.cuda.nvrtc.getVersion())" || echo "cupy missing"
  command -v nvcc >/dev/null && nvcc --version | tail -1
  echo "# compile gate + CPU parity of the shared math"
  timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_cuda_math.py 2>&1 | tail -15
  echo "# CUDA backend vs the torch reference on the GPU"
  timeout 240 python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda_gpu.py 2>&1 | tail -40
} 2>&1 | tee "$OUT/gpu_check.txt"
