"""The CUDA persistent kernels, run on the CPU by a small CUDA emulator (tests/cuda_emu).

csrc/cuda/persistent_kernels.cuh compiles as plain C++ against tests/cuda_emu/emu.h, which
runs each CUDA thread as an OS thread, with real barriers for __syncthreads, grid.sync()
and the warp shuffles. This checks the kernels' indexing, their shared-memory staging and
where their barriers sit, in float64 against fused_rnn.reference, for every cell, dense and
packed, both directions, and tilings that cut every loop unevenly. It does not show that
they are right on a GPU (memory model, ld.global.cg, half types, launch): that needs the GPU
run of bench/gpu_check.sh.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

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
    subprocess.run(cmd, check=True)
    so = ctypes.CDLL(lib)
    i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
    so.emu_forward.argtypes = [i32, i32, i64, i64, i64, ptr, ptr, i32, i64, i64, i32, ptr, ptr, ptr, ptr, i64, ptr, ptr,
                               ptr, ptr, ptr, i64, ptr]
    so.emu_backward.argtypes = [i32, i32, i64, i64, i64, ptr, ptr, i32, i64, i64, i32, ptr, ptr, ptr, ptr, i64, ptr, ptr,
                                ptr, ptr, ptr, ptr, ptr, ptr]
    return so


def _p(t):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


def _plan():  # ok, U, ctas, bb, kc, mma
    return (ctypes.c_int * 6)()


def run_emulated(emu, cell, x, params, st, batch_sizes, reverse, grads, sms, staging, dtype=torch.float64,
                 mma=False):
    """Forward and backward of one layer through the emulated kernels in ``dtype``, with the GEMMs
    around them done here in float64 as recurrence.h does them; returns float64 (outputs,
    input/parameter/state grads, plans). The LSTM's cell state is kept in Acc (float32 for the
    16-bit types), as on the GPU. ``mma``: the tensor-core (WMMA) products, for 16-bit types."""
    acc = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype

    def k(t):  # what the kernel reads and writes
        return None if t is None else t.to(dtype).contiguous()

    G, H = GATES[cell], params["w_hh"].shape[1]
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
    w_ih, w_hh, b_ih, b_hh = (params[k].detach() for k in ("w_ih", "w_hh", "b_ih", "b_hh"))
    hx = st["hx"].detach().contiguous()
    cx = st["cx"].detach().contiguous() if cell == "lstm" else None
    proj = x2 @ w_ih.T
    ws_ld = {"lstm": 5 * H, "gru": 4 * H}.get(cell, 0)
    out = torch.zeros(N, H, dtype=dtype)
    if ws_ld:
        ws = torch.zeros(N, ws_ld, dtype=dtype)
        ws[:, : G * H] = proj.to(dtype)
        gates, gates_ld = ws, ws_ld
    else:
        ws = None
        out.copy_(proj.to(dtype))
        gates, gates_ld = out, H
    bias = k(b_ih if cell == "gru" else b_ih + b_hh)
    # Every buffer handed to the kernels is bound to a name until they return.
    w_hh_k, hx_k, cx_k = k(w_hh), k(hx), k(cx)
    b_hh_k = k(b_hh) if cell == "gru" else None
    h = hx_k.clone()
    c = cx.to(acc).clone() if cx is not None else None
    dense = batch_sizes is None
    tables = (None, None) if dense else (sizes, offsets)
    fplan, bplan = _plan(), _plan()
    assert emu.emu_forward(DTYPE_ID[dtype], CELL_ID[cell], T, B, H, _p(tables[0]), _p(tables[1]), int(reverse), sms,
                           staging, int(mma), _p(w_hh_k), _p(bias), _p(b_hh_k), _p(gates), gates_ld,
                           _p(out), _p(h), _p(hx_k), _p(c), _p(ws), ws_ld, fplan) == 1

    go, ghn, gcn = grads
    go_k = k(go.reshape(N, H))
    dh = k(ghn).clone()
    dc = gcn.to(acc).clone() if cell == "lstm" else None
    dg = torch.zeros(N, G * H, dtype=dtype)
    dgh = torch.zeros(N, H, dtype=dtype) if cell == "gru" else None
    assert emu.emu_backward(DTYPE_ID[dtype], CELL_ID[cell], T, B, H, _p(tables[0]), _p(tables[1]), int(reverse), sms,
                            staging, int(mma), _p(w_hh_k), _p(go_k), None, _p(ws), ws_ld, _p(out), _p(hx_k), _p(cx_k), _p(dh),
                            _p(dc), _p(dg), _p(dgh), bplan) == 1
    out, h, dh, dg = out.double(), h.double(), dh.double(), dg.double()
    c = c.double() if c is not None else None
    dc = dc.double() if dc is not None else None
    dgh = dgh.double() if dgh is not None else None

    # The state entering every row's step: the previous step's output, or hx.
    h_prev = torch.empty(N, H, dtype=torch.float64)
    for t in range(T):
        tp = t + 1 if reverse else t - 1
        rows, off = int(sizes[t]), int(offsets[t])
        prev_rows = min(rows, int(sizes[tp])) if 0 <= tp < T else 0
        if prev_rows:
            h_prev[off: off + prev_rows] = out[int(offsets[tp]): int(offsets[tp]) + prev_rows]
        h_prev[off + prev_rows: off + rows] = hx[prev_rows:rows]
    grad = {"input": (dg @ w_ih).reshape(x.shape), "w_ih": dg.T @ x2, "b_ih": dg.sum(0)}
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
    return outs, grad, list(fplan), list(bplan)


# (T, B, I, H, sms, staging bytes): a roomy tiling with a partly empty last CTA; and a tight
# one over 3 CTAs (13 + 13 + 12 units) whose staging room (None: 8 bytes x (4 x 32 + 4 x G x 13))
# forces 4-row batch chunks and 32-column K chunks in the forward, and K chunks that do not
# divide K in the backward.
TILINGS = {"roomy": (4, 5, 3, 10, 4, 1 << 20), "tight": (3, 6, 4, 38, 3, None)}


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layout", ["dense", "packed", "packed-reverse", "dense-reverse"])
@pytest.mark.parametrize("tiling", list(TILINGS))
def test_emulated_persistent_kernels_match_reference(emu, cell, layout, tiling):
    T, B, I, H, sms, staging = TILINGS[tiling]
    staging = staging or 8 * (4 * 32 + 4 * GATES[cell] * 13)
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
        (grads[0].reshape(-1, H), grads[1], grads[2]), sms, staging)
    for a, b in zip(got, want):
        assert_close(a, b.detach())
    for name, w in zip(leaves, want_grads):
        assert_close(got_grads[name], w, msg=name)
    if tiling == "tight":  # the tiling really cut the loops: several batch and K chunks
        assert fplan[3:5] == [4, 32] and (GATES[cell] * H) % bplan[4] != 0, (fplan, bplan)
        assert fplan[2] == sms and H % fplan[1] != 0


def test_plan_rejects_a_slice_that_does_not_fit(emu):
    """Nothing is launched (return 0) when not even the smallest staging fits."""
    plan = _plan()
    z = ctypes.c_void_p(0)
    assert emu.emu_forward(0, 0, 2, 2, 8, None, None, 0, 2, 16, 0, z, z, z, z, 40, z, z, z, z, z, 40, plan) == 0
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
