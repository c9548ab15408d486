"""One process of the bf16/fp16 training probe: forward + backward of fused_rnn (whichever build is
first on the path) and torch.nn in the same loop, 2 threads, medians of 11 after warm-up; prints one
line per case: label, fused ms, torch.nn ms."""
import statistics, time
import torch, fused_rnn
torch.set_num_threads(2)
CASES = [("LSTM", torch.bfloat16, 1, 256, 50), ("LSTM", torch.bfloat16, 4, 256, 50), ("LSTM", torch.bfloat16, 4, 512, 50),
         ("LSTM", torch.bfloat16, 16, 256, 50), ("LSTM", torch.bfloat16, 64, 256, 50), ("LSTM", torch.bfloat16, 8, 512, 50),
         ("LSTM", torch.bfloat16, 64, 512, 20), ("GRU", torch.bfloat16, 16, 256, 50), ("RNN", torch.bfloat16, 16, 256, 50),
         ("LSTM", torch.float16, 16, 256, 50)]
for cell, dt, B, H, T in CASES:
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(H, H).to(dt)
    f = getattr(fused_rnn, cell)(H, H).to(dt)
    f.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, H, dtype=dt)

    def step(m):
        m.zero_grad()
        m(x)[0].float().sum().backward()

    a, n = [], []
    for _ in range(2):
        step(f); step(ref)
    for _ in range(11):
        t0 = time.perf_counter(); step(f); a.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); step(ref); n.append(time.perf_counter() - t0)
    name = {torch.bfloat16: "bfloat16", torch.float16: "float16"}[dt]
    print(f"{name} {cell} B={B} H={H} T={T} training\t{statistics.median(a) * 1e3:.3f}\t{statistics.median(n) * 1e3:.3f}", flush=True)
