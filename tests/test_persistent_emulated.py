"""The CUDA persistent kernels, run on the CPU by a small CUDA emulator (tests/cuda_emu).

csrc/cuda/persistent_kernels.cuh compiles as plain C++ against tests/cuda_emu/emu.h, which
runs each CUDA thread as an OS thread, with real barriers for __syncthreads, grid.sync()
and the warp shuffles. This checks the kernels' indexing, their shared-memory staging and
where their barriers sit, in float64 against fused_rnn.reference, for every cell, dense and
packed, both directions, and tilings that cut every loop unevenly. It does not show that
they are right on a GPU (memory model, ld.global.cg, half types, launch): that needs the GPU
run of bench/gpu_check.sh. test_emulated_kernels_under_sanitizer runs a sample of these tests
again with the emulator under ThreadSanitizer, which reports every unsynchronised pair of
accesses whether or not the run's timing made it matter, and under AddressSanitizer and UBSan
(FUSED_RNN_EMU_SANITIZE=thread|address builds it so).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

import fused_rnn.reference as R
from conftest import CELLS, GATES, assert_close, layer_params, run_layer, states

HERE = os.path.dirname(os.path.abspath(__file__))
CELL_ID = {"lstm": 0, "gru": 1, "rnn_tanh": 2, "rnn_relu": 3}
DTYPE_ID = {torch.float64: 0, torch.float32: 1, torch.float16: 2, torch.bfloat16: 3}

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="needs a C++ compiler")


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    lib = str(tmp_path_factory.mktemp("emu") / "emu_persistent.so")
    torch_include = os.path.join(os.path.dirname(torch.__file__), "include")  # c10's Half and BFloat16
    cmd = [os.environ.get("CXX", "g++"), "-O1", "-std=c++20", "-pthread", "-shared", "-fPIC",
           "-Wno-unknown-pragmas", "-I", torch_include, "-o", lib, os.path.join(HERE, "cuda_emu", "emu_persistent.cpp")]
    sanitizer = os.environ.get("FUSED_RNN_EMU_SANITIZE")  # test_emulated_kernels_under_sanitizer
    if sanitizer:
        cmd[1:2] = ["-O1", "-g", *SANITIZERS[sanitizer]["flags"]]
    subprocess.run(cmd, check=True)
    so = ctypes.CDLL(lib)
    i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
    so.emu_forward.argtypes = [i32, i32, i64, i64, i64, ptr, ptr, i32, ptr, i64, i64, i32, i64, i32, i32, i64, i64,
                               ptr, ptr]
    so.emu_backward.argtypes = [i32, i32, i64, i64, i64, ptr, ptr, i32, ptr, i64, i64, i32, i64, i32, i32, i64, ptr,
                                ptr]
    return so


def _p(t):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


def _plan():  # ok, U, ctas, bb, kc, mma, groups, group_rows, hrows (rows of the exchange buffers)
    return (ctypes.c_int * 9)()


def _ptrs(per_dir):
    """A C array of every direction's pointers, direction by direction."""
    flat = [_p(t) for ts in per_dir for t in ts]
    return (ctypes.c_void_p * len(flat))(*flat)


def run_emulated(emu, cell, x, params, st, batch_sizes, reverse, grads, sms, staging, dtype=torch.float64,
                 mma=False, groups=0, dsmem=False, flags=False):
    """Forward and backward of one layer through the emulated kernels in ``dtype``, with the GEMMs
    around them done here in float64 as recurrence.h does them; returns float64 (outputs,
    input/parameter/state grads, plans). The LSTM's cell state is kept in Acc (float32 for the
    16-bit types), as on the GPU. ``mma``: the tensor-core (WMMA) products, for 16-bit types.
    ``groups``: 0 for the grid mode on ``sms`` SMs; n > 0 for the cluster mode, clusters of ``sms``
    CTAs, at most n of them a direction, each running a slice of the batch; ``dsmem``: there the
    kernels exchange h_t (dG_t) through distributed shared memory where their buffers fit. ``flags``:
    in grid mode, per-step flags instead of the grid barrier."""
    return run_emulated_dirs(emu, cell, x, [(params, st, reverse, grads)], batch_sizes, sms, staging, dtype, mma,
                             groups, dsmem, flags)[0]


def run_emulated_dirs(emu, cell, x, dirs, batch_sizes, sms, staging, dtype=torch.float64, mma=False, groups=0,
                      dsmem=False, flags=False):
    """run_emulated for one or two directions ``(params, st, reverse, grads)`` of a layer over the
    same input, all in one launch of each kernel (two: both directions at once, as for a
    bidirectional layer); returns run_emulated's result for each direction."""
    acc = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype

    def k(t):  # what the kernel reads and writes
        return None if t is None else t.to(dtype).contiguous()

    G, H = GATES[cell], dirs[0][0]["w_hh"].shape[1]
    if batch_sizes is None:
        T, B = x.shape[:2]
        sizes = torch.full((T,), B, dtype=torch.int64)
        x2 = x.reshape(T * B, -1)
    else:
        sizes = batch_sizes.to(torch.int64)
        T, B = len(sizes), int(sizes[0])
        x2 = x
    offsets = torch.cumsum(sizes, 0) - sizes
    N = x2.shape[0]
    ws_ld = {"lstm": 5 * H, "gru": 4 * H}.get(cell, 0)
    gates_ld = ws_ld or H
    dense = batch_sizes is None
    tables = (None, None) if dense else (sizes, offsets)
    # Every buffer handed to the kernels is bound to a name (in `bufs`) until they return.
    bufs = []
    for params, st, reverse, grads in dirs:
        b = {}
        b["w_ih"], w_hh, b_ih, b_hh = (params[n].detach() for n in ("w_ih", "w_hh", "b_ih", "b_hh"))
        b["hx"] = st["hx"].detach().contiguous()
        cx = st["cx"].detach().contiguous() if cell == "lstm" else None
        proj = x2 @ b["w_ih"].T
        b["out"] = torch.zeros(N, H, dtype=dtype)
        if ws_ld:
            b["ws"] = torch.zeros(N, ws_ld, dtype=dtype)
            b["ws"][:, : G * H] = proj.to(dtype)
            b["gates"] = b["ws"]
        else:
            b["ws"] = None
            b["out"].copy_(proj.to(dtype))
            b["gates"] = b["out"]
        b["bias"] = k(b_ih if cell == "gru" else b_ih + b_hh)
        b["w_hh_k"], b["hx_k"], b["cx_k"] = k(w_hh), k(b["hx"]), k(cx)
        b["b_hh_k"] = k(b_hh) if cell == "gru" else None
        b["h"] = b["hx_k"].clone()
        b["c"] = cx.to(acc).clone() if cx is not None else None
        bufs.append(b)
    rev = (ctypes.c_int * len(dirs))(*[int(d[2]) for d in dirs])
    fplan, bplan = _plan(), _plan()
    fptrs = _ptrs([(b["w_hh_k"], b["bias"], b["b_hh_k"], b["gates"], b["out"], b["h"], b["hx_k"], b["c"], b["ws"])
                   for b in bufs])
    assert emu.emu_forward(DTYPE_ID[dtype], CELL_ID[cell], T, B, H, _p(tables[0]), _p(tables[1]), len(dirs), rev,
                           sms, staging, int(mma), groups, int(dsmem), int(flags), gates_ld, ws_ld, fptrs,
                           fplan) == 1

    for b, (_, _, _, grads) in zip(bufs, dirs):
        go, ghn, gcn = grads
        b["go_k"] = k(go.reshape(N, H))
        b["dh"] = k(ghn).clone()
        b["dc"] = gcn.to(acc).clone() if cell == "lstm" else None
        b["dg"] = torch.zeros(N, G * H, dtype=dtype)
        b["dgh"] = torch.zeros(N, H, dtype=dtype) if cell == "gru" else None
    bptrs = _ptrs([(b["w_hh_k"], b["go_k"], None, b["ws"], b["out"], b["hx_k"], b["cx_k"], b["dh"], b["dc"], b["dg"],
                    b["dgh"]) for b in bufs])
    assert emu.emu_backward(DTYPE_ID[dtype], CELL_ID[cell], T, B, H, _p(tables[0]), _p(tables[1]), len(dirs), rev,
                            sms, staging, int(mma), groups, int(dsmem), int(flags), ws_ld, bptrs, bplan) == 1

    results = []
    for b, (_, _, reverse, _) in zip(bufs, dirs):
        out, h, dh, dg = b["out"].double(), b["h"].double(), b["dh"].double(), b["dg"].double()
        c = b["c"].double() if b["c"] is not None else None
        dc = b["dc"].double() if b["dc"] is not None else None
        dgh = b["dgh"].double() if b["dgh"] is not None else None
        hx = b["hx"]
        # The state entering every row's step: the previous step's output, or hx.
        h_prev = torch.empty(N, H, dtype=torch.float64)
        for t in range(T):
            tp = t + 1 if reverse else t - 1
            rows, off = int(sizes[t]), int(offsets[t])
            prev_rows = min(rows, int(sizes[tp])) if 0 <= tp < T else 0
            if prev_rows:
                h_prev[off: off + prev_rows] = out[int(offsets[tp]): int(offsets[tp]) + prev_rows]
            h_prev[off + prev_rows: off + rows] = hx[prev_rows:rows]
        grad = {"input": (dg @ b["w_ih"]).reshape(x.shape), "w_ih": dg.T @ x2, "b_ih": dg.sum(0)}
        if cell == "gru":
            grad["w_hh"] = torch.cat([dg[:, : 2 * H].T @ h_prev, dgh.T @ h_prev])
            grad["b_hh"] = torch.cat([dg[:, : 2 * H].sum(0), dgh.sum(0)])
        else:
            grad["w_hh"] = dg.T @ h_prev
            grad["b_hh"] = dg.sum(0)
        grad["hx"] = dh
        if cell == "lstm":
            grad["cx"] = dc
        outs = [out.reshape(x.shape[:-1] + (H,)) if dense else out, h] + ([c] if cell == "lstm" else [])
        results.append((outs, grad, list(fplan), list(bplan)))
    return results


# (T, B, I, H, sms, staging bytes): a roomy tiling with a partly empty last CTA; and a tight
# one over 3 CTAs (13 + 13 + 12 units) whose staging room (None: 8 bytes x (4 x 32 + 4 x G x 13))
# forces 4-row batch chunks and 32-column K chunks in the forward, and K chunks that do not
# divide K in the backward.
TILINGS = {"roomy": (4, 5, 3, 10, 4, 1 << 20), "tight": (3, 6, 4, 38, 3, None)}


def check_against_reference(emu, cell, layout, T, B, I, H, sms, staging, groups=0, dsmem=False, flags=False):
    """One layer of ``layout`` (dense or packed, forward or reverse) through the emulated kernels
    in float64, outputs and every gradient against fused_rnn.reference; returns the plans."""
    torch.manual_seed(0)
    params = {k: v.requires_grad_() for k, v in layer_params(cell, I, H).items()}
    st = {k: v.requires_grad_() for k, v in states(cell, B, H).items()}
    reverse = layout.endswith("reverse")
    if layout.startswith("packed"):
        lengths = [T] + [max(1, T - 1 - i % T) for i in range(B - 1)]
        p = pack_sequence([torch.randn(n, I, dtype=torch.float64) for n in sorted(lengths, reverse=True)])
        x, bs = p.data.requires_grad_(), p.batch_sizes
    else:
        x, bs = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True), None
    want = run_layer(R, cell, x, params, st, bs, reverse)
    g = torch.Generator().manual_seed(5)
    grads = [torch.randn(w.shape, generator=g, dtype=torch.float64) for w in want]
    if cell != "lstm":
        grads.append(None)
    leaves = {"input": x, **{k: params[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh")}, **st}
    want_grads = torch.autograd.grad(want, list(leaves.values()), [gr for gr in grads if gr is not None])
    got, got_grads, fplan, bplan = run_emulated(
        emu, cell, x.detach(), params, st, bs, reverse,
        (grads[0].reshape(-1, H), grads[1], grads[2]), sms, staging, groups=groups, dsmem=dsmem, flags=flags)
    for a, b in zip(got, want):
        assert_close(a, b.detach())
    for name, w in zip(leaves, want_grads):
        assert_close(got_grads[name], w, msg=name)
    return fplan, bplan


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layout", ["dense", "packed", "packed-reverse", "dense-reverse"])
@pytest.mark.parametrize("tiling", list(TILINGS))
@pytest.mark.parametrize("flags", [False, True], ids=["grid-sync", "flags"])
def test_emulated_persistent_kernels_match_reference(emu, cell, layout, tiling, flags):
    """Grid mode, its step's barrier grid.sync() or (flags) per-step flags: each CTA publishes how
    many steps it has written and the products wait, K chunk by K chunk, for the CTAs that own
    the chunk's units (the tight tiling's 32-column chunks each wait for one or two of the three)."""
    T, B, I, H, sms, staging = TILINGS[tiling]
    staging = staging or 8 * (4 * 32 + 4 * GATES[cell] * 13)
    fplan, bplan = check_against_reference(emu, cell, layout, T, B, I, H, sms, staging, flags=flags)
    if tiling == "tight":  # the tiling really cut the loops: several batch and K chunks
        assert fplan[3:5] == [4, 32] and (GATES[cell] * H) % bplan[4] != 0, (fplan, bplan)
        assert fplan[2] == sms and H % fplan[1] != 0
    assert fplan[6:8] == bplan[6:8] == [1, B]  # grid mode: one group of every row a direction


def exchange_bytes(rows, width, elem_bytes=8):
    """Shared memory of two exchange buffers of ``rows`` rows of ``width`` elements (the forward's
    h_t: H; the backward's dG_t: G*H), with the planner's 16 bytes of alignment slack."""
    return 2 * elem_bytes * rows * width + 16


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layout", ["dense", "packed", "packed-reverse", "dense-reverse"])
@pytest.mark.parametrize("dsmem", [False, True], ids=["l2", "dsmem"])
def test_emulated_cluster_mode_matches_reference(emu, cell, layout, dsmem):
    """Cluster mode: clusters of 3 CTAs (13 + 13 + 12 units of H=38) each holding all of W_hh,
    the batch of 7 rows split between 3 clusters (3, 3 and 1 rows) that meet only at their own
    cluster's barriers (the emulator refuses a grid barrier in such a launch); packed, the groups'
    rows run out at different steps, and the reverse direction starts rows from hx part-way
    through a group. Through L2, the staging room (3 rows of 32 columns and of the forward's
    sums) forces K chunks that do not divide K in both kernels. With dsmem the forward's h_t and
    the backward's dG_t (the GRU's: its r and z blocks and dGh) reach the cluster's CTAs through
    their shared memory (two buffers of a group's 3 rows, alternating by step; each CTA stores its
    units' part into every CTA's buffer), not through L2."""
    T, B, I, H, size, groups = 4, 7, 4, 38, 3, 3
    staging = 8 * (3 * 32 + 3 * GATES[cell] * 13) + (exchange_bytes(3, GATES[cell] * H) if dsmem else 0)
    fplan, bplan = check_against_reference(emu, cell, layout, T, B, I, H, size, staging, groups, dsmem)
    for plan in (fplan, bplan):
        assert plan[2] == size and plan[6:8] == [3, 3], plan  # 3 CTAs a cluster; 3 groups of 3 rows
        assert plan[8] == (3 if dsmem else 0), plan
    if not dsmem:  # (the exchange buffers' room leaves more for the staging)
        assert fplan[3:5] == [3, 32], fplan  # a group's 3 rows at once; K in chunks of 32
        assert bplan[3] == 3 and (GATES[cell] * H) % bplan[4] != 0, bplan


def test_exchange_buffers_only_where_they_fit(emu):
    """Each kernel plans its exchange buffers only where they fit beside the slice and the staging
    (else its input goes through L2, the same kernel otherwise), and never in grid mode: the
    forward's are H wide, the backward's G*H."""
    T, B, I, H, size = 4, 7, 4, 38, 3
    staging = 8 * (3 * 32 + 3 * GATES["lstm"] * 13)
    for room, groups, want in [(exchange_bytes(3, H), 3, (3, 0)), (exchange_bytes(3, 4 * H), 3, (3, 3)),
                               (exchange_bytes(3, H) - 64, 3, (0, 0)), (exchange_bytes(7, 4 * H), 0, (0, 0))]:
        fplan, bplan = check_against_reference(emu, "lstm", "dense", T, B, I, H, size, staging + room, groups, True)
        assert (fplan[8], bplan[8]) == want, (room, groups, list(fplan), list(bplan))


def test_plan_rejects_a_slice_that_does_not_fit(emu):
    """Nothing is launched (return 0) when not even the smallest staging fits."""
    plan = _plan()
    ptrs = (ctypes.c_void_p * 9)()
    rev = (ctypes.c_int * 1)(0)
    assert emu.emu_forward(0, 0, 2, 2, 8, None, None, 1, rev, 2, 16, 0, 0, 0, 0, 40, 40, ptrs, plan) == 0
    assert plan[0] == 0
    for dsmem in (0, 1):  # clusters
        assert emu.emu_forward(0, 0, 2, 2, 8, None, None, 1, rev, 2, 16, 0, 2, dsmem, 0, 40, 40, ptrs, plan) == 0
        assert plan[0] == 0


def mma_staging(cell, H, sms, kc, elem_bytes, warps=2):
    """Shared memory beyond the (padded) weight slice for the forward's tensor-core tiling with
    K chunks of kc columns; mirrors smem_layout in persistent_kernels.cuh for 2-warp blocks."""
    U = -(-H // sms)
    R = GATES[cell] * U
    tiles = -(-R // 16)
    ksplit = 1 if tiles >= warps else warps // tiles

    def a128(n):
        return -(-n // 128) * 128

    return a128(elem_bytes * 16 * kc) + a128(4 * 16 * R) + 4 * 256 * tiles * ksplit


LOWER_PRECISION = [(d, t) for d in (torch.float32, torch.float16, torch.bfloat16)
                   for t in ("tight", "mma-roomy", "mma-tight")]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype,tiling", LOWER_PRECISION, ids=[f"{str(d)[6:]}-{t}" for d, t in LOWER_PRECISION])
def test_emulated_persistent_kernels_in_lower_precision(emu, cell, dtype, tiling):
    """float32, float16 and bfloat16 storage (accumulation in float32, the LSTM's cell state in
    float32): the 16-bit loads that bypass L1 and every conversion, against the float64 reference
    on inputs already rounded to the storage type, within what the storage precision allows.
    The mma tilings form the products with (emulated) WMMA tiles, 16x16x16 for the 16-bit types
    and TF32 16x16x8 for float32: Ws and the batch padded to 16, K split across the warps sharing
    a tile where there are fewer tiles than warps, and (mma-tight) the forward's K in two chunks
    of 32 and 16 padded columns."""
    mma = tiling.startswith("mma")
    T, B, I, H, sms, staging = TILINGS["tight"]
    acc_bytes = 4
    staging = staging or acc_bytes * (4 * 32 + 4 * GATES[cell] * 13)
    if tiling == "mma-roomy":
        staging = 1 << 20
    elif tiling == "mma-tight":
        staging = mma_staging(cell, H, sms, 32, torch.finfo(dtype).bits // 8)
    torch.manual_seed(0)

    def rounded(t):
        return t.to(dtype).double()

    params = {k: rounded(v).requires_grad_() for k, v in layer_params(cell, I, H).items()}
    st = {k: rounded(v).requires_grad_() for k, v in states(cell, B, H).items()}
    lengths = [T] + [max(1, T - 1 - i % T) for i in range(B - 1)]
    p = pack_sequence([rounded(torch.randn(n, I, dtype=torch.float64)) for n in sorted(lengths, reverse=True)])
    x, bs = p.data.requires_grad_(), p.batch_sizes
    want = run_layer(R, cell, x, params, st, bs, True)
    g = torch.Generator().manual_seed(5)
    grads = [rounded(torch.randn(w.shape, generator=g, dtype=torch.float64)) for w in want]
    if cell != "lstm":
        grads.append(None)
    leaves = {"input": x, **{k: params[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh")}, **st}
    want_grads = torch.autograd.grad(want, list(leaves.values()), [gr for gr in grads if gr is not None])
    got, got_grads, fplan, bplan = run_emulated(emu, cell, x.detach(), params, st, bs, True,
                                                (grads[0], grads[1], grads[2]), sms, staging, dtype, mma)
    assert fplan[5] == bplan[5] == int(mma)
    if mma:
        assert fplan[3] == bplan[3] == 16
        assert fplan[4] == {"mma-roomy": 48, "mma-tight": 32}[tiling], fplan
    tol = {torch.float32: 1e-2 if mma else 1e-5, torch.float16: 1e-2, torch.bfloat16: 4e-2}[dtype]  # TF32: 1e-2
    pairs = list(zip(got, [w.detach() for w in want])) + [(got_grads[n], w) for n, w in zip(leaves, want_grads)]
    for a, b in pairs:
        scale = b.abs().max().item() or 1.0
        assert (a - b).abs().max().item() <= tol * scale, (dtype, (a - b).abs().max().item(), scale)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layout", ["dense", "packed"])
@pytest.mark.parametrize("dtype,mma", [(torch.float64, False), (torch.bfloat16, True)], ids=["float64", "bf16-mma"])
@pytest.mark.parametrize("groups", [0, "flags", 3, -3], ids=["grid", "grid-flags", "clusters", "clusters-dsmem"])
def test_emulated_both_directions_in_one_launch(emu, cell, layout, dtype, mma, groups):
    """Both directions of a bidirectional layer in one launch of each kernel (Launch with dirs 2:
    the reverse direction's CTAs after the forward's; in grid mode all meeting at the same grid
    barriers, or with flags each direction's CTAs waiting only for their own direction's, in
    cluster mode three clusters a direction, each with two of the six batch rows, h_t and dG_t
    through L2 or through the clusters' shared memory), each direction with its own weights and
    states, on the tight tiling (several CTAs a direction, chunks that cut every loop): each
    matches the reference of its direction."""
    T, B, I, H, sms, _ = TILINGS["tight"]
    flags = groups == "flags"
    groups = 0 if flags else groups
    dsmem, groups = groups < 0, abs(groups)
    staging = (mma_staging(cell, H, sms, 32, 2) if mma else 8 * (4 * 32 + 4 * GATES[cell] * 13))
    if dsmem:
        staging += exchange_bytes(2, GATES[cell] * H, torch.finfo(dtype).bits // 8)
    torch.manual_seed(0)

    def rounded(t):
        return t.to(dtype).double()

    if layout == "packed":
        lengths = [T] + [max(1, T - 1 - i % T) for i in range(B - 1)]
        p = pack_sequence([rounded(torch.randn(n, I, dtype=torch.float64)) for n in sorted(lengths, reverse=True)])
        x, bs = p.data.requires_grad_(), p.batch_sizes
    else:
        x, bs = rounded(torch.randn(T, B, I, dtype=torch.float64)).requires_grad_(), None
    dirs, expected = [], []
    for d in range(2):
        params = {k: rounded(v).requires_grad_() for k, v in layer_params(cell, I, H, seed=d).items()}
        st = {k: rounded(v).requires_grad_() for k, v in states(cell, B, H, seed=10 + d).items()}
        want = run_layer(R, cell, x, params, st, bs, d == 1)
        g = torch.Generator().manual_seed(5 + d)
        grads = [rounded(torch.randn(w.shape, generator=g, dtype=torch.float64)) for w in want]
        leaves = {"input": x, **{k: params[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh")}, **st}
        want_grads = torch.autograd.grad(want, list(leaves.values()), grads)
        dirs.append((params, st, d == 1, (grads[0].reshape(-1, H), grads[1], grads[2] if cell == "lstm" else None)))
        expected.append(([w.detach() for w in want], dict(zip(leaves, want_grads))))
    results = run_emulated_dirs(emu, cell, x.detach(), dirs, bs, sms, staging, dtype, mma, groups, dsmem, flags)
    for d, ((got, got_grads, fplan, bplan), (want, want_grads)) in enumerate(zip(results, expected)):
        assert fplan[2] == sms and fplan[5] == bplan[5] == int(mma), (fplan, bplan)
        assert fplan[6:8] == bplan[6:8] == ([3, 2] if groups else [1, B]), (fplan, bplan)
        assert fplan[8] == bplan[8] == (2 if dsmem else 0), (fplan, bplan)
        pairs = list(zip(got, want)) + [(got_grads[n], w) for n, w in want_grads.items()]
        for a, b in pairs:
            if dtype == torch.float64:
                assert_close(a, b, msg=f"direction {d}")
            else:  # as test_emulated_persistent_kernels_in_lower_precision
                scale = b.abs().max().item() or 1.0
                assert (a - b).abs().max().item() <= 4e-2 * scale, (d, (a - b).abs().max().item(), scale)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype,tiling", [(torch.float64, "tight"), (torch.float32, "tight"), (torch.bfloat16, "mma-tight"),
                                          (torch.float32, "mma-tight")], ids=["float64", "float32", "bf16-mma", "tf32-mma"])
def test_emulated_flags_give_the_grid_barriers_results_bitwise(emu, cell, dtype, tiling):
    """Grid mode's per-step flags change only when a CTA may read, never what it sums or in what
    order: outputs and every gradient are bitwise those of the grid barrier, for a packed reverse
    layer on the tight tilings (CUDA cores: 32-column K chunks, each waiting for one or two of the
    three CTAs; tensor cores: the forward's K in a 32- and a 16-column chunk, padded columns past
    H waiting for no one)."""
    mma = tiling.startswith("mma")
    T, B, I, H, sms, _ = TILINGS["tight"]
    acc_bytes = 8 if dtype == torch.float64 else 4
    staging = (mma_staging(cell, H, sms, 32, torch.finfo(dtype).bits // 8) if mma
               else acc_bytes * (4 * 32 + 4 * GATES[cell] * 13))
    torch.manual_seed(0)
    params = {k: v.to(dtype).double() for k, v in layer_params(cell, I, H).items()}
    st = {k: v.to(dtype).double() for k, v in states(cell, B, H).items()}
    lengths = [T] + [max(1, T - 1 - i % T) for i in range(B - 1)]
    p = pack_sequence([torch.randn(n, I, dtype=torch.float64).to(dtype).double()
                       for n in sorted(lengths, reverse=True)])
    g = torch.Generator().manual_seed(5)
    grads = (torch.randn(p.data.shape[0], H, generator=g, dtype=torch.float64),
             torch.randn(B, H, generator=g, dtype=torch.float64),
             torch.randn(B, H, generator=g, dtype=torch.float64) if cell == "lstm" else None)
    runs = [run_emulated(emu, cell, p.data, params, st, p.batch_sizes, True, grads, sms, staging, dtype, mma,
                         flags=flags) for flags in (False, True)]
    (out0, grad0, fplan, bplan), (out1, grad1, _, _) = runs
    assert fplan[5] == bplan[5] == int(mma) and fplan[2] == sms, (fplan, bplan)
    for a, b in zip(out0, out1):
        assert torch.equal(a, b)
    assert grad0.keys() == grad1.keys()
    for name in grad0:
        assert torch.equal(grad0[name], grad1[name]), name



# The emulator under a sanitizer (test_emulated_kernels_under_sanitizer): how to build it, the
# runtime to preload into the Python that loads it, its options, and the tests it runs.
SANITIZERS = {
    # One test of each launch mode, barrier and product kind, every cell.
    "thread": {
        "flags": ["-fsanitize=thread", "-Wno-tsan"], "lib": "libtsan.so", "env": "TSAN_OPTIONS",
        "options": "halt_on_error=1 exitcode=66",
        "probe": "#include <thread>\nint x;\nint main() { std::thread t([] { x = 1; }); x = 2; t.join(); }\n",
        "tests": [
            "test_emulated_persistent_kernels_match_reference[grid-sync-tight-packed-reverse-lstm]",
            "test_emulated_persistent_kernels_match_reference[flags-tight-packed-reverse-gru]",
            "test_emulated_persistent_kernels_match_reference[flags-tight-dense-rnn_relu]",
            "test_emulated_cluster_mode_matches_reference[l2-packed-rnn_tanh]",
            "test_emulated_cluster_mode_matches_reference[dsmem-packed-lstm]",
            "test_emulated_persistent_kernels_in_lower_precision[bfloat16-mma-tight-gru]",
            "test_emulated_both_directions_in_one_launch[grid-flags-bf16-mma-packed-lstm]",
            "test_emulated_both_directions_in_one_launch[clusters-dsmem-float64-packed-gru]",
        ],
    },
    # The tilings that end loops part-way: uneven CTAs, K and batch chunks, padded MMA tiles, packed
    # rows running out, clusters' exchange buffers.
    "address": {
        "flags": ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"], "lib": "libasan.so",
        "env": "ASAN_OPTIONS", "options": "detect_leaks=0",
        "probe": "int main() { int* p = new int[4]; int v = p[4]; delete[] p; return v; }\n",
        "tests": [
            "test_emulated_persistent_kernels_match_reference[flags-tight-packed-reverse-lstm]",
            "test_emulated_cluster_mode_matches_reference[dsmem-packed-gru]",
            "test_emulated_persistent_kernels_in_lower_precision[float16-mma-tight-rnn_tanh]",
            "test_emulated_both_directions_in_one_launch[grid-bf16-mma-packed-lstm]",
        ],
    },
}


def _sanitizer_runs(kind, tmp_path):
    """Whether g++'s sanitizer `kind` builds and runs here: a program with a known fault must be
    reported."""
    san = SANITIZERS[kind]
    src, exe = tmp_path / f"{kind}.cpp", tmp_path / kind
    src.write_text(san["probe"])
    cxx = os.environ.get("CXX", "g++")
    if subprocess.run([cxx, *san["flags"], "-pthread", "-o", str(exe), str(src)], capture_output=True).returncode:
        return False
    r = subprocess.run([str(exe)], capture_output=True, text=True, env={**os.environ, san["env"]: san["options"]})
    return r.returncode != 0 and "Sanitizer" in r.stderr


@pytest.mark.skipif("FUSED_RNN_EMU_SANITIZE" in os.environ, reason="already under a sanitizer")
@pytest.mark.parametrize("kind", list(SANITIZERS))
def test_emulated_kernels_under_sanitizer(kind, tmp_path):
    """A sample of the tests above again, in a subprocess, with the emulator built with g++'s
    sanitizer and its runtime preloaded. ThreadSanitizer (every CUDA thread an OS thread) reports
    any access to shared or global memory that another thread wrote or read without a barrier,
    flag or warp exchange ordering the two, whether or not the run's timing made it matter: the
    CPU's stand-in for compute-sanitizer's racecheck (which sees shared memory only), for the
    synchronisation the kernels rely on, not for the GPU's weaker memory model; a missing barrier
    in the products' staging, or a flag published before the block's stores, is reported.
    AddressSanitizer with UBSan, the stand-in for memcheck, reports any read or write past a
    buffer torch allocated (or past a block's shared memory) and undefined arithmetic; a read one
    element past hx is reported."""
    san = SANITIZERS[kind]
    if not _sanitizer_runs(kind, tmp_path):
        pytest.skip(f"g++'s {kind} sanitizer does not build or run here")
    cxx = os.environ.get("CXX", "g++")
    lib = subprocess.run([cxx, f"-print-file-name={san['lib']}"], capture_output=True, text=True).stdout.strip()
    env = {**os.environ, "FUSED_RNN_EMU_SANITIZE": kind, "LD_PRELOAD": lib, san["env"]: san["options"]}
    ids = [f"{os.path.join(HERE, 'test_persistent_emulated.py')}::{t}" for t in san["tests"]]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *ids],
                       capture_output=True, text=True, env=env, cwd=HERE, timeout=1800)
    report = r.stdout + r.stderr
    assert "Sanitizer" not in report and "runtime error" not in report and r.returncode == 0, report[-6000:]
    assert f"{len(san['tests'])} passed" in report, report[-3000:]
