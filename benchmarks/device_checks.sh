#!/bin/bash
# The checks that need the GPU machine (the device tool; no CI runs here), in one call:
#   A. activation checkpointing on CUDA: peak memory, step time, the guard's estimate
#   B. the memory guard refusing on a GPU whose memory another process holds
#   C. the tests that run only where CUDA is (augmentation and loader on the GPU)
#   D. serve under load on 2 of its cores (taskset), no GPU, nothing else running: the tail at
#      concurrency 32 measured on a quiet 2-core budget, the client processes included in it
# Run from the repository root with the serve wheels in .whl (that machine has no FastAPI):
#   OUT=/tmp/out bash benchmarks/device_checks.sh
set -u
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"; nproc

echo "== A"; timeout 300 python3 benchmarks/grad_checkpointing.py --device cuda --steps 5 --variants reentrant general \
  --json "$OUT/grad_checkpointing_cuda.json" | tee "$OUT/grad_checkpointing_cuda.txt"
echo "== B"; timeout 150 python3 benchmarks/memory_guard_cuda.py "$OUT/grad_checkpointing_cuda.json" \
  | tee "$OUT/memory_guard_cuda.txt"
echo "== C"; timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_data_augment.py tests/test_data_loader.py \
  -k cuda 2>&1 | tail -3
echo "== D"; CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=2 timeout 200 taskset -c 0,1 python3 benchmarks/serve_load.py \
  --models resnet20.fashion_mnist resnet50 --protocols v1 v2 --batching on --concurrency 8 32 --seconds 6 \
  --json "$OUT/serve_load_2cores.json" 2>&1 | tee "$OUT/serve_load_2cores.txt"
