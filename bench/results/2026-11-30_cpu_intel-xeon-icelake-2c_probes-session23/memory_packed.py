"""Allocated peak (MiB) of one LSTM training step at H = 1024, torch.nn against fused_rnn with
W_hh packed for MKL (FUSED_RNN_CPU_PACKED_GEMM=1, the default) and without (0), each in a fresh
process (bench/memory.py's measure); `bidirectional` as the argument: bidirectional layers."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))
from bench.memory import measure

bidir = sys.argv[1:] == ["bidirectional"]
for shape in ((8, 1024, 1024, 50), (8, 1024, 1024, 200), (64, 1024, 1024, 50)) if not bidir else \
        ((8, 1024, 1024, 50), (16, 1024, 1024, 50), (64, 1024, 1024, 50)):
    row = {"torch.nn": measure("LSTM", shape, "torch", 2, bidir, what="allocated")}
    for v in ("1", "0"):
        os.environ["FUSED_RNN_CPU_PACKED_GEMM"] = v
        row[f"fused packed={v}"] = measure("LSTM", shape, "fused", 2, bidir, what="allocated")
    print("B=%d I=%d H=%d T=%d" % shape, "bidirectional" if bidir else "",
          " ".join(f"{k} {v:.1f}" for k, v in row.items()), flush=True)
