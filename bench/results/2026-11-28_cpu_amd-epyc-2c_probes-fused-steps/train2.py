import torch, time, statistics, sys, os, fused_rnn
torch.set_num_threads(2)
def med(f, n=9):
    for _ in range(2): f()
    ts=[]
    for _ in range(n):
        t0=time.perf_counter(); f(); ts.append(time.perf_counter()-t0)
    return statistics.median(ts)*1e3
for mode in ['LSTM','GRU','RNN']:
  for B,H,T in [(64,256,50),(8,512,50),(64,1024,10)]:
    m=getattr(fused_rnn,mode)(H,H); r=getattr(torch.nn,mode)(H,H); x=torch.randn(T,B,H,requires_grad=True)
    def step(mod):
        out,_=mod(x); out.sum().backward()
    res={'torch':[], 'blas':[], 'tiles':[]}
    for rep in range(3):
        res['torch'].append(med(lambda: step(r)))
        os.environ['FR_NT']='1'; res['blas'].append(med(lambda: step(m)))
        del os.environ['FR_NT']; res['tiles'].append(med(lambda: step(m)))
    print(mode,B,H,T, {k: "%.1f"%statistics.median(v) for k,v in res.items()}, flush=True)
