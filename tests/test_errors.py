"""Bad input: torch.nn's exception type and message at the module level, and a message that names
the tensor, the expected and the actual value at the C++ boundary. Nothing crashes."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import fused_rnn
from conftest import CELLS, layer_params

OPS = torch.ops.fused_rnn
SEQ_LEN = "Expected sequence length to be larger than 0 in RNN"


def raised(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the point is to compare whatever is raised
        return type(e), str(e)
    return None


def pair(name, *args, **kwargs):
    ref = getattr(nn, name)(*args, **kwargs)
    fused = getattr(fused_rnn, name)(*args, **kwargs)
    fused.load_state_dict(ref.state_dict())
    return ref, fused


BAD_CALLS = {
    # name: (module name, constructor kwargs, function of the module that must raise)
    "input_1d": ("LSTM", {}, lambda m: m(torch.randn(3))),
    "input_4d_gru": ("GRU", {}, lambda m: m(torch.randn(2, 3, 4, 5))),
    "input_4d_rnn": ("RNN", {}, lambda m: m(torch.randn(2, 3, 4, 5))),
    "input_size": ("GRU", {}, lambda m: m(torch.randn(5, 2, 4))),
    "input_size_unbatched": ("LSTM", {}, lambda m: m(torch.randn(5, 7))),
    "hidden_shape": ("GRU", {}, lambda m: m(torch.randn(5, 2, 3), torch.randn(1, 2, 5))),
    "hidden_batch": ("RNN", {}, lambda m: m(torch.randn(5, 2, 3), torch.randn(1, 3, 4))),
    "hidden_rank_batched": ("GRU", {}, lambda m: m(torch.randn(5, 2, 3), torch.randn(2, 4))),
    "hidden_rank_unbatched": ("RNN", {}, lambda m: m(torch.randn(5, 3), torch.randn(1, 2, 4))),
    "lstm_h0_shape": ("LSTM", {}, lambda m: m(torch.randn(5, 2, 3), (torch.randn(1, 2, 5), torch.randn(1, 2, 4)))),
    "lstm_c0_shape": ("LSTM", {}, lambda m: m(torch.randn(5, 2, 3), (torch.randn(1, 2, 4), torch.randn(1, 2, 5)))),
    "lstm_proj_h0_shape": (
        "LSTM", {"proj_size": 2}, lambda m: m(torch.randn(5, 2, 3), (torch.randn(1, 2, 4), torch.randn(1, 2, 4)))),
    "lstm_rank_batched": ("LSTM", {}, lambda m: m(torch.randn(5, 2, 3), (torch.randn(2, 4), torch.randn(1, 2, 4)))),
    "lstm_rank_unbatched": ("LSTM", {}, lambda m: m(torch.randn(5, 3), (torch.randn(1, 2, 4), torch.randn(1, 4)))),
    "dtype": ("GRU", {}, lambda m: m(torch.randn(5, 2, 3, dtype=torch.float64))),
    "dtype_lstm": ("LSTM", {}, lambda m: m(torch.randn(5, 2, 3, dtype=torch.float64))),
    "seq_len_zero": ("LSTM", {}, lambda m: m(torch.randn(0, 2, 3))),
    "seq_len_zero_batch_first": ("GRU", {"batch_first": True}, lambda m: m(torch.randn(2, 0, 3))),
    "seq_len_zero_bidirectional": ("RNN", {"bidirectional": True}, lambda m: m(torch.randn(0, 2, 3))),
    "seq_len_zero_unbatched": ("LSTM", {}, lambda m: m(torch.randn(0, 3))),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_forward_errors_match_torch_nn(case):
    name, kwargs, call = BAD_CALLS[case]
    ref, fused = pair(name, 3, 4, **kwargs)
    want = raised(lambda: call(ref))
    assert want is not None, "torch.nn accepted it: the case is wrong"
    assert raised(lambda: call(fused)) == want


BAD_CONSTRUCTORS = {
    "gru_proj": ("GRU", (3, 4), {"proj_size": 2}),
    "rnn_proj": ("RNN", (3, 4), {"proj_size": 2}),
    "nonlinearity": ("RNN", (3, 4), {"nonlinearity": "sigmoid"}),
    "nonlinearity_positional": ("RNN", (3, 4, 1, "gelu"), {}),
    "hidden_zero": ("LSTM", (3, 0), {}),
    "hidden_float": ("GRU", (3, 4.0), {}),
    "layers_zero": ("LSTM", (3, 4), {"num_layers": 0}),
    "dropout_range": ("GRU", (3, 4), {"dropout": 1.5}),
    "dropout_bool": ("GRU", (3, 4), {"dropout": True}),
    "proj_negative": ("LSTM", (3, 4), {"proj_size": -1}),
    "proj_too_large": ("LSTM", (3, 4), {"proj_size": 4}),
    "bias_not_bool": ("LSTM", (3, 4), {"bias": 1}),
    "batch_first_not_bool": ("GRU", (3, 4), {"batch_first": "yes"}),
    "input_size_float": ("RNN", (3.0, 4), {}),
    "input_size_zero": ("LSTM", (0, 4), {}),
}


@pytest.mark.parametrize("case", list(BAD_CONSTRUCTORS))
def test_constructor_errors_match_torch_nn(case):
    name, args, kwargs = BAD_CONSTRUCTORS[case]
    want = raised(lambda: getattr(nn, name)(*args, **kwargs))
    assert raised(lambda: getattr(fused_rnn, name)(*args, **kwargs)) == want
    if want is None:  # the same as torch.nn, but nothing to compare
        # 2.11 raised for every case (its whole suite passed while this asserted it always did)
        assert torch.__version__ < (2, 11), f"torch {torch.__version__}'s nn.{name} no longer rejects {case}"
        pytest.skip(f"torch {torch.__version__}'s nn.{name} accepts it (later releases raise), and so does fused_rnn")


def test_dropout_warning_matches_torch_nn():
    with pytest.warns(UserWarning) as ref_w:
        nn.LSTM(3, 4, dropout=0.5)
    with pytest.warns(UserWarning) as fused_w:
        fused_rnn.LSTM(3, 4, dropout=0.5)
    assert [str(w.message) for w in fused_w] == [str(w.message) for w in ref_w]


def test_packed_input_is_validated_like_dense_input():
    """torch.nn skips the checks for packed LSTM input; fused_rnn checks it as dense input."""
    m = fused_rnn.LSTM(3, 4)
    packed = nn.utils.rnn.pack_sequence([torch.randn(4, 5), torch.randn(2, 5)])
    with pytest.raises(RuntimeError, match=re.escape("input.size(-1) must be equal to input_size. Expected 3, got 5")):
        m(packed)
    packed = nn.utils.rnn.pack_sequence([torch.randn(4, 3), torch.randn(2, 3)])
    with pytest.raises(RuntimeError, match=re.escape("Expected hidden[0] size (1, 2, 4), got [1, 3, 4]")):
        m(packed, (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))


# ---------------------------------------------------------------- the C++ boundary


def lstm_args(**override):
    p = layer_params("lstm", 3, 4, dtype=torch.float32)
    args = dict(input=torch.randn(5, 2, 3), hx=None, cx=None, w_ih=p["w_ih"], w_hh=p["w_hh"], b_ih=p["b_ih"],
                b_hh=p["b_hh"], w_hr=None, batch_sizes=None, reverse=False, train=True)
    args.update(override)
    return args


def gru_args(**override):
    p = layer_params("gru", 3, 4, dtype=torch.float32)
    args = dict(input=torch.randn(5, 2, 3), hx=None, w_ih=p["w_ih"], w_hh=p["w_hh"], b_ih=p["b_ih"], b_hh=p["b_hh"],
                batch_sizes=None, reverse=False, train=True)
    args.update(override)
    return args


BOUNDARY = {
    "w_hh_shape": (lambda: OPS.lstm_forward(**lstm_args(w_hh=torch.randn(16, 5))),
                   "fused_rnn::lstm_forward: expected w_hh of shape [16, 4], got [16, 5]"),
    "w_ih_shape": (lambda: OPS.gru_forward(**gru_args(w_ih=torch.randn(12, 4))),
                   "fused_rnn::gru_forward: expected w_ih of shape [12, 3], got [12, 4]"),
    "w_hh_rows": (lambda: OPS.gru_forward(**gru_args(w_hh=torch.randn(13, 4))),
                  "fused_rnn::gru_forward: expected w_hh of shape (3*hidden_size, hidden_size), got [13, 4]"),
    "bias_shape": (lambda: OPS.lstm_forward(**lstm_args(b_hh=torch.randn(15))),
                   "fused_rnn::lstm_forward: expected b_hh of shape [16], got [15]"),
    "hx_shape": (lambda: OPS.gru_forward(**gru_args(hx=torch.randn(3, 4))),
                 "fused_rnn::gru_forward: expected hx of shape [2, 4], got [3, 4]"),
    "cx_shape": (lambda: OPS.lstm_forward(**lstm_args(cx=torch.randn(2, 5))),
                 "fused_rnn::lstm_forward: expected cx of shape [2, 4], got [2, 5]"),
    "hx_dtype": (lambda: OPS.gru_forward(**gru_args(hx=torch.randn(2, 4, dtype=torch.float64))),
                 "fused_rnn::gru_forward: expected hx of dtype Float (the dtype of input), got Double"),
    "weight_dtype": (lambda: OPS.lstm_forward(**lstm_args(w_ih=torch.randn(16, 3, dtype=torch.float64))),
                     "fused_rnn::lstm_forward: expected w_ih of dtype Float (the dtype of input), got Double"),
    "proj_shape": (lambda: OPS.lstm_forward(**lstm_args(w_hh=torch.randn(16, 2), w_hr=torch.randn(2, 5))),
                   "fused_rnn::lstm_forward: expected w_hr of shape [2, 4], got [2, 5]"),
    "input_rank": (lambda: OPS.gru_forward(**gru_args(input=torch.randn(5, 3))),
                   "fused_rnn::gru_forward: expected input with 3 dimensions (seq_len, batch, input_size), got 2 "
                   "dimensions of shape [5, 3]"),
    "seq_len_zero": (lambda: OPS.gru_forward(**gru_args(input=torch.randn(0, 2, 3))), SEQ_LEN),
    "packed_empty": (lambda: OPS.gru_forward(**gru_args(input=torch.randn(0, 3),
                                                        batch_sizes=torch.zeros(0, dtype=torch.long))), SEQ_LEN),
    "packed_increasing": (lambda: OPS.gru_forward(**gru_args(input=torch.randn(5, 3),
                                                             batch_sizes=torch.tensor([2, 3]))),
                          "fused_rnn::gru_forward: batch_sizes must be positive and non-increasing, got 3 at step 1 "
                          "after 2"),
    "packed_zero": (lambda: OPS.gru_forward(**gru_args(input=torch.randn(2, 3), batch_sizes=torch.tensor([2, 0]))),
                    "fused_rnn::gru_forward: batch_sizes must be positive and non-increasing, got 0 at step 1 "
                    "after 2"),
    "packed_sum": (lambda: OPS.gru_forward(**gru_args(input=torch.randn(4, 3), batch_sizes=torch.tensor([2, 1]))),
                   "fused_rnn::gru_forward: batch_sizes sum to 3 but packed input has 4 rows"),
    "packed_dtype": (lambda: OPS.gru_forward(**gru_args(input=torch.randn(3, 3),
                                                        batch_sizes=torch.tensor([2, 1], dtype=torch.int32))),
                     "fused_rnn::gru_forward: expected batch_sizes of dtype Long, got Int"),
    "packed_rank": (lambda: OPS.gru_forward(**gru_args(input=torch.randn(3, 3),
                                                       batch_sizes=torch.tensor([[2, 1]]))),
                    "fused_rnn::gru_forward: expected batch_sizes to be 1-D, got 2-D"),
    "cpu_dtype": (lambda: OPS.lstm_forward(**{k: (v.half() if isinstance(v, torch.Tensor) else v)
                                             for k, v in lstm_args().items()}),
                  "fused_rnn::lstm_forward: the CPU kernels support float32 and float64, got Half"),
    "integer_input": (lambda: OPS.gru_forward(**gru_args(input=torch.ones(5, 2, 3, dtype=torch.long))),
                      "fused_rnn::gru_forward: expected input of a floating point dtype, got Long"),
}


@pytest.mark.parametrize("case", list(BOUNDARY))
def test_cpp_boundary_messages(case):
    fn, message = BOUNDARY[case]
    with pytest.raises(RuntimeError) as e:
        fn()
    assert str(e.value).splitlines()[0] == message


@pytest.mark.parametrize("cell", CELLS)
def test_backward_without_workspace_is_refused(cell):
    p = layer_params(cell, 3, 4, dtype=torch.float32)
    x = torch.randn(5, 2, 3)
    if cell == "lstm":
        out, h, c, ws = OPS.lstm_forward(x, None, None, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], None, None, False,
                                         False)
        call = lambda: OPS.lstm_backward(out, h, c, x, None, None, p["w_ih"], p["w_hh"], p["b_ih"],  # noqa: E731
                                         p["b_hh"], None, None, out, ws, False)
    else:
        fwd, bwd = getattr(OPS, f"{cell}_forward"), getattr(OPS, f"{cell}_backward")
        out, h, ws = fwd(x, None, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], None, False, False)
        call = lambda: bwd(out, h, x, None, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], None, out, ws,  # noqa: E731
                           False)
    if cell.startswith("rnn"):
        call()  # an Elman RNN saves nothing beyond its output: its backward needs no workspace
        return
    with pytest.raises(RuntimeError, match="the workspace is empty; run the forward with train=True"):
        call()


def test_backward_checks_gradient_shapes():
    p = layer_params("gru", 3, 4, dtype=torch.float32)
    x = torch.randn(5, 2, 3)
    out, h, ws = OPS.gru_forward(x, None, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], None, False, True)
    with pytest.raises(RuntimeError, match=re.escape("expected grad_output of shape [5, 2, 4], got [5, 2, 3]")):
        OPS.gru_backward(torch.zeros(5, 2, 3), h, x, None, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], None, out, ws,
                         False)
    with pytest.raises(RuntimeError, match=re.escape("expected workspace of shape [10, 16], got [10, 15]")):
        OPS.gru_backward(out, h, x, None, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], None, out, ws[:, :15], False)


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN"])
def test_device_mismatch_messages_match_torch_nn(name):
    """ATen's device checks, shown with the meta device since these machines have one device."""
    ref = getattr(nn, name)(3, 4, device="meta")
    fused = getattr(fused_rnn, name)(3, 4, device="meta")
    x = torch.randn(5, 2, 3)
    want = raised(lambda: ref(x))
    assert want is not None and "not at the same device" in want[1]
    assert raised(lambda: fused(x)) == want
    ref, fused = pair(name, 3, 4)
    h = torch.zeros(1, 2, 4, device="meta")
    hx = (h, h) if name == "LSTM" else h
    want = raised(lambda: ref(x, hx))
    assert want is not None and "hidden tensor at meta" in want[1]
    assert raised(lambda: fused(x, hx)) == want
