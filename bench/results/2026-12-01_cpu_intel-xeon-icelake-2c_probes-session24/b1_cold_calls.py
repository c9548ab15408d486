# A B=1 (or any) inference call of fused_rnn timed warm (right after its own call), right after
# torch.nn's call of the same layer, and right after 64 MB written (caches cold); torch.nn timed too.
# 30 rounds after 3, medians, microseconds a step.   python b1_cold_calls.py CELL B H T [layers]
import torch, sys, fused_rnn, time
torch.set_num_threads(2)
cell=sys.argv[1]; B=int(sys.argv[2]); H=int(sys.argv[3]); T=int(sys.argv[4]); L=int(sys.argv[5]) if len(sys.argv)>5 else 1
torch.manual_seed(0)
ref=getattr(torch.nn,cell)(H,H,L); ours=getattr(fused_rnn,cell)(H,H,L); ours.load_state_dict(ref.state_dict())
x=torch.randn(T,B,H)
junk=torch.empty(64*2**20//4)
res={'warm':[],'after_torch':[],'after_flush':[],'torch':[]}
def t(f):
    s=time.perf_counter(); f(); return time.perf_counter()-s
with torch.no_grad():
    for r in range(33):
        a=t(lambda: ours(x)); b=t(lambda: ours(x))   # b: warm
        c=t(lambda: ref(x)); d=t(lambda: ours(x))    # d: after torch.nn
        junk.fill_(r); e=t(lambda: ours(x))          # e: after 64 MB written
        if r>=3:
            res['warm'].append(b); res['torch'].append(c); res['after_torch'].append(d); res['after_flush'].append(e)
med=lambda v: sorted(v)[len(v)//2]*1e6/T
print(cell,'B=%d H=%d T=%d L=%d'%(B,H,T,L),'  '.join('%s %.1f us/step'%(k,med(v)) for k,v in res.items()))
