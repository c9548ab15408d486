import statistics, sys, time, torch, fused_rnn
torch.set_num_threads(2)
out = {}
for cls, B, H, T in [("GRU", 1, 256, 200), ("LSTM", 1, 256, 200), ("RNN", 1, 256, 200), ("GRU", 8, 256, 50),
                     ("LSTM", 8, 256, 50), ("RNN", 8, 512, 50), ("LSTM", 4, 512, 100)]:
    torch.manual_seed(0)
    m = getattr(fused_rnn, cls)(H, H, bidirectional=True)
    x = torch.randn(T, B, H, requires_grad=True)
    def step():
        o, _ = m(x); o.sum().backward()
    for _ in range(3): step()
    ts = []
    for _ in range(15):
        t0 = time.perf_counter()
        for _ in range(5): step()
        ts.append((time.perf_counter() - t0) / 5)
    out[f"{cls} B={B} H={H} T={T}"] = statistics.median(ts)
import json; print(json.dumps({"file": fused_rnn.__file__, "t": out}))
