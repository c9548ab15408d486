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
    dG=torch.randn(K,4*H); X=torch.randn(K,I); Hp=torch.randn(K,H)
    XH=torch.cat([X,Hp],1)
    gwi=torch.empty(4*H,I); gwh=torch.empty(4*H,H); gcat=torch.empty(4*H,I+H)
    gT=torch.empty(I+H,4*H)
    def two():
        torch.mm(dG.t(),X,out=gwi); torch.mm(dG.t(),Hp,out=gwh)
    def one():
        torch.mm(dG.t(),XH,out=gcat)
    def one_cat():
        torch.cat([X,Hp],1,out=XH); torch.mm(dG.t(),XH,out=gcat)
    def oneT():
        torch.mm(XH.t(),dG,out=gT)
    fl=2*K*4*H*(I+H)
    res={}
    for r in range(3):
        for k,f in [('two',two),('one',one),('one+cat',one_cat),('oneT',oneT)]:
            res.setdefault(k,[]).append(med(f))
    print(f"B={B} H={H} K={K}", " ".join(f"{k}={fl/min(v)/1e6:.0f}GF/s" for k,v in res.items()), flush=True)
