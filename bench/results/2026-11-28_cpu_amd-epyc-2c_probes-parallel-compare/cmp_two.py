"""One process: inference medians (31 calls after warm-up) for cases whose kept weights are over 2 MB."""
import statistics, time
import torch, fused_rnn
torch.set_num_threads(2)
for dt, B, H, T in ((torch.float32, 1, 512, 200), (torch.bfloat16, 1, 1024, 50)):
    torch.manual_seed(0)
    f = fused_rnn.LSTM(H, H).to(dt); x = torch.randn(T, B, H, dtype=dt)
    ts = []
    with torch.no_grad():
        for _ in range(3): f(x)
        for _ in range(31):
            t0 = time.perf_counter(); f(x); ts.append(time.perf_counter() - t0)
    print(f"{dt} LSTM B={B} H={H} T={T} inference\t{statistics.median(ts) * 1e3:.3f}", flush=True)
