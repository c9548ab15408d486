"""A bidirectional layer's two directions at once (one a thread) against one after the other
(both threads on each), and torch.nn, in one process: medians of n calls, three interleaved
rounds, the median of the rounds (ms). Single layer, I = H, float32, 2 threads.
python bidir.py > bidir.txt"""
import datetime, statistics, subprocess, time
import torch, fused_rnn
from fused_rnn import _C

torch.set_num_threads(2)


def med(f, n):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, "
      f"fused_rnn at {rev} (+ working tree), {torch.get_num_threads()} threads")
print("cell B H T mode | torch.nn ms | at once ms | one after other ms | at once vs after other | "
      "vs torch.nn: at once, after other")
for name in ["LSTM", "GRU", "RNN"]:
    for B in (1, 8, 64):
        for H in (128, 256, 512):
            T = 50
            ref = getattr(torch.nn, name)(H, H, bidirectional=True)
            fm = getattr(fused_rnn, name)(H, H, bidirectional=True)
            fm.load_state_dict(ref.state_dict())
            x = torch.randn(T, B, H)
            xg = x.clone().requires_grad_()
            for mode in ["inference", "training"]:
                if mode == "inference":
                    def run(m):
                        with torch.no_grad():
                            m(x)
                else:
                    def run(m):
                        o, _ = m(xg)
                        o.sum().backward()
                n = 20 if B * H < 64 * 256 else 6
                res = {"nn": [], "at once": [], "after other": []}
                for _ in range(3):
                    res["nn"].append(med(lambda: run(ref), n))
                    _C._set_cpu_concurrent_directions(True)
                    res["at once"].append(med(lambda: run(fm), n))
                    _C._set_cpu_concurrent_directions(False)
                    res["after other"].append(med(lambda: run(fm), n))
                m = {k: statistics.median(v) for k, v in res.items()}
                print(f"{name} {B} {H} {T} {mode} | {m['nn']:.3f} | {m['at once']:.3f} | {m['after other']:.3f} | "
                      f"{m['after other'] / m['at once']:.2f}x | {m['nn'] / m['at once']:.2f}x, "
                      f"{m['nn'] / m['after other']:.2f}x", flush=True)
_C._set_cpu_concurrent_directions(True)
