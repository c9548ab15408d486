import sys, torch, fused_rnn
from fused_rnn import bench
torch.set_num_threads(2)
cases=[bench.Case(c,B,H,H,T,mode=m) for c in ("lstm","gru") for (B,H,T) in ((64,256,50),(8,512,200),(64,128,200)) for m in ("inference","training")]
for c in cases:
    r=bench.run_case(c,"cpu",min_time=1.0,aa=True)
    print(f"{c.cell} {c.mode[:5]} B={c.B} H={c.H} T={c.T}: torch {r['torch_ms']:.2f} fused {r['fused_ms']:.2f} speedup {r['speedup']:.3f} aa {r['aa']:.3f}", flush=True)
