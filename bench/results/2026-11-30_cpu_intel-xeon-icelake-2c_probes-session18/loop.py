import os, time, torch, fused_rnn
os.sched_setaffinity(0, {0, 1}); torch.set_num_threads(int(os.environ.get("TH", 2)))
H = int(os.environ.get("H", 256)); cls = os.environ.get("CLS", "LSTM"); T = int(os.environ.get("T", 400))
f = getattr(fused_rnn, cls)(H, H); x = torch.randn(T, 1, H)
with torch.no_grad():
    f(x); t0 = time.perf_counter(); n = 0
    while time.perf_counter() - t0 < float(os.environ.get("SEC", 8)):
        f(x); n += 1
print((time.perf_counter() - t0) / n / T * 1e6, "us/step")
