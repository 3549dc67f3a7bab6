#!/usr/bin/env bash
# The one script to run when a GPU is lent (cuda/README.md): environment, the compile gate and the CPU parity of the
# shared math (tests/test_cuda_math.py), then the CUDA backend against the torch reference on the GPU
# (tests/test_cuda_gpu.py: parity, gradients, the self-check, 200 training steps per backend), then the bench
# (bench/splat_gpu.py: fwd and fwd+bwd ms at 100k/1M x 648x420/1920x1080, training steps/s). Everything it prints
# goes to $OUT/gpu_check.txt, the bench rows to $OUT/splat_gpu.json. Needs torch with CUDA, CuPy, pytest, numpy;
# no GUI packages (nothing it runs imports them). Budget on an H100/H200: at most 8 minutes (the timeouts below).
#
#   OUT=/tmp/gpu_check bash bench/gpu_check.sh
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."

{
  echo "# environment"
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'NO CUDA')"
  python3 -c "import cupy; print('cupy', cupy.__version__, 'nvrtc', cupy.cuda.nvrtc.getVersion())" || echo "cupy missing"
  command -v nvcc >/dev/null && nvcc --version | tail -1
  echo "# compile gate + CPU parity of the shared math"
  timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_cuda_math.py 2>&1 | tail -15
  echo "# CUDA backend vs the torch reference on the GPU"
  timeout 180 python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda_gpu.py 2>&1 | tail -40
  echo "# bench: CUDA vs the torch reference on this GPU"
  timeout 200 python3 bench/splat_gpu.py --repeats 3 --json "$OUT/splat_gpu.json" 2>&1 | tail -30
} 2>&1 | tee "$OUT/gpu_check.txt"
