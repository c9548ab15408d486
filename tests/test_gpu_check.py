"""bench/gpu_check.sh and its summary, on any machine: the GPU check has one short lease to run
in, so its bookkeeping (the time budget, the few files a lent machine returns, the counts by
tier of a log cut off midway) is tested here, where a mistake costs nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import gpu_check_summary as summary  # noqa: E402

PLAIN = """\
tests/test_cuda.py::test_a[alternating-lstm] PASSED                      [  1%]
tests/test_cuda.py::test_a[persistent-lstm] FAILED                       [  2%]
tests/test_cuda.py::test_a[persistent-grid-lstm] PASSED                  [  3%]
tests/test_cuda.py::test_b[persistent-grid] SKIPPED (needs sm_90)        [  4%]
tests/test_cuda.py::test_c[persistent] PASSED                            [  5%]
tests/test_cuda.py::test_c[persistent] ERROR                             [  5%]
tests/test_composability.py::test_cuda_graph PASSED                      [  6%]
=========================== short test summary info ============================
FAILED tests/test_cuda.py::test_a[persistent-lstm] - AssertionError: x
ERROR tests/test_cuda.py::test_c[persistent] - RuntimeError: y
"""

XDIST = """\
[gw1] [ 50%] PASSED tests/test_cuda.py::test_a[alternating-gru]
[gw0] [100%] FAILED tests/test_cuda.py::test_a[persistent-grid-gru]
"""


def test_outcomes_are_counted_by_tier_from_either_log_form():
    by_tier, failed = summary.count((PLAIN + XDIST).splitlines())
    assert {t: dict(c) for t, c in by_tier.items()} == {
        "alternating": {"PASSED": 2},
        "persistent": {"FAILED": 1, "ERROR": 1},  # test_c: the teardown ERROR outranks its PASSED
        "persistent-grid": {"PASSED": 1, "SKIPPED": 1, "FAILED": 1},
        "other": {"PASSED": 1},
    }
    assert failed == ["tests/test_cuda.py::test_a[persistent-grid-gru]", "tests/test_cuda.py::test_a[persistent-lstm]",
                      "tests/test_cuda.py::test_c[persistent]"]
    text = summary.report(PLAIN.splitlines())
    assert "persistent: 1 failed, 1 error" in text.splitlines()
    assert summary.report([]) == "no test outcomes in the log"


def test_bench_table_puts_each_cases_tiers_side_by_side():
    row = dict(cell="lstm", dtype="bfloat16", mode="training", shape="B=16 I=768 H=768 T=1024 L=1 D=1",
               torch_ms=5.2, torch_us_step=5.078)
    rows = [dict(row, tier=t, fused_ms=ms, fused_us_step=1000 * ms / 1024, speedup=5.2 / ms)
            for t, ms in (("alternating", 10.4), ("persistent", 2.6))]
    text = summary.bench_table({"rows": rows, "cases_planned": 3, "cases_timed": 1})
    assert text.splitlines() == [
        "lstm bfloat16 training B=16 I=768 H=768 T=1024 L=1 D=1: torch.nn 5.200 ms (5.08 us/step) | "
        "alternating 10.400 ms (10.16 us/step) 0.50x | persistent 2.600 ms (2.54 us/step) 2.00x",
        "(stopped at the time budget: 1 of 3 cases)"]


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("tar") is None, reason="needs bash and tar")
@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU the script's stages really run: that is the GPU "
                                                      "check itself, minutes long")
def test_gpu_check_keeps_to_its_budget_and_its_few_files(tmp_path):
    """Run here (no GPU: the CUDA tests skip, the benchmark refuses), the script still writes its
    summary stage by stage, packs every log into one archive, leaves at most five files in the
    output folder, and skips a stage with too little of its budget left, saying so."""
    env = dict(os.environ, STAGES="tests bench", BUDGET_S="600", LOGS_DIR=str(tmp_path / "logs"),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    out = tmp_path / "out"
    p = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), str(out)], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    lines = (out / "summary.txt").read_text().splitlines()
    assert p.returncode == 1, p.stdout + p.stderr  # the benchmark cannot run without a GPU
    assert any(line.startswith("tests: exit 0 in ") for line in lines), lines
    assert any(line.startswith("alternating: ") and "skipped" in line for line in lines), lines
    assert "bench: exit 2: fused-rnn: error: --device cuda: no CUDA device is visible" in lines
    assert lines[-1].startswith("== done in ") and lines[-1].endswith("exit 1")
    assert len(list(out.iterdir())) <= 5 and all(f.is_file() for f in out.iterdir())
    with tarfile.open(out / "logs.tar.gz") as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {"machine.txt", "build_info.json", "cuda_tests.log", "cuda_tests.xml", "gpu_bench.txt",
            "summary.txt"} <= names

    env["BUDGET_S"] = "20"  # under 30 s left once started: both stages skip
    p = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), str(out)], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    lines = (out / "summary.txt").read_text().splitlines()
    assert p.returncode == 1
    assert [line.split(",")[0] for line in lines if "skipped," in line] == ["tests: skipped", "bench: skipped"]
