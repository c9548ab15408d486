import torch, time, statistics, sys, fused_rnn
torch.set_num_threads(2)
def med(f, n=21):
    for _ in range(3): f()
    ts=[]
    for _ in range(n):
        t0=time.perf_counter(); f(); ts.append(time.perf_counter()-t0)
    return statistics.median(ts)*1e3
for mode in ['LSTM','GRU']:
  for B,H,T in [(8,256,200),(8,512,50),(8,128,200)]:
    m=getattr(fused_rnn,mode)(H,H); r=getattr(torch.nn,mode)(H,H); x=torch.randn(T,B,H)
    with torch.no_grad():
        a=[];b=[]
        for _ in range(3): a.append(med(lambda: r(x))); b.append(med(lambda: m(x)))
    print(f"{mode} B={B} H={H} T={T}: torch {statistics.median(a):.2f} fused {statistics.median(b):.2f} speedup {statistics.median(a)/statistics.median(b):.2f}x", flush=True)
