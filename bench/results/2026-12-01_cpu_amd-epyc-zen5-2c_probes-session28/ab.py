"""Training step (forward + backward) of torch.nn against fused_rnn with its weight gradients on
its own AVX-512 product (weight_grad_tiles on) and off (oneDNN/BLAS as before), interleaved
rounds in one process, medians."""
import sys, time, statistics, torch, fused_rnn
from fused_rnn import _C
torch.set_num_threads(2)
def bench(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3
shapes = [("LSTM", 64, 128, 50), ("LSTM", 64, 256, 50), ("LSTM", 8, 256, 50), ("LSTM", 64, 512, 50),
          ("LSTM", 8, 1024, 50), ("LSTM", 64, 1024, 50), ("GRU", 64, 256, 50), ("RNN", 64, 512, 50)]
for cell, B, H, T in shapes:
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(H, H); fused = getattr(fused_rnn, cell)(H, H); fused.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, H, requires_grad=True)
    g = torch.randn(T, B, H)
    reps = 5 if H == 1024 else 11
    res = {"torch.nn": [], "tiles": [], "before": []}
    for rnd in range(3):
        for name in (["tiles", "before"] if rnd % 2 == 0 else ["before", "tiles"]):
            m = ref
            def step_ref(): ref(x)[0].backward(g)
            res["torch.nn"].append(bench(step_ref, reps))
            prev = _C._set_cpu_weight_grad_tiles(name == "tiles")
            def step(): fused(x)[0].backward(g)
            step()
            res[name].append(bench(step, reps))
            _C._set_cpu_weight_grad_tiles(prev)
    t_ref = statistics.median(res["torch.nn"]); t_t = statistics.median(res["tiles"]); t_b = statistics.median(res["before"])
    print(f"{cell} B={B} H={H} T={T}: torch.nn {t_ref:.2f} ms, before {t_b:.2f} ms ({t_ref/t_b:.2f}x), "
          f"tiles {t_t:.2f} ms ({t_ref/t_t:.2f}x); tiles/before speed {t_b/t_t:.3f}", flush=True)
