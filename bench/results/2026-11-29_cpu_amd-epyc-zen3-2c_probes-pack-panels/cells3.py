# Cells: torch.nn vs fused_rnn (default) vs fused_rnn with fused steps off (BLAS gemm + pointwise pass).
import torch, time, fused_rnn, sys
from fused_rnn import _C
torch.set_num_threads(2)
def t(fn, n):
    a = time.perf_counter()
    for _ in range(n): fn()
    return (time.perf_counter() - a) / n
def case(cell, H, B, mode, T=None, rounds=5, n=None):
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(H, H); f = getattr(fused_rnn, cell)(H, H); f.load_state_dict(ref.state_dict())
    x = torch.randn(B, H) if T is None else torch.randn(T, B, H)
    n = n or max(3, int(2e5 / (H * H * B / 64 + 2000)))
    if mode == "inf":
        def mk(m):
            def run():
                with torch.no_grad(): m(x)
            return run
    else:
        xg = x.clone().requires_grad_()
        def mk(m):
            def run():
                o = m(xg); (o[0] if isinstance(o, tuple) else o).sum().backward()
            return run
    r, g = mk(ref), mk(f)
    tr, tf, tu = [], [], []
    for _ in range(rounds):
        tr.append(t(r, n)); tf.append(t(g, n)); _C._set_cpu_fused(False); tu.append(t(g, n)); _C._set_cpu_fused(True)
    a, b, c = min(tr), min(tf), min(tu)
    print(f"{cell} H={H} B={B} T={T} {mode}: torch.nn {a*1e6:.1f} us fused {b*1e6:.1f} ({a/b:.2f}x) unfused {c*1e6:.1f} ({a/c:.2f}x)", flush=True)
args = sys.argv[1:]
for cell in ("LSTMCell", "GRUCell", "RNNCell"):
    for H in (128, 512):
        for B in (16, 64):
            for mode in ("inf", "train"):
                case(cell, H, B, mode)
