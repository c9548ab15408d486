"""LSTM training step on this CPU, split into forward and backward, torch.nn against fused_rnn,
with fused_rnn's backward on BLAS (default), on the tiles (blas panel bytes 0), and plain sgemm."""
import sys, time, statistics, torch, fused_rnn
from fused_rnn import _C
torch.set_num_threads(2)
def bench(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3
for B, H, T in [(8, 1024, 50), (64, 1024, 50), (64, 256, 50), (8, 512, 50)]:
    torch.manual_seed(0)
    ref = torch.nn.LSTM(H, H); fused = fused_rnn.LSTM(H, H); fused.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, H, requires_grad=True)
    res = {}
    variants = [("torch.nn", ref, None), ("fused", fused, None), ("fused tiles", fused, 0)]
    reps = 7 if H == 1024 else 15
    for _ in range(2):
      for name, m, panel in variants:
        old = _C._set_cpu_blas_panel_bytes(panel) if panel is not None else None
        def fwd():
            return m(x)[0]
        out = fwd()
        g = torch.randn_like(out)
        def step():
            o = m(x)[0]; o.backward(g)
        tf = bench(lambda: fwd(), reps)
        ts = bench(step, reps)
        if old is not None: _C._set_cpu_blas_panel_bytes(old)
        res.setdefault(name, []).append((tf, ts))
    line = f"B={B} H={H} T={T}:"
    for name, v in res.items():
        tf = min(a for a, _ in v); ts = min(b for _, b in v)
        line += f"  {name}: fwd {tf:.1f} step {ts:.1f} bwd~{ts - tf:.1f} ms"
    print(line, flush=True)
