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
#   BUDGET_S=420 bash bench/gpu_check.sh OUT_DIR      # end within 7 minutes (default 540)
#   STAGES="bench sanitize" bash bench/gpu_check.sh OUT_DIR   # a subset, in this order:
#   build tests bench sanitize (default: all; a later call on the same warm machine can
#   skip the build, the editable install stays in place)
#
# For a fresh machine with an NVIDIA GPU, torch, nvcc, pytest and ninja installed and no
# network. The whole check ends within BUDGET_S seconds (so that it returns inside a time-limited
# call with its results): each stage's limit (build 300 s, tests 300 + 90 s, benchmark 240 s,
# memcheck 50 s, racecheck 100 s) is cut to what is left (after the tests: 55% to the benchmark, the
# rest to the sanitizers), the benchmark and the sanitizer runs stop starting new work at their
# own budgets and report how much ran, and a stage with under 30 s left is skipped and said so.
# None of these times has been measured on a GPU yet: expected, build 1-2 minutes, tests 2-4.
#
# OUT_DIR receives at most five files (a lent machine returns only a few): summary.txt (what each
# stage did, written as it goes), logs.tar.gz (every log, the test report and build_info.json,
# repacked after each stage), gpu_bench.json, gpu_bench.md, and machine.txt. The logs are also
# left unpacked in LOGS_DIR (default: a new folder under /tmp, printed first).
set -uo pipefail
OUT="${1:?usage: bash bench/gpu_check.sh OUT_DIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$(dirname "$0")/.."
started=$(date +%s)
# The interpreter that holds torch: $PYTHON, else python3 (all a lent machine's image is sure to
# have), else python.
PY="${PYTHON:-$(command -v python3 || command -v python)}"
BUDGET_S="${BUDGET_S:-540}"
LOGS="${LOGS_DIR:-$(mktemp -d /tmp/gpu_check.XXXXXX)}"
mkdir -p "$LOGS"
status=0
STAGES=" ${STAGES:-build tests bench sanitize} "
stage() { [[ "$STAGES" == *" $1 "* ]]; }
: > "$OUT/summary.txt"
say() { echo "$*" | tee -a "$OUT/summary.txt"; }
# Seconds a stage may take: its own limit, cut to the budget left less 10 s to pack and sum up.
limit() {
  local left=$(( BUDGET_S - ($(date +%s) - started) - 10 ))
  (( left < $1 )) && echo "$left" || echo "$1"
}
# Whether a stage has time to run (at least 30 s); says so when it has not.
has_time() {
  local t; t=$(limit 1000000)
  if (( t < 30 )); then say "$1: skipped, ${t} s of the ${BUDGET_S} s budget left"; status=1; return 1; fi
}
pack() {
  tar -czf "$OUT/logs.tar.gz.part" -C "$LOGS" . 2>/dev/null && mv -f "$OUT/logs.tar.gz.part" "$OUT/logs.tar.gz"
}
elapsed() { echo "$(( $(date +%s) - started )) s"; }
echo "logs in $LOGS; budget ${BUDGET_S} s"

{
  date -u
  echo "python: $PY"
  nvidia-smi || true
  nvidia-smi -q -d CLOCK || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), torch.cuda.get_device_name(0))"
  nvcc --version
  "$PY" -m pip --version
  "$PY" -c "import setuptools; print('setuptools', setuptools.__version__)"
  git log -1 --format='commit %H %s' 2>/dev/null
  git status --short 2>/dev/null | head -20
} > "$OUT/machine.txt" 2>&1
cp "$OUT/machine.txt" "$LOGS/"

if stage build; then
  echo "== build (sm_90, MAX_JOBS=$(nproc))"
  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" MAX_JOBS="${MAX_JOBS:-$(nproc)}" FUSED_RNN_CUDA=1
  b0=$(date +%s)
  if ! timeout "$(limit 300)" "$PY" -m pip install --no-build-isolation --no-deps -e . > "$LOGS/build.log" 2>&1; then
    say "build: FAILED after $(( $(date +%s) - b0 )) s (build.log)"; tail -40 "$LOGS/build.log"; pack; exit 1
  fi
  say "build: ok in $(( $(date +%s) - b0 )) s"
  grep "fused_rnn build" "$LOGS/build.log" | sort -u
fi
"$PY" -c "import fused_rnn, json; print(json.dumps(fused_rnn.build_info()))" > "$LOGS/build_info.json" 2>&1
say "build_info: $(cat "$LOGS/build_info.json")"
pack

if stage tests && has_time tests; then
  echo "== CUDA tests (test_cuda.py runs every test on both tiers, the persistent one with and without clusters)"
  export CUBLAS_WORKSPACE_CONFIG=:4096:8  # lets the determinism test run
  # One line per test (-v), so that a run cut off at its limit still says what passed; a test
  # hung past 120 s (a kernel waiting forever) ends the run with every thread's stack.
  extra=()
  "$PY" -c "import pytest_timeout" 2>/dev/null && extra+=(--timeout 120 --timeout-method thread)
  t0=$(date +%s)
  timeout "$(limit 300)" "$PY" -m pytest -v -rfE -p no:cacheprovider "${extra[@]}" tests/test_cuda.py \
    tests/test_composability.py -k "cuda" --junitxml="$LOGS/cuda_tests.xml" > "$LOGS/cuda_tests.log" 2>&1
  rc=$?; [ $rc -eq 0 ] || status=1
  say "tests: exit $rc in $(( $(date +%s) - t0 )) s: $(grep -E "^=+ .* in [0-9.]+s.* =+$" "$LOGS/cuda_tests.log" | tail -1 | tr -d '=')"
  "$PY" bench/gpu_check_summary.py "$LOGS/cuda_tests.log" | tee -a "$OUT/summary.txt"
  pack
  if has_time "composability tests on the persistent tier"; then
    FUSED_RNN_TIER=persistent timeout "$(limit 90)" "$PY" -m pytest -v -rfE -p no:cacheprovider "${extra[@]}" \
      tests/test_composability.py -k "cuda" > "$LOGS/cuda_tests_persistent_composability.log" 2>&1
    rc=$?; [ $rc -eq 0 ] || status=1
    say "composability tests, FUSED_RNN_TIER=persistent: exit $rc: $(tail -1 "$LOGS/cuda_tests_persistent_composability.log" | tr -d '=')"
  fi
  pack
fi

# What is left after the tests goes 55% to the benchmark and the rest to the two sanitizer runs
# (each stage's own limit caps its share; a stage run alone gets all of it).
share() {  # share PERCENT LIMIT: seconds for a stage that leaves the rest to a later one
  local left; left=$(limit 1000000)
  if stage bench && stage sanitize; then left=$(( left * $1 / 100 )); fi
  (( left < $2 )) && echo "$left" || echo "$2"
}

if stage bench && has_time bench; then
  echo "== GPU benchmark vs torch.nn (cuDNN), both tiers"
  # The benchmark starts no case after its --time-budget; the 45 s beyond it are for the case in
  # flight and for writing the results.
  t=$(share 55 240); budget=$(( t - 45 )); (( budget < 10 )) && budget=10
  timeout "$t" "$PY" -m fused_rnn bench --device cuda --matrix quick --cells lstm,gru \
    --dtype float32,bfloat16,float16 --tiers alternating,persistent,persistent-grid,persistent-flags \
    --no-progress --min-time 0.2 --time-budget "$budget" \
    --json "$OUT/gpu_bench.json" --markdown "$OUT/gpu_bench.md" > "$LOGS/gpu_bench.txt" 2>&1
  rc=$?; [ $rc -eq 0 ] || status=1
  if [ $rc -eq 0 ]; then
    say "bench: exit 0 ($(grep -E "^Stopped at" "$LOGS/gpu_bench.txt" || echo "every case timed"))"
  else
    say "bench: exit $rc: $(tail -1 "$LOGS/gpu_bench.txt")"
  fi
  grep -E "^Speedup" "$LOGS/gpu_bench.txt" | tr ';' '\n' | tee -a "$OUT/summary.txt"
  [ -f "$OUT/gpu_bench.json" ] && "$PY" bench/gpu_check_summary.py --bench "$OUT/gpu_bench.json" | tee -a "$OUT/summary.txt"
  [ -f "$OUT/gpu_bench.md" ] && cp "$OUT/gpu_bench.md" "$OUT/gpu_bench.json" "$LOGS/" 2>/dev/null
  pack
fi

if stage sanitize && has_time sanitize; then
  echo "== persistent kernels under compute-sanitizer"
  SAN="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)"
  if [ -n "$SAN" ]; then
    # racecheck watches shared memory, which only the persistent kernels use: instrumenting
    # torch's and cuBLAS's kernels too would spend the budget on them. The filter is used only
    # where this compute-sanitizer accepts it.
    filter=()
    "$SAN" --kernel-name kns=persistent_ true > "$LOGS/sanitizer_probe.log" 2>&1 && filter=(--kernel-name kns=persistent_)
    for tool in memcheck racecheck; do
      has_time "$tool" || continue
      args=(); [ "$tool" = racecheck ] && args=("${filter[@]}")
      # Half of what is left for memcheck, all of the rest for racecheck. The smoke starts no
      # run after --max-seconds; the 30 s beyond it are for the run in flight.
      t=$(limit 100); [ "$tool" = memcheck ] && t=$(( t / 2 ))
      runs=$(( t - 30 )); (( runs < 5 )) && runs=5
      s0=$(date +%s)
      timeout "$t" "$SAN" --tool "$tool" "${args[@]}" --error-exitcode 3 \
        "$PY" bench/persistent_smoke.py --max-seconds "$runs" > "$LOGS/sanitizer_$tool.log" 2>&1
      rc=$?; [ $rc -eq 0 ] || status=1
      say "$tool${args:+ (kernels matching persistent_)}: exit $rc in $(( $(date +%s) - s0 )) s ($(grep -E "ERROR SUMMARY|RACECHECK SUMMARY|all ok|ok so far|FAILURES" "$LOGS/sanitizer_$tool.log" | tr '\n' ' '))"
      pack
    done
  else
    say "compute-sanitizer not found; plain smoke run instead"
    timeout "$(limit 60)" "$PY" bench/persistent_smoke.py > "$LOGS/persistent_smoke.log" 2>&1 || status=1
    say "smoke: $(tail -1 "$LOGS/persistent_smoke.log")"
  fi
  pack
fi

say "== done in $(elapsed) of the ${BUDGET_S} s budget, exit $status"
cp "$OUT/summary.txt" "$LOGS/"
pack
exit $status
