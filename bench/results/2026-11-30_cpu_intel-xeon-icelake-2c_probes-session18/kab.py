# Same-process A/B of the K-chunked tile products (on) against one pass over K (off).
import os, sys, time, statistics, torch, fused_rnn
from fused_rnn import _C
os.sched_setaffinity(0, {0, 1}); torch.set_num_threads(2)
torch.manual_seed(0)
CASES = [("LSTM", 64, 1024, 50, "train"), ("LSTM", 64, 512, 50, "train"), ("LSTM", 8, 512, 200, "train"),
         ("LSTM", 64, 256, 200, "train"), ("GRU", 64, 1024, 50, "train"), ("LSTM", 64, 1024, 50, "infer"),
         ("LSTM", 64, 512, 200, "infer"), ("LSTM", 1, 256, 200, "infer")]
if len(sys.argv) > 1:
    CASES = [c for c in CASES if c[0] + str(c[1]) + "_" + str(c[2]) in sys.argv[1].split(",")]
rounds = int(os.environ.get("ROUNDS", 5))
print("chunk bytes", os.environ.get("FUSED_RNN_CPU_K_CHUNK_BYTES", "16384"), flush=True)
for cls, B, H, T, mode in CASES:
    m = getattr(fused_rnn, cls)(H, H); x = torch.randn(T, B, H, requires_grad=(mode == "train"))
    def run():
        if mode == "train":
            out, _ = m(x); out.sum().backward()
        else:
            with torch.no_grad(): m(x)
    res = {True: [], False: []}
    n = max(1, int(0.4 / max(1e-4, (lambda t0: (run(), time.perf_counter() - t0)[1])(time.perf_counter()))))
    for r in range(rounds):
        for v in ((True, False) if r % 2 == 0 else (False, True)):
            _C._set_cpu_k_chunks(v); run()
            t0 = time.perf_counter()
            for _ in range(n): run()
            res[v].append((time.perf_counter() - t0) / n * 1e3)
    on, off = statistics.median(res[True]), statistics.median(res[False])
    print(f"{cls} B={B} H={H} T={T} {mode}: chunks {on:8.2f} ms  one pass {off:8.2f} ms  off/on {off/on:.3f}  (ratios by round {' '.join(f'{b/a:.2f}' for a, b in zip(res[True], res[False]))})", flush=True)
