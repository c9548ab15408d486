import torch, time, statistics
torch.set_num_threads(2)
def med(f, n=15):
    for _ in range(3): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e3
for (B,H,T) in [(8,512,50),(64,512,16),(64,1024,8),(8,256,50),(64,256,64)]:
    I=H; K=B*T
    dG=torch.randn(K,4*H); X=torch.randn(K,I)
    dGT=dG.t().contiguous()
    gwi=torch.empty(4*H,I)
    def tn(): torch.mm(dG.t(),X,out=gwi)
    def nn(): torch.mm(dGT,X,out=gwi)
    def tn_acc(): torch.addmm(gwi, dG.t(), X, out=gwi)
    def nn_acc(): torch.addmm(gwi, dGT, X, out=gwi)
    fl=2*K*4*H*I
    res={}
    for r in range(3):
        for k,f in [('TN',tn),('NN',nn),('TN+=',tn_acc),('NN+=',nn_acc)]:
            res.setdefault(k,[]).append(med(f))
    print(f"B={B} H={H} K={K}", " ".join(f"{k}={fl/min(v)/1e6:.0f}" for k,v in res.items()), flush=True)
