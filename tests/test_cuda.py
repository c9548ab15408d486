"""The CUDA kernels, where a GPU is visible and fused_rnn was built with CUDA; skipped elsewhere.

Every test runs on both recurrent tiers (alternating: a GEMM and a pointwise kernel a
step; persistent: one kernel a sequence, falling back to the alternating tier where a layer
does not fit on chip), the persistent one twice: as it chooses (cluster mode where W_hh fits
one thread-block cluster, on sm_90+), and with cluster mode off ("persistent-grid": every
layer on the grid-wide cooperative kernel). fp32 is compared with TF32 off on both sides;
fp16/bf16 are held to an error at most about twice torch.nn's (cuDNN) in the same
precision, both measured against an fp32 reference.
"""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence

import fused_rnn
from conftest import (CELLS, F, FusedOps, assert_close, differentiable_layer, grads_of, layer_params, leaves,
                      run_layer, states)

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or not fused_rnn.build_info()["cuda"],
    reason="needs a visible GPU and fused_rnn built with CUDA kernels",
)

MODES = ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]


TIERS = ["alternating", "persistent", "persistent-grid"]


@pytest.fixture(autouse=True, params=TIERS)
def tier(request):
    """The tier's name as the tests compare it ("persistent" for both persistent variants)."""
    old = fused_rnn._C._set_cuda_tier(request.param.split("-")[0])
    old_cluster = fused_rnn._C._set_persistent_cluster(request.param != "persistent-grid")
    yield request.param.split("-")[0]
    fused_rnn._C._set_persistent_cluster(old_cluster)
    fused_rnn._C._set_cuda_tier(old)


@pytest.fixture(autouse=True)
def _no_tf32():
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def make_pair(mode, *args, device="cuda", dtype=torch.float32, **kwargs):
    name = "RNN" if mode.startswith("RNN") else mode
    if mode.startswith("RNN"):
        kwargs["nonlinearity"] = mode[4:].lower()
    ref = getattr(nn, name)(*args, device=device, dtype=dtype, **kwargs)
    fused = getattr(fused_rnn, name)(*args, device=device, dtype=dtype, **kwargs)
    fused.load_state_dict(ref.state_dict())
    return ref, fused


def assert_matches_torch_nn(a, b, dtype):
    """float32 to the usual tolerance; the 16-bit types to 5e-2 of the largest magnitude (the error
    bound itself is test_low_precision_error_at_most_twice_torch_nn's)."""
    if dtype == torch.float32:
        assert_close(a, b)
    else:
        scale = b.float().abs().max().item() or 1.0
        assert (a.float() - b.float()).abs().max().item() < 5e-2 * scale


def _flat(x):
    return [t for item in x for t in _flat(item)] if isinstance(x, (tuple, list)) else [x]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kwargs", [{}, {"num_layers": 2, "bidirectional": True}, {"bias": False, "batch_first": True}],
                         ids=["default", "L2-bi", "nobias-bf"])
def test_modules_match_torch_nn_on_cuda(mode, dtype, kwargs):
    torch.manual_seed(0)
    ref, fused = make_pair(mode, 16, 32, dtype=dtype, **kwargs)
    x = torch.randn(12, 5, 16, device="cuda", dtype=dtype, requires_grad=True)
    outs_ref = _flat(ref(x))
    outs = _flat(fused(x))
    for a, b in zip(outs, outs_ref):
        assert_close(a, b)
    g_ref = grads_of(outs_ref, [x, *ref.parameters()])
    g = grads_of(outs, [x, *fused.parameters()])
    for a, b in zip(g, g_ref):
        assert_close(a, b)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_layers_match_reference_float64_on_cuda(cell, reverse, packed):
    torch.manual_seed(0)
    P = 3 if cell == "lstm" else 0
    params = {k: v.cuda().requires_grad_() for k, v in layer_params(cell, 5, 7, P=P).items()}
    st = {k: v.cuda().requires_grad_() for k, v in states(cell, 4, 7, P=P).items()}
    if packed:
        p = pack_sequence([torch.randn(n, 5, dtype=torch.float64) for n in (6, 4, 4, 1)])
        x, bs = p.data.cuda().requires_grad_(), p.batch_sizes
    else:
        x, bs = torch.randn(6, 4, 5, dtype=torch.float64, device="cuda", requires_grad=True), None
    leaves = [x, *params.values(), *st.values()]
    got = run_layer(F, cell, x, params, st, bs, reverse)
    want = run_layer(fused_rnn.reference, cell, x, params, st, bs, reverse)
    for a, b in zip(got, want):
        assert_close(a, b)
    for a, b in zip(grads_of(got, leaves), grads_of(want, leaves)):
        assert_close(a, b)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_error_at_most_twice_torch_nn(mode, dtype):
    torch.manual_seed(0)
    ref32, _ = make_pair(mode, 64, 128)
    ref_lp, fused_lp = make_pair(mode, 64, 128, dtype=dtype)
    ref_lp.load_state_dict(ref32.state_dict())
    fused_lp.load_state_dict(ref32.state_dict())
    x = torch.randn(50, 8, 64, device="cuda")
    want = ref32(x.to(dtype).float())[0]
    err_ref = (ref_lp(x.to(dtype))[0].float() - want).abs().max().item()
    err = (fused_lp(x.to(dtype))[0].float() - want).abs().max().item()
    assert err <= 2 * err_ref + 1e-3, (err, err_ref)


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_float64_on_cuda(cell):
    torch.manual_seed(0)
    fn, inputs = differentiable_layer(cell, I=3, H=4, B=2, T=3, device="cuda")
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("cell", CELLS)
def test_opcheck_on_cuda(cell):
    params = {k: v.cuda().float() for k, v in layer_params(cell, 3, 4).items()}
    x = torch.randn(5, 2, 3, device="cuda")
    fwd = getattr(torch.ops.fused_rnn, f"{cell}_forward")
    if cell == "lstm":
        args = (x, None, None, params["w_ih"], params["w_hh"], params["b_ih"], params["b_hh"], None, None, False, True)
    else:
        args = (x, None, params["w_ih"], params["w_hh"], params["b_ih"], params["b_hh"], None, False, True)
    torch.library.opcheck(fwd, args)


@pytest.mark.parametrize("cell", CELLS)
def test_bidir_opcheck_on_cuda(cell):
    """The two-direction ops (both directions of a layer in one call) on the GPU."""
    per = 5 if cell == "lstm" else 4
    weights = []
    for d in range(2):
        p = layer_params(cell, 3, 4, dtype=torch.float32, seed=d)
        weights += [p[k].cuda() if k in p else None for k in ("w_ih", "w_hh", "b_ih", "b_hh", "w_hr")[:per]]
    x = torch.randn(5, 2, 3, device="cuda")
    states = (None, None) if cell == "lstm" else (None,)
    fwd = getattr(torch.ops.fused_rnn, f"{cell}_bidir_forward")
    torch.library.opcheck(fwd, (x, *states, weights, None, True))
    outs = fwd(x, *states, weights, None, True)
    bwd = getattr(torch.ops.fused_rnn, f"{cell}_bidir_backward")
    torch.library.opcheck(bwd, (*[torch.randn_like(t) for t in outs[:-1]], x, *states, weights, None, outs[0],
                                outs[-1]))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_cpu_and_cuda_agree(mode, bidirectional):
    torch.manual_seed(0)
    _, cpu = make_pair(mode, 8, 16, device="cpu", dtype=torch.float64, num_layers=2, bidirectional=bidirectional)
    gpu = getattr(fused_rnn, "RNN" if mode.startswith("RNN") else mode)(
        8, 16, num_layers=2, dtype=torch.float64, device="cuda", bidirectional=bidirectional,
        **({"nonlinearity": mode[4:].lower()} if mode.startswith("RNN") else {}))
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(7, 3, 8, dtype=torch.float64)
    for a, b in zip(_flat(gpu(x.cuda())), _flat(cpu(x))):
        assert_close(a.cpu(), b)


def test_non_default_stream():
    torch.manual_seed(0)
    ref, fused = make_pair("LSTM", 16, 32)
    x = torch.randn(20, 4, 16, device="cuda")
    want = fused(x)[0]
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        got = fused(x)[0]
        got.sum().backward()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    assert_close(got, want)


def test_long_sequence_on_cuda():
    """More steps than a CUDA grid dimension holds: the step loop is on the host, so nothing overflows."""
    torch.manual_seed(0)
    ref, fused = make_pair("GRU", 2, 3)
    x = torch.randn(70_000, 2, 2, device="cuda")
    assert_close(fused(x)[0], ref(x)[0], dtype=torch.float32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_autocast_cuda(mode, dtype):
    """Under CUDA autocast an fp32 model runs in the autocast dtype, weights stay fp32, no dtype error."""
    torch.manual_seed(0)
    ref, fused = make_pair(mode, 16, 32)
    x = torch.randn(10, 4, 16, device="cuda")
    with torch.autocast("cuda", dtype=dtype):
        out, _ = fused(x)
        out_ref, _ = ref(x)
    assert out.dtype == dtype and out_ref.dtype == dtype
    torch.testing.assert_close(out.float(), out_ref.float(), rtol=0, atol=3e-2)
    out.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in fused.parameters())


@pytest.mark.skipif(os.environ.get("CUBLAS_WORKSPACE_CONFIG") is None,
                    reason="cuBLAS is deterministic only with CUBLAS_WORKSPACE_CONFIG=:4096:8 (bench/gpu_check.sh sets it)")
def test_deterministic_on_cuda():
    torch.manual_seed(0)
    _, fused = make_pair("LSTM", 32, 64, num_layers=2, bidirectional=True)
    x = torch.randn(30, 8, 32, device="cuda")
    torch.use_deterministic_algorithms(True)
    try:
        runs = []
        for _ in range(2):
            fused.zero_grad()
            out, _ = fused(x)
            out.pow(2).sum().backward()
            runs.append([out.detach().clone()] + [p.grad.clone() for p in fused.parameters()])
    finally:
        torch.use_deterministic_algorithms(False)
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def _launches():
    d = fused_rnn._C._persistent_launches()
    return d["forward"], d["backward"]


@pytest.mark.parametrize("mode", MODES)
def test_the_tier_that_runs_is_the_tier_selected(mode, tier):
    """The persistent tier really runs whole sequences (forward and backward) where a layer fits,
    and the alternating tier never launches it."""
    torch.manual_seed(0)
    ref, fused = make_pair(mode, 8, 24)
    x = torch.randn(9, 3, 8, device="cuda", requires_grad=True)
    before = _launches()
    out, _ = fused(x)
    out.pow(2).sum().backward()
    torch.cuda.synchronize()
    after = _launches()
    ran = (after[0] - before[0], after[1] - before[1])
    assert ran == ((1, 1) if tier == "persistent" else (0, 0))
    out_ref, _ = ref(x)
    assert_close(out, out_ref)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("dsmem", [True, False], ids=["dsmem", "l2"])
def test_small_layers_run_in_clusters_on_sm90(mode, dtype, dsmem, tier):
    """On sm_90+ the persistent tier runs a layer whose W_hh fits one thread-block cluster's shared
    memory in cluster mode, forward and backward (unless turned off: the persistent-grid tier),
    the batch split between clusters: 40 packed sequences whose lengths end at different steps,
    so some clusters run out of rows before others; h_t and dG_t through distributed shared
    memory (dsmem) or L2. Results and gradients match torch.nn (float32 to the usual tolerance;
    bfloat16 to 5e-2 of each tensor's largest magnitude)."""
    torch.manual_seed(0)
    ref, fused = make_pair(mode, 16, 64, dtype=dtype)
    lengths = sorted((12 - i % 11 for i in range(40)), reverse=True)
    p = pack_sequence([torch.randn(n, 16, dtype=dtype) for n in lengths])
    x = torch.nn.utils.rnn.PackedSequence(p.data.cuda().requires_grad_(), p.batch_sizes)
    old_dsmem = fused_rnn._C._set_persistent_dsmem(dsmem)
    try:
        before = fused_rnn._C._persistent_launches()
        out, _ = fused(x)
        grads = torch.autograd.grad(out.data.float().pow(2).sum(), [x.data, *fused.parameters()])
        torch.cuda.synchronize()
        after = fused_rnn._C._persistent_launches()
    finally:
        fused_rnn._C._set_persistent_dsmem(old_dsmem)
    ran = tuple(after[k] - before[k] for k in ("cluster_forward", "cluster_backward", "cluster_dsmem_forward",
                                               "cluster_dsmem_backward"))
    on = tier == "persistent" and fused_rnn.build_info()["persistent_cluster"] and \
        torch.cuda.get_device_capability()[0] >= 9
    assert ran == ((1, 1, int(dsmem), int(dsmem)) if on else (0, 0, 0, 0)), ran
    out_ref, _ = ref(x)
    grads_ref = torch.autograd.grad(out_ref.data.float().pow(2).sum(), [x.data, *ref.parameters()])
    for a, b in zip([out.data, *grads], [out_ref.data, *grads_ref]):
        assert_matches_torch_nn(a, b, dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bidirectional_layers_run_both_directions_in_one_launch(mode, dtype, tier):
    """On the persistent tier a bidirectional layer's forward and backward are each one
    cooperative launch for both directions (half the SMs each), where the pair fits. Results
    and gradients match torch.nn (float32 to the usual tolerance; bfloat16 to 5e-2, the error
    bound itself being test_low_precision_error_at_most_twice_torch_nn's)."""
    torch.manual_seed(0)
    ref, fused = make_pair(mode, 16, 48, dtype=dtype, bidirectional=True, num_layers=2)
    x = torch.randn(11, 5, 16, device="cuda", dtype=dtype, requires_grad=True)
    before = fused_rnn._C._persistent_launches()
    out, _ = fused(x)
    grads = torch.autograd.grad(out.float().pow(2).sum(), [x, *fused.parameters()])
    torch.cuda.synchronize()
    after = fused_rnn._C._persistent_launches()
    ran = {k: after[k] - before[k] for k in ("forward", "backward", "pair_forward", "pair_backward")}
    n = 2 if tier == "persistent" else 0  # one launch a layer, both directions in it
    assert ran == {"forward": n, "backward": n, "pair_forward": n, "pair_backward": n}, ran
    out_ref, _ = ref(x)
    grads_ref = torch.autograd.grad(out_ref.float().pow(2).sum(), [x, *ref.parameters()])
    for a, b in zip([out, *grads], [out_ref, *grads_ref]):
        assert_matches_torch_nn(a, b, dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
def test_grid_mode_step_flags_give_the_barriers_results(mode, dtype, bidirectional, tier):
    """Grid mode with per-step flags (FUSED_RNN_PERSISTENT_FLAGS; cluster mode off): each CTA
    publishes its steps and the products wait chunk by chunk for the CTAs that wrote the chunk,
    instead of grid.sync(). The sums and their order are the same, so outputs and gradients are
    bitwise those of the grid barrier, and match torch.nn (float32 to the usual tolerance,
    bfloat16 on the tensor cores to 5e-2); the flags' launch counters move, one launch a layer
    and pass, on the persistent tier only. Two packed layers of H=300 (a CTA on every SM, or half
    of them a direction where both directions share a launch)."""
    torch.manual_seed(0)
    ref, fused = make_pair(mode, 16, 300, dtype=dtype, num_layers=2, bidirectional=bidirectional)
    seqs = [torch.randn(n, 16, device="cuda", dtype=dtype) for n in (9, 7, 7, 4, 1)]
    results = []
    old_cluster = fused_rnn._C._set_persistent_cluster(False)
    try:
        for flags in (False, True):
            old_flags = fused_rnn._C._set_persistent_flags(flags)
            try:
                x = pack_sequence([t.clone().requires_grad_() for t in seqs])
                before = fused_rnn._C._persistent_launches()
                out, _ = fused(x)
                grads = torch.autograd.grad(out.data.float().pow(2).sum(), list(fused.parameters()))
                torch.cuda.synchronize()
                after = fused_rnn._C._persistent_launches()
            finally:
                fused_rnn._C._set_persistent_flags(old_flags)
            moved = (after["grid_flags_forward"] - before["grid_flags_forward"],
                     after["grid_flags_backward"] - before["grid_flags_backward"])
            assert moved == ((2, 2) if flags and tier == "persistent" else (0, 0)), (flags, moved)
            results.append([out.data, *grads])
    finally:
        fused_rnn._C._set_persistent_cluster(old_cluster)
    for a, b in zip(*results):
        assert torch.equal(a, b)
    out_ref, _ = ref(pack_sequence(seqs))
    grads_ref = torch.autograd.grad(out_ref.data.float().pow(2).sum(), list(ref.parameters()))
    for a, b in zip(results[1], [out_ref.data, *grads_ref]):
        assert_matches_torch_nn(a, b, dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(40, 300, 20, 7), (3, 1100, 5, 3), (17, 140, 33, 5)],
                         ids=["B40-H300", "H1100", "B17-H140"])
def test_tiling_edges_match_torch_nn(mode, shape, tier):
    """Shapes that cut every loop of the persistent kernels unevenly: more batch rows than one
    staged chunk, hidden sizes that leave the last CTA partly empty, K longer than one staged
    chunk (G*H > 1024 in the backward, H > 1024 in the forward)."""
    B, H, I, T = shape
    torch.manual_seed(0)
    ref, fused = make_pair(mode, I, H, dtype=torch.float64)
    x = torch.randn(T, B, I, device="cuda", dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, B, H, device="cuda", dtype=torch.float64) * 0.5
    state = (h0, torch.randn_like(h0) * 0.5) if mode == "LSTM" else h0
    outs = _flat(fused(x, state))
    outs_ref = _flat(ref(x, state))
    for a, b in zip(outs, outs_ref):
        assert_close(a, b)
    for a, b in zip(grads_of(outs, [x, *fused.parameters()]), grads_of(outs_ref, [x, *ref.parameters()])):
        assert_close(a, b)


def test_threads_running_layers_of_different_sizes(tier):
    """Python threads calling layers whose plans need different amounts of shared memory at the
    same time (a server's worker pool): every result is the one the call gives alone. (The
    kernels' shared-memory limit is only ever raised, so one thread's plan never lowers it under
    another's launch.)"""
    import threading

    torch.manual_seed(0)
    layers = [make_pair("LSTM", 16, H)[1] for H in (40, 300, 96)]
    xs = [torch.randn(6, 3, 16, device="cuda") for _ in layers]
    with torch.no_grad():
        alone = [m(x)[0] for m, x in zip(layers, xs)]
    torch.cuda.synchronize()
    wrong, failed = [], []

    def work(k):
        try:
            for i in range(30):
                j = (i + k) % len(layers)
                with torch.no_grad():
                    got = layers[j](xs[j])[0]
                torch.cuda.current_stream().synchronize()
                if not torch.equal(got, alone[j]):
                    wrong.append((k, i, j))
        except Exception as e:  # noqa: BLE001 - reported below
            failed.append(repr(e))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failed == [] and wrong == []


def test_persistent_falls_back_where_w_hh_does_not_fit(tier):
    """An fp32 LSTM with H=4096 has a W_hh slice far over a CTA's shared memory: the persistent
    tier leaves it to the alternating one, with the same results."""
    torch.manual_seed(0)
    ref, fused = make_pair("LSTM", 8, 4096)
    x = torch.randn(3, 2, 8, device="cuda")
    before = _launches()
    out, _ = fused(x)
    torch.cuda.synchronize()
    assert _launches() == before
    assert_close(out, ref(x)[0])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_persistent_16bit_products_run_on_the_tensor_cores(mode, dtype, tier):
    """On sm_80+ the persistent tier forms float16/bfloat16 products with WMMA (forward and
    backward kernels both counted), and they agree with the same kernels on the CUDA cores
    (FUSED_RNN_PERSISTENT_MMA=0) within the 16-bit rounding of the outputs; the alternating
    tier launches neither. H=40 pads W_hh's slice and K to 16-multiples."""
    torch.manual_seed(0)
    ref, fused = make_pair(mode, 24, 40, dtype=dtype)
    x = torch.randn(7, 5, 24, device="cuda", dtype=dtype, requires_grad=True)
    runs = {}
    for mma in (True, False):
        old = fused_rnn._C._set_persistent_mma(mma)
        try:
            before = fused_rnn._C._persistent_launches()
            outs = _flat(fused(x))
            grads = grads_of(outs, [x, *fused.parameters()])
            torch.cuda.synchronize()
            after = fused_rnn._C._persistent_launches()
        finally:
            fused_rnn._C._set_persistent_mma(old)
        launched = (after["mma_forward"] - before["mma_forward"], after["mma_backward"] - before["mma_backward"])
        capable = torch.cuda.get_device_capability()[0] >= 8
        assert launched == ((1, 1) if tier == "persistent" and mma and capable else (0, 0))
        runs[mma] = outs + list(grads)
    tol = 4e-2 if dtype == torch.bfloat16 else 1e-2  # of each tensor's largest magnitude
    for a, b in zip(runs[True], runs[False]):
        scale = b.float().abs().max().item() or 1.0
        assert (a.float() - b.float()).abs().max().item() <= tol * scale


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("allow_tf32", [True, False])
def test_persistent_float32_follows_cudnn_allow_tf32(mode, allow_tf32, tier):
    """float32 on the persistent tier takes TF32 tensor cores (sm_80+) exactly where
    torch.backends.cudnn.allow_tf32 lets torch.nn's cuDNN RNNs do so, and stays within TF32's
    error of torch.nn in full float32."""
    torch.manual_seed(0)
    ref, fused = make_pair(mode, 24, 40)
    x = torch.randn(7, 5, 24, device="cuda", requires_grad=True)
    want = _flat(ref(x)) + list(grads_of(_flat(ref(x)), [x, *ref.parameters()]))
    old = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    try:
        before = fused_rnn._C._persistent_launches()
        outs = _flat(fused(x))
        got = outs + list(grads_of(outs, [x, *fused.parameters()]))
        torch.cuda.synchronize()
        after = fused_rnn._C._persistent_launches()
    finally:
        torch.backends.cudnn.allow_tf32 = old
    launched = (after["mma_forward"] - before["mma_forward"], after["mma_backward"] - before["mma_backward"])
    capable = torch.cuda.get_device_capability()[0] >= 8
    assert launched == ((1, 1) if tier == "persistent" and allow_tf32 and capable else (0, 0))
    for a, b in zip(got, want):
        if launched[0]:
            assert (a - b).abs().max().item() <= 1e-2 * (b.abs().max().item() or 1.0)
        else:
            assert_close(a, b)


def test_the_kernels_run_on_this_gpu():
    """The CUDA runtime finds a kernel image for the GPU the tests run on (the build was for it)."""
    assert fused_rnn._C._cuda_kernels_run_on(torch.cuda.current_device()) is True


def test_gpu_without_a_kernel_image_runs_torch_nn(monkeypatch):
    """A GPU the build holds no kernel image for (the runtime's answer stood in for): torch.nn's
    computation with the same weights, bit for bit, one warning, no fused op dispatched."""
    monkeypatch.setattr(F._C, "_cuda_kernels_run_on", lambda index: False)
    monkeypatch.setattr(F, "_cuda_devices", {})
    torch.manual_seed(0)
    ref, fused = make_pair("LSTM", 4, 8, num_layers=2)
    cell = fused_rnn.GRUCell(4, 8, device="cuda")
    x = torch.randn(5, 3, 4, device="cuda")
    with FusedOps() as ops, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = fused(x)
        h = cell(x[0])
    want = ref(x)
    assert ops.seen == []
    assert len(caught) == 1 and "holds no CUDA kernels" in str(caught[0].message)
    for a, b in zip(leaves(got), leaves(want)):
        assert torch.equal(a, b)
    assert torch.equal(h, cell.to_native()(x[0]))


def test_set_cuda_tier_rejects_unknown_names():
    with pytest.raises(ValueError, match="tier must be one of alternating, persistent, auto"):
        fused_rnn._C._set_cuda_tier("fast")
