import torch, time, statistics, fused_rnn
from fused_rnn import _C
torch.set_num_threads(2)
def med(f, n):
    for _ in range(3): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e3
for cls,B,H,T,bi in [("LSTM",1,128,50,False),("LSTM",1,256,50,False),("LSTM",1,512,200,False),("LSTM",8,256,50,False),("GRU",1,256,50,False),("LSTM",8,512,200,True),("GRU",1,256,200,True)]:
    m=getattr(fused_rnn,cls)(H,H,bidirectional=bi); x=torch.randn(T,B,H,requires_grad=True)
    def step():
        o,_=m(x); o.sum().backward()
    n=max(5,int(200/ (B*H*T/1e4+1)))
    res=[]
    for r in range(3):
        for on in (True,False):
            _C._set_cpu_panel_cache(on); res.append((on,med(step,n)))
    _C._set_cpu_panel_cache(True)
    on=statistics.median([t for o,t in res if o]); off=statistics.median([t for o,t in res if not o])
    print(f"{cls} B={B} H={H} T={T} bi={bi}: cache on {on:.3f} ms, off {off:.3f} ms, off/on {off/on:.3f}",flush=True)
