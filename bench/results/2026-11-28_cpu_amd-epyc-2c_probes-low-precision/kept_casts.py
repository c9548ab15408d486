"""Probe: low-precision (bfloat16) weights on the CPU in inference, cast to float32 afresh on
every call (the old way, functional._cast) against the kept casts (_C._kept_cast), timed
interleaved in one process by swapping functional._cast_weights; 15 pairs, medians, 2 threads."""
import statistics
import time

import torch

import fused_rnn
from fused_rnn import functional as Fn

torch.set_num_threads(2)
print("torch", torch.__version__, "|", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
kept = Fn._cast_weights


def fresh(ws, dtype):
    return Fn._cast(ws, dtype)


for cell, B, H, T in (("LSTM", 1, 256, 200), ("LSTM", 1, 1024, 50), ("LSTM", 8, 512, 50), ("LSTM", 1, 128, 50),
                      ("GRU", 1, 256, 200), ("LSTM", 64, 256, 50)):
    f = getattr(fused_rnn, cell)(H, H).bfloat16()
    x = torch.randn(T, B, H, dtype=torch.bfloat16)
    a, b = [], []
    with torch.no_grad():
        for _ in range(3):
            f(x)
        for _ in range(15):
            for times, fn in ((a, fresh), (b, kept)):
                Fn._cast_weights = fn
                t0 = time.perf_counter()
                f(x)
                times.append(time.perf_counter() - t0)
    Fn._cast_weights = kept
    ta, tb = statistics.median(a), statistics.median(b)
    print(f"bfloat16 {cell} B={B} H={H} T={T} inference: fresh casts {ta * 1e3:.2f} ms, kept casts {tb * 1e3:.2f} ms, "
          f"ratio {ta / tb:.2f}")
