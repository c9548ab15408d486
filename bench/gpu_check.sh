#!/usr/bin/env bash
# The one-shot GPU check: build for sm_90 with every core, run the CUDA tests on both
# recurrent tiers (alternating and persistent; the persistent one with its cluster mode and
# without, "persistent-grid"; cluster mode with h_t / dG_t through distributed shared memory and
# through L2; grid mode with per-step flags instead of the grid barrier, bitwise against it),
# run the persistent kernels under compute-sanitizer (memcheck, racecheck) on small shapes (16-bit
# types with and without the tensor-core products, cluster mode with and without the DSMEM
# exchange, grid mode with the barrier and with flags), run the GPU benchmark of the tiers against
# torch.nn (cuDNN; persistent-flags: grid mode with flags), and leave logs and results in OUT_DIR.
# (`fused-rnn bench --tiers ...,persistent-l2` times the L2 exchange against the DSMEM one, for a
# later run with time to spare.)
#
#   bash bench/gpu_check.sh OUT_DIR
#   STAGES="build tests" bash bench/gpu_check.sh OUT_DIR      # a subset, in this order:
#   build tests sanitize bench (default: all; a later call on the same warm machine can
#   skip the build, the editable install stays in place)
#
# For a fresh machine with an NVIDIA GPU, torch, nvcc, pytest and ninja installed and
# no network. Each stage has its own time limit (build 300 s, tests 300 + 90 s,
# sanitizers 2 x 90 s, benchmark 240 s), an estimate, never yet timed on a GPU: the whole
# check should take about 7-9 minutes on an H100. Prints a summary last.
set -uo pipefail
OUT="${1:?usage: bash bench/gpu_check.sh OUT_DIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$(dirname "$0")/.."
started=$(date +%s)
status=0
STAGES=" ${STAGES:-build tests sanitize bench} "
stage() { [[ "$STAGES" == *" $1 "* ]]; }

{
  date -u
  nvidia-smi || true
  nvidia-smi -q -d CLOCK || true
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), torch.cuda.get_device_name(0))"
  nvcc --version
} > "$OUT/machine.txt" 2>&1

if stage build; then
echo "== build (sm_90, MAX_JOBS=$(nproc))"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" MAX_JOBS="${MAX_JOBS:-$(nproc)}" FUSED_RNN_CUDA=1
if ! timeout 300 pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1; then
  echo "BUILD FAILED (see build.log)"; tail -40 "$OUT/build.log"; exit 1
fi
grep "fused_rnn build" "$OUT/build.log" | sort -u
fi
python -c "import fused_rnn, json; print(json.dumps(fused_rnn.build_info()))" | tee "$OUT/build_info.json"

if stage tests; then
echo "== CUDA tests (test_cuda.py runs every test on both tiers, the persistent one with and without clusters)"
export CUBLAS_WORKSPACE_CONFIG=:4096:8  # lets the determinism test run
timeout 300 python -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_composability.py -k "cuda" \
  --junitxml="$OUT/cuda_tests.xml" > "$OUT/cuda_tests.log" 2>&1 || status=1
tail -3 "$OUT/cuda_tests.log"
echo "== composability CUDA tests on the persistent tier"
FUSED_RNN_TIER=persistent timeout 90 python -m pytest -q -p no:cacheprovider tests/test_composability.py -k "cuda" \
  > "$OUT/cuda_tests_persistent_composability.log" 2>&1 || status=1
tail -1 "$OUT/cuda_tests_persistent_composability.log"
fi

if stage sanitize; then
echo "== persistent kernels under compute-sanitizer"
SAN="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)"
if [ -n "$SAN" ]; then
  for tool in memcheck racecheck; do
    timeout 90 "$SAN" --tool "$tool" --error-exitcode 3 python bench/persistent_smoke.py > "$OUT/sanitizer_$tool.log" 2>&1
    rc=$?; [ $rc -eq 0 ] || status=1
    echo "$tool: exit $rc ($(grep -E "ERROR SUMMARY|RACECHECK SUMMARY|all ok|FAILURES" "$OUT/sanitizer_$tool.log" | tr '\n' ' '))"
  done
else
  echo "compute-sanitizer not found; plain smoke run instead"
  timeout 60 python bench/persistent_smoke.py > "$OUT/persistent_smoke.log" 2>&1 || status=1
  tail -1 "$OUT/persistent_smoke.log"
fi
fi

if stage bench; then
echo "== GPU benchmark vs torch.nn (cuDNN), both tiers"
timeout 240 python -m fused_rnn bench --device cuda --matrix quick --cells lstm,gru \
  --dtype float32,bfloat16,float16 --tiers alternating,persistent,persistent-grid,persistent-flags \
  --no-progress --min-time 0.2 \
  --json "$OUT/gpu_bench.json" --markdown "$OUT/gpu_bench.md" > "$OUT/gpu_bench.txt" 2>&1 || status=1
tail -2 "$OUT/gpu_bench.txt"
fi

echo "== summary ($(( $(date +%s) - started )) s)"
[ -f "$OUT/cuda_tests.log" ] && grep -E "passed|failed|error" "$OUT/cuda_tests.log" | tail -1
if [ -f "$OUT/cuda_tests.log" ]; then
  all=$(grep -c "FAILED.*persistent" "$OUT/cuda_tests.log"); grid=$(grep -c "FAILED.*persistent-grid" "$OUT/cuda_tests.log")
  echo "failures by tier: alternating $(grep -c "FAILED.*alternating" "$OUT/cuda_tests.log"), persistent $((all - grid)), persistent-grid $grid"
fi
[ -f "$OUT/gpu_bench.txt" ] && { grep "^Speedup" "$OUT/gpu_bench.txt" || echo "benchmark did not finish"; }
exit $status
