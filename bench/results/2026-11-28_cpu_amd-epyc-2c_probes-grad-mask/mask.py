"""Training steps that need fewer gradients: a one-layer LSTM over data that needs no gradient
(the usual first layer), and one with frozen weights (biases and input still trained), against
the full step, fused and torch.nn in one process: 7 interleaved rounds, each the median of 5
steps; medians of rounds, ms."""
import statistics
import time

import torch

import fused_rnn

torch.set_num_threads(2)


def med(f, n=5):
    f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def step(m, x):
    def run():
        out, _ = m(x)
        out.sum().backward()
    return run


print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, {fused_rnn.build_info()['cpu_capability']}, 2 threads")
print("| B | H | T | case | torch.nn ms | fused ms | speedup |")
print("|---|---|---|---|---|---|---|")
for B, H, T in [(1, 256, 50), (8, 256, 200), (64, 512, 50)]:
    torch.manual_seed(0)
    cases = {}
    for case in ("full", "data-input", "frozen-weights"):
        ref = torch.nn.LSTM(H, H)
        fused = fused_rnn.LSTM(H, H)
        fused.load_state_dict(ref.state_dict())
        for m in (ref, fused):
            for name, p in m.named_parameters():
                p.requires_grad_(not (case == "frozen-weights" and name.startswith("weight")))
        x = torch.randn(T, B, H, requires_grad=case != "data-input")
        cases[case] = (step(ref, x), step(fused, x))
    ts = {(c, s): [] for c in cases for s in (0, 1)}
    for _ in range(7):
        for c, fs in cases.items():
            for s in (0, 1):
                ts[(c, s)].append(med(fs[s]))
    for c in cases:
        a, b = statistics.median(ts[(c, 0)]), statistics.median(ts[(c, 1)])
        print(f"| {B} | {H} | {T} | {c} | {a:.2f} | {b:.2f} | {a / b:.2f}x |", flush=True)
