"""fused_rnn.LSTM / GRU / RNN against torch.nn with the same state_dict."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils._python_dispatch import TorchDispatchMode

import fused_rnn
from fused_rnn.bench import allocated_peak_bytes
from conftest import assert_close

MODES = ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]


def make_pair(mode, *args, dtype=torch.float64, **kwargs):
    """A torch.nn module and the fused one with the very same weights."""
    if mode.startswith("RNN"):
        kwargs["nonlinearity"] = mode[4:].lower()
        name = "RNN"
    else:
        name = mode
    ref = getattr(nn, name)(*args, dtype=dtype, **kwargs)
    fused = getattr(fused_rnn, name)(*args, dtype=dtype, **kwargs)
    fused.load_state_dict(ref.state_dict())
    return ref, fused


def initial_state(mode, ref, batch, unbatched=False):
    D = 2 if ref.bidirectional else 1
    H_out = ref.proj_size or ref.hidden_size
    shape = (ref.num_layers * D, batch, H_out)
    dtype = ref.weight_ih_l0.dtype
    h = torch.randn(shape, dtype=dtype)
    if unbatched:
        h = h[:, 0]
    if mode != "LSTM":
        return h.requires_grad_()
    c = torch.randn(ref.num_layers * D, batch, ref.hidden_size, dtype=dtype)
    if unbatched:
        c = c[:, 0]
    return (h.requires_grad_(), c.requires_grad_())


def flat(x):
    if isinstance(x, torch.nn.utils.rnn.PackedSequence):
        return [x.data]
    if isinstance(x, (tuple, list)):
        return [t for item in x for t in flat(item)]
    return [x]


def run(module, make_input, hx, leaves):
    x = make_input()
    out, hidden = module(x) if hx is None else module(x, hx)
    outs = flat(out) + flat(hidden)
    g = torch.Generator().manual_seed(5)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs)
    grads = torch.autograd.grad(loss, leaves + list(module.parameters()))
    return outs, grads


GRID = list(itertools.product(MODES, [1, 2, 3], [False, True], [False, True], [True, False],
                              ["plain", "unbatched", "packed"], [True, False]))


@pytest.mark.parametrize(
    "mode,num_layers,bidirectional,batch_first,bias,form,with_hx", GRID,
    ids=[f"{m}-L{n}-{'bi' if b else 'uni'}-{'bf' if f else 'tf'}-{'bias' if bi else 'nobias'}-{form}-"
         f"{'hx' if h else 'nohx'}" for m, n, b, f, bi, form, h in GRID],
)
def test_parity_with_torch_nn(mode, num_layers, bidirectional, batch_first, bias, form, with_hx):
    torch.manual_seed(0)
    I, H, B, T = 3, 5, 4, 6
    ref, fused = make_pair(mode, I, H, num_layers=num_layers, bias=bias, batch_first=batch_first,
                           bidirectional=bidirectional)
    check_parity(mode, ref, fused, I, B, T, form, with_hx)


def check_parity(mode, ref, fused, I, B, T, form, with_hx):
    dtype = ref.weight_ih_l0.dtype
    if form == "unbatched":
        x = torch.randn(T, I, dtype=dtype, requires_grad=True)
        leaves = [x]
        inputs = lambda: x  # noqa: E731
    elif form == "packed":
        lengths = torch.tensor([3, T, 1, 4][:B])
        x = torch.randn(B, T, I, dtype=dtype, requires_grad=True)
        leaves = [x]
        inputs = lambda: pack_padded_sequence(  # noqa: E731
            x if ref.batch_first else x.transpose(0, 1), lengths, batch_first=ref.batch_first,
            enforce_sorted=False,
        )
    else:
        shape = (B, T, I) if ref.batch_first else (T, B, I)
        x = torch.randn(shape, dtype=dtype, requires_grad=True)
        leaves = [x]
        inputs = lambda: x  # noqa: E731
    hx = initial_state(mode, ref, B, unbatched=form == "unbatched") if with_hx else None
    if hx is not None:
        leaves += flat(hx)
    outs_ref, grads_ref = run(ref, inputs, hx, leaves)
    outs, grads = run(fused, inputs, hx, leaves)
    for i, (a, b) in enumerate(zip(outs, outs_ref)):
        assert a.shape == b.shape
        assert_close(a, b, msg=f"output {i}")
    names = [f"input/state {i}" for i in range(len(leaves))] + [n for n, _ in ref.named_parameters()]
    for name, a, b in zip(names, grads, grads_ref):
        assert_close(a, b, msg=f"grad of {name}")


F32_GRID = list(itertools.product(MODES, [1, 3], [False, True], ["plain", "packed"]))


@pytest.mark.parametrize("mode,num_layers,bidirectional,form", F32_GRID,
                         ids=[f"{m}-L{n}-{'bi' if b else 'uni'}-{f}" for m, n, b, f in F32_GRID])
def test_parity_with_torch_nn_float32(mode, num_layers, bidirectional, form):
    torch.manual_seed(0)
    ref, fused = make_pair(mode, 16, 24, num_layers=num_layers, bidirectional=bidirectional, dtype=torch.float32)
    check_parity(mode, ref, fused, 16, 4, 12, form, True)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("form", ["plain", "unbatched", "packed"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_lstm_projection_parity(bidirectional, form, num_layers):
    torch.manual_seed(0)
    ref, fused = make_pair("LSTM", 3, 6, num_layers=num_layers, proj_size=2, bidirectional=bidirectional)
    check_parity("LSTM", ref, fused, 3, 4, 5, form, True)
    check_parity("LSTM", ref, fused, 3, 4, 5, form, False)


SKINNY_GRID = list(itertools.product(MODES, [False, True], ["plain", "packed"]))


@pytest.mark.parametrize("mode,bidirectional,form", SKINNY_GRID,
                         ids=[f"{m}-{'bi' if b else 'uni'}-{f}" for m, b, f in SKINNY_GRID])
def test_parity_few_features_over_a_long_sequence(mode, bidirectional, form):
    """Weight gradients with few columns reduced over many rows (3 input features, H = 16, over
    300+ rows) take gemm.h's transposed (skinny) form, written and added to; float64 against
    torch.nn."""
    torch.manual_seed(0)
    ref, fused = make_pair(mode, 3, 16, num_layers=2, bidirectional=bidirectional)
    check_parity(mode, ref, fused, 3, 4, 300, form, True)


@pytest.mark.parametrize("mode", MODES)
def test_float32_parity(mode):
    torch.manual_seed(0)
    ref, fused = make_pair(mode, 32, 48, dtype=torch.float32)
    x = torch.randn(20, 8, 32, requires_grad=True)
    out_ref, h_ref = ref(x)
    out, h = fused(x)
    assert_close(out, out_ref)
    assert_close(flat(h)[0], flat(h_ref)[0])
    g_ref = torch.autograd.grad(out_ref.pow(2).sum(), [x, *ref.parameters()])
    g = torch.autograd.grad(out.pow(2).sum(), [x, *fused.parameters()])
    for a, b in zip(g, g_ref):
        assert_close(a, b)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kwargs", [{}, {"num_layers": 2, "bidirectional": True}, {"bias": False}],
                         ids=["default", "L2-bi", "nobias"])
def test_state_dict_loads_both_ways(mode, kwargs):
    ref, fused = make_pair(mode, 3, 5, **kwargs)
    assert list(ref.state_dict()) == list(fused.state_dict())
    assert [(n, p.shape) for n, p in ref.named_parameters()] == [(n, p.shape) for n, p in fused.named_parameters()]
    other = copy.deepcopy(ref)
    for p in fused.parameters():
        p.data.uniform_(-1, 1)
    other.load_state_dict(fused.state_dict(), strict=True)
    for a, b in zip(other.parameters(), fused.parameters()):
        assert torch.equal(a, b)


def test_lstm_projection_state_dict():
    ref, fused = make_pair("LSTM", 3, 5, proj_size=2, num_layers=2, bidirectional=True)
    assert "weight_hr_l1_reverse" in fused.state_dict()
    ref.load_state_dict(fused.state_dict(), strict=True)


@pytest.mark.parametrize("mode", MODES)
def test_repr_matches_torch_nn(mode):
    ref, fused = make_pair(mode, 3, 5, num_layers=2, batch_first=True)
    assert repr(fused) == repr(ref)


@pytest.mark.parametrize("mode", MODES)
def test_isinstance_rnnbase_not_torch_classes(mode):
    _, fused = make_pair(mode, 3, 5)
    assert isinstance(fused, nn.RNNBase)
    assert not isinstance(fused, (nn.LSTM, nn.GRU, nn.RNN))


@pytest.mark.parametrize("mode", MODES)
def test_dropout_extremes_match_torch_nn(mode):
    torch.manual_seed(0)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    for p in (0.0, 1.0):
        ref, fused = make_pair(mode, 3, 4, num_layers=2, dropout=p)
        for train in (True, False):
            ref.train(train)
            fused.train(train)
            assert_close(fused(x)[0], ref(x)[0])


def test_dropout_fresh_mask_each_call_in_training_only():
    torch.manual_seed(0)
    _, fused = make_pair("GRU", 3, 16, num_layers=2, dropout=0.5)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    assert not torch.equal(fused(x)[0], fused(x)[0])
    fused.eval()
    assert torch.equal(fused(x)[0], fused(x)[0])


@pytest.mark.parametrize("mode", MODES)
def test_backward_after_eval(mode):
    ref, fused = make_pair(mode, 3, 4)
    fused.eval()
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    fused(x)[0].sum().backward()
    ref.eval()
    x2 = x.detach().clone().requires_grad_()
    ref(x2)[0].sum().backward()
    assert_close(x.grad, x2.grad)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("num_layers, bidirectional", [(1, False), (1, True), (2, False)])
def test_final_states_leave_the_given_states_alone(mode, num_layers, bidirectional):
    """Outside autograd a one-layer stack's final states take their leading dimension in place
    (functional._lead): only ever on the op's fresh state, never on the caller's h0 / c0 or a view
    of them, and every call gives torch.nn's states."""
    ref, fused = make_pair(mode, 3, 4, num_layers=num_layers, bidirectional=bidirectional)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    n = num_layers * (2 if bidirectional else 1)
    h0 = torch.randn(n, 2, 4, dtype=torch.float64)
    hx = (h0, torch.randn(n, 2, 4, dtype=torch.float64)) if mode == "LSTM" else h0
    given = [t.clone() for t in (hx if mode == "LSTM" else (hx,))]
    with torch.no_grad():
        for _ in range(2):
            _, hidden = fused(x, hx)
            _, want = ref(x, hx)
            for got, w, h in zip(hidden if mode == "LSTM" else (hidden,), want if mode == "LSTM" else (want,),
                                 hx if mode == "LSTM" else (hx,)):
                assert got.shape == w.shape and not got._is_view()
                assert got.data_ptr() != h.data_ptr()
                assert_close(got, w)
    for t, g in zip(hx if mode == "LSTM" else (hx,), given):
        assert torch.equal(t, g) and t.shape == g.shape


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("num_layers, bidirectional", [(1, False), (1, True), (2, False), (2, True)])
@pytest.mark.parametrize("grad", [True, False])
def test_final_states_detach_in_place(mode, num_layers, bidirectional, grad):
    """torch.nn's h_n and c_n are tensors of their own, not views, so truncated-BPTT code can
    detach them in place (h_n.detach_()); a view would raise "Can't detach views in-place"."""
    _, fused = make_pair(mode, 3, 4, num_layers=num_layers, bidirectional=bidirectional)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    with torch.set_grad_enabled(grad):
        _, hidden = fused(x)
    for state in hidden if mode == "LSTM" else (hidden,):
        assert not state._is_view()
        state.detach_()
        assert not state.requires_grad


@pytest.mark.parametrize("mode", MODES)
def test_input_size_zero_batch(mode):
    """torch.nn's test_RNN_input_size_zero: batch 0 runs forward and backward."""
    _, fused = make_pair(mode, 3, 4)
    x = torch.zeros(5, 0, 3, dtype=torch.float64, requires_grad=True)
    out, _ = fused(x)
    assert out.shape == (5, 0, 4)
    out.sum().backward()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_on_cpu_runs_in_float32(dtype):
    torch.manual_seed(0)
    ref, fused = make_pair("LSTM", 8, 16, dtype=torch.float32)
    fused = fused.to(dtype)
    x = torch.randn(6, 3, 8)
    out, (h, c) = fused(x.to(dtype))
    assert out.dtype == dtype and h.dtype == dtype and c.dtype == dtype
    # Within the rounding of the low-precision weights and input.
    ref_low = copy.deepcopy(ref).to(dtype).float()
    want, _ = ref_low(x.to(dtype).float())
    torch.testing.assert_close(out.float(), want, rtol=0, atol=2 * torch.finfo(dtype).eps)


def _casts_made():
    return fused_rnn._C._cpu_cache_calls()["casts_made"]


def _infer_counting(module, x):
    """module(x)[0] without grad, and how far each of _cpu_cache_calls' counters moved."""
    before = fused_rnn._C._cpu_cache_calls()
    with torch.no_grad():
        out = module(x)[0]
    after = fused_rnn._C._cpu_cache_calls()
    return out, {k: after[k] - before[k] for k in after}


@pytest.fixture
def fp32_arithmetic():
    """The bfloat16 dot products off: the tests using this check the exact float32-arithmetic
    path of low-precision weights (bit equality with the float32 casts)."""
    previous = fused_rnn._C._set_cpu_bf16_dot(False)
    yield
    fused_rnn._C._set_cpu_bf16_dot(previous)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_weights_cast_once_while_unchanged(mode, dtype, fp32_arithmetic):
    """Inference with low-precision weights on the CPU reuses their float32 copies between calls,
    and every change to a weight is seen: in place, through .data (which leaves the version
    alone), load_state_dict, a new .data, an optimizer step."""
    torch.manual_seed(0)
    _, fused = make_pair(mode, 8, 16, dtype=torch.float32, num_layers=2)
    fused = fused.to(dtype)
    x = torch.randn(7, 3, 8).to(dtype)
    n_weights = len(fused._flat_weights)

    def check(new_casts):
        """The output with the kept copies equals the one with the weights cast afresh, and
        the call made new_casts casts."""
        made = _casts_made()
        with torch.no_grad():
            out = fused(x)[0]
        assert _casts_made() - made == new_casts
        made = _casts_made()
        want = fused(x)[0].detach()  # grad enabled: the weights cast afresh, in the graph
        assert _casts_made() == made
        torch.testing.assert_close(out, want, rtol=0, atol=0, equal_nan=True)
        return out

    check(n_weights)
    check(0)
    made = _casts_made()
    with torch.inference_mode():  # an inference-mode call finds them too
        fused(x)
    assert _casts_made() == made
    with torch.no_grad():
        fused.weight_hh_l0.mul_(0.5)  # in place
    before = check(1)
    fused.weight_ih_l1.data.add_(0.25)  # through .data: the version stays, the contents do not
    check(1)
    fused.load_state_dict({k: 0.3 * torch.randn_like(v) for k, v in fused.state_dict().items()})
    check(n_weights)
    fused.bias_hh_l1.data = 0.3 * torch.randn_like(fused.bias_hh_l1)  # a new storage
    after = check(1)
    assert not torch.equal(before, after)
    opt = torch.optim.SGD(fused.parameters(), lr=0.1)
    fused(x)[0].float().sum().backward()
    opt.step()
    check(n_weights)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("dots", ["always", "never"])
@pytest.mark.parametrize("packed", [False, True])
def test_low_precision_weights_read_in_16_bits(mode, dtype, dots, packed, fp32_arithmetic):
    """In inference the CPU forward reads bfloat16/float16 weights as stored, behind their kept
    float32 casts, in place and from panels: bit for bit what reading the casts gives."""
    torch.manual_seed(0)
    _, fused = make_pair(mode, 12, 40, dtype=torch.float32, num_layers=2, bidirectional=True)
    fused = fused.to(dtype)
    x = torch.randn(9, 4, 12).to(dtype)
    if packed:
        x = torch.nn.utils.rnn.pack_padded_sequence(x, [9, 6, 6, 2], enforce_sorted=False)
    outs = []
    previous = (fused_rnn._C._set_cpu_dots(dots), fused_rnn._C._set_cpu_16bit_weights(True))
    try:
        for on in (True, False):
            fused_rnn._C._set_cpu_16bit_weights(on)
            calls = fused_rnn._C._cpu_forward_calls()["16bit_weights"]
            with torch.no_grad():
                out, hidden = fused(x)
            assert fused_rnn._C._cpu_forward_calls()["16bit_weights"] - calls == (4 if on else 0)
            outs.append((out.data if packed else out, hidden))
    finally:
        fused_rnn._C._set_cpu_dots(previous[0])
        fused_rnn._C._set_cpu_16bit_weights(previous[1])
    (a, ha), (b, hb) = outs
    assert torch.equal(a, b)
    for p, q in zip(ha if isinstance(ha, tuple) else (ha,), hb if isinstance(hb, tuple) else (hb,)):
        assert torch.equal(p, q)


def test_low_precision_weights_changed_in_place_are_read_fresh(fp32_arithmetic):
    """A 16-bit weight written through .data between calls is read as it is now, not as cast."""
    torch.manual_seed(0)
    ref, fused = make_pair("LSTM", 8, 16, dtype=torch.float32)
    fused = fused.bfloat16()
    x = torch.randn(20, 1, 8).bfloat16()
    with torch.no_grad():
        fused(x)
        fused.weight_hh_l0.data.mul_(-1)
        out, _ = fused(x)
    ref.load_state_dict({k: v.float() for k, v in fused.state_dict().items()})
    with torch.no_grad():
        want, _ = ref(x.float())
    torch.testing.assert_close(out.float(), want, rtol=0, atol=2 * torch.finfo(torch.bfloat16).eps)


@pytest.mark.skipif(not fused_rnn.build_info()["cpu_bf16_dot"], reason="needs AVX512-BF16 and the AVX-512 kernels")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("I,H,T,B", [(7, 20, 17, 1), (32, 64, 50, 3), (100, 129, 33, 8), (33, 47, 40, 64)])
@pytest.mark.parametrize("dots", ["always", "never"])
def test_bf16_dot_products_error_within_torch_nn(mode, I, H, T, B, dots):
    """bfloat16 inference on AVX512-BF16 multiplies with bf16 dot products (h and x rounded to
    bf16 for the products, fp32 accumulation), from panels and reading the weights in place.
    Against float64 on the same rounded weights and input, its error stays within twice the
    larger of torch.nn's bfloat16 error and the float32-arithmetic path's."""
    torch.manual_seed(0)
    ref, fused = make_pair(mode, I, H, dtype=torch.float64)
    fused = fused.bfloat16()
    ref.load_state_dict({k: v.double() for k, v in fused.state_dict().items()})  # the rounded weights
    ref_bf16 = copy.deepcopy(ref).bfloat16()
    x = torch.randn(T, B, I).bfloat16()
    outs = {}
    previous = (fused_rnn._C._set_cpu_bf16_dot(True), fused_rnn._C._set_cpu_dots(dots))
    try:
        for on in (True, False):
            fused_rnn._C._set_cpu_bf16_dot(on)
            calls = fused_rnn._C._cpu_forward_calls()
            with torch.no_grad():
                outs[on] = fused(x)[0].double()
            after = fused_rnn._C._cpu_forward_calls()
            assert after["bf16_dot"] - calls["bf16_dot"] == (1 if on else 0)
            assert after["dots"] - calls["dots"] == (1 if dots == "always" else 0)
    finally:
        fused_rnn._C._set_cpu_bf16_dot(previous[0])
        fused_rnn._C._set_cpu_dots(previous[1])
    with torch.no_grad():
        want = ref(x.double())[0]
        err_torch = (ref_bf16(x)[0].double() - want).abs().max().item()
    err_dot = (outs[True] - want).abs().max().item()
    err_fp32 = (outs[False] - want).abs().max().item()
    assert err_dot <= 2 * max(err_torch, err_fp32), (err_dot, err_torch, err_fp32)
    assert not torch.equal(outs[True], outs[False])  # the products did round h and x


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_panels_kept_while_the_weights_are(dtype):
    """Panels packed from the kept float32 casts of 16-bit weights are found again by the next
    call, also where the cast (16 MB here) is over the size limit of float32 weights, and a
    weight written through .data is packed afresh: the output then is bit for bit that of a
    call that casts and packs everything anew (a copy of the module). In the default mode
    such weights use panels even for a batch and a sequence this small."""
    torch.manual_seed(0)
    _, fused = make_pair("LSTM", 1024, 1024, dtype=torch.float32)
    fused = fused.to(dtype)
    x = torch.randn(3, 2, 1024).to(dtype)
    previous = fused_rnn._C._set_cpu_dots("auto")
    try:
        def lookups():
            out, moved = _infer_counting(fused, x)
            return out, moved["panels_found"], moved["panels_missed"]

        _, found, missed = lookups()
        assert (found, missed) == (0, 2)
        _, found, missed = lookups()
        assert (found, missed) == (2, 0)
        fused.weight_hh_l0.data.mul_(-1)  # the version stays, the contents do not
        out, found, missed = lookups()
        assert (found, missed) == (1, 1)
        fresh = copy.deepcopy(fused)
        made = _casts_made()
        with torch.no_grad():
            want = fresh(x)[0]
        assert _casts_made() - made == 4
    finally:
        fused_rnn._C._set_cpu_dots(previous)
    assert torch.equal(out, want)


@pytest.mark.skipif(not fused_rnn.build_info()["cpu_bf16_dot"], reason="needs AVX512-BF16 and the AVX-512 kernels")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("I,H,T,B", [(7, 20, 17, 1), (32, 64, 50, 3), (33, 47, 40, 64)])
@pytest.mark.parametrize("stacked", [False, True])
def test_bf16_training_error_within_torch_nn(mode, I, H, T, B, stacked):
    """bfloat16 training on AVX512-BF16: the forward's bf16 dot products, and the backward's input
    and weight gradients from bf16 GEMMs (dG and h_prev rounded to bf16, as torch.nn's bf16
    backward has them). Against float64 on the same rounded weights and input, each gradient's
    error (relative to its largest entry) stays within twice the larger of torch.nn's bfloat16
    error and the float32-arithmetic path's; stacked: two bidirectional layers over a packed
    batch of unequal lengths (h_prev gathered row by row, both directions)."""
    torch.manual_seed(0)
    kwargs = {"num_layers": 2, "bidirectional": True} if stacked else {}
    ref, fused = make_pair(mode, I, H, dtype=torch.float64, **kwargs)
    fused = fused.bfloat16()
    ref.load_state_dict({k: v.double() for k, v in fused.state_dict().items()})  # the rounded weights
    ref_bf16 = copy.deepcopy(ref).bfloat16()
    x = torch.randn(T, B, I).bfloat16()
    lengths = [T - (T // 3) * (k % 3) // 2 for k in range(B)]
    g = torch.randn(T, B, H * (2 if stacked else 1), dtype=torch.float64)

    def grads(module, dtype):
        module.zero_grad()
        xx = x.to(dtype).clone().requires_grad_(True)  # a leaf of its own (x.to(x.dtype) is x)
        inp = pack_padded_sequence(xx, lengths, enforce_sorted=False) if stacked else xx
        out = module(inp)[0]
        out = pad_packed_sequence(out, total_length=T)[0] if stacked else out
        (out.double() * g).sum().backward()
        return [xx.grad] + [p.grad for p in module.parameters()]

    want = grads(ref, torch.float64)

    def error(gs):
        return max(((a.double() - w).abs().max() / w.abs().max()).item() for a, w in zip(gs, want))

    err_torch = error(grads(ref_bf16, torch.bfloat16))
    errs = {}
    previous = fused_rnn._C._set_cpu_bf16_dot(True)
    try:
        for on in (True, False):
            fused_rnn._C._set_cpu_bf16_dot(on)
            calls = fused_rnn._C._cpu_forward_calls()["bf16_backward"]
            errs[on] = error(grads(fused, torch.bfloat16))
            assert fused_rnn._C._cpu_forward_calls()["bf16_backward"] - calls == ((4 if stacked else 1) if on else 0)
    finally:
        fused_rnn._C._set_cpu_bf16_dot(previous)
    assert errs[True] <= 2 * max(err_torch, errs[False]), (errs, err_torch)


@pytest.mark.skipif(not fused_rnn.build_info()["cpu_bf16_dot"], reason="needs AVX512-BF16 and the AVX-512 kernels")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("I,H,T,B,packed", [(7, 21, 17, 1, False), (33, 47, 40, 64, True), (64, 130, 9, 70, False),
                                             (31, 65, 3, 700, True)])
def test_bf16_operands_rounded_once_change_nothing(mode, I, H, T, B, packed):
    """A bf16 dot-product layer rounds the operand every tile multiplies (a chunk's inputs in the
    forward, dG_t in the backward) to bf16 once, by the team, where each tile's product used to
    round it again: the same products in the same order, so the outputs and every gradient are
    the same bit for bit as with the switch off. Odd I and H (a pair half in padding, dG's pairs
    across two items' units), several input chunks (T * B over 512 rows), a chunk of one step
    (B = 700), packed batches of unequal lengths, two bidirectional layers."""
    torch.manual_seed(0)
    _, fused = make_pair(mode, I, H, dtype=torch.float32, num_layers=2, bidirectional=True)
    fused = fused.bfloat16()
    x = torch.randn(T, B, I).bfloat16()
    lengths = [T - (T // 3) * (k % 3) // 2 for k in range(B)]
    g = torch.randn(T, B, 2 * H)

    def run():
        fused.zero_grad()
        xx = x.clone().requires_grad_(True)
        out = fused(pack_padded_sequence(xx, lengths, enforce_sorted=False) if packed else xx)[0]
        out = pad_packed_sequence(out, total_length=T)[0] if packed else out
        (out.float() * g).sum().backward()
        with torch.no_grad():
            inference = fused(x)[0]
        return [inference, out, xx.grad] + [p.grad for p in fused.parameters()]

    previous = (fused_rnn._C._set_cpu_bf16_dot(True), fused_rnn._C._set_cpu_bf16_round_once(True))
    results, took = {}, {}
    try:
        for once in (True, False):
            fused_rnn._C._set_cpu_bf16_round_once(once)
            before = fused_rnn._C._cpu_forward_calls()
            results[once] = run()
            after = fused_rnn._C._cpu_forward_calls()
            took[once] = (after["bf16_rounded_forward"] - before["bf16_rounded_forward"],
                          after["bf16_rounded_backward"] - before["bf16_rounded_backward"])
    finally:
        fused_rnn._C._set_cpu_bf16_dot(previous[0])
        fused_rnn._C._set_cpu_bf16_round_once(previous[1])
    # two layers x two directions, each run by training's forward and backward, inference's forward
    assert took == {True: (8, 4), False: (0, 0)}
    for a, b in zip(results[True], results[False]):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("where", [0, -1])
def test_large_weight_changed_through_data_is_seen(dtype, where):
    """One element of a large weight changed through .data, first or last, is seen: float32
    weights' kept panels are checked tile by tile, bfloat16 weights' kept casts by a byte
    comparison in parallel chunks (a weight over 2 MB)."""
    torch.manual_seed(0)
    H = 512 if dtype == torch.float32 else 1024  # W_hh: 4 MB float32, 8 MB bfloat16
    _, fused = make_pair("LSTM", H, H, dtype=torch.float32)
    fused = fused.to(dtype)
    x = torch.randn(3, 2, H).to(dtype)
    previous = fused_rnn._C._set_cpu_dots("never")
    try:
        def misses():
            out, moved = _infer_counting(fused, x)
            return out, moved["panels_missed" if dtype == torch.float32 else "casts_made"]

        misses()
        assert misses()[1] == 0
        fused.weight_hh_l0.data.view(-1)[where] += 1
        out, missed = misses()
        assert missed == 1
        with torch.no_grad():
            want = copy.deepcopy(fused)(x)[0]
    finally:
        fused_rnn._C._set_cpu_dots(previous)
    assert torch.equal(out, want)


def test_low_precision_weight_copies_follow_the_panel_cache_switch():
    _, fused = make_pair("LSTM", 4, 6, dtype=torch.float32)
    fused = fused.bfloat16()
    x = torch.randn(3, 2, 4).bfloat16()
    previous = fused_rnn._C._set_cpu_panel_cache(False)
    try:
        for _ in range(2):
            made = _casts_made()
            with torch.no_grad():
                fused(x)
            assert _casts_made() - made == 4  # every call casts afresh
    finally:
        fused_rnn._C._set_cpu_panel_cache(previous)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_training_casts_through_autograd(dtype):
    """With grad enabled the kept casts are differentiable (_KeptCast), so gradients reach the
    low-precision parameters in their dtype; the casts are kept from one training call to the
    next, and remade after an optimizer step changes the weights."""
    torch.manual_seed(0)
    ref, fused = make_pair("GRU", 8, 16, dtype=torch.float32)
    fused = fused.to(dtype)
    x = torch.randn(5, 2, 8)
    for new_casts in (4, 0):
        fused.zero_grad()
        made = _casts_made()
        out, _ = fused(x.to(dtype))
        out.float().sum().backward()
        assert _casts_made() - made == new_casts
    grads = [p.grad.clone() for p in fused.parameters()]
    torch.optim.SGD(fused.parameters(), lr=0.1).step()
    made = _casts_made()
    fused(x.to(dtype))[0].float().sum().backward()
    assert _casts_made() - made == 4
    ref = copy.deepcopy(ref).to(dtype).float()  # the low-precision weights, in float32
    out_ref, _ = ref(x.to(dtype).float())
    out_ref.sum().backward()
    for g, q in zip(grads, ref.parameters()):
        assert g.dtype == dtype
        torch.testing.assert_close(g.float(), q.grad, rtol=0.02, atol=4 * torch.finfo(dtype).eps)


@pytest.mark.parametrize("mode", MODES)
def test_autocast_cpu_bfloat16_runs_in_bfloat16(mode):
    """Under CPU autocast an fp32 model takes fp32 or bf16 input without a dtype error and runs in bf16."""
    torch.manual_seed(0)
    ref, fused = make_pair(mode, 8, 16, dtype=torch.float32)
    x = torch.randn(6, 3, 8)
    want = fused(x)[0]
    for inp in (x, x.bfloat16()):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = fused(inp)
        assert out.dtype == torch.bfloat16
        torch.testing.assert_close(out.float(), want, rtol=0, atol=0.05)
        out.float().sum().backward()
        assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in fused.parameters())
        fused.zero_grad()
    if mode == "LSTM":  # torch.nn's LSTM also runs in bf16 under CPU autocast (through oneDNN)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = fused(x)
            try:
                out_ref, _ = ref(x)
            except RuntimeError as e:
                # oneDNN has no bf16 LSTM on a CPU without AVX-512 (seen on AMD Zen 3); torch.nn
                # fails there where fused_rnn runs. Compare with torch.nn's float32 result instead.
                assert "could not create a primitive descriptor" in str(e), e
                out_ref = None
        if out_ref is None:
            out_ref = ref(x)[0]
        else:
            assert out_ref.dtype == out.dtype
        torch.testing.assert_close(out.float(), out_ref.float(), rtol=0, atol=0.05)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("used", ["output", "h_n", "c_n"])
def test_gradients_when_only_part_of_the_result_is_used(mode, used):
    """Autograd passes None for the unused results' gradients (they are not materialized); the
    backward must read them as zeros, as torch.nn does."""
    if used == "c_n" and mode != "LSTM":
        pytest.skip("only the LSTM has a cell state")
    ref, fused = make_pair(mode, 3, 5, num_layers=2, bidirectional=True)
    grads = []
    for m in (ref, fused):
        x = torch.randn(6, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
        out, state = m(x)
        pick = {"output": out, "h_n": state[0] if mode == "LSTM" else state,
                "c_n": state[1] if mode == "LSTM" else None}[used]
        pick.pow(2).sum().backward()
        grads.append([x.grad] + [p.grad for p in m.parameters()])
    for a, b in zip(*grads):
        assert_close(b, a)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_backward_allocates_no_zero_gradient_for_the_workspace(mode):
    """The workspace is a (non-differentiable) output of the autograd Function; a materialized
    zero gradient for it would cost a tensor as large as the workspace in every backward."""
    from torch.profiler import ProfilerActivity, profile

    m = getattr(fused_rnn, mode)(16, 32)
    x = torch.randn(20, 8, 16, requires_grad=True)
    ws_bytes = 20 * 8 * (5 if mode == "LSTM" else 4) * 32 * 4
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the profiler may charge an op on one thread with what another allocates meanwhile
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            m(x)[0].sum().backward()
    finally:
        torch.set_num_threads(threads)
    zeros = [e.cpu_memory_usage for e in prof.events() if e.name in ("aten::zeros", "aten::new_zeros")]
    assert all(z < ws_bytes for z in zeros), zeros


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-direction", "bidirectional"])
@pytest.mark.parametrize("layout", ["padded", "packed"])
@pytest.mark.parametrize("loss", ["sum", "mean", "row-weighted", "column-weighted"])
def test_gradients_of_an_expanded_output_gradient(mode, bidirectional, layout, loss):
    """The gradient of a sum or mean of the output, or of its rows weighted by one vector,
    repeats one row (expanded, no memory of its own), which the CPU backward reads as that row;
    weighting by position instead gives a gradient whose rows differ (the general path). Both
    against torch.nn, with projections for the LSTM and packed sequences too."""
    kwargs = {"proj_size": 3} if mode == "LSTM" else {}
    ref, fused = make_pair(mode, 4, 5, num_layers=2, bidirectional=bidirectional, **kwargs)
    P = (3 if mode == "LSTM" else 5) * (2 if bidirectional else 1)
    gen = torch.Generator().manual_seed(0)
    row = torch.randn(P, dtype=torch.float64, generator=gen)
    column = torch.randn(18, 1, dtype=torch.float64, generator=gen)  # a weight a step (padded) or a row (packed)
    grads = []
    for m in (ref, fused):
        x = torch.randn(6, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
        inp = pack_padded_sequence(x, [6, 4, 2]) if layout == "packed" else x
        out, _ = m(inp)
        y = out.data if layout == "packed" else out
        if loss == "sum":
            y.sum().backward()
        elif loss == "mean":
            y.mean().backward()
        elif loss == "row-weighted":
            (y * row).sum().backward()
        else:
            (y * (column[:6, None] if layout == "padded" else column[:y.shape[0]])).sum().backward()
        grads.append([x.grad] + [p.grad for p in m.parameters()])
    for a, b in zip(*grads):
        assert_close(b, a)


def _backward_peak_bytes(m, x, loss, retain_graph=False):
    """The peak of the bytes allocated and not yet freed over one backward (torch's CPU allocator,
    as the profiler records it), counted from the backward's start."""
    from torch.profiler import ProfilerActivity, profile

    out, state = m(x)
    h_n = state[0] if isinstance(state, tuple) else state
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        loss(out, h_n).backward(retain_graph=retain_graph)
    return allocated_peak_bytes(prof)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-direction", "bidirectional"])
def test_backward_holds_no_copy_of_an_expanded_output_gradient(mode, bidirectional):
    """A loss on the output's sum, or on h_n alone (autograd passes no gradient for the output),
    costs the backward no more memory than a gradient handed to it whole: no T x B x P copy of
    the expanded gradient, nor a buffer of zeros for the missing one."""
    m = getattr(fused_rnn, mode)(16, 32, bidirectional=bidirectional)
    x = torch.randn(20, 8, 16, requires_grad=True)
    given = torch.randn(20, 8, 32 * (2 if bidirectional else 1))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the directions one after the other: the same allocations in the same order each call
    try:
        _check_backward_peaks(m, x, given)
    finally:
        torch.set_num_threads(threads)


def _check_backward_peaks(m, x, given):
    peak_given = _backward_peak_bytes(m, x, lambda out, h_n: (out * given).sum())
    out_bytes = given.numel() * given.element_size()
    row_bytes = given.shape[-1] * given.element_size()
    # (out * given).sum()'s backward allocates the product's gradient (given * 1): one output's
    # worth (160 rows), of which the others may keep a row or two (the one row they read).
    assert _backward_peak_bytes(m, x, lambda out, h_n: out.sum()) <= peak_given - out_bytes + 2 * row_bytes
    assert _backward_peak_bytes(m, x, lambda out, h_n: h_n.sum()) <= peak_given - out_bytes + 2 * row_bytes


# ---------------------------------------------------------------- gradients nobody asked for


class _BackwardCalls(TorchDispatchMode):
    """Records the input_grad / weight_grad flags of every fused backward op call."""

    def __init__(self):
        super().__init__()
        self.flags = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace == "fused_rnn" and func._schema.name.endswith("_backward"):
            names = [a.name for a in func._schema.arguments]
            bound = dict(zip(names, args), **kwargs)
            self.flags.append((bound.get("input_grad", True), bound.get("weight_grad", True)))
        return func(*args, **kwargs)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("what", ["data-input", "frozen-weights", "frozen-and-data"])
def test_gradients_nobody_asked_for_are_not_formed(mode, what):
    """A first layer over data that needs no gradient, and frozen weights (fine-tuning): the
    fused backward is told to skip grad_input / the weight-gradient GEMMs, the gradients that
    are asked for still equal torch.nn's, and the others stay None."""
    torch.manual_seed(0)
    ref = getattr(torch.nn, mode)(5, 7, num_layers=2, dtype=torch.float64)
    fused = getattr(fused_rnn, mode)(5, 7, num_layers=2, dtype=torch.float64)
    fused.load_state_dict(ref.state_dict())
    frozen = what != "data-input"
    for m in (ref, fused):
        for name, p in m.named_parameters():
            p.requires_grad_(not (frozen and name.startswith("weight")))
    x = torch.randn(6, 3, 5, dtype=torch.float64, requires_grad=what == "frozen-weights")
    h0 = torch.randn(2, 3, 7, dtype=torch.float64, requires_grad=True)
    state = (h0, torch.zeros_like(h0)) if mode == "LSTM" else h0
    calls = _BackwardCalls()
    grads = []
    for m in (ref, fused):
        out, _ = m(x, state)
        wanted = [t for t in (x, h0, *m.parameters()) if t.requires_grad]
        if m is fused:
            with calls:
                grads.append(torch.autograd.grad(out.pow(2).sum(), wanted))
        else:
            grads.append(torch.autograd.grad(out.pow(2).sum(), wanted))
    for a, b in zip(*grads):
        assert_close(a, b)
    # Layer 1's input is layer 0's output, which needs a gradient whenever h0 does.
    first = {"data-input": (False, True), "frozen-weights": (True, False), "frozen-and-data": (False, False)}[what]
    upper = (True, not frozen)
    assert sorted(calls.flags) == sorted([first, upper])


# ---------------------------------------------------------------- a retained graph keeps its workspace

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-direction", "bidirectional"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_backward_through_a_retained_graph(mode, bidirectional, dtype):
    """The backward that frees the graph may write dG over the workspace it has read; one that
    retains it (retain_graph=True, torch.autograd.grad's too) must leave it whole. A grad, two
    retaining backwards and a last one through one graph give torch.nn's gradients (the backwards
    accumulating three times them), and a fifth raises torch's error, as torch.nn's does."""
    ref, fused = make_pair(mode, 4, 24, num_layers=2, bidirectional=bidirectional, dtype=dtype)
    results = []
    for m in (ref, fused):
        x = torch.randn(9, 3, 4, dtype=dtype, generator=torch.Generator().manual_seed(0), requires_grad=True)
        out, _ = m(x)
        loss = (out * torch.randn(out.shape, dtype=dtype, generator=torch.Generator().manual_seed(1))).sum()
        first = torch.autograd.grad(loss, [x, *m.parameters()], retain_graph=True)
        loss.backward(retain_graph=True)
        loss.backward(retain_graph=True)
        loss.backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            loss.backward()
        results.append([*first, x.grad, *(p.grad for p in m.parameters())])
    for a, b in zip(*results):
        assert_close(b, a)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-direction", "bidirectional"])
def test_backward_that_frees_the_graph_needs_no_buffer_for_dg(mode, bidirectional):
    """Where the backward frees the graph, the CPU backward writes dG over the workspace rows it
    has read (the LSTM's and GRU's gates; the Elman RNN keeps none): its peak is below a
    retaining backward's by dG's bytes, 160 rows of G x H (and the GRU's H more) a direction
    (the directions one after the other on one thread)."""
    m = getattr(fused_rnn, mode)(16, 32, bidirectional=bidirectional)
    x = torch.randn(20, 8, 16, requires_grad=True)
    dg_bytes = 20 * 8 * 4 * 32 * 4  # G x H = 4H for the LSTM; 3H + H for the GRU
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the directions one after the other: the same allocations in the same order each call
    try:
        kept = _backward_peak_bytes(m, x, lambda out, h_n: out.sum(), retain_graph=True)
        consumed = _backward_peak_bytes(m, x, lambda out, h_n: out.sum())
    finally:
        torch.set_num_threads(threads)
    assert consumed <= kept - dg_bytes, (consumed, kept)
