"""The ops as registered ops: opcheck (schema, fake kernels, AOT dispatch) and float64 gradcheck."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

import fused_rnn  # noqa: F401
from conftest import CELLS, differentiable_layer, layer_params, states

OPS = torch.ops.fused_rnn


def sample(cell, *, packed=False, P=0, with_states=True, bias=True, B=3, T=4, I=5, H=6):
    params = layer_params(cell, I, H, P=P, bias=bias, dtype=torch.float32)
    st = states(cell, B, H, P=P, dtype=torch.float32) if with_states else {}
    if packed:
        seqs = [torch.randn(n, I) for n in sorted(torch.randint(1, T + 1, (B,)).tolist(), reverse=True)]
        p = pack_sequence(seqs)
        x, batch_sizes = p.data, p.batch_sizes
    else:
        x, batch_sizes = torch.randn(T, B, I), None
    return x, params, st, batch_sizes


def forward_args(cell, x, params, st, batch_sizes, reverse, train):
    if cell == "lstm":
        return (x, st.get("hx"), st.get("cx"), params["w_ih"], params["w_hh"], params.get("b_ih"),
                params.get("b_hh"), params.get("w_hr"), batch_sizes, reverse, train)
    return (x, st.get("hx"), params["w_ih"], params["w_hh"], params.get("b_ih"), params.get("b_hh"), batch_sizes,
            reverse, train)


CASES = [
    dict(),
    dict(packed=True),
    dict(bias=False),
    dict(with_states=False),
    dict(packed=True, with_states=False),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(c) or "plain")
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_opcheck_forward_and_backward(cell, reverse, case):
    x, params, st, batch_sizes = sample(cell, **case)
    fwd = getattr(OPS, f"{cell}_forward")
    args = forward_args(cell, x, params, st, batch_sizes, reverse, True)
    torch.library.opcheck(fwd, args)
    outs = fwd(*args)
    out, h_n, ws = outs[0], outs[1], outs[-1]
    bwd = getattr(OPS, f"{cell}_backward")
    if cell == "lstm":
        bargs = (torch.randn_like(out), torch.randn_like(h_n), torch.randn_like(outs[2]), *args[:9], out, ws, reverse)
    else:
        bargs = (torch.randn_like(out), torch.randn_like(h_n), *args[:7], out, ws, reverse)
    torch.library.opcheck(bwd, bargs)


@pytest.mark.parametrize("reverse", [False, True])
def test_opcheck_lstm_projection(reverse):
    x, params, st, batch_sizes = sample("lstm", P=2)
    args = forward_args("lstm", x, params, st, batch_sizes, reverse, True)
    torch.library.opcheck(OPS.lstm_forward, args)
    out, h_n, c_n, ws = OPS.lstm_forward(*args)
    bargs = (torch.randn_like(out), torch.randn_like(h_n), torch.randn_like(c_n), *args[:9], out, ws, reverse)
    torch.library.opcheck(OPS.lstm_backward, bargs)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_gradcheck_float64(cell, reverse, packed):
    for seed in range(2):
        torch.manual_seed(seed)
        P = 2 if cell == "lstm" and seed == 1 else 0
        fn, inputs = differentiable_layer(cell, I=3, H=4, B=3, T=4, P=P, packed=packed, lengths=(4, 2, 1),
                                          reverse=reverse, seed=seed)
        assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("input_grad,weight_grad", [(False, True), (True, False), (False, False)])
def test_backward_skips_the_gradients_not_asked_for(cell, input_grad, weight_grad):
    """input_grad / weight_grad false: those gradients come back empty (fake kernels agree), and
    every other gradient is the same as from a full backward."""
    x, params, st, batch_sizes = sample(cell, P=2 if cell == "lstm" else 0)
    fwd = getattr(OPS, f"{cell}_forward")
    args = forward_args(cell, x, params, st, batch_sizes, False, True)
    outs = fwd(*args)
    out, h_n, ws = outs[0], outs[1], outs[-1]
    bwd = getattr(OPS, f"{cell}_backward")
    if cell == "lstm":
        bargs = (torch.randn_like(out), torch.randn_like(h_n), torch.randn_like(outs[2]), *args[:9], out, ws, False,
                 None)
        weights = (3, 4, 7)
    else:
        bargs = (torch.randn_like(out), torch.randn_like(h_n), *args[:7], out, ws, False)
        weights = (2, 3)
    flags = dict(input_grad=input_grad, weight_grad=weight_grad)
    torch.library.opcheck(bwd, bargs, flags)
    full, part = bwd(*bargs), bwd(*bargs, **flags)
    for i, (a, b) in enumerate(zip(full, part)):
        skipped = (i == 0 and not input_grad) or (i in weights and not weight_grad)
        if skipped:
            assert b.numel() == 0
        else:
            assert torch.equal(a, b), i
