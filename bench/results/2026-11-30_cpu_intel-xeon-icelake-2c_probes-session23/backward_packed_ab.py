"""Same-process A/B of a training step's backward products: W_hh packed once for MKL (the
default), plain sgemm repacking it every step (_set_cpu_packed_gemm(False): from 32 rows a step,
the tiles below), and the tiles (_set_cpu_blas_panel_bytes(0)). torch.nn's step before each
variant; variant order rotated each round; medians.

    [AB_PANEL_BYTES=N] python backward_packed_ab.py CELL B H T LAYERS ROUNDS [bidirectional]

AB_PANEL_BYTES: the BLAS panel limit of the packed and plain variants (default: the build's).
"""
import os, statistics, sys, time

import torch

import fused_rnn

C = fused_rnn._C
torch.set_num_threads(2)
cell, B, H, T, L, rounds = sys.argv[1], *map(int, sys.argv[2:7])
bidir = sys.argv[7:] == ["bidirectional"]
torch.manual_seed(0)
t = getattr(torch.nn, cell)(H, H, num_layers=L, bidirectional=bidir)
m = getattr(fused_rnn, cell)(H, H, num_layers=L, bidirectional=bidir)
m.load_state_dict(t.state_dict())
x = torch.randn(T, B, H).requires_grad_()
default = int(os.environ.get("AB_PANEL_BYTES", "0")) or C._set_cpu_blas_panel_bytes(0)
C._set_cpu_blas_panel_bytes(default)
variants = {"packed": (default, True), "plain": (default, False), "tiles": (0, True)}


def use(v):
    C._set_cpu_blas_panel_bytes(v[0])
    C._set_cpu_packed_gemm(v[1])


def step(mod):
    mod(x)[0].sum().backward()


for _ in range(2):
    step(t)
    for v in variants.values():
        use(v)
        step(m)
times = {k: [] for k in ["torch", *variants]}
names = list(variants)
packs0, blas0 = C._cpu_forward_calls()["packed_gemm"], C._cpu_forward_calls()["blas_backward"]
for i in range(rounds):
    for name in names[i % 3:] + names[:i % 3]:
        s = time.perf_counter()
        step(t)
        times["torch"].append(time.perf_counter() - s)
        use(variants[name])
        s = time.perf_counter()
        step(m)
        times[name].append(time.perf_counter() - s)
use(variants["packed"])
c = C._cpu_forward_calls()
med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
print(f"{cell} B={B} H={H} T={T} L={L}{' bidirectional' if bidir else ''} rounds={rounds}: " + " ".join(f"{k} {v:.1f} ms" for k, v in med.items())
      + " | torch/variant " + " ".join(f"{k} {med['torch'] / med[k]:.3f}" for k in variants)
      + f" | packed/tiles {med['tiles'] / med['packed']:.3f} packed/plain {med['plain'] / med['packed']:.3f}"
      + " | min " + " ".join(f"{k} {min(v) * 1e3:.1f}" for k, v in times.items())
      + f" | W_hh packs {c['packed_gemm'] - packs0}, BLAS reverse loops {c['blas_backward'] - blas0}", flush=True)
