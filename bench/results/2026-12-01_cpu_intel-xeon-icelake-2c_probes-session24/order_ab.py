"""The cpu matrix's timing loop (fused_rnn.bench: each round times torch.nn, fused_rnn and torch.nn's
A/A twin once, medians) with its fixed order against a fresh random order each round, in one
process, the two designs alternating by block of rounds. Prints each design's speedup and A/A.
A design that favours nobody has A/A near 1.

    python order_ab.py CELL B H T [layers] [mode]
"""
import copy
import random
import statistics
import sys
import time

import torch

import fused_rnn

torch.set_num_threads(2)
cell, B, H, T = sys.argv[1], *map(int, sys.argv[2:5])
L = int(sys.argv[5]) if len(sys.argv) > 5 else 1
mode = sys.argv[6] if len(sys.argv) > 6 else "inference"
torch.manual_seed(0)
ref = getattr(torch.nn, cell)(H, H, L)
ours = getattr(fused_rnn, cell)(H, H, L)
ours.load_state_dict(ref.state_dict())
twin = copy.deepcopy(ref)
x = torch.randn(T, B, H, requires_grad=mode == "training")


def runner(m):
    if mode == "training":
        return lambda: m(x)[0].sum().backward()

    def run():
        with torch.no_grad():
            m(x)
    return run


runs = {"torch": runner(ref), "fused": runner(ours), "twin": runner(twin)}
for f in runs.values():
    f()
times = {d: {k: [] for k in runs} for d in ("fixed", "random")}
rng = random.Random(0)
for block in range(10):
    for design in ("fixed", "random") if block % 2 == 0 else ("random", "fixed"):
        for _ in range(5):
            order = list(runs)
            if design == "random":
                rng.shuffle(order)
            for k in order:
                s = time.perf_counter()
                runs[k]()
                times[design][k].append(time.perf_counter() - s)
for design, t in times.items():
    med = {k: statistics.median(v) for k, v in t.items()}
    print(f"{cell} B={B} H={H} T={T} L={L} {mode} {design:6s}: torch.nn {med['torch'] / T * 1e6:.1f} us/step, "
          f"fused {med['fused'] / T * 1e6:.1f}, speedup {med['torch'] / med['fused']:.2f}x, "
          f"A/A {med['torch'] / med['twin']:.2f}", flush=True)
