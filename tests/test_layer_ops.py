"""The fused layer ops (through fused_rnn.functional) against the pure-PyTorch reference."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

from conftest import CELLS, F, R, assert_close, grads_of, layer_params, run_layer, states


def check_layer(cell, T, B, I, H, *, P=0, bias=True, reverse=False, with_states=True, dtype=torch.float64,
                batch_sizes=None, input=None, drop=None):
    """Forward outputs and every gradient of the fused layer equal the reference's (``drop``: a
    parameter left out of the call, e.g. one of the two biases)."""
    params = layer_params(cell, I, H, P=P, bias=bias, dtype=dtype, requires_grad=True)
    if drop is not None:
        del params[drop]
    st = states(cell, B, H, P=P, dtype=dtype, requires_grad=True) if with_states else {}
    if input is None:
        input = torch.randn(T, B, I, dtype=dtype)
    input = input.detach().requires_grad_()
    leaves = [input, *params.values(), *st.values()]
    got = run_layer(F, cell, input, params, st, batch_sizes, reverse)
    want = run_layer(R, cell, input, params, st, batch_sizes, reverse)
    for name, a, b in zip(["output", "h_n", "c_n"], got, want):
        assert a.shape == b.shape, name
        assert_close(a, b, msg=name)
    names = ["input", *params, *st]
    for name, a, b in zip(names, grads_of(got, leaves), grads_of(want, leaves)):
        assert_close(a, b, msg=f"grad of {name}")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_reference_float64(cell, reverse, bias):
    check_layer(cell, T=6, B=3, I=5, H=7, bias=bias, reverse=reverse)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("drop", ["b_ih", "b_hh"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_one_bias(cell, drop, dtype):
    """The functional layers take either bias alone (the other None), as the reference does."""
    check_layer(cell, T=5, B=3, I=4, H=6, dtype=dtype, drop=drop)


@pytest.mark.parametrize("cell", CELLS)
def test_matches_reference_float32(cell):
    check_layer(cell, T=10, B=4, I=16, H=32, dtype=torch.float32)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("P", [1, 3])
def test_lstm_projection(reverse, P):
    check_layer("lstm", T=5, B=2, I=4, H=6, P=P, reverse=reverse)


@pytest.mark.parametrize("cell", CELLS)
def test_without_initial_states(cell):
    check_layer(cell, T=4, B=2, I=3, H=5, with_states=False)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "T,B,I,H",
    [(1, 1, 1, 1), (3, 2, 1, 7), (2, 5, 9, 33), (1, 7, 4, 1), (5, 1, 33, 3)],
    ids=lambda v: str(v),
)
def test_odd_sizes(cell, T, B, I, H):
    check_layer(cell, T, B, I, H)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
def test_packed_matches_reference(cell, reverse):
    lengths = [6, 4, 4, 1]
    seqs = [torch.randn(n, 3, dtype=torch.float64) for n in lengths]
    packed = pack_sequence(seqs)
    check_layer(cell, None, len(lengths), 3, 5, reverse=reverse, batch_sizes=packed.batch_sizes,
                input=packed.data)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
def test_packed_equals_each_sequence_alone(cell, reverse):
    """A packed batch gives each sequence the outputs and final state it gets when run on its own."""
    lengths = [7, 5, 5, 2, 1]
    I, H = 4, 6
    params = layer_params(cell, I, H)
    st = states(cell, len(lengths), H)
    seqs = [torch.randn(n, I, dtype=torch.float64) for n in lengths]
    packed = pack_sequence(seqs)
    out, *final = run_layer(F, cell, packed.data, params, st, packed.batch_sizes, reverse)
    padded, _ = torch.nn.utils.rnn.pad_packed_sequence(
        torch.nn.utils.rnn.PackedSequence(out, packed.batch_sizes), batch_first=False
    )
    for b, n in enumerate(lengths):
        alone_st = {k: v[b:b + 1] for k, v in st.items()}
        alone_out, *alone_final = run_layer(F, cell, seqs[b].unsqueeze(1), params, alone_st, None, reverse)
        assert_close(padded[:n, b], alone_out[:, 0], msg=f"output of sequence {b}")
        for got, want in zip(final, alone_final):
            assert_close(got[b], want[0], msg=f"final state of sequence {b}")


@pytest.mark.parametrize("cell", CELLS)
def test_batch_zero(cell):
    params = layer_params(cell, 3, 4, requires_grad=True)
    x = torch.randn(5, 0, 3, dtype=torch.float64, requires_grad=True)
    out, h, *_ = run_layer(F, cell, x, params, {})
    assert out.shape == (5, 0, 4) and h.shape == (0, 4)
    (out.sum() + h.sum()).backward()
    assert x.grad.shape == x.shape
    for p in params.values():
        assert torch.equal(p.grad, torch.zeros_like(p))


@pytest.mark.parametrize("cell", CELLS)
def test_non_contiguous_inputs(cell):
    """Transposed inputs, strided states and transposed weights give the same results as contiguous ones."""
    T, B, I, H = 4, 3, 5, 6
    params = layer_params(cell, I, H)
    st = states(cell, B, H)
    x = torch.randn(B, T, I, dtype=torch.float64)
    x_nc = x.transpose(0, 1)
    assert not x_nc.is_contiguous()
    params_nc = {k: (v.t().contiguous().t() if v.dim() == 2 else torch.stack([v, v], -1)[:, 0]) for k, v in params.items()}
    st_nc = {k: torch.stack([v, v], -1)[..., 0] for k, v in st.items()}
    assert not any(v.is_contiguous() for v in [*params_nc.values(), *st_nc.values()])
    want = run_layer(F, cell, x_nc.contiguous(), params, st)
    got = run_layer(F, cell, x_nc, params_nc, st_nc)
    for a, b in zip(got, want):
        assert_close(a, b)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sequence_longer_than_65535_steps(cell):
    """Long sequences index correctly (CUDA grid limits make 65,535 the interesting boundary)."""
    T, B, I, H = 70_000, 2, 2, 3
    mod = getattr(torch.nn, cell.upper())(I, H, dtype=torch.float64)
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    params = {
        "w_ih": mod.weight_ih_l0, "w_hh": mod.weight_hh_l0, "b_ih": mod.bias_ih_l0, "b_hh": mod.bias_hh_l0,
    }
    out, h, *_ = run_layer(F, cell, x, params, {})
    ref_out, ref_h = mod(x)
    ref_h = ref_h[0] if cell == "lstm" else ref_h
    assert_close(out, ref_out)
    assert_close(h, ref_h[0])
    if cell != "lstm":
        return  # torch.nn's backward over 70k steps takes seconds; one cell's gradients suffice
    g = torch.autograd.grad(out[-1].sum() + out[0].sum(), [x, mod.weight_hh_l0])
    g_ref = torch.autograd.grad(ref_out[-1].sum() + ref_out[0].sum(), [x, mod.weight_hh_l0])
    for a, b in zip(g, g_ref):
        assert_close(a, b)


@pytest.mark.parametrize("cell", CELLS)
def test_inference_keeps_no_workspace(cell):
    params = layer_params(cell, 3, 4)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    op = getattr(torch.ops.fused_rnn, f"{cell}_forward")
    args = (x, None, None) if cell == "lstm" else (x, None)
    tail = (params["w_ih"], params["w_hh"], params["b_ih"], params["b_hh"])
    tail = tail + (None, None) if cell == "lstm" else tail + (None,)
    ws_eval = op(*args, *tail, False, False)[-1]
    ws_train = op(*args, *tail, False, True)[-1]
    assert ws_eval.numel() == 0
    assert ws_train.shape[0] == 10
    # Inference and training forwards compute the same outputs.
    for a, b in zip(op(*args, *tail, False, False)[:-1], op(*args, *tail, False, True)[:-1]):
        assert torch.equal(a, b)


def _available_capabilities():
    from fused_rnn import _C

    current = _C.build_info()["cpu_capability"]
    found = []
    for name in ("default", "avx2", "avx512"):
        try:
            _C._set_cpu_capability(name)
            found.append(name)
        except RuntimeError:
            pass
    _C._set_cpu_capability(current)
    return found


@pytest.mark.parametrize("capability", _available_capabilities())
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_cpu_capability_matches_reference(capability, cell, dtype):
    """Each instruction-set build of the pointwise passes (full vectors and ragged tails) computes the same."""
    from fused_rnn import _C

    previous = _C._set_cpu_capability(capability)
    try:
        for H in (5, 16, 37):
            check_layer(cell, T=3, B=3, I=4, H=H, dtype=dtype, reverse=H == 37)
        check_layer(cell, T=3, B=2, I=4, H=37, P=5 if cell == "lstm" else 0, dtype=dtype)
    finally:
        _C._set_cpu_capability(previous)


def _cpu_flags():
    from fused_rnn.bench import cpuinfo_field

    flags = cpuinfo_field("flags")
    return None if flags is None else set(flags.split())


@pytest.mark.skipif(_cpu_flags() is None or platform.machine() not in ("x86_64", "AMD64"),
                    reason="reads the x86 CPU's flags from /proc/cpuinfo")
def test_cpu_capability_is_the_best_this_cpu_has():
    """The kernels chosen at import are the widest the CPU runs, and no wider: a table built for
    AVX-512 on a CPU without it crashed the first call (SIGILL) on an AVX2-only machine."""
    from fused_rnn import _C

    if os.environ.get("FUSED_RNN_CPU_CAPABILITY"):
        pytest.skip("FUSED_RNN_CPU_CAPABILITY overrides the choice")
    flags = _cpu_flags()
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "fma"} <= flags:
        best = "avx512"
    elif {"avx2", "fma"} <= flags:
        best = "avx2"
    else:
        best = "default"
    assert _C.build_info()["cpu_capability"] == best
    assert _available_capabilities()[-1] == best
    previous = _C._set_cpu_capability(best)
    try:
        check_layer("lstm", T=2, B=2, I=3, H=5, dtype=torch.float32)
    finally:
        _C._set_cpu_capability(previous)
    for wider in ("avx2", "avx512")[("default", "avx2", "avx512").index(best):]:
        with pytest.raises(RuntimeError, match=f"CPU capability '{wider}' is not available on this CPU or build"):
            _C._set_cpu_capability(wider)


@pytest.mark.skipif(shutil.which("objdump") is None or platform.machine() not in ("x86_64", "AMD64"),
                    reason="disassembles the x86 extension with binutils' objdump")
def test_simd_code_stays_in_its_capability_namespace():
    """Code built for AVX2 or AVX-512 lives only in that capability's namespace, where nothing runs
    it unless the CPU has the instructions. A function outside (an inline helper whose copy from the
    AVX-512 file the linker kept for everyone) would die with SIGILL on an older CPU, and only
    there; the disassembly shows it on any machine."""
    from fused_rnn import _C

    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", _C.__file__], capture_output=True, text=True,
                         check=True).stdout
    avx512 = re.compile(r"%zmm|%k[1-7]\b|%[xy]mm(1[6-9]|2[0-9]|3[01])\b")
    wide = re.compile(r"%ymm|%zmm")
    leaks = set()
    name = None
    for line in dis.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            name = m.group(1)
            continue
        if name is None or "\t" not in line:
            continue
        in_512 = "cap_avx512" in name or "AVX512" in name
        in_simd = in_512 or "cap_avx2" in name or "AVX2" in name
        if (avx512.search(line) and not in_512) or (wide.search(line) and not in_simd):
            leaks.add(name)
    assert len(dis) > 100000  # the disassembly was read
    assert not leaks, sorted(leaks)[:20]


def test_unknown_cpu_capability_is_refused():
    from fused_rnn import _C

    with pytest.raises(RuntimeError, match="unknown CPU capability 'sse9'; expected default, avx2 or avx512"):
        _C._set_cpu_capability("sse9")
