import torch, time, sys, statistics
import fused_rnn
torch.set_num_threads(2)
ops = torch.ops.fused_rnn
def med(f, n=11):
    for _ in range(2): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e3
shapes=[(64,512,50),(64,1024,50),(8,512,50)]
if len(sys.argv)>1: shapes=[tuple(map(int,s.split(','))) for s in sys.argv[1:]]
for B,H,T in shapes:
    I=H; G=4
    x=torch.randn(T,B,I); hx=torch.zeros(B,H); cx=torch.zeros(B,H)
    nn=torch.nn.LSTM(I,H)
    wih,whh,bih,bhh=[p.detach() for p in nn.parameters()]
    fwd=lambda: ops.lstm_forward(x,hx,cx,wih,whh,bih,bhh,None,None,False,True)
    out,hn,cn,ws=fwd()
    go=torch.randn_like(out); ghn=torch.zeros_like(hn); gcn=torch.zeros_like(cn)
    bwd=lambda: ops.lstm_backward(go,ghn,gcn,x,hx,cx,wih,whh,bih,bhh,None,None,out,ws,False,None)
    xr=x.clone().requires_grad_()
    def nnfwd():
        o,_=nn(xr)
    def nntrain():
        o,_=nn(xr); o.backward(go)
    N=T*B; dG=torch.randn(N,G*H); X=x.reshape(N,I)
    r={}
    for rnd in range(2):
        for k,f in [('nn_fwd',nnfwd),('fwd',fwd),('nn_train',nntrain),('bwd',bwd),('gemm_gw',lambda: dG.t()@X)]:
            r.setdefault(k,[]).append(med(f))
    r={k:min(v) for k,v in r.items()}
    fl=2*N*G*H*(I+H)
    print(f"B={B} H={H} T={T} " + " ".join(f"{k}={v:.1f}" for k,v in r.items()),
          f"| GF/s nn_fwd={fl/r['nn_fwd']/1e6:.0f} fwd={fl/r['fwd']/1e6:.0f} nn_bwd={2*fl/(r['nn_train']-r['nn_fwd'])/1e6:.0f} bwd={2*fl/r['bwd']/1e6:.0f} gemm={fl/2/r['gemm_gw']/1e6:.0f}", flush=True)
