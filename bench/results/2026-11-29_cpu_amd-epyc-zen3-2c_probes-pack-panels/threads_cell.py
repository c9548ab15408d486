# Small calls: one thread against two, fused and torch.nn (min over rounds of the mean of n calls).
import torch, time, fused_rnn, sys
def t(fn, n):
    a = time.perf_counter()
    for _ in range(n): fn()
    return (time.perf_counter() - a) / n
for cell, H, B, T in [("RNNCell", 128, 16, None), ("LSTMCell", 128, 16, None), ("GRUCell", 128, 16, None),
                      ("RNNCell", 32, 1, None), ("LSTM", 128, 8, 50), ("RNN", 128, 8, 50)]:
    ref = getattr(torch.nn, cell)(H, H); f = getattr(fused_rnn, cell)(H, H); f.load_state_dict(ref.state_dict())
    x = (torch.randn(B, H) if T is None else torch.randn(T, B, H)).requires_grad_()
    def mk(m):
        def run():
            o = m(x); (o[0] if isinstance(o, tuple) else o).sum().backward()
        return run
    res = {}
    for r in range(5):
        for th in (1, 2):
            torch.set_num_threads(th)
            for name, m in (("nn", ref), ("fused", f)):
                v = t(mk(m), 200 if T is None else 20)
                res[(th, name)] = min(res.get((th, name), 1e9), v)
    print(cell, H, B, T, " ".join(f"th{th} {n} {res[(th, n)]*1e6:.0f}us" for th in (1, 2) for n in ("nn", "fused")), flush=True)
