"""grad_input = dG W_ih: the backward with and without it (alternating, one process), against MKL's dG @ W_ih alone."""
import torch, sys, time, statistics
import fused_rnn
torch.set_num_threads(2)
ops=torch.ops.fused_rnn
def t1(f):
    t=time.perf_counter(); f(); return time.perf_counter()-t
for B,H,T in [(8,512,200),(64,512,50),(8,256,200),(64,256,50),(64,1024,50),(8,1024,50),(1,512,200)]:
    I=H; G=4
    x=torch.randn(T,B,I); hx=torch.zeros(B,H); cx=torch.zeros(B,H)
    wih=torch.randn(G*H,I)*0.05; whh=torch.randn(G*H,H)*0.05; bih=torch.randn(G*H); bhh=torch.randn(G*H)
    out,hn,cn,ws=ops.lstm_forward(x,hx,cx,wih,whh,bih,bhh,None,None,False,True)
    go=torch.randn_like(out); z1=torch.zeros_like(hn); z2=torch.zeros_like(cn)
    b=lambda ig: ops.lstm_backward(go,z1,z2,x,hx,cx,wih,whh,bih,bhh,None,None,out,ws,False,None,ig,True)
    dG=torch.randn(T*B,G*H)
    mkl=lambda: dG@wih
    r={"with":[], "without":[], "mkl":[]}
    for _ in range(2): b(True); b(False); mkl()
    end=time.perf_counter()+10; n=0
    while n<5 or (time.perf_counter()<end and n<40):
        r["with"].append(t1(lambda: b(True))); r["without"].append(t1(lambda: b(False))); r["mkl"].append(t1(mkl)); n+=1
    m={k:statistics.median(v)*1e3 for k,v in r.items()}
    fl=2*T*B*G*H*I
    gin=m["with"]-m["without"]
    print(f"B={B} H={H} T={T} n={n} bwd {m['with']:.2f} without grad_input {m['without']:.2f} -> grad_input {gin:.2f} ms ({fl/gin/1e6:.0f} GF/s); MKL dG@W_ih {m['mkl']:.2f} ms ({fl/m['mkl']/1e6:.0f} GF/s)", flush=True)
