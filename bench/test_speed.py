"""pytest-benchmark suite: the cases of `fused-rnn bench --matrix quick`, torch.nn and fused side by side.

Run with `pytest bench/ --benchmark-only` (the default test run does not collect bench/).
Each case is one benchmark group with a `torch` and a `fused` entry, so
pytest-benchmark's table shows the two next to each other; `--benchmark-json` keeps them.
`FUSED_RNN_BENCH_MATRIX` picks another matrix (tiny, quick, cpu, deepbench, full).
"""

from __future__ import annotations

import os

import pytest
import torch

from fused_rnn import bench

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DTYPES = ["float32", "bfloat16"] if DEVICE == "cuda" else ["float32"]
CASES = bench.matrix(os.environ.get("FUSED_RNN_BENCH_MATRIX", "quick"), DEVICE, DTYPES, ["lstm", "gru", "rnn"])


def _sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


@pytest.mark.parametrize("impl", ["torch", "fused"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c.cell}-{c.mode}-{c.dtype}-{c.shape.replace(' ', '_')}" for c in CASES])
def test_speed(benchmark, case, impl):
    torch.manual_seed(0)
    ref, fused, x = bench._build(case, DEVICE)
    run = bench._runner(ref if impl == "torch" else fused, x, case.mode)
    benchmark.group = f"{case.cell} {case.mode} {case.dtype} {case.shape}"
    benchmark.extra_info.update(gflop=case.flops() / 1e9, device=DEVICE)

    def timed():
        run()
        _sync()

    benchmark.pedantic(timed, warmup_rounds=1, rounds=5, iterations=1)
