#!/usr/bin/env bash
# Every GPU check of the model and the trainer in ONE device call (about 8 minutes on an H100 or
# H200; each step time-boxed so a failure or a slow compile never loses the others' results):
#   1. benchmarks/model_bench.py --gpu: ViT-B/16-224, 4 frames, ours bf16+SDPA (flash) and ours
#      fp32 against the fp32 reference formulation; peak memory; fp32 equivalence on the device.
#   2. benchmarks/gpu_train_check.sh: the real trainer at 4 frames, bf16, joint batches.
#   3. model_bench.py --gpu --compile: the same step under torch.compile (inductor; torch 2.11's
#      coalescing-tiling analysis asserts on this graph, so it is switched off by env var).
# Needs .whl (webdataset, braceexpand) and .gpu-vocab carried (see gpu_train_check.sh's header):
#   run: bash benchmarks/gpu_session.sh     carry: [".whl", ".gpu-vocab"]
set -uo pipefail
OUTDIR=${OUT:-/tmp/gpu-session-out}
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
echo "== 1. model_bench --gpu"
timeout 120 python3 benchmarks/model_bench.py --gpu --with-ours-fp32 --batch 16 --repeats 10 \
  --json "$OUTDIR/model_bench_gpu.json" 2>&1 | tee "$OUTDIR/model_bench_gpu.log" | tail -40
echo "== 2. gpu_train_check"
TIMEOUT=300 OUT="$OUTDIR" bash benchmarks/gpu_train_check.sh 2>&1 | tee "$OUTDIR/gpu_train_check.log" | tail -40
echo "== 3. model_bench --gpu --compile"
TORCHINDUCTOR_COALESCE_TILING_ANALYSIS=0 timeout 170 python3 benchmarks/model_bench.py --gpu --compile --batch 16 --repeats 10 \
  --json "$OUTDIR/model_bench_gpu_compile.json" 2>&1 | tee "$OUTDIR/model_bench_gpu_compile.log" | tail -25
echo "== done"
