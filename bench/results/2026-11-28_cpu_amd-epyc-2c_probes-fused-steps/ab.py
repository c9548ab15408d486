import torch, time, sys, statistics
import fused_rnn
from fused_rnn import _C
torch.set_num_threads(2)
def med(f, n=15):
    for _ in range(3): f()
    ts=[]
    for _ in range(n):
        t0=time.perf_counter(); f(); ts.append(time.perf_counter()-t0)
    return statistics.median(ts)*1e3
shapes=[(64,256,256,50),(1,256,256,200),(16,512,512,50),(64,1024,1024,10),(8,64,64,100)]
for mode in ['LSTM','GRU','RNN']:
  for B,I,H,T in shapes:
    ref=getattr(torch.nn,mode)(I,H); ours=getattr(fused_rnn,mode)(I,H); ours.load_state_dict(ref.state_dict())
    x=torch.randn(T,B,I)
    with torch.no_grad():
        tr=med(lambda: ref(x)); 
        _C._set_cpu_fused(False); tu=med(lambda: ours(x))
        _C._set_cpu_fused(True); tf=med(lambda: ours(x))
        err=(ours(x)[0]-ref(x)[0]).abs().max().item()
    fl=2*T*B*4*H*(I+H)*(1 if mode=='LSTM' else 3/4 if mode=='GRU' else 1/4)/1e9
    print(f"{mode} B={B} H={H} T={T}: torch {tr:.2f}ms unfused {tu:.2f} fused {tf:.2f}  speedup {tr/tf:.2f}x  fusedGF {fl/tf*1e3:.0f} err {err:.1e}", flush=True)
