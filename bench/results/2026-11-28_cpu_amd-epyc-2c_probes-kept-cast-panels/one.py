"""One process of the before/after probe: 16-bit inference, fused_rnn (whichever build is first
on the path) and torch.nn in the same loop, 2 threads, medians of 15 after warm-up; prints one
line per case: label, fused ms, torch.nn ms."""
import statistics, sys, time
import torch, fused_rnn
torch.set_num_threads(2)
CASES = [("LSTM", torch.bfloat16, 1, 128, 50), ("LSTM", torch.bfloat16, 1, 256, 50), ("LSTM", torch.bfloat16, 1, 512, 50),
         ("LSTM", torch.bfloat16, 1, 1024, 50), ("LSTM", torch.bfloat16, 2, 512, 20), ("LSTM", torch.bfloat16, 4, 256, 50),
         ("LSTM", torch.bfloat16, 4, 512, 50), ("LSTM", torch.bfloat16, 4, 1024, 50), ("LSTM", torch.bfloat16, 16, 256, 50),
         ("LSTM", torch.bfloat16, 64, 256, 50), ("GRU", torch.bfloat16, 1, 512, 50), ("GRU", torch.bfloat16, 8, 512, 50),
         ("RNN", torch.bfloat16, 1, 1024, 50), ("LSTM", torch.float16, 1, 512, 50), ("GRU", torch.float16, 4, 256, 50)]
for cell, dt, B, H, T in CASES:
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(H, H).to(dt)
    f = getattr(fused_rnn, cell)(H, H).to(dt)
    f.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, H, dtype=dt)
    a, n = [], []
    with torch.no_grad():
        for _ in range(3):
            f(x); ref(x)
        for _ in range(15):
            t0 = time.perf_counter(); f(x); a.append(time.perf_counter() - t0)
            t0 = time.perf_counter(); ref(x); n.append(time.perf_counter() - t0)
    name = {torch.bfloat16: "bfloat16", torch.float16: "float16"}[dt]
    print(f"{name} {cell} B={B} H={H} T={T}\t{statistics.median(a) * 1e3:.3f}\t{statistics.median(n) * 1e3:.3f}", flush=True)
