import torch, time, statistics, sys
import fused_rnn
def med(f, n=11):
    for _ in range(2): f()
    ts=[]
    for _ in range(n):
        t0=time.perf_counter(); f(); ts.append(time.perf_counter()-t0)
    return statistics.median(ts)*1e3
for mode in ['LSTM']:
  for B,H,T in [(64,256,50),(64,1024,10),(64,512,20)]:
    ours=getattr(fused_rnn,mode)(16,H); xx=torch.randn(T,B,16)
    ref=getattr(torch.nn,mode)(16,H)
    fl=2*T*B*4*H*H/1e9
    for nt in [1,2,1,2]:
        torch.set_num_threads(nt)
        with torch.no_grad():
            tf=med(lambda: ours(xx)); tr=med(lambda: ref(xx))
        print(f"{nt} thr {mode} B={B} H={H}: fused {tf:.2f}ms ({fl/tf*1e3:.0f} GF/s)  torch {tr:.2f}ms ({fl/tr*1e3:.0f} GF/s)")
