"""torch.compile, double backward, determinism, export, to_native, per-step states, CUDA graphs."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence

import fused_rnn
import fused_rnn.reference as R
from conftest import CELLS, F, assert_close, differentiable_layer, layer_params

MODULES = [
    ("LSTM", lambda: fused_rnn.LSTM(3, 5, num_layers=2, bidirectional=True)),
    ("GRU", lambda: fused_rnn.GRU(3, 5, batch_first=True)),
    ("RNN", lambda: fused_rnn.RNN(3, 5, nonlinearity="relu")),
    ("LSTMCell", lambda: fused_rnn.LSTMCell(3, 5)),
    ("GRUCell", lambda: fused_rnn.GRUCell(3, 5)),
    ("RNNCell", lambda: fused_rnn.RNNCell(3, 5)),
]


def _input(name, T=6, B=4):
    if name.endswith("Cell"):
        return torch.randn(B, 3)
    return torch.randn(B, T, 3) if name == "GRU" else torch.randn(T, B, 3)


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def _loss(out):
    return _first(out).pow(2).sum()


class CountingBackend:
    """aot_eager that counts how many graphs Dynamo hands it (recompilations show up here)."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, gm, example_inputs):
        self.graphs += 1
        from torch._dynamo.backends.common import aot_autograd
        from functorch.compile import make_boxed_func

        return aot_autograd(fw_compiler=lambda g, _: make_boxed_func(g.forward))(gm, example_inputs)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("name,make", MODULES, ids=[m[0] for m in MODULES])
def test_compile_fullgraph_matches_eager(name, make, backend):
    torch.manual_seed(0)
    torch._dynamo.reset()
    model = make()
    x = _input(name)
    want = model(x)
    want_grads = torch.autograd.grad(_loss(want), list(model.parameters()))
    got = torch.compile(model, backend=backend, fullgraph=True)(x)
    assert_close(_first(got), _first(want), dtype=torch.float32)
    got_grads = torch.autograd.grad(_loss(got), list(model.parameters()))
    for a, b in zip(got_grads, want_grads):
        assert_close(a, b, dtype=torch.float32)


def test_compile_dynamic_does_not_recompile_per_length():
    torch.manual_seed(0)
    torch._dynamo.reset()
    model = fused_rnn.LSTM(3, 5, num_layers=2)
    backend = CountingBackend()
    compiled = torch.compile(model, backend=backend, fullgraph=True, dynamic=True)
    after_first = None
    for T, B in [(4, 2), (7, 3), (11, 5), (2, 8)]:
        x = torch.randn(T, B, 3)
        out, _ = compiled(x)
        assert_close(out, model(x)[0], dtype=torch.float32)
        _loss(out).backward()
        after_first = after_first or backend.graphs
    # (Dynamo may restart its first analysis once to specialise the dropout float; that is not a recompile.)
    assert backend.graphs == after_first


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("packed", [False, True])
def test_gradgradcheck_float64(cell, packed):
    torch.manual_seed(0)
    P = 2 if cell == "lstm" and packed else 0
    fn, inputs = differentiable_layer(cell, I=2, H=3, B=3, T=3, P=P, packed=packed, lengths=(3, 2, 1), seed=0)
    assert torch.autograd.gradgradcheck(fn, inputs)


def test_double_backward_through_a_module_matches_torch_nn():
    """A gradient penalty (grad of a grad) through fused_rnn.GRU equals torch.nn.GRU's."""
    torch.manual_seed(0)
    ref = nn.GRU(3, 4, num_layers=2, dtype=torch.float64)
    fused = fused_rnn.GRU(3, 4, num_layers=2, dtype=torch.float64)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    results = []
    for m in (ref, fused):
        (gx,) = torch.autograd.grad(m(x)[0].pow(2).sum(), x, create_graph=True)
        results.append(torch.autograd.grad(gx.pow(2).sum(), list(m.parameters())))
    for a, b in zip(*results):
        assert_close(b, a)


@pytest.mark.parametrize("name,make", MODULES, ids=[m[0] for m in MODULES])
def test_torch_func_grad_matches_torch_nn(name, make):
    """torch.func.grad over functional_call: inside the functorch transform the layers take
    autograd.Function.apply itself (apply_function's fallback), and the gradients are torch.nn's."""
    from torch.func import functional_call, grad

    torch.manual_seed(0)
    fused = make()
    ref = fused.to_native()
    x = _input(name)
    params = {k: v.detach() for k, v in fused.named_parameters()}
    got = grad(lambda p: _loss(functional_call(fused, p, (x,))))(params)
    want = grad(lambda p: _loss(functional_call(ref, p, (x,))))(params)
    assert got.keys() == want.keys()
    for k in want:
        assert_close(got[k], want[k])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name,make", MODULES, ids=[m[0] for m in MODULES])
def test_training_calls_do_not_bind_signatures(name, make, dtype, monkeypatch):
    """autograd.Function.apply binds its arguments to forward's signature on every call, and
    computing that signature costs tens of microseconds, more than a small layer's kernels: the
    layers' training calls (and bf16's kept casts) never compute one (apply_function goes around
    the binding up to torch 2.13; the forwards carry their signature for later versions), with
    the very gradients Function.apply gives. (inspect._signature_from_function is the worker
    inspect.signature runs for a function without a __signature__.)"""
    import inspect

    torch.manual_seed(0)
    fused = make().to(dtype)
    x = _input(name).to(dtype).requires_grad_()

    def grads():
        fused.zero_grad(set_to_none=True)
        x.grad = None
        _loss(fused(x)).float().backward()
        return [x.grad] + [p.grad for p in fused.parameters()]

    with monkeypatch.context() as m:  # torch's own path
        m.setattr(F, "apply_function", lambda fn, *args: fn.apply(*args))
        want = grads()
    grads()  # the first call may look a signature up once

    def refuse(*args, **kwargs):
        raise AssertionError("a signature computed during a training step")

    with monkeypatch.context() as m:
        m.setattr(inspect, "_signature_from_function", refuse)
        got = grads()
    for a, b in zip(got, want):
        assert torch.equal(a, b)


def test_deterministic_algorithms_give_bitwise_equal_runs():
    torch.manual_seed(0)
    model = fused_rnn.LSTM(16, 32, num_layers=2, bidirectional=True)
    x = torch.randn(20, 8, 16)
    torch.use_deterministic_algorithms(True)
    try:
        runs = []
        for _ in range(2):
            model.zero_grad()
            out, _ = model(x)
            out.pow(2).sum().backward()
            runs.append([out.detach().clone()] + [p.grad.clone() for p in model.parameters()])
    finally:
        torch.use_deterministic_algorithms(False)
    for a, b in zip(*runs):
        assert torch.equal(a, b)


class Tagger(nn.Module):
    def __init__(self, states=False):
        super().__init__()
        self.states = states
        self.lstm = fused_rnn.LSTM(3, 6, batch_first=True, bidirectional=True)
        self.gru = fused_rnn.GRU(12, 4)
        self.rnn = fused_rnn.RNN(4, 4, num_layers=2)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        if not self.states:
            y, _ = self.lstm(x)
            y, _ = self.gru(y)
            return self.head(self.rnn(y)[0])
        # Given states take the modules' other checks (torch.nn's check_forward_args).
        h = x.new_full((2, x.shape[0], 6), 0.25)
        y, _ = self.lstm(x, (h, -h))
        y, _ = self.gru(y, x.new_full((1, y.shape[1], 4), 0.5))
        return self.head(self.rnn(y, x.new_full((2, y.shape[1], 4), -0.5))[0])


@pytest.mark.parametrize("states", [False, True], ids=["no-states", "states"])
def test_torch_export(states):
    torch.manual_seed(0)
    model = Tagger(states).eval()
    x = torch.randn(2, 5, 3)
    exported = torch.export.export(model, (x,))
    assert_close(exported.module()(x), model(x), dtype=torch.float32)
    x2 = torch.randn(2, 5, 3)
    assert_close(exported.module()(x2), model(x2), dtype=torch.float32)


@pytest.mark.parametrize("name,make", MODULES, ids=[m[0] for m in MODULES])
def test_to_native_shares_parameters_and_matches(name, make):
    torch.manual_seed(0)
    fused = make()
    native = fused.to_native()
    assert type(native) is getattr(nn, name)
    assert type(fused).__module__ == "fused_rnn.modules"  # the fused module itself is unchanged
    assert all(a is b for a, b in zip(native.parameters(), fused.parameters()))
    assert [n for n, _ in native.named_parameters()] == [n for n, _ in fused.named_parameters()]
    x = _input(name)
    a, b = native(x), fused(x)
    assert_close(a[0] if isinstance(a, tuple) else a, b[0] if isinstance(b, tuple) else b, dtype=torch.float32)


def test_module_level_to_native_inverts_convert():
    model = nn.Sequential(nn.Linear(3, 3))
    model.add_module("rnn", nn.LSTM(3, 4))
    params = list(model.parameters())
    fused_rnn.convert(model)
    assert type(model.rnn) is fused_rnn.LSTM
    fused_rnn.to_native(model)
    assert type(model.rnn) is nn.LSTM
    assert all(a is b for a, b in zip(model.parameters(), params))
    model.rnn(torch.randn(2, 1, 3))


@pytest.mark.parametrize("name,make", MODULES, ids=[m[0] for m in MODULES])
def test_torch_jit_script_compiles_the_torch_nn_module(name, make):
    """torch.jit.script of a fused module scripts torch.nn's over the same parameters, with the
    same results; the fused module itself stays fused. (Where this torch cannot run a scripted
    torch.nn module, as 2.13 cannot run its LSTM/GRU/RNN, the fused one fails just as it does.)"""
    torch.manual_seed(0)
    fused = make()
    x = _input(name)
    try:
        torch.jit.script(fused.to_native())(x)
        native_error = None
    except Exception as e:  # noqa: BLE001 - torch's own outcome, whatever it is
        native_error = e
    scripted = torch.jit.script(fused)
    assert isinstance(scripted, torch.jit.ScriptModule) and scripted.original_name == name
    assert type(fused).__module__ == "fused_rnn.modules"
    assert all(a is b for a, b in zip(scripted.parameters(), fused.parameters()))
    if native_error is not None:
        with pytest.raises(type(native_error), match=re.escape(str(native_error))):
            scripted(x)
        return
    assert_close(_first(scripted(x)), _first(fused(x)), dtype=torch.float32)


def test_torch_jit_script_of_a_model_holding_fused_modules():
    torch.manual_seed(0)

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = fused_rnn.GRU(3, 4, num_layers=2)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.head(y)

    model = Tagger()
    x = torch.randn(5, 2, 3)
    want = model(x)
    scripted = torch.jit.script(model)
    assert scripted.rnn.original_name == "GRU"
    assert all(a is b for a, b in zip(scripted.parameters(), model.parameters()))
    try:
        got = scripted(x)
    except AttributeError as e:  # torch versions whose scripted torch.nn.GRU cannot run
        assert "'RecursiveScriptModule' object has no attribute 'forward'" in str(e)
        return
    assert_close(got, want, dtype=torch.float32)
    with pytest.raises(RuntimeError, match="fused_rnn.LSTM with return_all_states=True cannot be scripted: "
                                           "torch.nn.LSTM, which TorchScript compiles instead, has no such output"):
        torch.jit.script(fused_rnn.LSTM(3, 4, return_all_states=True))


def test_onnx_export_traces_torchs_own_computation(monkeypatch):
    """Under torch.onnx.export (stood in for here by its flag under torch.jit.trace, which is how
    its TorchScript exporter records a model) a stack is torch.nn's aten::lstm and a cell plain
    tensor arithmetic: no fused_rnn op, which ONNX could not express."""
    import torch.onnx

    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    for make, x, aten in ((lambda: fused_rnn.LSTM(3, 5, num_layers=2, bidirectional=True), torch.randn(6, 4, 3),
                           "aten::lstm"),
                          (lambda: fused_rnn.GRU(3, 5, batch_first=True), torch.randn(4, 6, 3), "aten::gru"),
                          (lambda: fused_rnn.LSTMCell(3, 5), torch.randn(4, 3), "aten::sigmoid")):
        module = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's own warnings
            traced = torch.jit.trace(module, (x,), check_trace=False)
        graph = str(traced.inlined_graph)
        assert aten in graph and "fused_rnn::" not in graph, graph
        assert_close(_first(traced(x)), _first(module(x)), dtype=torch.float32)
    monkeypatch.undo()
    # Outside an ONNX export, tracing records the fused op, and the trace saves and loads.
    import io

    gru, x = fused_rnn.GRU(3, 5), torch.randn(6, 4, 3)
    traced = torch.jit.trace(gru, (x,), check_trace=False)
    assert "fused_rnn::gru_forward" in str(traced.inlined_graph)
    f = io.BytesIO()
    torch.jit.save(traced, f)
    f.seek(0)
    assert_close(torch.jit.load(f)(x)[0], gru(x)[0], dtype=torch.float32)


ONNX_MODULES = [
    ("LSTM", lambda: fused_rnn.LSTM(3, 5, num_layers=2, bidirectional=True), lambda: torch.randn(6, 4, 3)),
    ("GRU", lambda: fused_rnn.GRU(3, 5, batch_first=True), lambda: torch.randn(4, 6, 3)),
    ("RNN", lambda: fused_rnn.RNN(3, 5, nonlinearity="relu"), lambda: torch.randn(6, 4, 3)),
    ("LSTMCell", lambda: fused_rnn.LSTMCell(3, 5), lambda: torch.randn(4, 3)),
]


@pytest.mark.parametrize("name,make,x", ONNX_MODULES, ids=[m[0] for m in ONNX_MODULES])
@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript-exporter", "dynamo-exporter"])
def test_onnx_export_gives_torch_nns_graph(name, make, x, dynamo):
    """torch.onnx.export of a fused module writes the graph of the torch.nn module over the same
    weights: the same ONNX operators (a stack: ONNX's own LSTM, GRU, RNN) and initializers."""
    onnx = pytest.importorskip("onnx")
    if dynamo:
        pytest.importorskip("onnxscript")
        if name != "LSTM":
            pytest.skip("one stack is enough for the slower exporter")
    import io

    torch.manual_seed(0)
    fused = make()
    x = x()

    def export(module):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if dynamo:
                return torch.onnx.export(module, (x,), dynamo=True).model_proto
            f = io.BytesIO()
            torch.onnx.export(module, (x,), f, dynamo=False)
            return onnx.load_from_string(f.getvalue())

    got, want = export(fused), export(fused.to_native())
    ops = [(n.domain, n.op_type) for n in got.graph.node]
    assert ops == [(n.domain, n.op_type) for n in want.graph.node]
    assert all(domain in ("", "ai.onnx") for domain, _ in ops), ops
    if name in ("LSTM", "GRU", "RNN"):
        assert name in {op for _, op in ops}
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in got.graph.initializer}
    for i in want.graph.initializer:
        assert (onnx.numpy_helper.to_array(i) == inits[i.name]).all()


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("form", ["plain", "batch_first", "unbatched", "packed"])
def test_return_all_states(bidirectional, form):
    torch.manual_seed(0)
    L, H, D = 2, 4, 2 if bidirectional else 1
    kw = dict(num_layers=L, bidirectional=bidirectional, batch_first=form == "batch_first", dtype=torch.float64)
    fused = fused_rnn.LSTM(3, H, return_all_states=True, **kw)
    plain = fused_rnn.LSTM(3, H, **kw)
    plain.load_state_dict(fused.state_dict())
    assert "return_all_states=True" in repr(fused)
    if form == "packed":
        x = pack_sequence([torch.randn(n, 3, dtype=torch.float64) for n in (5, 3, 2)])
    elif form == "unbatched":
        x = torch.randn(5, 3, dtype=torch.float64)
    elif form == "batch_first":
        x = torch.randn(3, 5, 3, dtype=torch.float64)
    else:
        x = torch.randn(5, 3, 3, dtype=torch.float64)
    out, (h_n, c_n), all_states = fused(x)
    out_plain, _ = plain(x)
    out_t = out.data if form == "packed" else out
    assert torch.equal(out_t, out_plain.data if form == "packed" else out_plain)
    assert all_states.h.shape[:-1] == all_states.c.shape[:-1] and all_states.h.shape[0] == L
    assert all_states.h.shape[-1] == D * H and all_states.c.shape[-1] == D * H
    assert torch.equal(all_states.h[-1], out_t)  # the last layer's sequence is the output
    # Layer 0's forward-direction cell states, against the reference.
    data = x.data if form == "packed" else (x.unsqueeze(1) if form == "unbatched" else x)
    if form == "batch_first":
        data = data.transpose(0, 1)
    ref_c = R.lstm_layer(data, fused.weight_ih_l0, fused.weight_hh_l0, fused.bias_ih_l0, fused.bias_hh_l0,
                         batch_sizes=x.batch_sizes if form == "packed" else None, return_cell_states=True)[3]
    got_c = all_states.c[0][..., :H]
    if form == "batch_first":
        got_c = got_c.transpose(0, 1)
    if form == "unbatched":
        got_c = got_c.unsqueeze(1)
    assert_close(got_c, ref_c)
    # The cell states are differentiable: d(sum c)/dW through the fused backward equals the reference's.
    (g_fused,) = torch.autograd.grad(all_states.c[0][..., :H].sum(), fused.weight_hh_l0)
    (g_ref,) = torch.autograd.grad(ref_c.sum(), fused.weight_hh_l0)
    assert_close(g_fused, g_ref)


def test_return_all_states_gradcheck_and_gradgradcheck():
    torch.manual_seed(0)
    params = layer_params("lstm", 2, 3, requires_grad=True)
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)

    def fn(x, *flat):
        return F.lstm_layer(x, *flat, return_cell_states=True)

    assert torch.autograd.gradcheck(fn, (x, *params.values()))
    assert torch.autograd.gradgradcheck(fn, (x, *params.values()))


@pytest.mark.skipif(not torch.cuda.is_available() or not fused_rnn.build_info()["cuda"],
                    reason="needs a GPU and a CUDA build of fused_rnn")
def test_cuda_graph_capture_of_a_training_step():
    torch.manual_seed(0)
    model = fused_rnn.LSTM(16, 32, num_layers=2).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    static_x = torch.randn(10, 4, 16, device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):  # warm up on a side stream, as CUDA graphs require
            opt.zero_grad(set_to_none=True)
            model(static_x)[0].sum().backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = model(static_x)[0].sum()
        static_loss.backward()
        opt.step()
    eager = fused_rnn.LSTM(16, 32, num_layers=2).cuda()
    eager.load_state_dict(model.state_dict())
    x = torch.randn(10, 4, 16, device="cuda")
    static_x.copy_(x)
    graph.replay()
    loss = eager(x)[0].sum()
    torch.testing.assert_close(static_loss, loss)
