"""The run-time switches every build has, whatever it was compiled with (the CUDA ones are
accepted and reported by a CPU-only build too, which simply never launches anything)."""

from __future__ import annotations

import pytest
import torch

import fused_rnn
from fused_rnn import _C


def test_cuda_tier_setting_round_trips_and_rejects_unknown_names():
    old = _C._set_cuda_tier("persistent")
    try:
        assert fused_rnn.build_info()["cuda_tier"] == "persistent"
        with pytest.raises(ValueError, match="tier must be one of alternating, persistent, auto; got 'fast'"):
            _C._set_cuda_tier("fast")
        assert fused_rnn.build_info()["cuda_tier"] == "persistent"
    finally:
        _C._set_cuda_tier(old)


@pytest.mark.parametrize("name", ["persistent_mma", "persistent_cluster", "persistent_dsmem"])
def test_persistent_switch_is_on_by_default_and_can_be_turned_off(name):
    """The tensor-core products, the cluster mode and its h_t / dG_t exchange through distributed
    shared memory, of the persistent tier."""
    setter = getattr(_C, f"_set_{name}")
    assert fused_rnn.build_info()[name] is True
    assert setter(False) is True
    try:
        assert fused_rnn.build_info()[name] is False
    finally:
        assert setter(True) is False


def test_persistent_flags_are_off_by_default_and_can_be_turned_on():
    """Grid mode's per-step flags stay off until a GPU run shows them correct."""
    assert fused_rnn.build_info()["persistent_flags"] is False
    assert _C._set_persistent_flags(True) is False
    try:
        assert fused_rnn.build_info()["persistent_flags"] is True
    finally:
        assert _C._set_persistent_flags(False) is True


def test_persistent_launch_counters_cover_the_tensor_core_launches():
    d = _C._persistent_launches()
    assert set(d) == {"forward", "backward", "mma_forward", "mma_backward", "pair_forward", "pair_backward",
                      "cluster_forward", "cluster_backward", "cluster_dsmem_forward",
                      "cluster_dsmem_backward", "grid_flags_forward", "grid_flags_backward"}
    assert d["mma_forward"] <= d["forward"] and d["mma_backward"] <= d["backward"]
    assert d["pair_forward"] <= d["forward"] and d["pair_backward"] <= d["backward"]
    assert d["cluster_forward"] <= d["forward"] and d["cluster_backward"] <= d["backward"]
    assert d["cluster_dsmem_forward"] <= d["cluster_forward"]
    assert d["cluster_dsmem_backward"] <= d["cluster_backward"]
    assert d["grid_flags_forward"] <= d["forward"] - d["cluster_forward"]
    assert d["grid_flags_backward"] <= d["backward"] - d["cluster_backward"]
    if not torch.cuda.is_available():
        assert all(v == 0 for v in d.values())


def test_bench_tiers_set_the_persistent_switches_only_while_they_run():
    """`fused-rnn bench --tiers`: each tier name forces the switches it stands for while its case
    runs, and every switch is as it was afterwards."""
    from fused_rnn.bench import _with_tier

    keys = ("cuda_tier", "persistent_cluster", "persistent_dsmem", "persistent_flags")
    before = {k: fused_rnn.build_info()[k] for k in keys}
    want = {"alternating": ("alternating", True, True, False), "persistent": ("persistent", True, True, False),
            "persistent-grid": ("persistent", False, True, False), "persistent-l2": ("persistent", True, False, False),
            "persistent-flags": ("persistent", False, True, True)}
    for tier, expected in want.items():
        info = _with_tier(fused_rnn.build_info, tier)()
        assert tuple(info[k] for k in keys) == expected, tier
        assert {k: fused_rnn.build_info()[k] for k in keys} == before, tier
