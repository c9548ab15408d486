# Same-process A/B: the backward's grad_input through fused_rnn's packed tiles (PackedMatmul, the
# default) against MKL (FUSED_RNN_PROBE_MATMUL_BLAS=1, read by the probe build at every call).
import os, sys, time, statistics, torch, fused_rnn
os.sched_setaffinity(0, {0, 1}); torch.set_num_threads(2)
torch.manual_seed(0)
CASES = [("LSTM", 64, 1024, 50), ("LSTM", 64, 512, 50), ("LSTM", 64, 256, 200), ("LSTM", 8, 512, 200),
         ("LSTM", 8, 1024, 50), ("GRU", 64, 1024, 50), ("RNN", 64, 1024, 50), ("GRU", 8, 512, 200)]
rounds = int(os.environ.get("ROUNDS", 9))
for cls, B, H, T in CASES:
    m = getattr(fused_rnn, cls)(H, H); x = torch.randn(T, B, H, requires_grad=True)
    def run():
        out, _ = m(x); out.sum().backward()
    run()
    t0 = time.perf_counter(); run(); n = max(1, int(0.3 / (time.perf_counter() - t0)))
    res = {"0": [], "1": []}
    for r in range(rounds):
        for v in (("0", "1") if r % 2 == 0 else ("1", "0")):
            os.environ["FUSED_RNN_PROBE_MATMUL_BLAS"] = v; run()
            t0 = time.perf_counter()
            for _ in range(n): run()
            res[v].append((time.perf_counter() - t0) / n * 1e3)
    tiles, blas = statistics.median(res["0"]), statistics.median(res["1"])
    print(f"{cls} B={B} H={H} T={T} train: tiles {tiles:8.2f} ms  MKL {blas:8.2f} ms  MKL/tiles {blas/tiles:.3f}  (by round {' '.join(f'{b/a:.2f}' for a, b in zip(res['0'], res['1']))})", flush=True)
