"""B=64 bidirectional training after the backward's batch rule (7cd9752): the switch on (forward
at once, backward one after the other above 16 rows) against off (both one after the other), and
torch.nn, in one process; 5 interleaved rounds of medians of 6 calls (ms). python b64_after_rule.py"""
import datetime, statistics, time
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


print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, 2 threads")
print("cell B H T | torch.nn ms | switch on ms | switch off ms | on vs off | vs torch.nn: on, off")
for name in ["LSTM", "GRU", "RNN"]:
    for H in (128, 256, 512):
        ref = getattr(torch.nn, name)(H, H, bidirectional=True)
        fm = getattr(fused_rnn, name)(H, H, bidirectional=True)
        fm.load_state_dict(ref.state_dict())
        xg = torch.randn(50, 64, H, requires_grad=True)

        def run(m):
            o, _ = m(xg)
            o.sum().backward()

        res = {"nn": [], "on": [], "off": []}
        for _ in range(5):
            res["nn"].append(med(lambda: run(ref), 6))
            _C._set_cpu_concurrent_directions(True)
            res["on"].append(med(lambda: run(fm), 6))
            _C._set_cpu_concurrent_directions(False)
            res["off"].append(med(lambda: run(fm), 6))
        m = {k: statistics.median(v) for k, v in res.items()}
        print(f"{name} 64 {H} 50 | {m['nn']:.2f} | {m['on']:.2f} | {m['off']:.2f} | {m['off'] / m['on']:.2f}x | "
              f"{m['nn'] / m['on']:.2f}x, {m['nn'] / m['off']:.2f}x", flush=True)
_C._set_cpu_concurrent_directions(True)
