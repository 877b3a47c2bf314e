#!/usr/bin/env bash
# The one short script for a lent CUDA machine: the CUDA tests, then the GPU benchmark.
# The device image has Python 3.12 with CUDA PyTorch but not the web stack: the wheels in .whl/
# (fastapi, pydantic, uvicorn, orjson, ... for cp312) are installed to /tmp/site first.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
# -p no:warnings: the device's starlette warns that httpx2 is missing from its test client
timeout 120 python3 -m pytest -q -p no:cacheprovider -p no:warnings -m cuda -o addopts="" \
    tests/attention/test_cuda.py tests/app/test_cuda_service.py 2>&1 | tee "$OUT/cuda-tests.log" | tail -15
timeout "${BENCH_TIMEOUT:-150}" python3 -m benchmarks.run --gpu --duration "${BENCH_DURATION:-2}" \
    --json "$OUT/bench-gpu.json" 2>&1 | tee "$OUT/bench-gpu.log" | tail -40
