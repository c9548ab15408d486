"""Each example runs end to end on a tiny setting and reports what it promises (not its timings)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def examples():
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield lambda name: importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLES))


def _same_result(a, b):
    # The same model trained from the same seed: only float rounding tells the two backends apart.
    assert a == pytest.approx(b, rel=1e-3, abs=1e-4)


def test_forecast(examples, capsys):
    pytest.importorskip("statsmodels")
    report = examples("forecast").main(["--epochs", "1", "--hidden", "8", "--cells", "RNN,LSTM,GRU",
                                        "--layers", "1,2", "--threads", "1"])
    out = capsys.readouterr().out
    assert [r["model"] for r in report["rows"]] == ["RNN x1", "RNN x2", "LSTM x1", "LSTM x2", "GRU x1", "GRU x2"]
    assert 0.1 < report["persistence_rmse"] < 2  # ppm: weekly changes of a series around 315-370 ppm
    for r in report["rows"]:
        assert 0 < r["rmse_fused"] < 100
        _same_result(r["rmse_fused"], r["rmse_torch"])
        assert r["max_loss_diff"] < 1e-4
        assert r["model"] in out
    assert "val RMSE torch.nn" in out


def test_forecast_plot(examples, tmp_path):
    pytest.importorskip("statsmodels")
    pytest.importorskip("matplotlib")
    path = tmp_path / "forecast.png"
    examples("forecast").main(["--epochs", "1", "--hidden", "4", "--cells", "GRU", "--layers", "1", "--plot",
                               str(path)])
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_long_memory(examples, capsys):
    report = examples("long_memory").main(["--lengths", "12", "--steps", "20", "--hidden", "8", "--threads", "1",
                                           "--bidirectional"])
    assert [(r["cell"], r["T"]) for r in report["rows"]] == [("RNN", 12), ("LSTM", 12), ("GRU", 12)]
    for r in report["rows"]:
        _same_result(r["mse_fused"], r["mse_torch"])
        assert r["learned"] in ("yes", "no")
        assert r["max_loss_diff"] < 1e-4
    assert "baseline MSE 0.167" in capsys.readouterr().out


def test_classify(examples, capsys):
    report = examples("classify").main(["--train-size", "128", "--epochs", "1", "--hidden", "8", "--threads", "1"])
    (row,) = report["rows"]
    assert 0 <= row["acc_fused"] <= 1
    _same_result(row["acc_fused"], row["acc_torch"])
    assert row["max_loss_diff"] < 1e-4
    assert "generated data" in capsys.readouterr().out
