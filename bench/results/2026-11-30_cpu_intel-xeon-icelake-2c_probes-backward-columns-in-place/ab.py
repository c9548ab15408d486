import os, sys, time, statistics, torch, fused_rnn
torch.set_num_threads(2)
cases = [(c, B, H, T, bi) for c, B, H, T, bi in [
    ("LSTM", 1, 256, 200, 0), ("LSTM", 1, 1024, 100, 0), ("LSTM", 8, 512, 200, 0), ("LSTM", 64, 256, 100, 0),
    ("LSTM", 64, 1024, 50, 0), ("GRU", 1, 256, 200, 0), ("GRU", 8, 512, 200, 0), ("GRU", 64, 1024, 50, 0),
    ("RNN", 1, 512, 200, 0), ("RNN", 64, 1024, 50, 0), ("GRU", 1, 256, 200, 1), ("LSTM", 8, 512, 100, 1)]]
if len(sys.argv) > 1:
    cases = [c for c in cases if c[0] in sys.argv[1:]]
for cell, B, H, T, bi in cases:
    m = getattr(fused_rnn, cell)(H, H, bidirectional=bool(bi))
    x = torch.randn(T, B, H, requires_grad=True)
    def step():
        out, _ = m(x)
        out.sum().backward()
    for _ in range(3): step()
    t0 = time.perf_counter(); step(); one = time.perf_counter() - t0
    n = max(1, int(0.15 / one))
    res = {"0": [], "1": []}
    for rep in range(9):
        for mode in (("0", "1") if rep % 2 == 0 else ("1", "0")):
            fused_rnn._C._set_cpu_backward_in_place(mode == "1")
            step()
            t0 = time.perf_counter()
            for _ in range(n): step()
            res[mode].append((time.perf_counter() - t0) / n)
    a, b = statistics.median(res["0"]), statistics.median(res["1"])
    print(f"{cell:4s} B={B:3d} H={H:4d} T={T:3d} bi={bi}  packed {a*1e3:8.2f} ms  in-place {b*1e3:8.2f} ms  speedup {a/b:.3f}", flush=True)
