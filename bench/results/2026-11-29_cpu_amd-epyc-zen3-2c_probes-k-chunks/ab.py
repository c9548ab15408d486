"""A/B of FUSED_RNN k-chunks in one process: forward (train) and backward ops, alternating per rep."""
import torch, time, sys, statistics
import fused_rnn
from fused_rnn import _C
torch.set_num_threads(2)
ops = torch.ops.fused_rnn
def timeit(f):
    t=time.perf_counter(); f(); return time.perf_counter()-t
shapes=[("lstm",64,512,50),("lstm",64,1024,50),("lstm",8,512,200),("lstm",8,1024,50),("gru",64,512,50),("rnn_tanh",64,512,50),("lstm",64,256,50),("gru",8,512,200)]
if len(sys.argv)>1: shapes=[(s.split(',')[0],*map(int,s.split(',')[1:])) for s in sys.argv[1:]]
for cell,B,H,T in shapes:
    I=H; G={"lstm":4,"gru":3}.get(cell,1)
    x=torch.randn(T,B,I); hx=torch.zeros(B,H); cx=torch.zeros(B,H)
    wih=torch.randn(G*H,I)*0.05; whh=torch.randn(G*H,H)*0.05; bih=torch.randn(G*H); bhh=torch.randn(G*H)
    if cell=="lstm":
        fwd=lambda: ops.lstm_forward(x,hx,cx,wih,whh,bih,bhh,None,None,False,True)
        out,hn,cn,ws=fwd(); go=torch.randn_like(out)
        bwd=lambda: ops.lstm_backward(go,torch.zeros_like(hn),torch.zeros_like(cn),x,hx,cx,wih,whh,bih,bhh,None,None,out,ws,False,None)
    else:
        f=getattr(ops,cell+"_forward"); b=getattr(ops,cell+"_backward")
        fwd=lambda: f(x,hx,wih,whh,bih,bhh,None,False,True)
        out,hn,ws=fwd(); go=torch.randn_like(out)
        bwd=lambda: b(go,torch.zeros_like(hn),x,hx,wih,whh,bih,bhh,None,out,ws,False)
    res={}
    for on in (True,False):
        _C._set_cpu_k_chunks(on); r1=fwd(); r2=bwd()
        res[on]=(r1,r2)
    assert all(torch.equal(a,b) for a,b in zip(res[True][0],res[False][0])), "forward differs"
    assert all(torch.equal(a,b) for a,b in zip(res[True][1],res[False][1]) if a is not None and a.numel()), "backward differs"
    tf={True:[],False:[]}; tb={True:[],False:[]}
    budget=time.perf_counter()+8
    n=0
    while n<6 or (time.perf_counter()<budget and n<40):
        for on in ((True,False) if n%2==0 else (False,True)):
            _C._set_cpu_k_chunks(on)
            tf[on].append(timeit(fwd)); tb[on].append(timeit(bwd))
        n+=1
    m=lambda v: statistics.median(v)*1e3
    print(f"{cell} B={B} H={H} T={T} n={n} fwd on/off {m(tf[True]):.2f}/{m(tf[False]):.2f} ms = {m(tf[False])/m(tf[True]):.3f}x  bwd on/off {m(tb[True]):.2f}/{m(tb[False]):.2f} = {m(tb[False])/m(tb[True]):.3f}x  step {(m(tf[False])+m(tb[False]))/(m(tf[True])+m(tb[True])):.3f}x", flush=True)
_C._set_cpu_k_chunks(True)
