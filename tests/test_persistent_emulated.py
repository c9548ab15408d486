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

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="needs a C++ compiler")


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    lib = str(tmp_path_factory.mktemp("emu") / "emu_persistent.so")
    cmd = [os.environ.get("CXX", "g++"), "-O1", "-std=c++20", "-pthread", "-shared", "-fPIC",
           "-Wno-unknown-pragmas", "-o", lib, os.path.join(HERE, "cuda_emu", "emu_persistent.cpp")]
    subprocess.run(cmd, check=True)
    so = ctypes.CDLL(lib)
    i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
    so.emu_forward.argtypes = [i32, i64, i64, i64, ptr, ptr, i32, i64, i64, ptr, ptr, ptr, ptr, i64, ptr, ptr, ptr,
                               ptr, ptr, i64, ptr]
    so.emu_backward.argtypes = [i32, i64, i64, i64, ptr, ptr, i32, i64, i64, ptr, ptr, ptr, ptr, i64, ptr, ptr, ptr,
                                ptr, ptr, ptr, ptr, ptr]
    return so


def _p(t):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


def _plan():
    return (ctypes.c_int * 5)()


def run_emulated(emu, cell, x, params, st, batch_sizes, reverse, grads, sms, staging):
    """Forward and backward of one layer through the emulated kernels, with the GEMMs around
    them done here as recurrence.h does them; returns (outputs, input/parameter/state grads, plans)."""
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
    out = torch.zeros(N, H, dtype=torch.float64)
    if ws_ld:
        ws = torch.zeros(N, ws_ld, dtype=torch.float64)
        ws[:, : G * H] = proj
        gates, gates_ld = ws, ws_ld
    else:
        ws = None
        out.copy_(proj)
        gates, gates_ld = out, H
    bias = b_ih if cell == "gru" else b_ih + b_hh
    h = hx.clone()
    c = cx.clone() if cx is not None else None
    dense = batch_sizes is None
    tables = (None, None) if dense else (sizes, offsets)
    fplan, bplan = _plan(), _plan()
    assert emu.emu_forward(CELL_ID[cell], T, B, H, _p(tables[0]), _p(tables[1]), int(reverse), sms, staging,
                           _p(w_hh), _p(bias), _p(b_hh if cell == "gru" else None), _p(gates), gates_ld, _p(out),
                           _p(h), _p(hx), _p(c), _p(ws), ws_ld, fplan) == 1

    go, ghn, gcn = grads
    dh = ghn.clone()
    dc = gcn.clone() if cell == "lstm" else None
    dg = torch.zeros(N, G * H, dtype=torch.float64)
    dgh = torch.zeros(N, H, dtype=torch.float64) if cell == "gru" else None
    assert emu.emu_backward(CELL_ID[cell], T, B, H, _p(tables[0]), _p(tables[1]), int(reverse), sms, staging,
                            _p(w_hh), _p(go.contiguous()), None, _p(ws), ws_ld, _p(out), _p(hx), _p(cx), _p(dh),
                            _p(dc), _p(dg), _p(dgh), bplan) == 1

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
        assert fplan[3:] == [4, 32] and (GATES[cell] * H) % bplan[4] != 0, (fplan, bplan)
        assert fplan[2] == sms and H % fplan[1] != 0


def test_plan_rejects_a_slice_that_does_not_fit(emu):
    """Nothing is launched (return 0) when not even the smallest staging fits."""
    plan = _plan()
    z = ctypes.c_void_p(0)
    assert emu.emu_forward(0, 2, 2, 8, None, None, 0, 2, 16, z, z, z, z, 40, z, z, z, z, z, 40, plan) == 0
    assert plan[0] == 0
