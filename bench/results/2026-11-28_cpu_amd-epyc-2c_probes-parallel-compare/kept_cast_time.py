"""Time of _C._kept_cast for an 8 MB bfloat16 weight found unchanged (the byte comparison, nearly all of it); 41 calls, median."""
import torch, fused_rnn, time, statistics
torch.set_num_threads(2)
C=fused_rnn._C
w=torch.randn(4096,1024).bfloat16(); w2=torch.randn(1024,1024)
C._kept_cast(w, torch.float32)
for name,f in (("kept_cast 8 MB bf16",lambda: C._kept_cast(w, torch.float32)),):
    ts=[]
    for _ in range(41):
        t0=time.perf_counter(); f(); ts.append(time.perf_counter()-t0)
    print(name, "%.3f ms"%(statistics.median(ts)*1e3))
