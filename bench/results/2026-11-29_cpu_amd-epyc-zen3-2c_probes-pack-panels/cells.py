# Cells: torch.nn vs fused_rnn, training step (forward + backward of sum) and no_grad forward.
# Min over rounds of the mean of `n` calls, the two modules alternating.
import torch, time, fused_rnn, sys
torch.set_num_threads(2)
def t(fn, n):
    a = time.perf_counter()
    for _ in range(n): fn()
    return (time.perf_counter() - a) / n
def case(cell, H, B, mode, rounds=7, n=200):
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(H, H); f = getattr(fused_rnn, cell)(H, H); f.load_state_dict(ref.state_dict())
    x = torch.randn(B, H)
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
    tr, tf = [], []
    for _ in range(rounds):
        tr.append(t(r, n)); tf.append(t(g, n))
    a, b = min(tr), min(tf)
    print(f"{cell} H={H} B={B} {mode}: torch.nn {a*1e6:.1f} us fused {b*1e6:.1f} us  ratio {a/b:.2f}x", flush=True)
for cell in ("LSTMCell", "GRUCell", "RNNCell"):
    for H in (32, 128, 512):
        for B in (1, 64):
            for mode in ("inf", "train"):
                case(cell, H, B, mode)
