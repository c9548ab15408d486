"""Where an LSTM training step goes (one layer, I = H, fp32, 2 threads): the fused forward (train)
and backward ops alone, and GEMMs of the backward's shapes through torch (MKL): gin = dG W_ih,
gw = dG^T X (as the weight gradients run), gwT = the same with dG transposed first;
nn_train = torch.nn.LSTM forward+backward. Medians of 15 calls, ms."""
import torch, time, sys, statistics
import fused_rnn
torch.set_num_threads(2)
ops = torch.ops.fused_rnn
def med(f, n=15):
    for _ in range(3): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e3
for B,H,T in [(8,256,200),(8,512,50),(64,256,50),(64,512,50),(8,128,200)]:
    I=H; G=4
    x=torch.randn(T,B,I); hx=torch.zeros(B,H); cx=torch.zeros(B,H)
    wih=torch.randn(G*H,I)*0.05; whh=torch.randn(G*H,H)*0.05; bih=torch.randn(G*H); bhh=torch.randn(G*H)
    fwd=lambda: ops.lstm_forward(x,hx,cx,wih,whh,bih,bhh,None,None,False,True)
    out,hn,cn,ws=fwd()
    go=torch.randn_like(out); ghn=torch.randn_like(hn); gcn=torch.randn_like(cn)
    bwd=lambda: ops.lstm_backward(go,ghn,gcn,x,hx,cx,wih,whh,bih,bhh,None,None,out,ws,False,None)
    N=T*B; dG=torch.randn(N,G*H); X=x.reshape(N,I); O=out.reshape(N,H)
    gi=lambda: dG@wih
    gw=lambda: dG.t()@X
    gwT=lambda: (dG.t().contiguous())@X
    inf=lambda: ops.lstm_forward(x,hx,cx,wih,whh,bih,bhh,None,None,False,False)
    nn=torch.nn.LSTM(I,H)
    xr=x.clone().requires_grad_()
    def nntrain():
        o,_=nn(xr); o.backward(go)
    r=dict(fwd_train=med(fwd), fwd_inf=med(inf), bwd=med(bwd), gin=med(gi), gw=med(gw), gwT=med(gwT), nn_train=med(nntrain))
    fl=2*N*G*H*H
    print(f"B={B} H={H} T={T}", " ".join(f"{k}={v:.2f}" for k,v in r.items()), f" gemm(N*GH*H) GF/s gw={fl/r['gw']/1e6:.0f}", flush=True)
