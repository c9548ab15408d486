"""Same-process A/B of the CPU backward's products for large panels: BLAS (the rule's default)
against the tiles (_set_cpu_blas_panel_bytes(0)), training steps (forward + out.sum().backward()),
order alternating each round; medians of the backward alone and of the whole step."""
import os, statistics, sys, time
import torch
import fused_rnn
from fused_rnn import _C

torch.set_num_threads(2)
rounds = int(os.environ.get("ROUNDS", 16))
default = _C.build_info()["cpu_blas_panel_bytes"]
print(f"{torch.__version__} fused_rnn {fused_rnn.__version__ if hasattr(fused_rnn, '__version__') else ''} "
      f"panel bytes default {default} L2 {_C.build_info()['cpu_l2_bytes']}")
for spec in sys.argv[1:]:
    cell, B, H, T = spec.split(",")
    B, H, T = int(B), int(H), int(T)
    torch.manual_seed(0)
    m = getattr(fused_rnn, cell)(H, H)
    x = torch.randn(T, B, H, requires_grad=True)
    res = {"blas": ([], []), "tiles": ([], [])}
    before = _C._cpu_forward_calls()["blas_backward"]
    for r in range(rounds):
        for side in (("blas", "tiles") if r % 2 else ("tiles", "blas")):
            _C._set_cpu_blas_panel_bytes(default if side == "blas" else 0)
            t0 = time.perf_counter()
            out, _ = m(x)
            t1 = time.perf_counter()
            out.sum().backward()
            t2 = time.perf_counter()
            res[side][0].append(t2 - t1)
            res[side][1].append(t2 - t0)
    _C._set_cpu_blas_panel_bytes(default)
    sent = _C._cpu_forward_calls()["blas_backward"] - before
    med = {k: [statistics.median(v[2:]) * 1e3 for v in vals] for k, vals in res.items()}
    print(f"{cell} B={B} H={H} T={T}: backward tiles {med['tiles'][0]:.1f} blas {med['blas'][0]:.1f} ms "
          f"(tiles/blas {med['tiles'][0] / med['blas'][0]:.3f}); step tiles {med['tiles'][1]:.1f} "
          f"blas {med['blas'][1]:.1f} ms (tiles/blas {med['tiles'][1] / med['blas'][1]:.3f}); "
          f"loops sent to BLAS {sent} of {rounds}", flush=True)
