import statistics, time, torch, fused_rnn, json
torch.set_num_threads(2)
out = {}
for cls in ("LSTM", "GRU", "LSTM", "GRU"):
    torch.manual_seed(0)
    m = getattr(fused_rnn, cls)(256, 256, bidirectional=True)
    x = torch.randn(200, 1, 256, requires_grad=True)
    def step():
        o, _ = m(x); o.sum().backward()
    for _ in range(5): step()
    ts = []
    for _ in range(30):
        t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
    out.setdefault(cls, []).append(statistics.median(ts))
print(json.dumps({"t": {k: min(v) for k, v in out.items()}}))
