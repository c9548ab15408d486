import torch, time, statistics as st, fused_rnn, sys
torch.set_num_threads(int(sys.argv[5]) if len(sys.argv)>5 else 2)
ops=torch.ops.fused_rnn
B,H,T=int(sys.argv[1]),int(sys.argv[2]),int(sys.argv[3])
I=H
torch.manual_seed(0)
x=torch.randn(T,B,I); w_ih=torch.randn(4*H,I)*0.05; w_hh=torch.randn(4*H,H)*0.05; b1=torch.zeros(4*H); b2=torch.zeros(4*H)
out,hn,cn,ws=ops.lstm_forward(x,None,None,w_ih,w_hh,b1,b2,None,None,False,True)
go=torch.randn_like(out); gh=torch.zeros_like(hn); gc=torch.zeros_like(cn)
def bw(ig,wg): return lambda: ops.lstm_backward(go,gh,gc,x,None,None,w_ih,w_hh,b1,b2,None,None,out,ws,False,None,ig,wg)
fns={'fwd':lambda: ops.lstm_forward(x,None,None,w_ih,w_hh,b1,b2,None,None,False,True),'bw_all':bw(True,True),'bw_noin':bw(False,True),'bw_now':bw(True,False),'bw_none':bw(False,False)}
# extra: plain MKL GEMMs of the weight grads
dG=torch.randn(T*B,4*H); X=x.reshape(T*B,I); gw=torch.empty(4*H,I)
fns['mkl_gw_x2']=lambda: (torch.mm(dG.t(),X,out=gw), torch.mm(dG.t(),X,out=gw))
Wt=w_ih; gi=torch.empty(T*B,I)
fns['mkl_gin']=lambda: torch.mm(dG,Wt,out=gi)
ts={k:[] for k in fns}
for k,f in fns.items(): f()
for _ in range(int(sys.argv[4]) if len(sys.argv)>4 else 8):
    for k,f in fns.items():
        a=time.perf_counter(); f(); ts[k].append(time.perf_counter()-a)
unit=2*T*B*4*H*H/1e9
r={k:st.median(v)*1e3 for k,v in ts.items()}
print(f"B={B} H={H} T={T} unit={unit:.2f} GFLOP: "+"  ".join(f"{k} {v:.1f}ms" for k,v in r.items()))
print(f"  recurrent dh+pointwise (none) {r['bw_none']:.1f} = {unit/r['bw_none']*1e3:.0f} GFLOP/s; grad_input {r['bw_now']-r['bw_none']:.1f} ({unit/(r['bw_now']-r['bw_none'])*1e3:.0f}); weights {r['bw_noin']-r['bw_none']:.1f} ({2*unit/(r['bw_noin']-r['bw_none'])*1e3:.0f}); mkl 2 gw {r['mkl_gw_x2']:.1f} ({2*unit/r['mkl_gw_x2']*1e3:.0f}) mkl gin {r['mkl_gin']:.1f} ({unit/r['mkl_gin']*1e3:.0f}) fwd {r['fwd']:.1f} ({2*unit/r['fwd']*1e3:.0f})")
