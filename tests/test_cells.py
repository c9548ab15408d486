"""fused_rnn.LSTMCell / GRUCell / RNNCell against torch.nn's cells with the same weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fused_rnn
from conftest import assert_close

CELLS = [("LSTMCell", {}), ("GRUCell", {}), ("RNNCell", {"nonlinearity": "tanh"}), ("RNNCell", {"nonlinearity": "relu"})]
IDS = ["LSTMCell", "GRUCell", "RNNCell-tanh", "RNNCell-relu"]


def pair(name, *args, dtype=torch.float64, **kwargs):
    ref = getattr(nn, name)(*args, dtype=dtype, **kwargs)
    fused = getattr(fused_rnn, name)(*args, dtype=dtype, **kwargs)
    fused.load_state_dict(ref.state_dict())
    return ref, fused


def as_list(x):
    return list(x) if isinstance(x, tuple) else [x]


@pytest.mark.parametrize("name,kwargs", CELLS, ids=IDS)
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_hx", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_parity_with_torch_nn(name, kwargs, batched, with_hx, bias):
    torch.manual_seed(0)
    ref, fused = pair(name, 5, 7, bias=bias, **kwargs)
    x = torch.randn(*((3, 5) if batched else (5,)), dtype=torch.float64, requires_grad=True)
    leaves = [x]
    hx = None
    if with_hx:
        shape = (3, 7) if batched else (7,)
        hx = [torch.randn(shape, dtype=torch.float64, requires_grad=True) for _ in range(2 if name == "LSTMCell" else 1)]
        leaves += hx
        hx = tuple(hx) if name == "LSTMCell" else hx[0]
    want = as_list(ref(x, hx))
    got = as_list(fused(x, hx))
    for a, b in zip(got, want):
        assert a.shape == b.shape
        assert_close(a, b)
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, generator=g, dtype=t.dtype) for t in want]
    inputs = leaves + list(ref.parameters())
    g_want = torch.autograd.grad(want, inputs, weights)
    g_got = torch.autograd.grad(got, leaves + list(fused.parameters()), weights)
    for a, b in zip(g_got, g_want):
        assert_close(a, b)


@pytest.mark.parametrize("name,kwargs", CELLS, ids=IDS)
def test_cell_unrolled_over_a_sequence(name, kwargs):
    """A cell stepped through a sequence in Python equals torch.nn's cell doing the same."""
    torch.manual_seed(0)
    ref, fused = pair(name, 4, 6, **kwargs)
    xs = torch.randn(8, 2, 4, dtype=torch.float64)
    h_ref = h = None
    for x in xs:
        h_ref = ref(x, h_ref)
        h = fused(x, h)
    for a, b in zip(as_list(h), as_list(h_ref)):
        assert_close(a, b)


@pytest.mark.parametrize("name,kwargs", CELLS, ids=IDS)
def test_cell_repr_and_state_dict(name, kwargs):
    ref, fused = pair(name, 4, 6, bias=False, **kwargs)
    assert repr(fused) == repr(ref)
    assert list(fused.state_dict()) == list(ref.state_dict())
    ref.load_state_dict(fused.state_dict(), strict=True)
    assert isinstance(fused, nn.RNNCellBase)


def raised(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    return None


BAD = {
    "input_3d": lambda m, H: m(torch.randn(2, 3, 4)),
    "input_size": lambda m, H: m(torch.randn(3, 5)),
    "hidden_batch": lambda m, H: m(torch.randn(3, 4), _hx(m, torch.randn(2, H))),
    "hidden_size": lambda m, H: m(torch.randn(3, 4), _hx(m, torch.randn(3, H + 1))),
    "hidden_3d": lambda m, H: m(torch.randn(3, 4), _hx(m, torch.randn(1, 3, H))),
}


def _hx(m, h):
    if isinstance(m, (nn.LSTMCell, fused_rnn.LSTMCell)):
        return (h, torch.zeros(h.shape))
    return h


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("name,kwargs", CELLS, ids=IDS)
def test_cell_errors_match_torch_nn(name, kwargs, case):
    ref, fused = pair(name, 4, 6, dtype=torch.float32, **kwargs)
    want = raised(lambda: BAD[case](ref, 6))
    assert want is not None
    assert raised(lambda: BAD[case](fused, 6)) == want


def test_lstm_cell_cx_errors_match_torch_nn():
    ref, fused = pair("LSTMCell", 4, 6, dtype=torch.float32)
    for hx in [(torch.zeros(3, 6), torch.zeros(2, 6)), (torch.zeros(3, 6), torch.zeros(3, 5)),
               (torch.zeros(3, 6), torch.zeros(1, 3, 6)),
               # the number of states, batched (unbatched, torch.nn reads hx[0] and hx[1] only)
               (torch.zeros(3, 6),), (torch.zeros(3, 6),) * 3, [torch.zeros(3, 6)] * 3, ()]:
        want = raised(lambda: ref(torch.randn(3, 4), hx))
        assert want is not None
        assert raised(lambda: fused(torch.randn(3, 4), hx)) == want
