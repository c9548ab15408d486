"""One process: bf16 inference medians (21 calls after warm-up) where the steps multiply from panels."""
import statistics, time
import torch, fused_rnn
torch.set_num_threads(2)
for cell, B, H, T in (("LSTM", 64, 256, 50), ("LSTM", 16, 256, 50), ("LSTM", 8, 512, 50), ("LSTM", 4, 256, 50),
                      ("LSTM", 1, 256, 100), ("GRU", 64, 256, 50), ("RNN", 64, 512, 50)):
    torch.manual_seed(0)
    f = getattr(fused_rnn, cell)(H, H).bfloat16(); x = torch.randn(T, B, H, dtype=torch.bfloat16)
    ts = []
    with torch.no_grad():
        for _ in range(3): f(x)
        for _ in range(21):
            t0 = time.perf_counter(); f(x); ts.append(time.perf_counter() - t0)
    print(f"{cell} B={B} H={H} T={T}\t{statistics.median(ts) * 1e3:.3f}", flush=True)
