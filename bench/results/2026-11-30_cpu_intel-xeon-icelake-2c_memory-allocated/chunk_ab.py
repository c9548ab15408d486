import time, torch, fused_rnn, statistics, sys
from fused_rnn import _C
torch.set_num_threads(2)
cases = [("LSTM", 64, 256, 50), ("GRU", 64, 256, 50), ("RNN", 64, 256, 50), ("LSTM", 8, 512, 200), ("GRU", 8, 512, 200),
         ("RNN", 8, 512, 200), ("LSTM", 64, 1024, 50), ("GRU", 64, 1024, 50), ("RNN", 64, 1024, 50), ("LSTM", 8, 1024, 50), ("RNN", 64, 512, 200)]
A, Bc = 8 << 20, int(sys.argv[1]) if len(sys.argv) > 1 else 2 << 20
for cls, B, H, T in cases:
    m = getattr(fused_rnn, cls)(H, H); x = torch.randn(T, B, H, requires_grad=True)
    def step():
        out, _ = m(x); out.sum().backward()
    def timeit(n):
        t0 = time.perf_counter()
        for _ in range(n): step()
        return (time.perf_counter() - t0) / n
    step(); step()
    t1 = timeit(1); n = max(1, int(0.25 / t1))
    ratios = []
    for r in range(7):
        order = (A, Bc) if r % 2 == 0 else (Bc, A)
        res = {}
        for c in order:
            _C._set_cpu_backward_chunk(c); res[c] = timeit(n)
        ratios.append(res[Bc] / res[A])
    _C._set_cpu_backward_chunk(A)
    print(f"{cls} B={B} H={H} T={T}: time {Bc>>20}MB / 8MB median {statistics.median(ratios):.3f} range {min(ratios):.3f}-{max(ratios):.3f}", flush=True)
