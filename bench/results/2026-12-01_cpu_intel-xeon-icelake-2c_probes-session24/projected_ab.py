"""Projected LSTM (proj_size) on the CPU: fused_rnn against torch.nn (its native loop: oneDNN
takes no projection) in the same process, with fused_rnn's MKL packing on and off
(_C._set_cpu_packed_gemm), torch.nn's call before each fused variant, order rotated each round.
Prints medians (ms) and torch.nn / fused ratios. The build is whichever fused_rnn is imported
(PYTHONPATH), so two builds compare through torch.nn's times in alternating processes.

    python projected_ab.py MODE B I H P T [rounds]     (MODE: inference | training)
"""
import sys
import time

import torch

import fused_rnn
from fused_rnn import _C

torch.set_num_threads(2)
mode, (B, I, H, P, T) = sys.argv[1], map(int, sys.argv[2:7])
rounds = int(sys.argv[7]) if len(sys.argv) > 7 else 11
torch.manual_seed(0)
ref = torch.nn.LSTM(I, H, proj_size=P)
ours = fused_rnn.LSTM(I, H, proj_size=P)
ours.load_state_dict(ref.state_dict())
x = torch.randn(T, B, I, requires_grad=mode == "training")


def call(m):
    if mode == "training":
        m(x)[0].sum().backward()
    else:
        with torch.no_grad():
            m(x)


def timed(f):
    s = time.perf_counter()
    f()
    return time.perf_counter() - s


variants = {"packed": True, "unpacked": False}
res = {"torch": [], **{k: [] for k in variants}}
previous = _C._set_cpu_packed_gemm(True)
for r in range(rounds + 1):
    names = list(variants)[r % 2:] + list(variants)[:r % 2]
    for k in names:
        t_ref = timed(lambda: call(ref))
        _C._set_cpu_packed_gemm(variants[k])
        t = timed(lambda: call(ours))
        if r:
            res["torch"].append(t_ref)
            res[k].append(t)
_C._set_cpu_packed_gemm(previous)
med = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in res.items()}
print(f"{mode} B={B} I={I} H={H} P={P} T={T}: torch.nn {med['torch']:.2f} ms, fused packed {med['packed']:.2f} ms "
      f"({med['torch'] / med['packed']:.2f}x), unpacked {med['unpacked']:.2f} ms ({med['torch'] / med['unpacked']:.2f}x)",
      flush=True)
