import torch, fused_rnn
from fused_rnn import bench
torch.set_num_threads(2)
cases=[bench.Case(c,B,H,H,T,mode="training") for c in ("lstm","gru","rnn") for (B,H,T) in ((1,256,50),(1,512,200),(8,256,200),(64,256,50))]
for c in cases:
    r=bench.run_case(c,"cpu",min_time=1.0,aa=True)
    print(f"{c.cell} {c.mode[:5]} B={c.B} H={c.H} T={c.T}: torch {r['torch_ms']:.2f} fused {r['fused_ms']:.2f} speedup {r['speedup']:.3f} aa {r['aa']:.3f}", flush=True)
