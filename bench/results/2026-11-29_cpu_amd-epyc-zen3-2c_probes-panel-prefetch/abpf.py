# A/B of the panel prefetch distance, alternating in one process; medians of fused time and torch.nn
import torch, time, statistics as st, fused_rnn, sys
from fused_rnn import _C
torch.set_num_threads(2)
def case(cell,B,H,T,mode,L=1,rounds=9,dists=(0,4)):
    torch.manual_seed(0)
    ref=getattr(torch.nn,cell)(H,H,L); f=getattr(fused_rnn,cell)(H,H,L); f.load_state_dict(ref.state_dict())
    x=torch.randn(T,B,H)
    if mode=='inf':
        def run(m):
            with torch.no_grad(): m(x)
    else:
        xg=x.clone().requires_grad_()
        def run(m):
            o,_=m(xg); o.sum().backward()
    res={d:[] for d in dists}; tt=[]
    for d in dists: _C._set_probe_prefetch(d); run(f)
    run(ref)
    for _ in range(rounds):
        for d in dists:
            _C._set_probe_prefetch(d); a=time.perf_counter(); run(f); res[d].append(time.perf_counter()-a)
        a=time.perf_counter(); run(ref); tt.append(time.perf_counter()-a)
    _C._set_probe_prefetch(0)
    m0=st.median(res[0]); t=st.median(tt)
    print(f"{cell} {mode} B={B} H={H} T={T} L={L}: torch/fused " + " ".join(f"pf{d}={t/st.median(res[d]):.2f}" for d in dists) + "  pf/off " + " ".join(f"{m0/st.median(res[d]):.3f}" for d in dists[1:]), flush=True)
for a in sys.argv[1:]:
    c,mode,B,H,T,*rest=a.split(',')
    case(c,int(B),int(H),int(T),mode,*(int(r) for r in rest)) if False else case(c,int(B),int(H),int(T),mode)
