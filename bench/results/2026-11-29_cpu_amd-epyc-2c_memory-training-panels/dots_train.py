import torch, time, statistics, fused_rnn
from fused_rnn import _C
torch.set_num_threads(2)
def med(f, n):
    for _ in range(2): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e3
print(_C._set_cpu_dots("auto"))
for cls in ("LSTM","GRU"):
  for B,H,T in [(1,128,50),(1,256,50),(1,256,200),(1,512,200),(4,256,50),(4,512,200),(2,128,200)]:
    m=getattr(fused_rnn,cls)(H,H); x=torch.randn(T,B,H,requires_grad=True)
    opt=torch.optim.SGD(m.parameters(), lr=1e-6)
    def step():
        opt.zero_grad(); o,_=m(x); o.sum().backward(); opt.step()
    n=max(5,int(300/(B*H*T/1e4+1)))
    res={"always":[],"never":[]}
    for r in range(3):
        for mode in res:
            _C._set_cpu_dots(mode); res[mode].append(med(step,n))
    _C._set_cpu_dots("auto")
    a=statistics.median(res["always"]); nv=statistics.median(res["never"])
    print(f"{cls} B={B} H={H} T={T}: dots {a:.3f} ms, panels packed each call {nv:.3f} ms, panels/dots {nv/a:.3f}",flush=True)
