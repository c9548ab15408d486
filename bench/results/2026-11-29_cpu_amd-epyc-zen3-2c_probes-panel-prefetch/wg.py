import torch, time, statistics as st
torch.set_num_threads(2)
def t(f, reps=15):
    f(); f()
    xs=[]
    for _ in range(reps):
        a=time.perf_counter(); f(); xs.append(time.perf_counter()-a)
    return st.median(xs)*1e3
for (B,T,H) in [(8,200,512),(8,50,512),(8,200,256),(64,50,512),(8,200,1024),(64,200,256),(8,200,128)]:
    N=B*T; GH=4*H; I=H
    dG=torch.randn(N,GH); X=torch.randn(N,I); Hp=torch.randn(N,H); XH=torch.cat([X,Hp],1)
    gi=torch.empty(GH,I); gh=torch.empty(GH,H); gb=torch.empty(GH,I+H)
    fl=2*GH*N*(I+H)/1e9
    a=t(lambda: (torch.mm(dG.t(),X,out=gi), torch.mm(dG.t(),Hp,out=gh)))
    b=t(lambda: torch.mm(dG.t(),XH,out=gb))
    c=t(lambda: (torch.cat([X,Hp],1,out=XH), torch.mm(dG.t(),XH,out=gb)))
    gbT=torch.empty(I+H,GH)
    d=t(lambda: torch.mm(XH.t(),dG,out=gbT))
    print(f"B={B} T={T} H={H}: two {a:.2f}ms ({fl/a*1e3:.0f}) one {b:.2f} ({fl/b*1e3:.0f}) cat+one {c:.2f} ({fl/c*1e3:.0f}) transposed-out {d:.2f} ({fl/d*1e3:.0f})")
