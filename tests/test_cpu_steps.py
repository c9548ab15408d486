"""The two CPU step paths: fused tiles on a thread team, and BLAS gemm + pointwise pass per step.

Every other test runs whichever path is the default (fused); here both are checked against the
reference on shapes chosen to hit the tile edges: hidden sizes that are not a multiple of a tile's
units, batches that are not a multiple of a register block, packed batches that shrink (forward)
and grow (reverse), and every instruction-set build.
"""

from __future__ import annotations

import pytest
import torch

from conftest import CELLS, F, assert_close, layer_params, run_layer, states
from test_layer_ops import _available_capabilities, check_layer

from fused_rnn import _C


@pytest.fixture(params=[True, False], ids=["fused", "unfused"])
def steps(request):
    previous = _C._set_cpu_fused(request.param)
    yield request.param
    _C._set_cpu_fused(previous)


@pytest.fixture
def threads():
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def test_default_is_fused():
    assert _C.build_info()["cpu_fused_steps"] is True


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
def test_fused_result_does_not_depend_on_thread_count(threads, cell):
    """Each tile computes the same sums whichever thread runs it: bitwise equal on 1 and 2 threads."""
    params = layer_params(cell, 16, 96, dtype=torch.float32)
    st = states(cell, 20, 96, dtype=torch.float32)
    x = torch.randn(12, 20, 16)
    outs = []
    for n in (1, 2):
        torch.set_num_threads(n)
        with torch.no_grad():
            outs.append(run_layer(F, cell, x, params, st))
    for a, b in zip(*outs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cell", CELLS)
def test_more_threads_than_tiles(threads, cell):
    """One tile and a few rows on every thread torch has: the team splits rows or runs alone."""
    torch.set_num_threads(max(2, torch.get_num_threads()))
    check_layer(cell, T=5, B=3, I=2, H=4, dtype=torch.float64)
    check_layer(cell, T=5, B=40, I=2, H=4, dtype=torch.float64)
