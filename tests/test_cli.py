"""`fused-rnn` / `python -m fused_rnn`: argument handling and the format of what `bench` writes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

import fused_rnn
from fused_rnn.__main__ import main

TINY = ["bench", "--matrix", "tiny", "--no-progress", "--min-time", "0.01"]


def test_bench_prints_header_table_and_summary(capsys):
    assert main(TINY + ["--cells", "lstm,gru"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "torch " in lines[0] and "threads" in lines[0]
    assert lines[1].split()[:3] == ["cell", "shape", "dtype"]
    rows = [line.split() for line in lines[2:] if line.split()[:1] in (["lstm"], ["gru"])]
    # cell, six shape fields, dtype, mode, torch ms, fused ms, speedup, GFLOP/s, spread, error
    assert [(r[0], r[8]) for r in rows] == [("lstm", "inference"), ("lstm", "training"),
                                             ("gru", "inference"), ("gru", "training")]
    for r in rows:
        assert r[11].endswith("x") and float(r[11][:-1]) > 0  # speedup
        assert float(r[-1]) < 1e-5  # fused and torch.nn agree (relative, float32)
    assert lines[-1].startswith("Speedup of fused over torch.nn")


def test_bench_aa_column_and_summary(capsys):
    assert main(TINY + ["--cells", "rnn", "--aa"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[-1] == "A/A"
    rows = [line.split() for line in lines[2:] if line.split()[:1] == ["rnn"]]
    assert len(rows) == 2
    for r in rows:
        assert r[-1].endswith("x") and 0.2 < float(r[-1][:-1]) < 5  # torch.nn against itself
    assert lines[-1].startswith("A/A (torch.nn timed against a copy of itself")


def test_summary_holds_the_large_forward_against_the_gemm():
    from fused_rnn import bench

    row = dict(cell="lstm", B=64, I=1024, H=1024, T=50, layers=1, directions=1, dtype="float32",
               mode="inference", speedup=1.0, fused_gflops=150.0)
    text = bench.summary([row], {"gemm_gflops": 120.0})
    assert "Large-shape forward (B=64, I=H=1024) against a plain fp32 GEMM of 120 GFLOP/s: lstm T=50 150 GFLOP/s (125%)" \
        in text
    assert bench.gemm_gflops("cpu", n=64, reps=3) > 0


def test_bench_writes_json_csv_markdown(tmp_path):
    paths = {k: tmp_path / f"out.{k}" for k in ("json", "csv", "md")}
    assert main(TINY + ["--cells", "rnn", "--json", str(paths["json"]), "--csv", str(paths["csv"]),
                        "--markdown", str(paths["md"])]) == 0
    data = json.loads(paths["json"].read_text())
    assert data["matrix"] == "tiny" and data["environment"]["device"] == "cpu"
    assert {r["mode"] for r in data["rows"]} == {"inference", "training"}
    for r in data["rows"]:
        assert r["torch_ms"] > 0 and r["fused_ms"] > 0 and r["reps"] >= 5
        assert r["speedup"] == pytest.approx(r["torch_ms"] / r["fused_ms"])
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [r["cell"] for r in rows] == ["rnn", "rnn"]
    md = paths["md"].read_text().splitlines()
    assert md[0] == "# fused-rnn bench (cpu)"
    assert sum(line.startswith("| rnn |") for line in md) == 2


def test_bench_time_budget_keeps_what_was_timed(tmp_path, capsys):
    """Past --time-budget no case starts (the first always runs), and every output holds the
    cases that were timed and says how many of the matrix's were left out; a budget the matrix
    fits in changes nothing."""
    paths = {k: tmp_path / f"out.{k}" for k in ("json", "md")}
    assert main(TINY + ["--cells", "lstm,gru", "--time-budget", "1e-9", "--json", str(paths["json"]),
                        "--markdown", str(paths["md"])]) == 0
    out = capsys.readouterr().out
    note = "Stopped at the time budget (1e-09 s): 1 of the matrix's 4 cases timed"
    assert note in out.splitlines()
    data = json.loads(paths["json"].read_text())
    assert (data["cases_planned"], data["cases_timed"]) == (4, 1)
    assert [(r["cell"], r["mode"]) for r in data["rows"]] == [("lstm", "inference")]
    assert f"{note}." in paths["md"].read_text().splitlines()
    assert main(TINY + ["--cells", "rnn", "--time-budget", "600", "--json", str(paths["json"])]) == 0
    assert "Stopped" not in capsys.readouterr().out
    data = json.loads(paths["json"].read_text())
    assert (data["cases_planned"], data["cases_timed"], len(data["rows"])) == (2, 2, 2)


def test_bench_plot(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "speedups.png"
    assert main(TINY + ["--cells", "gru", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,message", [
    (["--cells", "lstm,foo"], "unknown cell 'foo'; expected lstm, gru, rnn, rnn_relu"),
    (["--dtype", "int8"], "unknown dtype 'int8'; expected float32, float64, bfloat16, float16"),
    (["--dtype", "float16", "--device", "cpu"], "dtype float16 is not supported on cpu; use float32, float64 or "
                                                "bfloat16"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--time-budget", "0"], "--time-budget must be positive"),
    (["--time-budget", "nan"], "--time-budget must be positive"),
    (["--json", "/nonexistent-folder/x.json"], "cannot write --json /nonexistent-folder/x.json: folder "
                                               "/nonexistent-folder does not exist"),
    (["--matrix", "huge"], "argument --matrix: invalid choice: 'huge' (choose from "),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(["bench"] + args) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"fused-rnn: error: {message}")


def test_cuda_asked_for_without_cuda(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert main(["bench", "--device", "cuda"]) == 2
    assert capsys.readouterr().err.strip() == "fused-rnn: error: --device cuda: no CUDA device is visible"


def test_module_entry_point_and_exit_status():
    p = subprocess.run([sys.executable, "-m", "fused_rnn", "bench", "--cells", "nope"], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip() == "fused-rnn: error: unknown cell 'nope'; expected lstm, gru, rnn, rnn_relu"
    assert "Traceback" not in p.stderr


def test_info_and_build_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "cpu_capability:" in out
    info = fused_rnn.build_info()
    assert info["cpu"] is True and isinstance(info["cuda"], bool)
    assert info["version"] == fused_rnn.__version__
    assert info["built_with_torch"].split("+")[0].split(".")[:2] == info["torch_runtime"].split("+")[0].split(".")[:2]
