"""The CPU step paths: fused tiles on a thread team (their products from packed weight panels,
or, for small batches, dot products read in place along the weights' rows), and BLAS gemm +
pointwise pass per step.

Every other test runs whichever path is the default; here each is checked against the
reference on shapes chosen to hit the tile edges: hidden sizes that are not a multiple of a tile's
units, batches that are not a multiple of a register block, packed batches that shrink (forward)
and grow (reverse), and every instruction-set build.
"""

from __future__ import annotations

import pytest
import torch

import fused_rnn
from conftest import CELLS, GATES, F, R, assert_close, layer_params, run_layer, states
from test_bidirectional import BIDIR_WEIGHTS, OPS, sample, single_direction, states_args
from test_layer_ops import _available_capabilities, check_layer

from fused_rnn import _C


@pytest.fixture(params=["panels", "dots", "unfused"])
def steps(request):
    previous = _C._set_cpu_fused(request.param != "unfused")
    previous_dots = _C._set_cpu_dots("always" if request.param == "dots" else "never")
    yield request.param
    _C._set_cpu_fused(previous)
    _C._set_cpu_dots(previous_dots)


@pytest.fixture
def threads():
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def test_default_is_fused():
    assert _C.build_info()["cpu_fused_steps"] is True
    assert _C.build_info()["cpu_dots"] == "auto"


def test_unknown_dots_mode_is_an_error():
    with pytest.raises(RuntimeError, match="unknown CPU weight reading mode 'sometimes'"):
        _C._set_cpu_dots("sometimes")
    assert _C.build_info()["cpu_dots"] == "auto"


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("B", [1, 3])
def test_small_batch_long_sequence_with_uncached_weights(cell, B):
    """In auto mode a small batch packs the weights the panel cache keeps once T * B >= H / 8, and
    reads the others in place (here: the cache is off), through forward and backward."""
    def dots_calls():
        return _C._cpu_forward_calls()["dots"]

    before = dots_calls()
    check_layer(cell, T=40 // B, B=B, I=9, H=37 * 8, dtype=torch.float64, reverse=B == 3)
    assert dots_calls() == before
    previous = _C._set_cpu_panel_cache(False)
    try:
        check_layer(cell, T=40, B=B, I=9, H=37, dtype=torch.float64, reverse=B == 3)
    finally:
        _C._set_cpu_panel_cache(previous)
    assert dots_calls() == before + 1
    check_layer(cell, T=37 // B, B=B, I=9, H=37 * 8 + 1, dtype=torch.float64)
    assert dots_calls() == before + 2
    check_layer(cell, T=3, B=5, I=9, H=37 * 8 + 1, dtype=torch.float64)  # a batch over 4 packs
    assert dots_calls() == before + 2


def _paths():
    c = _C._cpu_forward_calls()
    return c["dots"], c["panels"]


def _check_inference(cell, T, B, I, H):
    params = layer_params(cell, I, H, dtype=torch.float64)
    st = states(cell, B, H, dtype=torch.float64)
    x = torch.randn(T, B, I, dtype=torch.float64)
    with torch.no_grad():
        got = run_layer(F, cell, x, params, st)
        want = run_layer(R, cell, x, params, st)
    for a, b in zip(got, want):
        assert_close(a, b)


@pytest.mark.parametrize("cell", CELLS)
def test_single_step_reads_in_place_up_to_16_rows(cell):
    """In auto mode one step (a cell's call) of up to 16 rows reads the weights in place even
    where the panel cache keeps them (packing or comparing them would serve one step), through
    forward and backward; in inference 17 rows, and two steps of 16 in training, use panels."""
    before = _paths()
    check_layer(cell, T=1, B=16, I=9, H=37 * 8, dtype=torch.float64, reverse=True)
    assert _paths() == (before[0] + 1, before[1])
    _check_inference(cell, T=1, B=17, I=9, H=37 * 8)
    assert _paths() == (before[0] + 1, before[1] + 1)
    check_layer(cell, T=2, B=16, I=9, H=37 * 8, dtype=torch.float64)
    assert _paths() == (before[0] + 1, before[1] + 2)


@pytest.mark.parametrize("cell", CELLS)
def test_single_training_step_packs_no_panels(cell):
    """A training call keeps no panels, so one training step of any batch packs none: the LSTM
    and GRU read the weights in place, the Elman RNN's step over 16 rows goes to BLAS (neither
    path of the fused forward); with the mode forced, panels as asked. Gradients as the reference's."""
    before = _paths()
    check_layer(cell, T=1, B=40, I=9, H=37 * 8, dtype=torch.float64)
    gated = cell in ("lstm", "gru")
    assert _paths() == (before[0] + gated, before[1])
    check_layer(cell, T=1, B=16, I=9, H=37 * 8, dtype=torch.float64)
    assert _paths() == (before[0] + gated + 1, before[1])
    previous = _C._set_cpu_dots("never")
    try:
        check_layer(cell, T=1, B=40, I=9, H=37 * 8, dtype=torch.float64)
    finally:
        _C._set_cpu_dots(previous)
    assert _paths() == (before[0] + gated + 1, before[1] + 1)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("I, H", [(40, 133), (3, 5), (8, 9), (130, 17), (64, 64)])
def test_dots_equal_panels(cell, I, H):
    """The in-place dot products and the panels agree on a float32 sequence, in every
    register-block size of the dot kernel. The sizes reach every edge of the packing
    (pack_tile): many tiles, a hidden size that ends mid-vector or is under one, input widths
    under a vector, of one, and past two blocks of k (where rows are prefetched ahead)."""
    params = layer_params(cell, I, H, dtype=torch.float32)
    x = torch.randn(12, 7, I)
    outs = {}
    for dots in ("never", "always"):
        previous = _C._set_cpu_dots(dots)
        try:
            with torch.no_grad():
                outs[dots] = run_layer(F, cell, x, params, states(cell, 7, H, dtype=torch.float32))
        finally:
            _C._set_cpu_dots(previous)
    for a, b in zip(outs["never"], outs["always"]):
        assert_close(a, b, torch.float32)


def test_steps_fixture_takes_the_path_it_names(steps):
    before = _C._cpu_forward_calls()
    check_layer("lstm", T=3, B=2, I=3, H=5)
    after = _C._cpu_forward_calls()
    took = {k: after[k] - before[k] for k in after}
    want = {"panels": 0 if steps != "panels" else 1, "dots": 1 if steps == "dots" else 0, "16bit_weights": 0,
            "bf16_dot": 0, "bf16_backward": 0, "bf16_rounded_forward": 0, "bf16_rounded_backward": 0,
            "bidir_at_once_forward": 0, "bidir_at_once_backward": 0,
            "input_grad_panels": 0, "blas_backward": 0, "packed_gemm": 0, "onednn_gemm": 0,
            "weight_product": 0, "runs_alone_beside_a_team": 0}
    assert took == want


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("H,B", [(1, 1), (5, 7), (16, 6), (17, 13), (37, 2), (70, 9)])
def test_tile_edges(steps, cell, dtype, H, B):
    check_layer(cell, T=4, B=B, I=3, H=H, dtype=dtype, reverse=H % 2 == 1)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
def test_packed(steps, cell, reverse):
    lengths = [9, 7, 7, 4, 1, 1, 1]
    x = torch.nn.utils.rnn.pack_sequence([torch.randn(n, 5, dtype=torch.float64) for n in lengths])
    check_layer(cell, T=0, B=len(lengths), I=5, H=21, reverse=reverse, batch_sizes=x.batch_sizes, input=x.data)


@pytest.mark.parametrize("capability", _available_capabilities())
@pytest.mark.parametrize("cell", CELLS)
def test_every_capability(steps, capability, cell):
    previous = _C._set_cpu_capability(capability)
    try:
        for H, B in ((3, 1), (33, 11), (70, 4)):
            check_layer(cell, T=3, B=B, I=4, H=H, dtype=torch.float32, reverse=B == 11)
    finally:
        _C._set_cpu_capability(previous)


@pytest.mark.parametrize("cell", CELLS)
def test_backward_products_of_large_panels_run_on_blas(cell):
    """From 32 rows a step, a backward whose tile panels (K rows of a tile's columns) reach
    cpu_blas_panel_bytes runs its per-step products and grad_input on BLAS; with fewer rows, or
    the limit at 0 (never), on the tiles. The gradients are the reference's either way."""
    def took():
        c = _C._cpu_forward_calls()
        return c["blas_backward"], c["input_grad_panels"]

    previous = _C._set_cpu_blas_panel_bytes(1)  # every panel is large
    try:
        before = took()
        check_layer(cell, T=3, B=32, I=5, H=9, dtype=torch.float64)
        assert took() == (before[0] + 1, before[1])
        check_layer(cell, T=3, B=31, I=5, H=9, dtype=torch.float64)
        assert took() == (before[0] + 1, before[1] + 1)
        _C._set_cpu_blas_panel_bytes(0)
        check_layer(cell, T=3, B=32, I=5, H=9, dtype=torch.float64, reverse=True)
        assert took() == (before[0] + 1, before[1] + 2)
    finally:
        _C._set_cpu_blas_panel_bytes(previous)


PACKED_GEMM = _C.build_info()["cpu_packed_gemm"]


@pytest.fixture
def blas_backward():
    previous = _C._set_cpu_blas_panel_bytes(1)  # every panel is large
    yield
    _C._set_cpu_blas_panel_bytes(previous)


def packs():
    return _C._cpu_forward_calls()["packed_gemm"]


@pytest.mark.skipif(not PACKED_GEMM, reason="torch's BLAS has no MKL packed GEMM")
@pytest.mark.parametrize("reverse", [False, True])
def test_backward_on_blas_multiplies_w_hh_packed_once(blas_backward, reverse):
    """Where the backward's steps run on BLAS, float32 W_hh is packed for MKL once a call (not once a
    step, nor a segment) and serves steps of every size: a packed batch whose steps have fewer
    rows than the batch, on a backward of several segments. Gradients are the reference's."""
    previous_rows = _C._set_cpu_backward_chunk_min_rows(8)
    previous_chunk = _C._set_cpu_backward_chunk(1)  # one step a segment
    try:
        lengths = [9, 7, 7, 6, 5, 4, 4, 4]
        x = torch.nn.utils.rnn.pack_sequence([torch.randn(n, 5) for n in lengths])
        before = packs()
        check_layer("lstm", T=0, B=len(lengths), I=5, H=256, dtype=torch.float32, reverse=reverse,
                    batch_sizes=x.batch_sizes, input=x.data)
        assert packs() == before + 1
        check_layer("lstm", T=5, B=8, I=5, H=256, dtype=torch.float32, reverse=reverse)
        assert packs() == before + 2
    finally:
        _C._set_cpu_backward_chunk(previous_chunk)
        _C._set_cpu_backward_chunk_min_rows(previous_rows)


@pytest.mark.skipif(not PACKED_GEMM, reason="torch's BLAS has no MKL packed GEMM")
def test_packed_steps_leave_grad_input_on_the_tiles_under_32_rows(blas_backward):
    """From 8 rows a step the reverse loop's products go to BLAS on packed W_hh, while grad_input,
    a product over a segment's many rows, keeps to the tiles below 32 rows a step."""
    c0 = _C._cpu_forward_calls()
    check_layer("lstm", T=3, B=20, I=5, H=256, dtype=torch.float32)
    c1 = _C._cpu_forward_calls()
    assert (c1["blas_backward"] - c0["blas_backward"], c1["packed_gemm"] - c0["packed_gemm"],
            c1["input_grad_panels"] - c0["input_grad_panels"]) == (1, 1, 1)


@pytest.mark.skipif(not PACKED_GEMM, reason="torch's BLAS has no MKL packed GEMM")
def test_packed_gemm_spares_small_weights_and_rows_and_single_steps(blas_backward):
    """The GRU's r and z rows of W_hh (2H x H) are packed, its n rows (H x H) under 1 MB are not;
    neither is a W_hh under 1 MB, a step of fewer than 8 rows (those stay on the tiles), a single
    step, or anything with the switch off; float64 has no packed GEMM."""
    before = packs()
    check_layer("gru", T=3, B=8, I=4, H=384, dtype=torch.float32)
    assert packs() == before + 1
    check_layer("lstm", T=3, B=8, I=4, H=255, dtype=torch.float32)
    check_layer("lstm", T=3, B=7, I=4, H=256, dtype=torch.float32)
    check_layer("lstm", T=1, B=8, I=4, H=256, dtype=torch.float32)
    check_layer("lstm", T=3, B=8, I=4, H=256, dtype=torch.float64)
    previous = _C._set_cpu_packed_gemm(False)
    try:
        assert _C.build_info()["cpu_packed_gemm"] is False
        check_layer("lstm", T=3, B=32, I=4, H=256, dtype=torch.float32)
    finally:
        _C._set_cpu_packed_gemm(previous)
    assert packs() == before + 1


@pytest.mark.skipif(not PACKED_GEMM, reason="torch's BLAS has no MKL packed GEMM")
def test_bidirectional_directions_at_once_each_pack_w_hh(blas_backward, threads):
    """On two threads a bidirectional layer's directions run their backward at once, one a thread,
    each multiplying its own packed W_hh from inside the other's parallel region; the module's
    gradients are torch.nn's."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    ref = torch.nn.LSTM(6, 256, bidirectional=True)
    ours = fused_rnn.LSTM(6, 256, bidirectional=True)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(5, 8, 6)
    xs = [x.clone().requires_grad_() for _ in range(2)]
    before, at_once = packs(), _C._cpu_forward_calls()["bidir_at_once_backward"]
    outs = [m(xi)[0] for m, xi in zip((ref, ours), xs)]
    for o in outs:
        o.pow(2).sum().backward()
    assert packs() == before + 2
    assert _C._cpu_forward_calls()["bidir_at_once_backward"] == at_once + 1
    assert_close(outs[1], outs[0], torch.float32)
    assert_close(xs[1].grad, xs[0].grad, torch.float32)
    for (name, a), b in zip(ref.named_parameters(), ours.parameters()):
        assert_close(b.grad, a.grad, torch.float32, msg=name)


@pytest.mark.skipif(not PACKED_GEMM, reason="torch's BLAS has no MKL packed GEMM")
@pytest.mark.parametrize("reverse", [False, True])
def test_projected_lstm_inference_multiplies_w_hh_and_w_hr_packed(reverse):
    """A projected LSTM's steps all run here: in inference its W_hh (4H x P) and W_hr (P x H) are
    packed for MKL once a call each where they hold 1 MB of float32 or more, and the results are
    the reference's. A training call (forward and backward) packs neither: MKL's packed copy would
    take the step's memory above torch.nn's (BackwardCall::hh_product in csrc/recurrence.h)."""
    before = packs()
    check_layer("lstm", T=4, B=4, I=3, H=1024, P=256, dtype=torch.float32, reverse=reverse)
    assert packs() == before
    for H, P, n in [(512, 128, 1), (1024, 256, 2)]:  # W_hr of 256 KB multiplied as it is
        params = layer_params("lstm", 3, H, P=P, dtype=torch.float32)
        st = states("lstm", 4, H, P=P, dtype=torch.float32)
        x = torch.randn(5, 4, 3)
        with torch.no_grad():
            got = run_layer(F, "lstm", x, params, st, reverse=reverse)
            assert packs() == before + n
            want = run_layer(R, "lstm", x, params, st, reverse=reverse)
        for name, a, b in zip(["output", "h_n", "c_n"], got, want):
            assert_close(a, b, msg=name)
        before += n


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("layout", ["dense", "packed", "wide"])
def test_projected_lstm_inference_projects_the_input_a_chunk_at_a_time(dtype, reverse, layout):
    """An inference projected LSTM forms x W_ih^T a chunk of whole steps (about 512 rows) ahead of
    the steps that read it: across the chunks' boundaries (between whole steps), dense, in a
    packed batch whose steps shrink (forward) or grow (reverse), and with a batch wider than a
    chunk (a step a chunk), the output and final states are the reference's."""
    torch.manual_seed(0)
    I, H, P = 5, 24, 7
    params = layer_params("lstm", I, H, P=P, dtype=dtype)
    if layout == "packed":
        lengths = [300, 250, 197, 197, 150, 100, 33, 2, 1]
        x = torch.nn.utils.rnn.pack_sequence([torch.randn(n, I, dtype=dtype) for n in lengths])
        args = dict(batch_sizes=x.batch_sizes)
        x = x.data
        st = states("lstm", len(lengths), H, P=P, dtype=dtype)
    else:
        T, B = (150, 7) if layout == "dense" else (4, 600)
        x, args = torch.randn(T, B, I, dtype=dtype), {}
        st = states("lstm", B, H, P=P, dtype=dtype)
    assert x.shape[:-1].numel() > 2 * 512  # rows of the sequence: three chunks at least
    with torch.no_grad():
        got = run_layer(F, "lstm", x, params, st, reverse=reverse, **args)
        want = run_layer(R, "lstm", x, params, st, reverse=reverse, **args)
    for name, a, b in zip(["output", "h_n", "c_n"], got, want):
        assert_close(a, b, dtype, msg=name)


def test_blas_panel_bytes_default_to_three_quarters_of_the_l2():
    """3/4 of a core's L2; never (0) where BLAS is MKL on a CPU that is not Intel's, whose
    sgemm is then the slower side, as the oneDNN weight-gradient route's default says."""
    info = _C.build_info()
    off_intel = info["cpu_mkl_off_intel"]
    assert info["cpu_blas_panel_bytes"] == (0 if off_intel else 3 * info["cpu_l2_bytes"] // 4)
    assert info["cpu_onednn_gemm"] == off_intel
    assert info["cpu_weight_grad_tiles"] == off_intel
    with pytest.raises(RuntimeError, match="must be >= 0, got -1"):
        _C._set_cpu_blas_panel_bytes(-1)
    assert _C.build_info()["cpu_blas_panel_bytes"] == info["cpu_blas_panel_bytes"]


@pytest.mark.parametrize("cell", CELLS)
def test_fused_equals_unfused(cell):
    """The two paths agree with each other on a longer float32 sequence with many tiles."""
    params = layer_params(cell, 24, 80, dtype=torch.float32)
    st = states(cell, 19, 80, dtype=torch.float32)
    x = torch.randn(30, 19, 24)
    outs = {}
    for fused in (True, False):
        previous = _C._set_cpu_fused(fused)
        try:
            with torch.no_grad():
                outs[fused] = run_layer(F, cell, x, params, st)
        finally:
            _C._set_cpu_fused(previous)
    for a, b in zip(outs[True], outs[False]):
        assert_close(a, b, torch.float32)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dots", ["never", "always"])
def test_fused_result_does_not_depend_on_thread_count(threads, cell, dots):
    """Each tile computes the same sums whichever thread runs it: bitwise equal on 1 and 2 threads."""
    params = layer_params(cell, 16, 96, dtype=torch.float32)
    st = states(cell, 20, 96, dtype=torch.float32)
    x = torch.randn(12, 20, 16)
    outs = []
    previous = _C._set_cpu_dots(dots)
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            with torch.no_grad():
                outs.append(run_layer(F, cell, x, params, st))
    finally:
        _C._set_cpu_dots(previous)
    for a, b in zip(*outs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cell", CELLS)
def test_more_threads_than_tiles(threads, cell):
    """One tile and a few rows on every thread torch has: the team splits rows or runs alone."""
    torch.set_num_threads(max(2, torch.get_num_threads()))
    check_layer(cell, T=5, B=3, I=2, H=4, dtype=torch.float64)
    check_layer(cell, T=5, B=40, I=2, H=4, dtype=torch.float64)


# ---------------------------------------------------------------- packed weight panels kept between calls


def _panel_lookups(call):
    """call()'s result, and the panel cache's (found, missed) lookups during it."""
    before = _C._cpu_cache_calls()
    out = call()
    after = _C._cpu_cache_calls()
    return out, (after["panels_found"] - before["panels_found"], after["panels_missed"] - before["panels_missed"])


def _module_pair(mode, I=6, H=20):
    import fused_rnn

    ref = getattr(torch.nn, mode)(I, H)
    ours = getattr(fused_rnn, mode)(I, H)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_panel_cache_sees_in_place_updates(mode):
    ref, ours = _module_pair(mode)
    x = torch.randn(5, 3, 6)
    with torch.no_grad():
        ours(x)
        ours(x)  # the second call finds the packed panels
        for p_ref, p_ours in zip(ref.parameters(), ours.parameters()):
            p_ref.add_(0.05)
            p_ours.add_(0.05)
        assert_close(ours(x)[0], ref(x)[0], torch.float32)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_panel_cache_sees_writes_that_bypass_the_version_counter(mode):
    """``p.data.add_`` (old-style optimizers, EMA, gradcheck) changes values without a version bump."""
    ref, ours = _module_pair(mode)
    x = torch.randn(5, 3, 6)
    with torch.no_grad():
        ours(x)
        ours(x)
    versions = [p._version for p in ours.parameters()]
    for p_ref, p_ours in zip(ref.parameters(), ours.parameters()):
        p_ref.data.mul_(1.5)
        p_ours.data.mul_(1.5)
    assert [p._version for p in ours.parameters()] == versions
    with torch.no_grad():
        assert_close(ours(x)[0], ref(x)[0], torch.float32)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("which", ["hh", "ih", "both"])
@pytest.mark.parametrize("where", ["first", "last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("nthreads", [1, 2])
def test_panel_cache_checks_each_tile_against_its_weight(threads, mode, which, where, dtype, nthreads):
    """Panels found for a weight are compared with it tile by tile, each tile by the thread that
    then reads it: one element changed behind the version counter, in the first tile or the last
    (a partial one: H = 50 is no multiple of a tile's units), of W_hh, W_ih or both, is seen; the
    stale panels count as missed and are packed afresh (and kept: the next call finds them), the
    others as found."""
    torch.set_num_threads(nthreads)
    ref, ours = _module_pair(mode, I=6, H=50)
    ref, ours = ref.to(dtype), ours.to(dtype)
    x = torch.randn(5, 3, 6, dtype=dtype)
    changed = ["hh", "ih"] if which == "both" else [which]
    previous = _C._set_cpu_dots("never")

    def lookups():
        return _panel_lookups(lambda: ours(x)[0])

    try:
        with torch.no_grad():
            assert lookups()[1] == (0, 2)
            assert lookups()[1] == (2, 0)
            for name in changed:
                for m in (ref, ours):
                    w = getattr(m, f"weight_{name}_l0").data.view(-1)
                    w[0 if where == "first" else -1] += 0.25
            out, moved = lookups()
            assert moved == (2 - len(changed), len(changed))
            assert_close(out, ref(x)[0], dtype)
            assert lookups()[1] == (2, 0)
    finally:
        _C._set_cpu_dots(previous)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("capability", _available_capabilities())
def test_panel_check_sees_a_change_anywhere_in_a_tile(threads, mode, capability):
    """Whole tiles (H = 64) are compared bit for bit however the kernels compare them (on
    AVX-512, float32 blocks of 16 rows x 16 k transposed in registers; elsewhere packed into a
    buffer): panels found unchanged count as found, and one element changed behind the version
    counter anywhere (each corner and inside of a block, the k tail past the last whole block of
    W_ih (I = 40), the first and the last gate) counts its weight's panels as missed."""
    torch.set_num_threads(1)
    ref, ours = _module_pair(mode, I=40, H=64)
    x = torch.randn(20, 1, 40)
    G = ref.weight_hh_l0.shape[0] // 64
    places = {
        "hh": [(r, k) for r in (0, 5, 15, 16, 64 * G - 1) for k in (0, 9, 15, 63)],
        "ih": [(r, k) for r in (0, 15, 64 * G - 1) for k in (0, 17, 31, 32, 39)],
    }
    previous_dots = _C._set_cpu_dots("never")
    previous_capability = _C._set_cpu_capability(capability)
    try:
        with torch.no_grad():
            ours(x)
            assert _panel_lookups(lambda: ours(x)[0])[1] == (2, 0)
            for name, where in places.items():
                for r, k in where:
                    for m in (ref, ours):
                        getattr(m, f"weight_{name}_l0").data[r, k] *= 1.5
                    out, moved = _panel_lookups(lambda: ours(x)[0])
                    assert moved == (1, 1), (name, r, k)
                    assert_close(out, ref(x)[0], torch.float32)
                    assert _panel_lookups(lambda: ours(x)[0])[1] == (2, 0)
    finally:
        _C._set_cpu_dots(previous_dots)
        _C._set_cpu_capability(previous_capability)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_panel_cache_sees_data_assignment_and_new_parameters(mode):
    ref, ours = _module_pair(mode)
    x = torch.randn(4, 2, 6)
    with torch.no_grad():
        ours(x)
        new_hh = torch.randn_like(ref.weight_hh_l0) * 0.2
        ref.weight_hh_l0.data = new_hh.clone()
        ours.weight_hh_l0.data = new_hh.clone()
        assert_close(ours(x)[0], ref(x)[0], torch.float32)
        new_ih = torch.randn_like(ref.weight_ih_l0) * 0.2
        ref.weight_ih_l0 = torch.nn.Parameter(new_ih.clone())
        ours.weight_ih_l0 = torch.nn.Parameter(new_ih.clone())
        assert_close(ours(x)[0], ref(x)[0], torch.float32)


def test_panel_cache_across_optimizer_steps():
    """Training: every optimizer step changes the weights in place; each forward uses the new ones."""
    ref, ours = _module_pair("LSTM")
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.5)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.5)
    x = torch.randn(6, 4, 6)
    for _ in range(3):
        for m, opt in ((ref, opt_ref), (ours, opt_ours)):
            opt.zero_grad()
            m(x)[0].square().sum().backward()
            opt.step()
    with torch.no_grad():
        assert_close(ours(x)[0], ref(x)[0], torch.float32)


def test_panel_cache_with_weights_freed_and_reallocated():
    """A new weight at the address of a dead one is never mistaken for it."""
    x = torch.randn(3, 2, 6)
    for seed in range(6):
        torch.manual_seed(seed)
        ref, ours = _module_pair("GRU")
        with torch.no_grad():
            assert_close(ours(x)[0], ref(x)[0], torch.float32)
        del ref, ours


def test_inference_tensors_are_not_cached_but_work():
    with torch.inference_mode():
        ref, ours = _module_pair("LSTM")
        x = torch.randn(4, 2, 6)
        for _ in range(2):
            assert_close(ours(x)[0], ref(x)[0], torch.float32)


def test_panel_cache_off_gives_the_same_bits():
    ref, ours = _module_pair("LSTM", H=70)
    x = torch.randn(7, 5, 6)
    with torch.no_grad():
        on = [ours(x)[0] for _ in range(2)]
        previous = _C._set_cpu_panel_cache(False)
        try:
            off = ours(x)[0]
        finally:
            _C._set_cpu_panel_cache(previous)
    assert torch.equal(on[0], on[1]) and torch.equal(on[0], off)
    assert _C.build_info()["cpu_panel_cache"] is previous


@pytest.mark.parametrize("capability", _available_capabilities())
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_extreme_and_nan_inputs_match_torch_nn(capability, mode):
    """float32 activations on every instruction set (the AVX2/AVX-512 ones are the inlined
    exp/sigmoid/tanh of fast_math.h): NaN in one sequence stays in that sequence, as in
    torch.nn; inputs far into saturation (|x| up to 1e4, and +-inf) give torch.nn's limits;
    pre-activations around the polynomial/exponential switch of tanh (|x| near 0.3) agree."""
    torch.manual_seed(0)
    ref = getattr(torch.nn, mode)(4, 24)
    fused = getattr(fused_rnn_mod(), mode)(4, 24)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(6, 5, 4) * torch.tensor([1.0, 0.3, 1e3, 1e4, 1.0]).view(1, 5, 1)
    x[2, 0, 1] = float("nan")
    x[3, 4, 0] = float("inf")
    x[4, 4, 2] = -float("inf")
    previous = _C._set_cpu_capability(capability)
    try:
        with torch.no_grad():
            got, want = fused(x), ref(x)
    finally:
        _C._set_cpu_capability(previous)
    for a, b in zip(_flatten(got), _flatten(want)):
        assert torch.equal(a.isnan(), b.isnan())
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, equal_nan=True)


def fused_rnn_mod():
    import fused_rnn

    return fused_rnn


def _flatten(x):
    return [t for item in x for t in _flatten(item)] if isinstance(x, (tuple, list)) else [x]


def test_training_calls_do_not_keep_their_panels():
    """A training forward packs its panels (or finds those an inference call kept) but keeps
    none: the optimizer step after it would change the weights, and the panels would stay
    alive through the backward, the step's peak."""
    ref, ours = _module_pair("LSTM", H=40)
    x = torch.randn(12, 8, 6, requires_grad=True)  # 8 rows: panels in every dots mode but "always"
    previous = _C._set_cpu_dots("never")

    def lookups(train):
        def call():
            with torch.set_grad_enabled(train):
                out = ours(x)[0]
                if train:
                    out.sum().backward()
            return out

        return _panel_lookups(call)

    try:
        assert lookups(True)[1] == (0, 2)
        assert lookups(True)[1] == (0, 2)  # nothing was kept by the first
        assert lookups(False)[1] == (0, 2)  # an inference call keeps them
        out, moved = lookups(True)
        assert moved == (2, 0)  # and a training call finds what inference kept
        assert lookups(True)[1] == (2, 0)
    finally:
        _C._set_cpu_dots(previous)
    assert_close(out, ref(x)[0], torch.float32)


# ---------------------------------------------------------------- the backward in segments

def _row_bytes(cell, H, dtype):
    """A row of dG (and of the GRU's dGh), as the chunk setting counts it."""
    return (GATES[cell] * H + (H if cell == "gru" else 0)) * torch.empty(0, dtype=dtype).element_size()


@pytest.fixture
def chunk():
    """Sets the bytes of dG a CPU backward holds at once, down to a single row (the default's
    least rows lifted); restores both settings after."""
    previous = _C._set_cpu_backward_chunk(0)
    _C._set_cpu_backward_chunk(previous)
    previous_rows = _C._set_cpu_backward_chunk_min_rows(1)
    yield _C._set_cpu_backward_chunk
    _C._set_cpu_backward_chunk(previous)
    _C._set_cpu_backward_chunk_min_rows(previous_rows)


def test_default_backward_chunk_is_2_mib_and_at_least_512_rows():
    info = _C.build_info()
    assert info["cpu_backward_chunk_bytes"] == 2 << 20
    assert info["cpu_backward_chunk_min_rows"] == 512


def test_negative_backward_chunk_is_an_error(chunk):
    with pytest.raises(RuntimeError, match="must be at least 0 bytes, got -1"):
        chunk(-1)
    assert _C.build_info()["cpu_backward_chunk_bytes"] == 2 << 20
    with pytest.raises(RuntimeError, match="must be at least 1 row, got 0"):
        _C._set_cpu_backward_chunk_min_rows(0)
    assert _C.build_info()["cpu_backward_chunk_min_rows"] == 1  # the fixture's, unchanged


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_backward_segments_by_default(cell):
    """By default a segment holds 2 MiB of dG, or 512 rows where those are more: at H=1024 and
    B=64, T=20 (1280 rows) runs in three segments (the Elman RNN's 4 KiB rows 512 to 2 MiB; the
    LSTM's and GRU's 16 KiB rows 128 to 2 MiB, lifted to 512), and at H=64 in one (2048 rows of
    the Elman RNN's 256 bytes, or of the LSTM's and GRU's 1 KiB, fit)."""
    from torch.profiler import ProfilerActivity, profile

    for H, want in ((1024, 3), (64, 1)):
        params = layer_params(cell, 8, H, dtype=torch.float32, requires_grad=True)
        x = torch.randn(20, 64, 8, requires_grad=True)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            outs = run_layer(F, cell, x, params, {})
            torch.autograd.grad(outs[0].sum(), [x, *params.values()])
        # Each segment's flush sums its rows of dG for the biases (and the GRU's of dGh too).
        sums = [e for e in prof.events() if e.name == "aten::sum" and e.cpu_parent is not None
                and e.cpu_parent.name.startswith("fused_rnn::")]
        assert len(sums) == want * (2 if cell == "gru" else 1), (H, [e.cpu_parent.name for e in sums])


# Rows of dG a segment may hold: 1 (a step a segment: at most one step fits), 2B + 1 (two steps, or
# more where a packed batch has shrunk), and 0 (the whole sequence's dG at once).
SEGMENT_ROWS = [1, "2B+1", 0]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("rows", SEGMENT_ROWS)
def test_backward_in_segments(steps, chunk, cell, reverse, rows):
    """The reverse loop in segments of dG, each followed by its share of the input and weight
    gradients and bias sums, gives the reference's gradients: dense and packed, both directions,
    on every step path, at segment edges inside and between steps."""
    B, H = 5, 21
    n = 2 * B + 1 if rows == "2B+1" else rows
    chunk(n * _row_bytes(cell, H, torch.float64))
    check_layer(cell, T=7, B=B, I=4, H=H, reverse=reverse)
    lengths = [9, 7, 7, 4, 1]
    x = torch.nn.utils.rnn.pack_sequence([torch.randn(k, 4, dtype=torch.float64) for k in lengths])
    check_layer(cell, T=0, B=len(lengths), I=4, H=H, reverse=reverse, batch_sizes=x.batch_sizes, input=x.data)


@pytest.mark.parametrize("rows", SEGMENT_ROWS)
def test_projected_lstm_backward_in_segments(chunk, rows):
    """The projected LSTM's loop (a step at a time here, not on the team) in segments too."""
    n = 2 * 3 + 1 if rows == "2B+1" else rows
    chunk(n * _row_bytes("lstm", 6, torch.float64))
    for reverse in (False, True):
        check_layer("lstm", T=5, B=3, I=4, H=6, P=2, reverse=reverse)


@pytest.mark.parametrize("cell", CELLS)
def test_segments_in_float32_match_float64(chunk, cell):
    """Over a longer float32 sequence with many tiles (the loss sums every output, so the weights'
    gradients reach the hundreds), a step per segment and dG whole both give the float64
    gradients to float32's precision, relative to each gradient's largest element: the order in
    which segments add up their rows moves only the last bits."""
    params = layer_params(cell, 24, 80, dtype=torch.float32)
    st = states(cell, 19, 80, dtype=torch.float32)
    x = torch.randn(30, 19, 24)

    def grads(dtype):
        leaves = [t.detach().to(dtype).requires_grad_() for t in (x, *params.values(), *st.values())]
        outs = run_layer(F, cell, leaves[0], dict(zip(params, leaves[1:])), dict(zip(st, leaves[1 + len(params):])))
        return torch.autograd.grad([o.sum() for o in outs if o.numel()], leaves)

    chunk(0)
    want = grads(torch.float64)
    for n in (1, 0):
        chunk(n)
        for got, ref in zip(grads(torch.float32), want):
            torch.testing.assert_close(got.double(), ref, rtol=0, atol=1e-5 * ref.abs().max().item(), msg=str(n))


@pytest.mark.parametrize("rows", [1, "2B+1", 0])
def test_bidirectional_backward_in_segments(chunk, rows):
    """Both directions of a bidirectional module, at once and one after the other, in segments.
    Directions at once share the chunk: at 2B + 1 rows each runs a step a segment (B = 3), one
    after the other two steps."""
    for concurrent in (True, False):
        previous = _C._set_cpu_concurrent_directions(concurrent)
        try:
            for cls, cell in (("LSTM", "lstm"), ("GRU", "gru"), ("RNN", "rnn_tanh")):
                chunk((2 * 3 + 1) * _row_bytes(cell, 9, torch.float64) if rows == "2B+1" else rows)
                ref = getattr(torch.nn, cls)(4, 9, num_layers=2, bidirectional=True).double()
                mod = getattr(fused_rnn, cls)(4, 9, num_layers=2, bidirectional=True).double()
                mod.load_state_dict(ref.state_dict())
                x = torch.nn.utils.rnn.pack_sequence([torch.randn(k, 4, dtype=torch.float64) for k in (6, 5, 2)])
                grads = []
                before = _C._cpu_forward_calls()["bidir_at_once_backward"]
                for m in (ref, mod):
                    out, _ = m(x)
                    grads.append(torch.autograd.grad(out.data.pow(2).sum(), list(m.parameters())))
                for a, b in zip(*grads):
                    assert_close(b, a)
                # At once where torch runs two threads (both(): one direction a thread).
                at_once = concurrent and torch.get_num_threads() == 2
                assert _C._cpu_forward_calls()["bidir_at_once_backward"] - before == (2 if at_once else 0)
        finally:
            _C._set_cpu_concurrent_directions(previous)


# ---------------------------------------------------------------- dG over a consumed workspace

def _backward_op_twice(cell, bidirectional, P, reverse, packed):
    """One forward op (train=True; test_bidirectional's sample, B=4 H=11), then its backward op
    twice on the same arguments: first keeping the workspace, then consuming it. Returns (kept
    grads, consumed grads, the workspace as the forward left it, after the first backward, after
    the second). One direction runs the sample's direction 1 where reverse."""
    x, both, st, batch_sizes = sample(cell, packed=packed, P=P, B=4, T=6, I=5, H=11)
    if bidirectional:
        states_in, weights = states_args(cell, st), both
        outs = getattr(OPS, f"{cell}_bidir_forward")(x, *states_in, weights, batch_sizes, True)
        bwd, extra = getattr(OPS, f"{cell}_bidir_backward"), ()
    else:
        d, per = int(reverse), BIDIR_WEIGHTS[cell]
        states_in, weights = tuple(s[d] for s in states_args(cell, st)), both[d * per:(d + 1) * per]
        outs = single_direction(cell, x, both, st, batch_sizes, d)
        bwd, extra = getattr(OPS, f"{cell}_backward"), (reverse,)
    output, ws = outs[0], outs[-1]
    g = torch.Generator().manual_seed(3)
    grads_out = [torch.randn(t.shape, generator=g, dtype=t.dtype) for t in outs[:-1]]
    forward_ws = ws.clone()

    def backward(consume):
        w = (weights,) if bidirectional else tuple(weights)
        r = bwd(*grads_out, x, *states_in, *w, batch_sizes, output, ws, *extra, consume_workspace=consume)
        return [*r[:-1], *r[-1]] if bidirectional else list(r)

    kept = backward(False)
    after_kept = ws.clone()
    consumed = backward(True)
    return kept, consumed, forward_ws, after_kept, ws


@pytest.mark.parametrize("cell", CELLS + ["lstm-projected"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-direction", "bidirectional"])
@pytest.mark.parametrize("rows", SEGMENT_ROWS)
def test_consumed_workspace_gives_the_kept_gradients(steps, chunk, cell, bidirectional, rows):
    """A backward told it may consume the workspace (autograd's, the graph not retained) writes
    dG over the gates it has read (the LSTM's and GRU's; the Elman RNN keeps none): the same
    gradients as a backward that keeps it, which leaves the workspace as the forward wrote it.
    Dense and packed, in segments and whole, on every step path."""
    P = 3 if cell == "lstm-projected" else 0
    cell = cell.split("-")[0]
    chunk((2 * 4 + 1) * _row_bytes(cell, 11, torch.float64) if rows == "2B+1" else rows)
    for packed, reverse in ((False, False), (False, True), (True, True)):
        kept, consumed, forward_ws, after_kept, ws = _backward_op_twice(cell, bidirectional, P, reverse, packed)
        assert torch.equal(after_kept, forward_ws)
        for k, (a, b) in enumerate(zip(kept, consumed)):
            assert_close(b, a, msg=f"gradient {k}")
        assert torch.equal(ws, forward_ws) == (cell not in ("lstm", "gru")), "the workspace was not written over"


# ---------------------------------------------------------------- the team's item order

def test_zigzag_is_on_by_default():
    assert _C.build_info()["cpu_zigzag"] is True


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dots", ["always", "never"])
@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("reverse", [False, True])
def test_zigzag_order_gives_the_same_bits(threads, cell, dots, nthreads, reverse):
    """The team's threads run their items in reverse at every other step (step_team.h): forward
    (weights packed or read in place) and backward give bit for bit the results of running them
    in order, on one thread and on two, over a packed batch whose rows shrink (grow in reverse),
    with more tiles than threads and a partial last tile; and those results are the reference's."""
    torch.set_num_threads(nthreads)
    T, B, I, H = 9, 5, 7, 200
    batch_sizes = torch.tensor([5, 5, 4, 4, 3, 2, 2, 1, 1])
    x = torch.randn(int(batch_sizes.sum()), I, dtype=torch.float64)
    params = layer_params(cell, I, H, requires_grad=True)
    st = states(cell, B, H, requires_grad=True)
    leaves = [x.requires_grad_(), *params.values(), *st.values()]

    def run(zigzag):
        previous, previous_dots = _C._set_cpu_zigzag(zigzag), _C._set_cpu_dots(dots)
        try:
            out = run_layer(F, cell, x, params, st, batch_sizes, reverse)
            g = torch.autograd.grad(out, leaves, [torch.ones_like(o) for o in out])
        finally:
            _C._set_cpu_zigzag(previous)
            _C._set_cpu_dots(previous_dots)
        return [o.detach() for o in out] + list(g)

    on, off = run(True), run(False)
    for a, b in zip(on, off):
        assert torch.equal(a, b)
    want = run_layer(R, cell, x, params, st, batch_sizes, reverse)
    for a, b in zip(on, want):
        assert_close(a, b.detach(), torch.float64)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("onednn", [True, False])
def test_weight_gradients_through_onednn_match_torch_nn(cell, onednn):
    """With cpu_onednn_gemm on (the default where MKL runs on a CPU that is not Intel's), float32
    weight gradients of at least 2^26 multiply-adds and twice as many rows as columns go through
    oneDNN's linear, in blocks of 256 rows of the gradient by 512 rows of the reduction (here two
    of each: G*H = 576-768 rows over segments of dG of 682-910 rows); off, through BLAS. Either way every gradient matches torch.nn's in float64 to float32's
    rounding over the 1024-row reduction (1e-5 of each tensor's largest magnitude). float64 never
    goes to oneDNN, and matches torch.nn to the usual float64 tolerance."""
    name = {"lstm": "LSTM", "gru": "GRU"}.get(cell, "RNN")
    extra = {"nonlinearity": cell[4:]} if cell.startswith("rnn") else {}
    torch.manual_seed(0)
    H = 192  # G*H x H over a segment of dG's rows: >= 2^26 for the LSTM and GRU
    ref = getattr(torch.nn, name)(H, H, dtype=torch.float64, **extra)
    x = torch.randn(64, 16, H, dtype=torch.float64, requires_grad=True)
    out_ref = ref(x)[0]
    g = torch.randn_like(out_ref)
    want = torch.autograd.grad(out_ref, [x, *ref.parameters()], g)
    previous = _C._set_cpu_onednn_gemm(onednn)
    previous_tiles = _C._set_cpu_weight_grad_tiles(False)  # else they take these products first
    try:
        for dtype in (torch.float32, torch.float64):
            fused = getattr(fused_rnn, name)(H, H, dtype=dtype, **extra)
            fused.load_state_dict(ref.state_dict())
            xd = x.detach().to(dtype).requires_grad_()
            before = _C._cpu_forward_calls()["onednn_gemm"]
            grads = torch.autograd.grad(fused(xd)[0], [xd, *fused.parameters()], g.to(dtype))
            ran = _C._cpu_forward_calls()["onednn_gemm"] - before
            # grad W_ih and grad W_hh (G*H x H each, by segment), but not the Elman RNN's (H rows)
            assert (ran > 0) == (onednn and dtype == torch.float32 and not cell.startswith("rnn")), ran
            for a, b in zip(grads, want):
                if dtype == torch.float64:
                    assert_close(a, b)
                else:
                    assert (a.double() - b).abs().max().item() <= 1e-5 * b.abs().max().item()
    finally:
        _C._set_cpu_onednn_gemm(previous)
        _C._set_cpu_weight_grad_tiles(previous_tiles)


def own_weight_product_available():
    """Whether this CPU's capability has fused_rnn's own weight-gradient product (AVX-512)."""
    return _C._cpu_weight_product(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), False)


@pytest.mark.parametrize("K,M,N", [(1, 1, 1), (7, 13, 33), (300, 145, 17), (513, 12, 32), (1100, 150, 1100),
                                   (1000, 52, 530)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_own_weight_product_matches_float64(threads, K, M, N, accumulate):
    """C (+)= A^T B on the AVX-512 weight-gradient product, on shapes that end mid register block
    (12 rows x 32 columns), mid row block (144), mid column block (512) and mid reduction block
    (512 rows), with A, B and C views inside wider matrices: every element within float32's
    rounding over K terms of the float64 product; and the same bits on one thread as on two
    (an element's sum is ordered by the reduction blocks alone)."""
    if not own_weight_product_available():
        pytest.skip("this CPU or build has no AVX-512 weight-gradient product")
    torch.manual_seed(K + M + N)
    A = torch.randn(K, M + 5)[:, 2:M + 2]
    B = torch.randn(K, N + 3)[:, :N]
    C0 = torch.randn(M, N + 7)
    want = A.double().t() @ B.double() + (C0[:, :N].double() if accumulate else 0)
    got = {}
    for n in (2, 1):
        torch.set_num_threads(n)
        C = C0.clone()
        assert _C._cpu_weight_product(A, B, C[:, :N], accumulate)
        assert torch.equal(C[:, N:], C0[:, N:]), "columns past N written"
        got[n] = C[:, :N]
    assert torch.equal(got[1], got[2])
    # float32's worst-case rounding over K + 1 terms (2^-24 each), with a factor of 2 in hand
    bound = (K + 1) * 2.0**-23 * (A.double().abs().t() @ B.double().abs() + (C0[:, :N].double().abs() if accumulate
                                                                             else 0))
    assert ((got[2].double() - want).abs() <= bound).all()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layout", ["dense", "packed", "bidirectional", "projected"])
def test_weight_gradients_on_own_product_match_torch_nn(cell, layout):
    """With cpu_weight_grad_tiles on (the default where MKL runs on a CPU that is not Intel's),
    float32 weight gradients run on fused_rnn's own product where the CPU has AVX-512, over
    segments of dG (so each but the first adds into the gradients), in packed sequences (h_prev
    formed per segment), both directions and a projected LSTM's W_hr; off, on BLAS or oneDNN.
    Either way every gradient matches torch.nn's in float64 to float32's rounding (1e-5 of each
    tensor's largest magnitude), and float64 never takes it."""
    if layout == "projected" and cell != "lstm":
        pytest.skip("only the LSTM has a projection")
    name = {"lstm": "LSTM", "gru": "GRU"}.get(cell, "RNN")
    extra = {"nonlinearity": cell[4:]} if cell.startswith("rnn") else {}
    if layout == "bidirectional":
        extra["bidirectional"] = True
    if layout == "projected":
        extra["proj_size"] = 23
    torch.manual_seed(0)
    T, B, I, H = 30, 20, 70, 40
    ref = getattr(torch.nn, name)(I, H, dtype=torch.float64, **extra)
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    lengths = torch.randint(1, T + 1, (B,)).tolist() if layout == "packed" else None

    def run(module, inp):
        if lengths is None:
            return module(inp)[0]
        packed = torch.nn.utils.rnn.pack_padded_sequence(inp, lengths, enforce_sorted=False)
        return torch.nn.utils.rnn.pad_packed_sequence(module(packed)[0], total_length=T)[0]

    out_ref = run(ref, x)
    g = torch.randn_like(out_ref)
    want = torch.autograd.grad(out_ref, [x, *ref.parameters()], g)
    available = own_weight_product_available()
    chunk = _C._set_cpu_backward_chunk(1)  # segments of the fewest rows below, a few steps each
    min_rows = _C._set_cpu_backward_chunk_min_rows(180)
    results = {}
    try:
        for on in (True, False):
            previous = _C._set_cpu_weight_grad_tiles(on)
            try:
                for dtype in (torch.float32, torch.float64):
                    fused = getattr(fused_rnn, name)(I, H, dtype=dtype, **extra)
                    fused.load_state_dict(ref.state_dict())
                    xd = x.detach().to(dtype).requires_grad_()
                    before = _C._cpu_forward_calls()["weight_product"]
                    grads = torch.autograd.grad(run(fused, xd), [xd, *fused.parameters()], g.to(dtype))
                    ran = _C._cpu_forward_calls()["weight_product"] - before
                    assert (ran > 0) == (on and available and dtype == torch.float32), ran
                    for p, a, b in zip(["input", *dict(ref.named_parameters())], grads, want):
                        if dtype == torch.float64:
                            assert_close(a, b, msg=p)
                        else:
                            err = (a.double() - b).abs().max().item()
                            assert err <= 1e-5 * b.abs().max().item(), (p, err)
                    results[on, dtype] = grads
            finally:
                _C._set_cpu_weight_grad_tiles(previous)
    finally:
        _C._set_cpu_backward_chunk(chunk)
        _C._set_cpu_backward_chunk_min_rows(min_rows)
    for a, b in zip(results[True, torch.float64], results[False, torch.float64]):
        assert torch.equal(a, b)


def test_narrow_weight_gradients_stay_on_blas():
    """Weight gradients narrower than the own product's register block (32 columns: an input of 2
    features, H = 20) keep BLAS's path for few columns, with the switch on; they still match."""
    torch.manual_seed(0)
    ref = torch.nn.LSTM(2, 20, dtype=torch.float64)
    fused = fused_rnn.LSTM(2, 20)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(300, 4, 2, dtype=torch.float64)
    want = torch.autograd.grad(ref(x)[0].sum(), list(ref.parameters()))
    previous = _C._set_cpu_weight_grad_tiles(True)
    try:
        before = _C._cpu_forward_calls()["weight_product"]
        got = torch.autograd.grad(fused(x.float())[0].sum(), list(fused.parameters()))
        assert _C._cpu_forward_calls()["weight_product"] == before
    finally:
        _C._set_cpu_weight_grad_tiles(previous)
    for a, b in zip(got, want):
        assert (a.double() - b).abs().max().item() <= 1e-5 * b.abs().max().item()
