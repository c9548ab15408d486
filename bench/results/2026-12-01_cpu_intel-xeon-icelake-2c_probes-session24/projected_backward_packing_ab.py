# A projected LSTM training step with MKL packing switched per half (_set_cpu_packed_gemm before the
# forward and before the backward), 4 variants rotated, torch.nn timed each round; medians.
#   python projected_backward_packing_ab.py B I H P T [rounds]
import torch, sys, fused_rnn, time
from fused_rnn import _C
torch.set_num_threads(2)
B,I,H,P,T=map(int,sys.argv[1:6]); rounds=int(sys.argv[6]) if len(sys.argv)>6 else 9
torch.manual_seed(0)
m=fused_rnn.LSTM(I,H,proj_size=P); ref=torch.nn.LSTM(I,H,proj_size=P)
x=torch.randn(T,B,I,requires_grad=True)
def step(fp,bp):
    _C._set_cpu_packed_gemm(fp); out,_=m(x); _C._set_cpu_packed_gemm(bp); out.sum().backward()
variants={'fwd0bwd0':(0,0),'fwd1bwd0':(1,0),'fwd0bwd1':(0,1),'fwd1bwd1':(1,1)}
res={k:[] for k in variants}; res['torch']=[]
for r in range(rounds+1):
    ks=list(variants); ks=ks[r%4:]+ks[:r%4]
    for k in ks:
        ref(x)[0].sum().backward()
        s=time.perf_counter(); step(*variants[k]); e=time.perf_counter()-s
        if r: res[k].append(e)
    s=time.perf_counter(); ref(x)[0].sum().backward(); e=time.perf_counter()-s
    if r: res['torch'].append(e)
med=lambda v: sorted(v)[len(v)//2]
print('proj training B=%d I=%d H=%d P=%d T=%d: '%(B,I,H,P,T)+'  '.join('%s %.2f ms'%(k,med(v)*1e3) for k,v in res.items()))
