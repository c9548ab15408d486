"""The main-job command: `python -m fused_rnn` / `fused-rnn`."""

from __future__ import annotations

import re
import subprocess
import sys

import fused_rnn
from fused_rnn.__main__ import main


def test_prints_error_and_time_per_cell(capsys):
    assert main(["--batch", "2", "--size", "8", "--steps", "3", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["LSTM"], ["GRU"], ["RNN"])]
    assert [r[0] for r in rows] == ["LSTM", "GRU", "RNN"]
    for r in rows:
        err = float(r[1])
        assert 0 <= err < 1e-5  # fused and torch.nn agree on that case (relative, float32)
        assert re.fullmatch(r"\d+\.\d+x", r[4])


def test_bad_argument_is_one_line_and_exit_2():
    p = subprocess.run([sys.executable, "-m", "fused_rnn", "--batch", "0"], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == ["fused-rnn: error: --batch must be at least 1"]


def test_build_info_reports_contents():
    info = fused_rnn.build_info()
    assert info["cpu"] is True
    assert isinstance(info["cuda"], bool)
    assert info["version"] == fused_rnn.__version__
    assert info["built_with_torch"].split("+")[0].split(".")[:2] == info["torch_runtime"].split("+")[0].split(".")[:2]
