# marginal us/step at B=1 inference: (t(T2) - t(T1)) / (T2 - T1), median of rounds
import sys, time, statistics, torch, fused_rnn
from fused_rnn import _C
torch.manual_seed(0)
def per_step(m, I, T1=50, T2=400, rounds=7):
    xs = {T: torch.randn(T, 1, I) for T in (T1, T2)}
    res = []
    with torch.no_grad():
        for T in (T1, T2): m(xs[T])
        for _ in range(rounds):
            t = {}
            for T in (T1, T2):
                t0 = time.perf_counter(); 
                for _ in range(5): m(xs[T])
                t[T] = (time.perf_counter() - t0) / 5
            res.append((t[T2] - t[T1]) / (T2 - T1) * 1e6)
    return statistics.median(res)
cases = [("LSTM", 128), ("LSTM", 256), ("LSTM", 384), ("LSTM", 512), ("RNN", 256), ("RNN", 512), ("RNN", 1024), ("GRU", 256), ("GRU", 512)]
for th in (1, 2):
    torch.set_num_threads(th)
    for cls, H in cases:
        row = []
        for mode in ("auto", "always", "never"):
            _C._set_cpu_dots(mode)
            m = getattr(fused_rnn, cls)(H, H)
            row.append(per_step(m, H))
        _C._set_cpu_dots("auto")
        t = per_step(getattr(torch.nn, cls)(H, H), H)
        wb = {"LSTM": 4, "GRU": 3, "RNN": 1}[cls] * H * H * 4
        print(f"threads {th} {cls:4} H={H:4} W_hh {wb/1e6:5.2f} MB | fused auto {row[0]:7.1f} dots {row[1]:7.1f} panels {row[2]:7.1f} | torch.nn {t:7.1f} us/step | auto GB/s {wb/row[0]/1e3:6.1f}", flush=True)
