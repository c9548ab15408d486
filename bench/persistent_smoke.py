"""Small forward+backward runs of every cell on the persistent CUDA tier, for compute-sanitizer.

    compute-sanitizer --tool memcheck python bench/persistent_smoke.py
    compute-sanitizer --tool racecheck python bench/persistent_smoke.py

Dense, packed and reverse-direction layers in float32, bfloat16 and float16, each checked
against the alternating tier (and the persistent kernels required to have run), both with the
tensor-core products (TF32 for float32), which must then have launched, and without, in cluster
mode (which must then have launched, on sm_90+; h_t and dG_t through distributed shared memory,
which must then have run, and through L2), and with the tensor cores in grid mode, there with the
grid barrier and with per-step flags (FUSED_RNN_PERSISTENT_FLAGS, which must then have run); then
bidirectional layers, whose two directions must have run in one launch forward and backward (the
grid-mode ones also with flags); exits 1 on a mismatch, so a sanitizer run also says whether the
results were right. The runs go breadth first (every cell and dtype dense, then bidirectional, then
packed, ...), and ``--max-seconds S`` starts none after S seconds, saying how many ran.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch.nn.utils.rnn import pack_sequence

import fused_rnn
from fused_rnn import functional as F


def layer(cell, dtype, packed, reverse):
    torch.manual_seed(0)
    G = {"lstm": 4, "gru": 3}.get(cell, 1)
    I, H, B = 6, 40, 3
    w = {k: (torch.randn(*s, device="cuda") * 0.3).to(dtype).requires_grad_()
         for k, s in {"w_ih": (G * H, I), "w_hh": (G * H, H), "b_ih": (G * H,), "b_hh": (G * H,)}.items()}
    if packed:
        p = pack_sequence([torch.randn(n, I) for n in (5, 3, 2)])
        x, bs = p.data.to("cuda", dtype), p.batch_sizes
    else:
        x, bs = torch.randn(5, B, I, device="cuda", dtype=dtype), None
    x.requires_grad_()
    results = {}
    # float32 with mma: TF32 tensor cores, which the persistent tier takes where
    # torch.backends.cudnn.allow_tf32 is on (as torch.nn's cuDNN RNNs do); off elsewhere here.
    # (tier, mma, cluster, dsmem, flags): H=40 fits one cluster, so cluster mode runs wherever it is
    # on (sm_90+), and its exchange buffers fit beside the slice; flags act in grid mode only.
    variants = [("alternating", False, True, True, False), ("persistent", False, True, True, False),
                ("persistent", False, True, False, False), ("persistent", True, True, True, False),
                ("persistent", True, False, True, False), ("persistent", True, False, True, True)]
    sm90 = torch.cuda.get_device_capability()[0] >= 9
    for tier, mma, cluster, dsmem, flags in variants:
        old = fused_rnn._C._set_cuda_tier(tier)
        old_mma = fused_rnn._C._set_persistent_mma(mma)
        old_cluster = fused_rnn._C._set_persistent_cluster(cluster)
        old_dsmem = fused_rnn._C._set_persistent_dsmem(dsmem)
        old_flags = fused_rnn._C._set_persistent_flags(flags)
        old_tf32 = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = mma
        try:
            before = dict(fused_rnn._C._persistent_launches())
            args = (x, w["w_ih"], w["w_hh"], w["b_ih"], w["b_hh"])
            if cell == "lstm":
                out = F.lstm_layer(*args, batch_sizes=bs, reverse=reverse)
            elif cell == "gru":
                out = F.gru_layer(*args, batch_sizes=bs, reverse=reverse)
            else:
                out = F.rnn_layer(*args, batch_sizes=bs, reverse=reverse, nonlinearity=cell[4:])
            grads = torch.autograd.grad(out[0].float().pow(2).sum(), [x, *w.values()])
            torch.cuda.synchronize()
            after = dict(fused_rnn._C._persistent_launches())
            ran = after["forward"] > before["forward"] and after["backward"] > before["backward"]
            if mma:  # the tensor-core kernels, forward and backward, are what ran
                ran = ran and after["mma_forward"] > before["mma_forward"] and after["mma_backward"] > before["mma_backward"]
            clustered = (after["cluster_forward"] > before["cluster_forward"],
                         after["cluster_backward"] > before["cluster_backward"])
            ran = ran and clustered == ((True, True) if cluster and sm90 else (False, False))
            exchanged = (after["cluster_dsmem_forward"] > before["cluster_dsmem_forward"],
                         after["cluster_dsmem_backward"] > before["cluster_dsmem_backward"])
            ran = ran and exchanged == ((True, True) if cluster and dsmem and sm90 else (False, False))
            flagged = (after["grid_flags_forward"] > before["grid_flags_forward"],
                       after["grid_flags_backward"] > before["grid_flags_backward"])
            ran = ran and flagged == ((True, True) if flags and not clustered[0] else (False, False))
        finally:
            fused_rnn._C._set_persistent_flags(old_flags)
            fused_rnn._C._set_cuda_tier(old)
            fused_rnn._C._set_persistent_mma(old_mma)
            fused_rnn._C._set_persistent_dsmem(old_dsmem)
            fused_rnn._C._set_persistent_cluster(old_cluster)
            torch.backends.cudnn.allow_tf32 = old_tf32
        results[(tier, mma, cluster, dsmem, flags)] = ([out[0], *grads], ran)
    alt, _ = results[("alternating", False, True, True, False)]
    ok = True
    for (tier, mma, cluster, dsmem, flags), (got, ran) in results.items():
        if tier == "alternating":
            continue
        tol = (1e-2 if mma else 1e-5) if dtype == torch.float32 else 3e-2
        good = ran and all(torch.allclose(a.float(), b.float(), rtol=tol, atol=tol) for a, b in zip(got, alt))
        ok &= good
        print(f"{cell:9s} {str(dtype):15s} packed={packed!s:5s} reverse={reverse!s:5s} mma={mma!s:5s} "
              f"cluster={cluster!s:5s} dsmem={dsmem!s:5s} flags={flags!s:5s} persistent ran={ran} "
              f"{'ok' if good else 'MISMATCH'}",
              flush=True)
    return ok


def bidirectional(cell, dtype, packed):
    """A bidirectional layer: on the persistent tier both directions run in one launch forward
    and backward (the pair counters must move), checked against the alternating tier; in grid
    mode also with per-step flags (each direction waiting only for its own CTAs)."""
    torch.manual_seed(0)
    name, extra = {"lstm": ("LSTM", {}), "gru": ("GRU", {}), "rnn_tanh": ("RNN", {}),
                   "rnn_relu": ("RNN", {"nonlinearity": "relu"})}[cell]
    mod = getattr(fused_rnn, name)(6, 40, bidirectional=True, device="cuda", dtype=dtype, **extra)
    if packed:
        x = pack_sequence([torch.randn(n, 6, device="cuda", dtype=dtype) for n in (5, 3, 2)])
        leaves = list(mod.parameters())
    else:
        x = torch.randn(5, 3, 6, device="cuda", dtype=dtype, requires_grad=True)
        leaves = [x, *mod.parameters()]
    results = {}
    for tier in ("alternating", "persistent", "persistent-flags"):
        old = fused_rnn._C._set_cuda_tier(tier.split("-")[0])
        old_cluster = fused_rnn._C._set_persistent_cluster(tier != "persistent-flags")
        old_flags = fused_rnn._C._set_persistent_flags(tier == "persistent-flags")
        try:
            before = dict(fused_rnn._C._persistent_launches())
            out, _ = mod(x)
            out = out.data if packed else out
            grads = torch.autograd.grad(out.float().pow(2).sum(), leaves)
            torch.cuda.synchronize()
            after = dict(fused_rnn._C._persistent_launches())
        finally:
            fused_rnn._C._set_persistent_flags(old_flags)
            fused_rnn._C._set_persistent_cluster(old_cluster)
            fused_rnn._C._set_cuda_tier(old)
        moved = {k: after[k] - before[k] for k in ("pair_forward", "pair_backward", "grid_flags_forward",
                                                   "grid_flags_backward")}
        results[tier] = ([out, *grads], moved)
    alt, _ = results["alternating"]
    tol = 1e-2 if dtype == torch.float32 else 3e-2  # float32 may run as TF32 (allow_tf32 is on by default)
    good = True
    for tier in ("persistent", "persistent-flags"):
        got, moved = results[tier]
        flags = 1 if tier == "persistent-flags" else 0
        want = {"pair_forward": 1, "pair_backward": 1, "grid_flags_forward": flags, "grid_flags_backward": flags}
        this = moved == want and all(torch.allclose(a.float(), b.float(), rtol=tol, atol=tol) for a, b in zip(got, alt))
        good &= this
        print(f"{cell:9s} {str(dtype):15s} packed={packed!s:5s} bidirectional {tier:16s} launches={moved} "
              f"{'ok' if this else 'MISMATCH'}", flush=True)
    return good


def runs():
    """Every run, breadth first: each cell and dtype dense, then bidirectional, then packed, then
    packed in reverse, then packed bidirectional, so that a run stopped at its time budget has
    covered every cell, dtype and kernel variant at least once."""
    cells, dtypes = ("lstm", "gru", "rnn_tanh", "rnn_relu"), (torch.float32, torch.bfloat16, torch.float16)
    yield from ((layer, c, d, False, False) for d in dtypes for c in cells)
    yield from ((bidirectional, c, d, False) for d in dtypes[:2] for c in cells)
    yield from ((layer, c, d, True, False) for d in dtypes for c in cells)
    yield from ((layer, c, d, True, True) for d in dtypes for c in cells)
    yield from ((bidirectional, c, d, True) for d in dtypes[:2] for c in cells)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--max-seconds", type=float, help="start no run after this many seconds (for a time-limited "
                                                     "sanitizer run: what ran is reported, never cut off midway)")
    args = p.parse_args(argv)
    todo = list(runs())
    started, ok, done = time.monotonic(), True, 0
    for fn, *run_args in todo:
        if args.max_seconds is not None and done and time.monotonic() - started >= args.max_seconds:
            break
        ok &= fn(*run_args)
        done += 1
    if not ok:
        print(f"FAILURES ({done} of {len(todo)} runs)")
        return 1
    print("all ok" if done == len(todo) else
          f"ok so far: {done} of {len(todo)} runs, then stopped at --max-seconds {args.max_seconds:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
