"""Both directions of a layer in one op (``fused_rnn::<cell>_bidir_forward/_backward``): the ops
against the single-direction ops and the reference, with the CPU's directions at once and one
after the other, opcheck, gradcheck, the modules' routing through them, and bad arguments."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

import fused_rnn
import fused_rnn.functional as functional
from conftest import CELLS, assert_close, layer_params, states
from fused_rnn import _C
from fused_rnn.ops import BIDIR_WEIGHTS

OPS = torch.ops.fused_rnn
NAMES = ("w_ih", "w_hh", "b_ih", "b_hh", "w_hr")


@pytest.fixture(params=[True, False], ids=["at-once", "one-after-other"])
def concurrent(request):
    """The CPU's two ways of running the directions (the same results either way)."""
    before = _C._set_cpu_concurrent_directions(request.param)
    with_threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the directions run at once only on two threads
    yield request.param
    torch.set_num_threads(with_threads)
    _C._set_cpu_concurrent_directions(before)


def sample(cell, *, packed=False, P=0, bias=True, with_states=True, B=3, T=5, I=4, H=6, dtype=torch.float64,
           requires_grad=False):
    """Input, the op's weight list (both directions), (2, B, .) states and batch_sizes."""
    weights = []
    for d in range(2):
        p = layer_params(cell, I, H, P=P, bias=bias, dtype=dtype, seed=d, requires_grad=requires_grad)
        weights += [p.get(n) for n in NAMES[:BIDIR_WEIGHTS[cell]]]
    st = {}
    if with_states:
        for d in range(2):
            for k, v in states(cell, B, H, P=P, dtype=dtype, seed=10 + d).items():
                st.setdefault(k, []).append(v)
        st = {k: torch.stack(v).requires_grad_(requires_grad) for k, v in st.items()}
    if packed:
        lengths = sorted(torch.randint(1, T + 1, (B,)).tolist(), reverse=True)
        p = pack_sequence([torch.randn(n, I, dtype=dtype) for n in lengths])
        x, batch_sizes = p.data, p.batch_sizes
    else:
        x, batch_sizes = torch.randn(T, B, I, dtype=dtype), None
    return x.requires_grad_(requires_grad), weights, st, batch_sizes


def states_args(cell, st):
    return (st.get("hx"), st.get("cx")) if cell == "lstm" else (st.get("hx"),)


def single_direction(cell, x, weights, st, batch_sizes, d):
    """Direction d through the single-direction op: (output, h_n[, c_n], workspace)."""
    per = BIDIR_WEIGHTS[cell]
    w = weights[d * per:(d + 1) * per]
    hx = st["hx"][d] if "hx" in st else None
    if cell == "lstm":
        cx = st["cx"][d] if "cx" in st else None
        return OPS.lstm_forward(x, hx, cx, *w, batch_sizes, d == 1, True)
    return getattr(OPS, f"{cell}_forward")(x, hx, *w, batch_sizes, d == 1, True)


CASES = [dict(), dict(packed=True), dict(bias=False), dict(with_states=False), dict(packed=True, with_states=False)]


@pytest.mark.parametrize("case", CASES + [dict(P=2)], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "plain")
@pytest.mark.parametrize("cell", CELLS)
def test_forward_and_backward_match_the_single_direction_ops(cell, case, concurrent):
    if "P" in case and cell != "lstm":
        pytest.skip("only the LSTM has a projection")
    x, weights, st, batch_sizes = sample(cell, **case)
    fwd = getattr(OPS, f"{cell}_bidir_forward")
    outs = fwd(x, *states_args(cell, st), weights, batch_sizes, True)
    single = [single_direction(cell, x, weights, st, batch_sizes, d) for d in range(2)]
    assert_close(outs[0], torch.cat([single[0][0], single[1][0]], -1))
    assert_close(outs[1], torch.stack([single[0][1], single[1][1]]))
    if cell == "lstm":
        assert_close(outs[2], torch.stack([single[0][2], single[1][2]]))
    assert outs[-1].shape[0] == 2
    if outs[-1].shape[-1] > 0:
        assert_close(outs[-1], torch.stack([single[0][-1], single[1][-1]]))

    # The backward: the input's gradient summed over both directions, the others per direction.
    g = torch.Generator().manual_seed(3)
    grad_out = [torch.randn(t.shape, generator=g, dtype=t.dtype) for t in outs[:-1]]
    bwd = getattr(OPS, f"{cell}_bidir_backward")
    grads = bwd(*grad_out, x, *states_args(cell, st), weights, batch_sizes, outs[0], outs[-1])
    per, P = BIDIR_WEIGHTS[cell], single[0][0].shape[-1]
    expect_input, expect_states, expect_weights = 0, [[], []], []
    for d in range(2):
        w = weights[d * per:(d + 1) * per]
        hx = st["hx"][d] if "hx" in st else None
        go = grad_out[0][..., d * P:(d + 1) * P]
        if cell == "lstm":
            cx = st["cx"][d] if "cx" in st else None
            gd = OPS.lstm_backward(go, grad_out[1][d], grad_out[2][d], x, hx, cx, *w, batch_sizes, single[d][0],
                                   single[d][-1], d == 1)
            expect_states[1].append(gd[2])
            expect_weights += gd[3:]
        else:
            gd = getattr(OPS, f"{cell}_backward")(go, grad_out[1][d], x, hx, *w, batch_sizes, single[d][0],
                                                  single[d][-1], d == 1)
            expect_weights += gd[2:]
        expect_input = expect_input + gd[0]
        expect_states[0].append(gd[1])
    assert_close(grads[0], expect_input)
    assert_close(grads[1], torch.stack(expect_states[0]))
    if cell == "lstm":
        assert_close(grads[2], torch.stack(expect_states[1]))
    assert len(grads[-1]) == len(weights) == len(expect_weights)
    for k, (a, b, w) in enumerate(zip(grads[-1], expect_weights, weights)):
        if w is None:
            assert a.numel() == 0, k
        else:
            assert_close(a, b, msg=f"weight {k}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(c) or "plain")
@pytest.mark.parametrize("cell", CELLS)
def test_opcheck(cell, case):
    x, weights, st, batch_sizes = sample(cell, dtype=torch.float32, **case)
    fwd = getattr(OPS, f"{cell}_bidir_forward")
    args = (x, *states_args(cell, st), weights, batch_sizes, True)
    torch.library.opcheck(fwd, args)
    torch.library.opcheck(fwd, args[:-1] + (False,))
    outs = fwd(*args)
    bwd = getattr(OPS, f"{cell}_bidir_backward")
    bargs = (*[torch.randn_like(t) for t in outs[:-1]], *args[:-1], outs[0], outs[-1])
    torch.library.opcheck(bwd, bargs)
    torch.library.opcheck(bwd, bargs, dict(input_grad=False, weight_grad=False))


def test_opcheck_lstm_projection():
    x, weights, st, batch_sizes = sample("lstm", P=2, dtype=torch.float32)
    args = (x, st["hx"], st["cx"], weights, batch_sizes, True)
    torch.library.opcheck(OPS.lstm_bidir_forward, args)
    out, h_n, c_n, ws = OPS.lstm_bidir_forward(*args)
    bargs = (torch.randn_like(out), torch.randn_like(h_n), torch.randn_like(c_n), *args[:-1], out, ws)
    torch.library.opcheck(OPS.lstm_bidir_backward, bargs, dict(weight_grad=False))


@pytest.mark.parametrize("cell", CELLS)
def test_skipped_gradients_come_back_empty(cell):
    x, weights, st, batch_sizes = sample(cell, P=2 if cell == "lstm" else 0)
    outs = getattr(OPS, f"{cell}_bidir_forward")(x, *states_args(cell, st), weights, batch_sizes, True)
    bwd = getattr(OPS, f"{cell}_bidir_backward")
    bargs = (*[torch.randn_like(t) for t in outs[:-1]], x, *states_args(cell, st), weights, batch_sizes, outs[0],
             outs[-1])
    full, part = bwd(*bargs), bwd(*bargs, input_grad=False, weight_grad=False)
    assert part[0].numel() == 0
    for k, (a, b) in enumerate(zip(full[-1], part[-1])):
        if NAMES[k % BIDIR_WEIGHTS[cell]] in ("b_ih", "b_hh"):  # bias gradients are always formed
            assert torch.equal(a, b), k
        else:
            assert b.numel() == 0, k


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("packed", [False, True])
def test_gradcheck_and_gradgradcheck_float64(cell, packed):
    fn_cls = {"lstm": functional.LSTMBidirFunction, "gru": functional.GRUBidirFunction,
              "rnn_tanh": functional.RNNTanhBidirFunction, "rnn_relu": functional.RNNReluBidirFunction}[cell]
    x, weights, st, batch_sizes = sample(cell, packed=packed, B=3, T=3, I=2, H=3, requires_grad=True,
                                         P=2 if cell == "lstm" else 0)
    n_states = 2 if cell == "lstm" else 1

    def fn(x, *rest):
        outs = fn_cls.apply(x, *rest[:n_states], batch_sizes, True, *rest[n_states:])
        return outs[:-1]

    inputs = (x, *states_args(cell, st), *weights)
    assert torch.autograd.gradcheck(fn, inputs)
    if cell != "rnn_relu":  # relu's second derivative is zero almost everywhere; nothing to check
        assert torch.autograd.gradgradcheck(fn, inputs)


MODULES = {"lstm": ("LSTM", {}), "gru": ("GRU", {}), "rnn_tanh": ("RNN", {}),
           "rnn_relu": ("RNN", {"nonlinearity": "relu"})}


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("form", ["dense", "packed", "batch_first", "unbatched"])
def test_modules_match_torch_nn(cell, form, concurrent):
    name, extra = MODULES[cell]
    kw = dict(num_layers=2, bidirectional=True, dtype=torch.float64, batch_first=form == "batch_first", **extra)
    ref = getattr(torch.nn, name)(4, 5, **kw)
    mod = getattr(fused_rnn, name)(4, 5, **kw)
    mod.load_state_dict(ref.state_dict())
    if form == "packed":
        x = pack_sequence([torch.randn(n, 4, dtype=torch.float64) for n in (6, 4, 1)])
    elif form == "unbatched":
        x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    else:  # T = 6 steps of a batch of 3
        shape = (3, 6, 4) if form == "batch_first" else (6, 3, 4)
        x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    h_shape = (4, 3, 5) if form != "unbatched" else (4, 5)
    h0 = torch.randn(h_shape, dtype=torch.float64, requires_grad=True)
    hx = (h0, torch.randn(h_shape, dtype=torch.float64, requires_grad=True)) if cell == "lstm" else h0

    def flat(result):
        out, state = result
        out = out.data if form == "packed" else out
        return [out, *(state if isinstance(state, tuple) else (state,))]

    expected, actual = flat(ref(x, hx)), flat(mod(x, hx))
    for a, e in zip(actual, expected):
        assert_close(a, e)
    leaves = [*(hx if isinstance(hx, tuple) else (hx,)), *ref.parameters()]
    leaves_f = [*(hx if isinstance(hx, tuple) else (hx,)), *mod.parameters()]
    if form != "packed":
        leaves, leaves_f = [x, *leaves], [x, *leaves_f]
    g = torch.Generator().manual_seed(5)
    weights = [torch.randn(t.shape, generator=g, dtype=t.dtype) for t in expected]
    ge = torch.autograd.grad(expected, leaves, weights)
    ga = torch.autograd.grad(actual, leaves_f, weights)
    for a, e in zip(ga, ge):
        assert_close(a, e)


def test_modules_route_through_the_two_direction_op(monkeypatch):
    """A bidirectional float32/float64 layer takes one op for both directions; autocast, CPU
    bfloat16 (which run through kept float32 casts) and return_all_states keep the
    per-direction path."""
    calls = []
    real = functional._bidir_layer
    monkeypatch.setattr(functional, "_bidir_layer", lambda *a: calls.append(a[0]) or real(*a))
    x = torch.randn(5, 2, 3)
    for name in ("LSTM", "GRU", "RNN"):
        getattr(fused_rnn, name)(3, 4, num_layers=2, bidirectional=True)(x)
    assert calls == ["LSTM", "LSTM", "GRU", "GRU", "RNN_TANH", "RNN_TANH"]
    calls.clear()
    fused_rnn.LSTM(3, 4, bidirectional=True).to(torch.bfloat16)(x.to(torch.bfloat16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused_rnn.GRU(3, 4, bidirectional=True)(x)
    fused_rnn.LSTM(3, 4, bidirectional=True, return_all_states=True)(x)
    fused_rnn.LSTM(3, 4)(x)
    assert calls == []


@pytest.mark.parametrize("cell", CELLS)
def test_inference_mode_and_no_grad(cell, concurrent):
    """Inference mode and no_grad give the same results, the directions at once and not, and
    inference mode's result is an inference tensor."""
    name, extra = MODULES[cell]
    mod = getattr(fused_rnn, name)(3, 4, num_layers=2, bidirectional=True, **extra)
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        expected = mod(x)[0]
    with torch.inference_mode():
        actual = mod(x)[0]
        assert actual.is_inference()
    assert torch.equal(actual, expected)


@pytest.mark.parametrize("cell", CELLS)
def test_bad_arguments(cell):
    x, weights, st, batch_sizes = sample(cell)
    fwd = getattr(OPS, f"{cell}_bidir_forward")
    per = BIDIR_WEIGHTS[cell]
    with pytest.raises(RuntimeError, match=rf"expected {2 * per} weights"):
        fwd(x, *states_args(cell, st), weights[:-1], batch_sizes, False)
    missing = list(weights)
    missing[per + 1] = None
    with pytest.raises(RuntimeError, match="w_ih and w_hh of direction 1 are required"):
        fwd(x, *states_args(cell, st), missing, batch_sizes, False)
    bad_states = dict(st, hx=st["hx"][0])
    with pytest.raises(RuntimeError, match=r"expected hx of shape \(2, batch, features\)"):
        fwd(x, *states_args(cell, bad_states), weights, batch_sizes, False)
    outs = fwd(x, *states_args(cell, st), weights, batch_sizes, True)
    bwd = getattr(OPS, f"{cell}_bidir_backward")
    grads = [torch.randn_like(t) for t in outs[:-1]]
    with pytest.raises(RuntimeError, match="grad_output"):
        bwd(grads[0][..., :-1], *grads[1:], x, *states_args(cell, st), weights, batch_sizes, outs[0], outs[-1])
    with pytest.raises(RuntimeError, match="grad_h_n"):
        bwd(grads[0], grads[1][:1], *grads[2:], x, *states_args(cell, st), weights, batch_sizes, outs[0], outs[-1])
    if cell in ("lstm", "gru"):
        with pytest.raises(RuntimeError, match="workspace"):
            bwd(*grads, x, *states_args(cell, st), weights, batch_sizes, outs[0], outs[-1][:1])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_directions_at_once_give_the_same_float32_results(cell):
    """At once (one thread a direction) or one after the other (both threads on each): the
    same float32 results to rounding at a size where the step team splits the units."""
    name, extra = MODULES[cell]
    mod = getattr(fused_rnn, name)(64, 96, bidirectional=True, **extra)
    x = torch.randn(20, 8, 64, requires_grad=True)
    results = []
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for on in (True, False):
            before = _C._set_cpu_concurrent_directions(on)
            try:
                out, _ = mod(x)
                grads = torch.autograd.grad(out.square().sum(), [x, *mod.parameters()])
            finally:
                _C._set_cpu_concurrent_directions(before)
            results.append([out, *grads])
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _at_once():
    c = _C._cpu_forward_calls()
    return c["bidir_at_once_forward"], c["bidir_at_once_backward"]


def _training_step_calls(model, B, keys):
    """How far _cpu_forward_calls' counters `keys` moved over one training step of `model` on a
    (5, B, 8) input."""
    x = torch.randn(5, B, 8, requires_grad=True)
    start = _C._cpu_forward_calls()
    out, _ = model(x)
    out.sum().backward()
    end = _C._cpu_forward_calls()
    return tuple(end[k] - start[k] for k in keys)


def test_when_the_directions_run_at_once():
    """On two threads: an inference forward at once; a training step (forward and backward) at
    once up to 16 rows a step (above, both directions' buffers alive together cost more memory
    than the gain is worth); nothing at once with the switch off or on another thread count.
    The results are the same either way (the tests above)."""
    threads = torch.get_num_threads()
    before = _C._set_cpu_concurrent_directions(True)
    try:
        def step(B, n_threads=2):
            torch.set_num_threads(n_threads)
            return _training_step_calls(fused_rnn.LSTM(8, 16, bidirectional=True), B,
                                        ("bidir_at_once_forward", "bidir_at_once_backward"))

        assert step(16) == (1, 1)
        assert step(17) == (0, 0)
        lstm = fused_rnn.LSTM(8, 16, bidirectional=True)
        start = _at_once()
        with torch.no_grad():
            lstm(torch.randn(5, 17, 8))
        assert _at_once()[0] - start[0] == 1
        assert step(16, n_threads=1) == (0, 0)
        _C._set_cpu_concurrent_directions(False)
        assert step(4) == (0, 0)
    finally:
        _C._set_cpu_concurrent_directions(before)
        torch.set_num_threads(threads)


def test_input_gradient_panels_from_17_rows_a_step():
    """A backward's grad_input runs on W_ih packed for the tiles (one copy a call) from 17 rows a
    step, and on BLAS below: there the two ran at the same speed within noise, and the copy is a
    large share of the step's peak memory (two of them alive together where the two directions
    of a bidirectional layer run at once, which they do only up to 16 rows a step, and then stay
    on BLAS). From 8 rows where the tiles run AVX-512 and BLAS is MKL on a CPU that is not
    Intel's (MKL's AVX2 code then runs at half the tiles' rate), for an LSTM or GRU (G*H >= 2 I),
    not an Elman RNN at I = H."""
    info = _C.build_info()
    low = 8 if info["cpu_mkl_off_intel"] and info["cpu_capability"] == "avx512" else 17
    threads = torch.get_num_threads()
    before = _C._set_cpu_concurrent_directions(True)
    torch.set_num_threads(2)

    def packed(model, B=16):  # 5 x B rows: enough for the tiles by rows
        return _training_step_calls(model, B, ("input_grad_panels", "bidir_at_once_backward"))

    try:
        lstm = fused_rnn.LSTM(8, 16, bidirectional=True)
        assert packed(lstm) == (0, 1)
        assert packed(fused_rnn.LSTM(8, 16), B=low - 1) == (0, 0)
        assert packed(fused_rnn.LSTM(8, 16), B=low) == (1, 0)
        assert packed(lstm, B=17) == (2, 0)  # above 16 rows a step the directions run one after the other
        _C._set_cpu_concurrent_directions(False)
        assert packed(lstm, B=low - 1) == (0, 0)
        assert packed(lstm, B=16) == ((2, 0) if low <= 16 else (0, 0))
        assert packed(lstm, B=17) == (2, 0)
        assert packed(fused_rnn.RNN(8, 8), B=16) == (0, 0)  # K = H = I: an Elman RNN at I = H
        assert packed(fused_rnn.RNN(8, 8), B=17) == (1, 0)
    finally:
        _C._set_cpu_concurrent_directions(before)
        torch.set_num_threads(threads)


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("threads", [1, 2], ids=["one-after-the-other", "at-once"])
def test_backward_reads_the_output_halves_in_place(cell, threads):
    """A bidirectional backward reads each direction's half of the output (and of grad_output)
    where it lies, rows 2P apart: no contiguous copy of a half (N x P, at the backward's peak),
    for the Elman RNN too, whose pointwise pass reads h_t. Checked by the shapes the copies take
    in; by their bytes too on one thread (with two, the profiler may charge a copy on one thread
    with what the other direction allocates meanwhile)."""
    from torch.profiler import ProfilerActivity, profile

    m = getattr(fused_rnn, cell)(16, 32, bidirectional=True)
    x = torch.randn(20, 8, 16, requires_grad=True)
    out, _ = m(x)
    grad = torch.randn_like(out)
    half = out.numel() // 2
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True) as prof:
            out.backward(grad)
    finally:
        torch.set_num_threads(before)
    copies = [e for e in prof.events() if e.name in ("aten::contiguous", "aten::clone")]
    assert copies  # the profiler saw the backward's ops (it clones a state gradient of B x H)
    taken = [(e.name, shape) for e in copies for shape in e.input_shapes if shape and math.prod(shape) >= half]
    assert not taken, taken
    if threads == 1:
        held = [(e.name, e.cpu_memory_usage) for e in copies if e.cpu_memory_usage >= half * out.element_size()]
        assert not held, held


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("segments", ["whole", "two"])
def test_directions_at_once_form_one_input_gradient(cell, segments):
    """An Elman RNN's directions at once, each holding its dG whole, leave the input's gradient to
    after both: one T x B x I buffer, the second direction's product added into it, where a buffer
    a direction alive with all four weight gradients made the peak of small batches. Directions
    whose dG runs in segments (their flushes add into grad_input as they go), and the LSTM's and
    GRU's (whose two products run side by side, measured faster so), keep a buffer each.
    Gradients against torch.nn either way."""
    from torch.profiler import ProfilerActivity, profile

    T, B, I = 20, 3, 7
    ref = getattr(torch.nn, cell)(I, 32, bidirectional=True)
    m = getattr(fused_rnn, cell)(I, 32, bidirectional=True)
    m.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, I, requires_grad=True)
    threads = torch.get_num_threads()
    concurrent = _C._set_cpu_concurrent_directions(True)
    chunk = _C._set_cpu_backward_chunk(0)
    _C._set_cpu_backward_chunk(chunk)
    min_rows = _C._set_cpu_backward_chunk_min_rows(1)
    torch.set_num_threads(2)
    try:
        if segments == "two":  # each direction's share of the chunk: half the sequence's rows of dG
            G = {"LSTM": 4, "GRU": 4, "RNN": 1}[cell]  # the GRU's dGh counts with its dG
            _C._set_cpu_backward_chunk(T * B * G * 32 * 4)
        out, _ = m(x)
        start = _at_once()[1]
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            grads = torch.autograd.grad(out.square().sum(), [x, *m.parameters()])
        assert _at_once()[1] - start == 1
    finally:
        _C._set_cpu_concurrent_directions(concurrent)
        _C._set_cpu_backward_chunk(chunk)
        _C._set_cpu_backward_chunk_min_rows(min_rows)
        torch.set_num_threads(threads)
    input_bytes = T * B * I * 4
    buffers = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]" and e.nbytes() == input_bytes]
    assert len(buffers) == (1 if segments == "whole" and cell == "RNN" else 2)
    out_ref, _ = ref(x)
    for got, want in zip(grads, torch.autograd.grad(out_ref.square().sum(), [x, *ref.parameters()])):
        assert_close(got, want)


def test_small_batch_forward_splits_a_direction_that_outgrows_l2():
    """A forward of at most 4 rows whose W_hh lies between 3/4 of a core's L2 cache and twice
    it runs the directions one after the other (each W_hh stays in the two cores' L2s); a
    smaller W_hh runs at once."""
    l2 = fused_rnn.build_info()["cpu_l2_bytes"]  # what the CPU kernels read from the C library
    if l2 <= 0:
        pytest.skip("the L2 size is unknown here")
    H = int((l2 / 16) ** 0.5)  # an LSTM W_hh of 4H x H float32: 16 H^2 bytes, about the L2 size
    threads = torch.get_num_threads()
    before = _C._set_cpu_concurrent_directions(True)
    torch.set_num_threads(2)
    try:
        for hidden, at_once in ((H, 0), (H // 4, 1)):
            lstm = fused_rnn.LSTM(4, hidden, bidirectional=True)
            start = _at_once()
            with torch.no_grad():
                lstm(torch.randn(3, 2, 4))
            assert _at_once()[0] - start[0] == at_once, hidden
    finally:
        _C._set_cpu_concurrent_directions(before)
        torch.set_num_threads(threads)


def _padded(t, extra=3):
    """t's values in a view whose rows are t.size(-1) + extra apart (not contiguous)."""
    wide = torch.full(t.shape[:-1] + (t.shape[-1] + extra,), float("nan"), dtype=t.dtype)
    view = wide[..., :t.shape[-1]]
    view.copy_(t)
    return view


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_backward_reads_strided_rows_as_contiguous_ones(cell, B, packed, concurrent):
    """The CPU backward reads each direction's half of grad_output (and the LSTM's and GRU's
    output) in place, its rows 2P apart, where a copy of each half would cost N x P: the
    gradients are the very bits of contiguous halves'. So too for rows further apart (a padded
    grad_output and output), expanded ones (stride 0: copied), and the single-direction op."""
    x, weights, st, batch_sizes = sample(cell, packed=packed, B=B, dtype=torch.float32)
    args = states_args(cell, st)
    out, *_, ws = getattr(OPS, f"{cell}_bidir_forward")(x, *args, weights, batch_sizes, True)
    bwd = getattr(OPS, f"{cell}_bidir_backward")
    g = torch.randn_like(out)
    state_grads = [torch.randn_like(s) for s in args]

    def grads(go, o):
        gi, *gs, gw = bwd(go, *state_grads, x, *args, weights, batch_sizes, o, ws)
        return [gi, *gs, *gw]

    want = grads(g, out)
    for go, o in [(_padded(g), out), (g, _padded(out)), (_padded(g, 1), _padded(out, 5))]:
        assert not go.is_contiguous() or not o.is_contiguous()
        for a, b in zip(grads(go, o), want):
            assert torch.equal(a, b)
    ones = torch.ones(()).expand(out.shape)
    for a, b in zip(grads(ones, out), grads(ones.contiguous(), out)):
        assert torch.equal(a, b)
    # One direction: its output and grad_output padded.
    o1, *rest = single_direction(cell, x, weights, st, batch_sizes, 0)
    per = BIDIR_WEIGHTS[cell]
    w = weights[:per]
    s1 = [s[0] for s in args if s is not None]
    ws1 = rest[-1]
    g1 = torch.randn_like(o1)
    gh = [torch.randn_like(s) for s in ([st["hx"][0]] + ([st["cx"][0]] if cell == "lstm" else []))] if st else \
        [torch.randn(B, o1.shape[-1])] + ([torch.randn(B, w[1].shape[1])] if cell == "lstm" else [])

    def grads1(go, o):
        if cell == "lstm":
            hx, cx = (st["hx"][0], st["cx"][0]) if st else (None, None)
            return OPS.lstm_backward(go, *gh, x, hx, cx, *w, batch_sizes, o, ws1, False, None)
        hx = st["hx"][0] if st else None
        return getattr(OPS, f"{cell}_backward")(go, *gh, x, hx, *w, batch_sizes, o, ws1, False)

    want1 = grads1(g1, o1)
    for a, b in zip(grads1(_padded(g1), _padded(o1)), want1):
        assert torch.equal(a, b)
