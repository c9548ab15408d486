import torch, time, sys, statistics
import fused_rnn
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv)>1 else 2)
ops = torch.ops.fused_rnn
def med(f, n=11):
    for _ in range(2): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e3
shapes=[(8,512,200),(8,256,200),(8,1024,50),(64,256,50)]
if len(sys.argv)>2: shapes=[tuple(map(int,s.split(','))) for s in sys.argv[2:]]
for B,H,T in shapes:
    I=H; G=4
    x=torch.randn(T,B,I); hx=torch.zeros(B,H); cx=torch.zeros(B,H)
    wih=torch.randn(G*H,I)*0.05; whh=torch.randn(G*H,H)*0.05; bih=torch.randn(G*H); bhh=torch.randn(G*H)
    fwd=lambda: ops.lstm_forward(x,hx,cx,wih,whh,bih,bhh,None,None,False,True)
    out,hn,cn,ws=fwd()
    go=torch.randn_like(out); ghn=torch.randn_like(hn); gcn=torch.randn_like(cn)
    bwd=lambda: ops.lstm_backward(go,ghn,gcn,x,hx,cx,wih,whh,bih,bhh,None,None,out,ws,False,None)
    N=T*B; dG=torch.randn(N,G*H); X=x.reshape(N,I)
    gi=lambda: dG@wih
    gw=lambda: dG.t()@X
    nn=torch.nn.LSTM(I,H)
    xr=x.clone().requires_grad_()
    def nnf():
        return nn(xr)[0]
    o=nnf()
    def nnb():
        o=nn(xr)[0]; o.backward(go)
    r=dict(fwd=med(fwd), bwd=med(bwd), gin=med(gi), gw=med(gw), nn_fwd=med(nnf), nn_train=med(nnb))
    r['nn_bwd']=r['nn_train']-r['nn_fwd']
    fl=2*N*G*H*H
    r['ratio']=r['nn_train']/(r['fwd']+r['bwd'])
    print(f"B={B} H={H} T={T}", " ".join(f"{k}={v:.2f}" for k,v in r.items()), f"| GF/s fwd={2*fl/r['fwd']/1e6:.0f} bwd={4*fl/r['bwd']/1e6:.0f} nnfwd={2*fl/r['nn_fwd']/1e6:.0f} nnbwd={4*fl/r['nn_bwd']/1e6:.0f} gemm={fl/r['gw']/1e6:.0f}", flush=True)
