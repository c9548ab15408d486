"""Probe: the cpu matrix's B=1 one-layer LSTM inference rows alone, timed exactly as
`fused-rnn bench --matrix cpu --threads 2 --aa` times them (bench.run_matrix, process pinned to
2 cores), to see how far those rows move between runs. Run twice in a row."""
import os
import time

import torch

from fused_rnn import bench

os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
torch.set_num_threads(2)
print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "torch", torch.__version__)
cases = [c for c in bench.matrix("cpu", "cpu", ["float32"], ["lstm"]) if c.B == 1 and c.mode == "inference" and c.layers == 1]
for r in bench.run_matrix(cases, "cpu", progress=False, aa=True):
    print(f"LSTM B=1 H={r['H']:<4d} T={r['T']:<3d} inference: torch.nn {r['torch_ms']:.3f} ms, fused {r['fused_ms']:.3f} ms, "
          f"speedup {r['speedup']:.2f}x, A/A {r['aa']:.2f}x")
