"""Allocated peak (MiB) of one LSTM training step at H = 1024, torch.nn against fused_rnn with
W_hh packed for MKL (FUSED_RNN_CPU_PACKED_GEMM=1, the default) and without (0), each in a fresh
process (bench/memory.py's measure)."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))
from bench.memory import measure

for shape in ((8, 1024, 1024, 50), (8, 1024, 1024, 200), (64, 1024, 1024, 50)):
    row = {"torch.nn": measure("LSTM", shape, "torch", 2, what="allocated")}
    for v in ("1", "0"):
        os.environ["FUSED_RNN_CPU_PACKED_GEMM"] = v
        row[f"fused packed={v}"] = measure("LSTM", shape, "fused", 2, what="allocated")
    print("B=%d I=%d H=%d T=%d" % shape, " ".join(f"{k} {v:.1f}" for k, v in row.items()), flush=True)
