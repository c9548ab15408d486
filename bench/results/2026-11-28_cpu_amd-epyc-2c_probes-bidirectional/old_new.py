"""torch.nn / fused_rnn for bidirectional layers (I = H, T = 50, one layer, float32, 2 threads), in
one process, for whichever fused_rnn is imported: run once with the session-start build
(PYTHONPATH=<worktree of 9140de3>/python) and once with the new one, alternating. Medians of 5
interleaved rounds of medians of n calls. python old_new.py LABEL"""
import statistics, sys, time
import torch, fused_rnn

torch.set_num_threads(2)


def med(f, n):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


label = sys.argv[1]
for name in ["LSTM", "GRU", "RNN"]:
    for B, H in [(1, 128), (1, 256), (8, 256), (64, 128), (64, 256)]:
        ref = getattr(torch.nn, name)(H, H, bidirectional=True)
        fm = getattr(fused_rnn, name)(H, H, bidirectional=True)
        fm.load_state_dict(ref.state_dict())
        x = torch.randn(50, B, H)
        xg = x.clone().requires_grad_()
        for mode in ["inference", "training"]:
            if mode == "inference":
                def run(m):
                    with torch.no_grad():
                        m(x)
            else:
                def run(m):
                    o, _ = m(xg)
                    o.sum().backward()
            n = 10 if B * H < 64 * 256 else 4
            r = [med(lambda: run(ref), n) / med(lambda: run(fm), n) for _ in range(5)]
            print(f"{label} {name} B={B} H={H} {mode}: torch.nn/fused {statistics.median(r):.2f}x", flush=True)
