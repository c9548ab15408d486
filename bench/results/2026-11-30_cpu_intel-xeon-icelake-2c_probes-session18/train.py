import os, time, torch, fused_rnn
os.sched_setaffinity(0, {0, 1}); torch.set_num_threads(2)
H = int(os.environ.get("H", 1024)); B = int(os.environ.get("B", 64)); cls = os.environ.get("CLS", "LSTM"); T = int(os.environ.get("T", 50))
lib = torch.nn if os.environ.get("TORCH") else fused_rnn
f = getattr(lib, cls)(H, H); x = torch.randn(T, B, H, requires_grad=True)
G = {"LSTM": 4, "GRU": 3, "RNN": 1}[cls]
flops = 3 * 2 * T * B * G * H * (H + H)
def step():
    out, _ = f(x); out.sum().backward()
step(); t0 = time.perf_counter(); n = 0
while time.perf_counter() - t0 < float(os.environ.get("SEC", 8)):
    step(); n += 1
dt = (time.perf_counter() - t0) / n
print(f"{'torch' if os.environ.get('TORCH') else 'fused'} {cls} B={B} H={H} T={T}: {dt*1e3:.1f} ms {flops/dt/1e9:.0f} GFLOP/s")
