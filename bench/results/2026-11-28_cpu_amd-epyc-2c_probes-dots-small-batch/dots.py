"""In-place dot products (the default, auto) against packed panels always ("never")
and torch.nn, inference, in one process, interleaved: 5 rounds of (default, panels, torch.nn),
each the median of 5 calls; the table shows the medians of the rounds."""
import statistics
import sys
import time

import torch

import fused_rnn

torch.set_num_threads(2)
C = fused_rnn._C


def med(f, n=5):
    for _ in range(2):
        f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


print(f"# torch {torch.__version__}, fused_rnn {fused_rnn.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
print(f"# {fused_rnn.build_info()}")
print("| cell | H | B | T | torch.nn ms | panels ms | default ms | default path | panels/default | nn/default |")
print("|---|---|---|---|---|---|---|---|---|---|")
torch.manual_seed(0)
for cell in ["LSTM", "GRU", "RNN"]:
    for H in [128, 256, 512, 1024]:
        for B in [1, 4]:
            for T in [1, 10, 50]:
                nn = getattr(torch.nn, cell)(H, H)
                f = getattr(fused_rnn, cell)(H, H)
                f.load_state_dict(nn.state_dict())
                x = torch.randn(T, B, H)
                ts = {"default": [], "panels": [], "nn": []}
                before = C._cpu_forward_calls()["dots"]
                with torch.no_grad():
                    f(x)
                path = "dots" if C._cpu_forward_calls()["dots"] > before else "panels"
                with torch.no_grad():
                    for _ in range(5):
                        ts["default"].append(med(lambda: f(x)))
                        prev = C._set_cpu_dots("never")
                        ts["panels"].append(med(lambda: f(x)))
                        C._set_cpu_dots(prev)
                        ts["nn"].append(med(lambda: nn(x)))
                m = {k: statistics.median(v) for k, v in ts.items()}
                print(f"| {cell} | {H} | {B} | {T} | {m['nn']:.3f} | {m['panels']:.3f} | {m['default']:.3f} | {path} | "
                      f"{m['panels'] / m['default']:.2f}x | {m['nn'] / m['default']:.2f}x |", flush=True)
