import os, time, statistics, torch, fused_rnn
os.sched_setaffinity(0, {0, 1}); torch.set_num_threads(int(os.environ.get("TH", 2)))
torch.manual_seed(0)
H = int(os.environ.get("H", 256)); cls = os.environ.get("CLS", "LSTM")
f = getattr(fused_rnn, cls)(H, H)
if os.environ.get("PRE"):
    with torch.no_grad(): getattr(torch.nn, cls)(H, H)(torch.randn(50, 1, H))
res = []
with torch.no_grad():
    for T in (1, 2, 4, 8, 16, 24, 32, 40, 50, 64, 100, 150, 200, 400):
        x = torch.randn(T, 1, H)
        f(x)
        ts = []
        for _ in range(15):
            t0 = time.perf_counter(); f(x); ts.append(time.perf_counter() - t0)
        m = statistics.median(ts) * 1e6
        res.append(f"T={T}:{m:.0f}us({m/T:.1f}/step)")
print(cls, H, " ".join(res))
