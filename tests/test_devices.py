"""Devices the binary has no kernels for: ``meta`` (shape inference, deferred initialisation),
``mps``, ``xla`` and the like, and ``cuda`` in a build without CUDA kernels. There the modules,
cells and layer functions run torch's own computation with the same weights instead of failing
in the dispatcher. ``meta`` is real here; the other devices are stood in for by the CPU with
its kernels declared absent, which takes exactly their path."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence

import fused_rnn
import fused_rnn.functional as F
import fused_rnn.reference as R
from conftest import FusedOps, layer_params, leaves, states

STACKS = [
    ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=3)),
    ("LSTM", dict(batch_first=True)),
    ("GRU", dict(num_layers=2, bidirectional=True)),
    ("RNN", dict(nonlinearity="relu", bias=False)),
]
CELLS = [("LSTMCell", {}), ("GRUCell", {}), ("RNNCell", dict(nonlinearity="relu"))]


def test_kernel_devices_follow_the_build():
    assert (F._CPU_KERNELS, F._CUDA_KERNELS) == (True, fused_rnn.build_info()["cuda"])


@pytest.mark.parametrize("name,kw", STACKS + CELLS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(STACKS + CELLS)])
def test_meta_tensors_give_torch_nns_shapes_without_warning(name, kw):
    native = getattr(nn, name)(4, 8, device="meta", **kw)
    fused = getattr(fused_rnn, name)(4, 8, device="meta", **kw)
    cell = name.endswith("Cell")
    inputs = [torch.randn(5, 4, device="meta")] + ([] if cell else [torch.randn(3, 5, 4, device="meta")])
    for x in inputs:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got, want = fused(x), native(x)
        assert [t.shape for t in leaves(got)] == [t.shape for t in leaves(want)]
        assert all(t.device.type == "meta" for t in leaves(got))


def test_meta_packed_input_and_all_states():
    lstm = fused_rnn.LSTM(4, 8, num_layers=2, device="meta")
    packed = pack_sequence([torch.randn(n, 4, device="meta") for n in (3, 2)])
    out, (h, c) = lstm(packed)
    assert out.data.shape == (5, 8) and h.shape == c.shape == (2, 2, 8)
    lstm.return_all_states = True
    _, _, every = lstm(torch.randn(3, 2, 4, device="meta"))
    assert every.h.shape == every.c.shape == (2, 3, 2, 8)


def test_gpu_without_a_kernel_image_is_asked_once_and_warned(monkeypatch):
    """A CUDA build on a GPU it holds no kernel image for (built for other TORCH_CUDA_ARCH_LIST
    architectures) sends that GPU's tensors to torch's own computation as a device without
    kernels, instead of failing at its first launch: the CUDA runtime is asked once per device,
    and one warning says what to rebuild with. The runtime's answers and the GPU's description are
    stood in for here; tests/test_cuda.py takes the path on a real GPU."""
    asked = []
    monkeypatch.setattr(F._C, "_cuda_kernels_run_on", lambda index: asked.append(index) or index != 1)
    monkeypatch.setattr(F, "_cuda_devices", {})
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "NVIDIA H200")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = [F._cuda_kernels_run_on(index) for index in (0, 1, 1, 0)]
    assert runs == [True, False, False, True]
    assert asked == [0, 1]
    archs = fused_rnn.build_info()["cuda_archs"] or "torch default"
    assert [str(w.message) for w in caught] == [
        f"this fused_rnn holds no CUDA kernels for cuda:1 (NVIDIA H200, compute capability 9.0; built for {archs}; "
        'rebuild with TORCH_CUDA_ARCH_LIST="9.0" to run them there): its tensors run torch\'s own RNN computation, '
        "with the same weights"]


@pytest.mark.skipif(fused_rnn.build_info()["cuda"], reason="a build without CUDA kernels")
def test_build_without_cuda_kernels_runs_them_on_no_gpu():
    assert fused_rnn._C._cuda_kernels_run_on(0) is False


@pytest.fixture
def no_cpu_kernels(monkeypatch):
    """The CPU as a device without kernels (as mps or a CUDA-less build's cuda are)."""
    monkeypatch.setattr(F, "_CPU_KERNELS", False)
    monkeypatch.setattr(F, "_CUDA_KERNELS", False)
    monkeypatch.setattr(F, "_warned_devices", set())


def _grads(outputs, inputs):
    loss = sum(t.sum() for t in leaves(outputs) if isinstance(t, torch.Tensor) and t.is_floating_point())
    return torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize("name,kw", STACKS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(STACKS)])
@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
def test_stacks_without_kernels_are_torch_nn_exactly(no_cpu_kernels, name, kw, packed):
    """Outputs and every gradient bitwise torch.nn's, no fused op dispatched, one warning."""
    torch.manual_seed(0)
    native = getattr(nn, name)(4, 8, dtype=torch.float64, **kw)
    fused = getattr(fused_rnn, name)(4, 8, dtype=torch.float64, **kw)
    fused.load_state_dict(native.state_dict())
    if packed:
        seqs = [torch.randn(n, 4, dtype=torch.float64) for n in (5, 2, 4)]
        x = pack_sequence(seqs, enforce_sorted=False)
    else:
        x = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    with FusedOps() as ops, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = fused(x)
        fused(x)  # the warning comes once
    want = native(x)
    assert ops.seen == []
    assert [str(w.message) for w in caught] == [
        "fused_rnn has no kernels for cpu: cpu tensors run torch's own RNN computation, with the same weights"]
    for a, b in zip(leaves(got), leaves(want)):
        assert torch.equal(a, b)
    leaves_f = list(fused.parameters()) + ([] if packed else [x])
    leaves_n = list(native.parameters()) + ([] if packed else [x])
    for a, b in zip(_grads(got, leaves_f), _grads(want, leaves_n)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name,kw", CELLS, ids=[n for n, _ in CELLS])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_without_kernels_match_torch_nn(no_cpu_kernels, name, kw, batched):
    torch.manual_seed(0)
    native = getattr(nn, name)(4, 8, dtype=torch.float64, **kw)
    fused = getattr(fused_rnn, name)(4, 8, dtype=torch.float64, **kw)
    fused.load_state_dict(native.state_dict())
    x = torch.randn(*((3, 4) if batched else (4,)), dtype=torch.float64)
    with FusedOps() as ops, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = fused(x)
    assert ops.seen == []
    for a, b in zip(leaves(got), leaves(native(x))):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,kw", STACKS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(STACKS)])
@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
@pytest.mark.parametrize("given", [False, True], ids=["hx-none", "hx-given"])
def test_rnn_stack_without_kernels_is_torch_nn_exactly(no_cpu_kernels, name, kw, packed, given):
    """fused_rnn.functional.rnn_stack, called directly, on torch's computation: torch.nn's
    results bitwise, with and without initial states, and every step's states (return_all_states)
    from the reference's layers."""
    torch.manual_seed(0)
    kw = dict(kw)
    kw.pop("batch_first", None)  # rnn_stack takes time-major input
    native = getattr(nn, name)(4, 8, dtype=torch.float64, **kw)
    mode = {"LSTM": "LSTM", "GRU": "GRU"}.get(name) or ("RNN_RELU" if kw.get("nonlinearity") == "relu" else "RNN_TANH")
    D, P = 2 if native.bidirectional else 1, native.proj_size or 8
    if packed:
        x = pack_sequence([torch.randn(n, 4, dtype=torch.float64) for n in (5, 4, 2)])
        data, batch_sizes = x.data, x.batch_sizes
    else:
        x = data = torch.randn(5, 3, 4, dtype=torch.float64)
        batch_sizes = None
    hx = None
    if given:
        h0 = torch.randn(native.num_layers * D, 3, P, dtype=torch.float64)
        hx = (h0, torch.randn(native.num_layers * D, 3, 8, dtype=torch.float64)) if name == "LSTM" else h0
    args = dict(has_biases=native.bias, num_layers=native.num_layers, dropout=0.0, training=False,
                bidirectional=native.bidirectional, proj_size=native.proj_size, batch_sizes=batch_sizes)
    with FusedOps() as ops, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, h_n, c_n = F.rnn_stack(mode, data, hx, native._flat_weights, **args)
    assert ops.seen == []
    want_out, want_h = native(x, hx)
    assert torch.equal(out, want_out.data if packed else want_out)
    for got, want in zip((h_n, c_n) if name == "LSTM" else (h_n,), want_h if name == "LSTM" else (want_h,)):
        assert torch.equal(got, want)
    if name == "LSTM" and not native.proj_size:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out2, _, _, (all_h, all_c) = F.rnn_stack(mode, data, hx, native._flat_weights, return_all_states=True,
                                                     **args)
        torch.testing.assert_close(out2, out, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(all_h[-1], out, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_layer_functions_without_kernels_are_the_reference(no_cpu_kernels, cell):
    """A single direction (reverse, packed) runs the reference, bitwise."""
    params = layer_params(cell, 4, 6, P=3 if cell == "lstm" else 0)
    st = states(cell, 3, 6, P=3 if cell == "lstm" else 0)
    x = pack_sequence([torch.randn(n, 4, dtype=torch.float64) for n in (4, 3, 1)])
    kw = dict(params, **st, batch_sizes=x.batch_sizes, reverse=True)
    if cell.startswith("rnn"):
        kw["nonlinearity"] = cell[4:]
    name = {"lstm": "lstm_layer", "gru": "gru_layer"}.get(cell, "rnn_layer")
    with FusedOps() as ops, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = getattr(F, name)(x.data, **kw)
    assert ops.seen == []
    for a, b in zip(got, getattr(R, name)(x.data, **kw)):
        assert torch.equal(a, b)


def test_the_dispatch_recorder_sees_fused_ops():
    """The recorder the tests above rely on does see the fused ops where kernels run."""
    lstm, cell = fused_rnn.LSTM(4, 8), fused_rnn.GRUCell(4, 8)
    with FusedOps() as ops:
        lstm(torch.randn(3, 2, 4))
        cell(torch.randn(2, 4))
    assert "fused_rnn.lstm_forward.default" in ops.seen and "fused_rnn.gru_forward.default" in ops.seen
