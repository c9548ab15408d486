#!/usr/bin/env bash
# The one-shot GPU check: build for sm_90 with every core, run the CUDA tests, run the
# GPU benchmark against torch.nn (cuDNN), and leave logs and results in OUT_DIR.
#
#   bash bench/gpu_check.sh OUT_DIR
#
# For a fresh machine with an NVIDIA GPU, torch, nvcc, pytest and ninja installed and
# no network. Finishes well inside 10 minutes on an H100; prints a summary last.
set -uo pipefail
OUT="${1:?usage: bash bench/gpu_check.sh OUT_DIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$(dirname "$0")/.."
started=$(date +%s)
status=0

{
  date -u
  nvidia-smi || true
  nvidia-smi -q -d CLOCK || true
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), torch.cuda.get_device_name(0))"
  nvcc --version
} > "$OUT/machine.txt" 2>&1

echo "== build (sm_90, MAX_JOBS=$(nproc))"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" MAX_JOBS="${MAX_JOBS:-$(nproc)}" FUSED_RNN_CUDA=1
if ! timeout 360 pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1; then
  echo "BUILD FAILED (see build.log)"; tail -40 "$OUT/build.log"; exit 1
fi
grep "fused_rnn build" "$OUT/build.log" | sort -u
python -c "import fused_rnn, json; print(json.dumps(fused_rnn.build_info()))" | tee "$OUT/build_info.json"

echo "== CUDA tests"
export CUBLAS_WORKSPACE_CONFIG=:4096:8  # lets the determinism test run
timeout 240 python -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_composability.py -k "cuda" \
  --junitxml="$OUT/cuda_tests.xml" > "$OUT/cuda_tests.log" 2>&1 || status=1
tail -3 "$OUT/cuda_tests.log"

echo "== GPU benchmark vs torch.nn (cuDNN)"
timeout 300 python -m fused_rnn bench --device cuda --matrix quick --cells lstm,gru \
  --dtype float32,bfloat16,float16 --no-progress --min-time 0.2 \
  --json "$OUT/gpu_bench.json" --markdown "$OUT/gpu_bench.md" > "$OUT/gpu_bench.txt" 2>&1 || status=1
tail -2 "$OUT/gpu_bench.txt"

echo "== summary ($(( $(date +%s) - started )) s)"
grep -E "passed|failed|error" "$OUT/cuda_tests.log" | tail -1
grep "^Speedup" "$OUT/gpu_bench.txt" || echo "benchmark did not finish"
exit $status
