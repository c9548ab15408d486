"""Eager calls of one-direction layers (and so of the cells): training under the C++ autograd
nodes of csrc/autograd.cpp, inference straight to the op, and small runs kept off the thread
team. Each is checked against the Python autograd.Function path of ops.py (which torch.compile
and functorch transforms take) and against torch.nn."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence

import fused_rnn
from conftest import CELLS, F, assert_close, layer_params, run_layer, states
from fused_rnn import _C

NODE = {"lstm": "fused_rnn::LSTMLayerFunction", "gru": "fused_rnn::SimpleLayerFunction",
        "rnn_tanh": "fused_rnn::SimpleLayerFunction", "rnn_relu": "fused_rnn::SimpleLayerFunction"}


def _fused_nodes(t):
    """The names of the fused_rnn C++ nodes in t's graph."""
    seen, todo, names = set(), [t.grad_fn], []
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if "fused_rnn::" in node.name():
            names.append(node.name())
        todo.extend(n for n, _ in node.next_functions)
    return names


def _with_cpp(on, fn):
    previous = F._set_cpp_autograd(on)
    try:
        return fn()
    finally:
        F._set_cpp_autograd(previous)


def _training_call(cell, *, packed, with_hx, bias, loss_on, frozen, input_grad):
    """A layer call and the gradients of a loss on some of its outputs: (grad_fn name, outputs, grads)."""
    params = layer_params(cell, 3, 5, bias=bias, requires_grad=not frozen)
    st = states(cell, 4, 5, requires_grad=True) if with_hx else {}
    if packed:
        g = torch.Generator().manual_seed(3)
        seq = pack_sequence([torch.randn(n, 3, generator=g, dtype=torch.float64) for n in (5, 3, 3, 1)])
        x, batch_sizes = seq.data.clone(), seq.batch_sizes
    else:
        x, batch_sizes = torch.randn(6, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)), None
    x.requires_grad_(input_grad)
    outs = run_layer(F, cell, x, params, st, batch_sizes)
    used = {"output": outs[:1], "states": outs[1:], "all": outs}[loss_on]
    loss = sum((o * (1 + torch.arange(o.numel(), dtype=o.dtype).view(o.shape) / 7)).sum() for o in used)
    wrt = [t for t in [x, *params.values(), *st.values()] if t.requires_grad]
    return outs[0].grad_fn.name(), [o.detach() for o in outs], torch.autograd.grad(loss, wrt)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("with_hx,bias", [(True, True), (False, False)])
@pytest.mark.parametrize("loss_on", ["output", "states", "all"])
@pytest.mark.parametrize("frozen,input_grad", [(False, True), (True, True), (False, False)])
def test_cpp_node_gives_the_python_functions_results(cell, packed, with_hx, bias, loss_on, frozen, input_grad):
    """The C++ node runs the very ops the Python Function runs, with the same zero gradients where
    none arrive and the same gradients skipped: bitwise the same outputs and gradients."""
    kw = dict(packed=packed, with_hx=with_hx, bias=bias, loss_on=loss_on, frozen=frozen, input_grad=input_grad)
    node, outs, grads = _with_cpp(True, lambda: _training_call(cell, **kw))
    py_node, py_outs, py_grads = _with_cpp(False, lambda: _training_call(cell, **kw))
    assert NODE[cell] in node
    assert "fused_rnn::" not in py_node
    for a, b in zip(outs + list(grads), py_outs + list(py_grads)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell", "LSTM", "RNN"])
def test_double_backward_through_the_cpp_node_matches_torch_nn(name):
    """create_graph=True: the node hands the backward to ops.py's differentiable recomputation."""
    torch.manual_seed(0)
    kw = dict(num_layers=2) if not name.endswith("Cell") else {}
    ref = getattr(nn, name)(3, 4, dtype=torch.float64, **kw)
    fused = getattr(fused_rnn, name)(3, 4, dtype=torch.float64, **kw)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, dtype=torch.float64) if name.endswith("Cell") else torch.randn(5, 2, 3, dtype=torch.float64)
    x.requires_grad_()
    results = []
    for m in (ref, fused):
        out = m(x)
        out = out[0] if isinstance(out, tuple) else out
        if m is fused:
            assert _fused_nodes(out)
        (gx,) = torch.autograd.grad(out.pow(2).sum(), x, create_graph=True)
        results.append(torch.autograd.grad(gx.pow(2).sum(), [x, *m.parameters()]))
    for a, b in zip(*results):
        assert_close(b, a)


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell"])
def test_backward_twice_and_modified_weights_fail_as_in_torch_nn(name):
    """The saved tensors are autograd's own: freed after a backward, version-checked (here hx
    requires grad, so torch.nn needs weight_hh for the backward too)."""
    for m in (getattr(nn, name)(3, 4), getattr(fused_rnn, name)(3, 4)):
        x = torch.randn(2, 3, requires_grad=True)
        h = torch.randn(2, 4, requires_grad=True)
        hx = (h, torch.randn(2, 4)) if name == "LSTMCell" else h
        out = m(x, hx)
        loss = (out[0] if isinstance(out, tuple) else out).sum()
        loss.backward()
        with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
            loss.backward()
        out = m(x, hx)
        with torch.no_grad():
            m.weight_hh.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            (out[0] if isinstance(out, tuple) else out).sum().backward()


def test_saved_tensor_hooks_see_the_nodes_tensors():
    """torch.autograd.graph.saved_tensors_hooks (activation offloading, checkpointing) applies to
    what the node saves, and the gradients come back the same through them."""
    m = fused_rnn.LSTM(3, 5)
    x = torch.randn(6, 2, 3, requires_grad=True)
    want = torch.autograd.grad(m(x)[0].sum(), [x, *m.parameters()])
    packed = []

    def pack(t):
        packed.append(t.shape)
        return t.clone()

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = m(x)[0]
    assert any("LSTMLayerFunction" in n for n in _fused_nodes(out))
    assert torch.Size([6 * 2, 5 * 5]) in packed  # the workspace
    got = torch.autograd.grad(out.sum(), [x, *m.parameters()])
    for a, b in zip(got, want):
        assert torch.equal(a, b)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-direction", "bidirectional"])
@pytest.mark.parametrize("use_reentrant", [False, True], ids=["non-reentrant", "reentrant"])
def test_checkpointed_layers_give_torch_nn_gradients(mode, bidirectional, use_reentrant):
    """torch.utils.checkpoint recomputes the forward in the backward (under saved-tensor hooks,
    or in a backward of its own) and its node's backward consumes the recomputed workspace:
    torch.nn's gradients, including through a graph retained across two backwards."""
    from torch.utils.checkpoint import checkpoint

    ref = getattr(torch.nn, mode)(3, 6, num_layers=2, bidirectional=bidirectional).double()
    fused = getattr(fused_rnn, mode)(3, 6, num_layers=2, bidirectional=bidirectional).double()
    fused.load_state_dict(ref.state_dict())
    results = []
    for m in (ref, fused):
        x = torch.randn(7, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
        out = checkpoint(lambda t: m(t)[0], x, use_reentrant=use_reentrant)
        loss = out.square().sum()
        loss.backward(retain_graph=not use_reentrant)
        if not use_reentrant:  # the reentrant form cannot retain its graph
            loss.backward()
        results.append([x.grad, *(p.grad for p in m.parameters())])
    for a, b in zip(*results):
        assert_close(b, a)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("packed", [False, True])
def test_inference_call_gives_the_ops_results(cell, packed):
    params = layer_params(cell, 3, 5, dtype=torch.float32)
    st = states(cell, 3, 5, dtype=torch.float32)
    if packed:
        seq = pack_sequence([torch.randn(n, 3) for n in (4, 2, 1)])
        x, batch_sizes = seq.data, seq.batch_sizes
    else:
        x, batch_sizes = torch.randn(4, 3, 3), None
    with torch.no_grad():
        got = _with_cpp(True, lambda: run_layer(F, cell, x, params, st, batch_sizes))
        want = _with_cpp(False, lambda: run_layer(F, cell, x, params, st, batch_sizes))
    for a, b in zip(got, want):
        assert torch.equal(a, b)


def test_team_least_work_setting_round_trips_and_rejects_negatives():
    previous = _C._set_cpu_team_min_flops(123)
    try:
        assert _C.build_info()["cpu_team_min_flops"] == 123
        with pytest.raises(RuntimeError, match="must be >= 0"):
            _C._set_cpu_team_min_flops(-1)
        assert _C.build_info()["cpu_team_min_flops"] == 123
    finally:
        _C._set_cpu_team_min_flops(previous)


@pytest.mark.parametrize("cell", CELLS)
def test_small_runs_off_the_team_give_the_teams_results(cell):
    """Below the default least work a run stays on the calling thread (a cell's step); the items are
    the same, so the results are bitwise those of the team, forward and backward."""
    torch.set_num_threads(max(2, torch.get_num_threads()))
    params = layer_params(cell, 8, 24, dtype=torch.float32, requires_grad=True)
    st = states(cell, 2, 24, dtype=torch.float32)
    x = torch.randn(3, 2, 8, requires_grad=True)

    def run():
        outs = run_layer(F, cell, x, params, st)
        grads = torch.autograd.grad(sum(o.sum() for o in outs), [x, *params.values()])
        return [o.detach() for o in outs] + list(grads)

    results = []
    for least in (1 << 19, 0):  # the default (this run is far below it), then every run on the team
        previous = _C._set_cpu_team_min_flops(least)
        try:
            results.append(run())
        finally:
            _C._set_cpu_team_min_flops(previous)
    for a, b in zip(*results):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name,kwargs", [("LSTMCell", {}), ("GRUCell", {}), ("RNNCell", {"nonlinearity": "tanh"}),
                                         ("RNNCell", {"nonlinearity": "relu"})])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_hx", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_cell_call_in_one_step_gives_the_python_paths_results(name, kwargs, batched, with_hx, train):
    """A cell's eager call goes to _C in one call (_lstm_cell / _simple_cell) and gives, output and
    gradients, the bits of the path through the layer functions and the Python Functions."""
    torch.manual_seed(0)
    m = getattr(fused_rnn, name)(3, 4, dtype=torch.float64, **kwargs)
    x = torch.randn(*((2,) if batched else ()), 3, dtype=torch.float64, requires_grad=train)
    shape = (2, 4) if batched else (4,)
    hx = None
    if with_hx:
        h = torch.randn(shape, dtype=torch.float64, requires_grad=train)
        hx = (h, torch.randn(shape, dtype=torch.float64)) if name == "LSTMCell" else h

    def run():
        with torch.set_grad_enabled(train):
            out = m(x, hx)
        outs = list(out) if isinstance(out, tuple) else [out]
        if not train:
            return outs, outs[0].grad_fn
        wrt = [x, *m.parameters()] + ([hx[0] if name == "LSTMCell" else hx] if with_hx else [])
        grads = torch.autograd.grad(sum(o.pow(2).sum() for o in outs), wrt)
        return [o.detach() for o in outs] + list(grads), outs[0]

    got, out = _with_cpp(True, run)
    want, py_out = _with_cpp(False, run)
    if train:
        assert _fused_nodes(out) and not _fused_nodes(py_out)
    else:
        assert out is None  # no graph: nothing required grad
    for a, b in zip(got, want):
        assert a.shape == b.shape and torch.equal(a, b)
