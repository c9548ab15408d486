"""The drop-in mechanics: convert(), copies, pickling, dtype moves, functional_call, parametrizations."""

from __future__ import annotations

import copy
import io
import pickle
import warnings

import pytest
import torch
from torch import nn

import fused_rnn
from conftest import assert_close


class Mixed(nn.Module):
    """A model holding every module type fused_rnn replaces."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)
        self.gru = nn.GRU(6, 5, batch_first=True)
        self.rnn = nn.RNN(5, 5, nonlinearity="relu")
        self.cells = nn.ModuleList([nn.LSTMCell(5, 4), nn.GRUCell(4, 4), nn.RNNCell(4, 3, nonlinearity="tanh")])
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        y, _ = self.lstm(x)
        y, _ = self.gru(y.transpose(0, 1))
        y, _ = self.rnn(y.transpose(0, 1))
        h, c = self.cells[0](y[-1])
        h = self.cells[1](h)
        h = self.cells[2](h)
        return self.head(h)


def test_convert_swaps_every_module_and_keeps_the_parameters():
    torch.manual_seed(0)
    model = Mixed().double()
    x = torch.randn(7, 3, 4, dtype=torch.float64)
    want = model(x)
    params_before = {n: p for n, p in model.named_parameters()}
    assert fused_rnn.convert(model) is model
    kinds = {type(m) for m in model.modules()}
    assert {fused_rnn.LSTM, fused_rnn.GRU, fused_rnn.RNN, fused_rnn.LSTMCell, fused_rnn.GRUCell,
            fused_rnn.RNNCell} <= kinds
    assert not kinds & {nn.LSTM, nn.GRU, nn.RNN, nn.LSTMCell, nn.GRUCell, nn.RNNCell}
    params_after = dict(model.named_parameters())
    assert list(params_after) == list(params_before)
    assert all(params_after[n] is p for n, p in params_before.items())
    got = model(x)
    assert_close(got, want)
    got.sum().backward()  # gradients reach the shared parameters
    assert all(p.grad is not None for p in params_before.values())


def test_convert_a_bare_module():
    m = nn.GRU(3, 4)
    assert isinstance(fused_rnn.convert(m), fused_rnn.GRU)


def pair(cls_name="LSTM", *args, **kwargs):
    ref = getattr(nn, cls_name)(*args, **kwargs)
    fused = getattr(fused_rnn, cls_name)(*args, **kwargs)
    fused.load_state_dict(ref.state_dict())
    return ref, fused


def test_deepcopy_pickle_and_torch_save_round_trip():
    torch.manual_seed(0)
    _, fused = pair("LSTM", 3, 5, num_layers=2)
    x = torch.randn(4, 2, 3)
    want = fused(x)[0]
    copies = [copy.deepcopy(fused), pickle.loads(pickle.dumps(fused))]
    buf = io.BytesIO()
    torch.save(fused, buf)
    buf.seek(0)
    copies.append(torch.load(buf, weights_only=False))
    for c in copies:
        assert type(c) is fused_rnn.LSTM
        assert torch.equal(c(x)[0], want)
        assert all(a.data_ptr() != b.data_ptr() for a, b in zip(c.parameters(), fused.parameters()))


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN"])
def test_dtype_moves(name):
    torch.manual_seed(0)
    ref, fused = pair(name, 3, 5)
    ref.double()
    fused.double()
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    assert_close(fused(x)[0], ref(x)[0])
    fused.to(torch.float32)
    assert fused(x.float())[0].dtype == torch.float32
    fused.half()
    assert fused(x.half())[0].dtype == torch.float16


def test_functional_call_uses_the_given_parameters():
    torch.manual_seed(0)
    ref, fused = pair("GRU", 3, 5)
    x = torch.randn(4, 2, 3)
    new = {n: torch.randn_like(p) for n, p in ref.named_parameters()}
    want = torch.func.functional_call(ref, new, (x,))[0]
    got = torch.func.functional_call(fused, new, (x,))[0]
    assert_close(got, want)
    assert not torch.allclose(got, fused(x)[0])


def test_weight_norm_parametrization():
    torch.manual_seed(0)
    ref, fused = pair("LSTM", 3, 5, proj_size=2)
    for m in (ref, fused):
        torch.nn.utils.parametrizations.weight_norm(m, "weight_hh_l0")
        torch.nn.utils.parametrizations.weight_norm(m, "weight_hr_l0")
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(4, 2, 3)
    out_ref, out = ref(x)[0], fused(x)[0]
    assert_close(out, out_ref)
    g_ref = torch.autograd.grad(out_ref.sum(), list(ref.parameters()))
    g = torch.autograd.grad(out.sum(), list(fused.parameters()))
    for a, b in zip(g, g_ref):
        assert_close(a, b)


def test_flatten_parameters_warns_about_nothing():
    _, fused = pair("LSTM", 3, 5, num_layers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fused.flatten_parameters()
        fused(torch.randn(4, 2, 3))


def test_weight_tying_across_directions():
    torch.manual_seed(0)
    ref, fused = pair("GRU", 3, 4, bidirectional=True)
    for m in (ref, fused):
        m.bias_ih_l0_reverse = m.bias_ih_l0
    x = torch.randn(5, 2, 3)
    assert_close(fused(x)[0], ref(x)[0])
    g_ref = torch.autograd.grad(ref(x)[0].sum(), ref.bias_ih_l0)
    g = torch.autograd.grad(fused(x)[0].sum(), fused.bias_ih_l0)
    assert_close(g[0], g_ref[0])


def test_changing_dropout_after_construction_takes_effect():
    torch.manual_seed(0)
    ref, fused = pair("LSTM", 3, 4, num_layers=2)
    x = torch.randn(5, 2, 3)
    for m in (ref, fused):
        m.dropout = 1.0
    assert_close(fused(x)[0], ref(x)[0])  # layer 1 sees zeros in both
