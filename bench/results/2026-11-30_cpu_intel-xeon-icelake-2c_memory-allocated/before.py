import sys, os; sys.path.insert(0, "/work/main/bench")
import memory
shapes = [(64, 256, 256, 50), (1, 256, 256, 200), (8, 512, 512, 200), (64, 1024, 1024, 50)]
for bidir in (False, True):
    for cls in ("LSTM", "GRU", "RNN"):
        for sh in shapes:
            v = memory.measure(cls, sh, "fused", 2, bidir, 0, "allocated")
            print(f"{'bidirectional' if bidir else 'one direction'} {cls} B={sh[0]} I={sh[1]} H={sh[2]} T={sh[3]}: fused allocated peak {v:.1f} MiB", flush=True)
