"""Shared helpers: parameter factories, the tolerance table, and comparisons."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import fused_rnn.functional as F
import fused_rnn.reference as R

CELLS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}

# Fused vs the reference (or torch.nn) computing in the same dtype: (rtol, atol).
# float64 must agree to rounding; float32 to what fp32 rounding over a short sequence allows.
TOL = {
    torch.float64: (1e-10, 1e-10),
    torch.float32: (1e-5, 1e-5),
}


class FusedOps(TorchDispatchMode):
    """Records the names of the fused_rnn ops dispatched while active."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == "fused_rnn":
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


def leaves(tree):
    """The leaves of a module's result, a PackedSequence opened into its four fields as later
    releases' pytree does (torch 2.4's and 2.5's take the PackedSequence itself for a leaf)."""
    out = []
    for leaf in torch.utils._pytree.tree_leaves(tree):
        out.extend(leaf if isinstance(leaf, torch.nn.utils.rnn.PackedSequence) else (leaf,))
    return out


def assert_close(actual, expected, dtype=None, msg=""):
    rtol, atol = TOL[dtype or expected.dtype]
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=lambda m: f"{msg}\n{m}" if msg else m)


def layer_params(cell, I, H, *, P=0, bias=True, dtype=torch.float64, seed=0, requires_grad=False):
    """Weights of one layer in one direction, in torch.nn's init range, as a dict of keyword arguments."""
    g = torch.Generator().manual_seed(seed)
    G = GATES[cell]
    k = 1.0 / (H ** 0.5)
    out_w = P or H

    def u(*shape):
        t = (torch.rand(*shape, generator=g, dtype=dtype) * 2 - 1) * k
        return t.requires_grad_(requires_grad)

    p = {"w_ih": u(G * H, I), "w_hh": u(G * H, out_w)}
    if bias:
        p["b_ih"] = u(G * H)
        p["b_hh"] = u(G * H)
    if P:
        p["w_hr"] = u(P, H)
    return p


def states(cell, B, H, *, P=0, dtype=torch.float64, seed=1, requires_grad=False):
    """Initial states as keyword arguments (hx, and cx for LSTM)."""
    g = torch.Generator().manual_seed(seed)
    s = {"hx": torch.randn(B, P or H, generator=g, dtype=dtype).requires_grad_(requires_grad)}
    if cell == "lstm":
        s["cx"] = torch.randn(B, H, generator=g, dtype=dtype).requires_grad_(requires_grad)
    return s


def run_layer(impl, cell, input, params, st, batch_sizes=None, reverse=False):
    """Call one layer of ``impl`` (fused_rnn.functional or fused_rnn.reference); returns (output, h_n[, c_n])."""
    kw = dict(params)
    kw.update(st)
    if cell == "lstm":
        return impl.lstm_layer(input, batch_sizes=batch_sizes, reverse=reverse, **kw)
    if cell == "gru":
        return impl.gru_layer(input, batch_sizes=batch_sizes, reverse=reverse, **kw)
    return impl.rnn_layer(input, batch_sizes=batch_sizes, reverse=reverse, nonlinearity=cell[4:], **kw)


def grads_of(outputs, inputs, seed=2):
    """Gradients of a random linear function of every output with respect to every input."""
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype).to(o.device)).sum() for o in outputs)
    return torch.autograd.grad(loss, inputs, allow_unused=False)


def differentiable_layer(cell, *, I, H, B, T, P=0, packed=False, lengths=None, reverse=False, seed=0,
                         device="cpu"):
    """A float64 layer call as ``fn(*inputs) -> outputs`` over every differentiable input, for
    gradcheck/gradgradcheck: the input (dense ``(T, B, I)`` or packed from ``lengths``), the weights
    and the initial states."""
    from torch.nn.utils.rnn import pack_sequence

    params = {k: v.to(device).requires_grad_() for k, v in layer_params(cell, I, H, P=P, seed=seed).items()}
    st = {k: v.to(device).requires_grad_() for k, v in states(cell, B, H, P=P, seed=seed + 10).items()}
    if packed:
        p = pack_sequence([torch.randn(n, I, dtype=torch.float64) for n in lengths])
        x, batch_sizes = p.data.to(device).requires_grad_(), p.batch_sizes
    else:
        x, batch_sizes = torch.randn(T, B, I, dtype=torch.float64, device=device, requires_grad=True), None
    names = list(params) + list(st)

    def fn(x, *flat):
        kw = dict(zip(names, flat))
        return tuple(run_layer(F, cell, x, {k: kw[k] for k in params}, {k: kw[k] for k in st}, batch_sizes,
                               reverse))

    return fn, (x, *params.values(), *st.values())


@pytest.fixture(autouse=True)
def _deterministic_seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _small_shapes_on_the_team():
    """The tests' shapes are small: by default most would stay on the calling thread (below the
    team's least work), and the team's claiming, row groups and barriers would go untested at the
    edges the shapes are chosen for. Every run goes to the team here, as larger ones do by
    default; test_eager_calls.py checks the default itself."""
    from fused_rnn import _C

    previous = _C._set_cpu_team_min_flops(0)
    yield
    _C._set_cpu_team_min_flops(previous)


__all__ = ["CELLS", "GATES", "TOL", "assert_close", "layer_params", "states", "run_layer", "grads_of",
           "differentiable_layer", "F", "R"]
