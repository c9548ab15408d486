"""Probe: 16-bit training with the weights' kept casts through autograd (_KeptCast, this build) against
casts in the graph (w.to(float32), the previous behaviour, patched in), interleaved in one process;
15 rounds, medians, 2 threads."""
import statistics
import time

import torch

import fused_rnn
import fused_rnn.functional as F

torch.set_num_threads(2)
new = F._cast_weights


def old(ws, dtype):
    grad = torch.is_grad_enabled()
    return [None if w is None else w.to(dtype) if w.requires_grad and grad else fused_rnn._C._kept_cast(w, dtype)
            for w in ws]


print("torch", torch.__version__, "|", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
for dt, B, H in ((torch.float16, 16, 256), (torch.float16, 4, 512), (torch.bfloat16, 16, 256)):
    f = fused_rnn.LSTM(H, H).to(dt)
    x = torch.randn(50, B, H, dtype=dt)

    def step(m):
        m.zero_grad()
        m(x)[0].float().sum().backward()

    r = {"kept": [], "graph": []}
    for fn in (new, old):
        F._cast_weights = fn
        step(f)
        step(f)
    for _ in range(15):
        for k, fn in (("kept", new), ("graph", old)):
            F._cast_weights = fn
            t0 = time.perf_counter()
            step(f)
            r[k].append(time.perf_counter() - t0)
    F._cast_weights = new
    kept, graph = (statistics.median(r[k]) * 1e3 for k in ("kept", "graph"))
    print(f"{dt} LSTM B={B} H={H} T=50 training: kept casts {kept:.3f} ms | casts in graph {graph:.3f} ms | {graph / kept:.2f}x")
