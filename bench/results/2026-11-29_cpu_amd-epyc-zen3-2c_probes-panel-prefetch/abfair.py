# A/B of the one-row prefetch (probe switch: 1 = off), each fused run preceded by a torch.nn run
# (as in the matrix's interleaving), the order of the two variants alternating by round.
import torch, time, statistics as st, fused_rnn, sys, os
from fused_rnn import _C
torch.set_num_threads(2)
ROUNDS=int(os.environ.get("ROUNDS","9"))
def case(cell,B,H,T,mode):
    torch.manual_seed(0)
    ref=getattr(torch.nn,cell)(H,H); f=getattr(fused_rnn,cell)(H,H); f.load_state_dict(ref.state_dict())
    x=torch.randn(T,B,H)
    if mode=='inf':
        def run(m):
            with torch.no_grad(): m(x)
    else:
        xg=x.clone().requires_grad_()
        def run(m):
            o,_=m(xg); o.sum().backward()
    res={0:[],1:[]}; tt=[]
    for d in (0,1): _C._set_probe_prefetch(d); run(f)
    for r in range(ROUNDS):
        for d in ((0,1) if r%2==0 else (1,0)):
            a=time.perf_counter(); run(ref); tt.append(time.perf_counter()-a)
            _C._set_probe_prefetch(d); a=time.perf_counter(); run(f); res[d].append(time.perf_counter()-a)
    _C._set_probe_prefetch(0)
    on,off,t=st.median(res[0]),st.median(res[1]),st.median(tt)
    print(f"{cell} {mode} B={B} H={H} T={T}: torch/fused on {t/on:.2f} off {t/off:.2f}  on/off speed {off/on:.3f}", flush=True)
for a in sys.argv[1:]:
    c,mode,B,H,T=a.split(',')
    case(c,int(B),int(H),int(T),mode)
