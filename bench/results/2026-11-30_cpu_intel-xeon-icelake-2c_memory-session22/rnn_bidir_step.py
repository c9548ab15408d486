# One process's timing of bidirectional Elman RNN training steps (forward + backward), the
# shapes whose directions run at once with dG whole; the median of 30 steps, best of 2 rounds.
import statistics, time, torch, fused_rnn, json
torch.set_num_threads(2)
shapes = [(1, 256, 256, 200), (1, 512, 512, 100), (8, 256, 256, 100), (16, 128, 128, 200)]
out = {}
for rnd in range(2):
    for B, I, H, T in shapes:
        torch.manual_seed(0)
        m = fused_rnn.RNN(I, H, bidirectional=True)
        x = torch.randn(T, B, I, requires_grad=True)
        def step():
            o, _ = m(x); o.sum().backward()
        for _ in range(5): step()
        ts = []
        for _ in range(30):
            t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
        out.setdefault(f"B={B} I={I} H={H} T={T}", []).append(statistics.median(ts))
print(json.dumps({"t": {k: min(v) for k, v in out.items()}}))
