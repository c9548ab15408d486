# Inference forward, training forward and its backward timed apart, fused_rnn and torch.nn in one
# process (interleaved, 20 rounds after 3 warm-up, medians; GFLOP/s of the whole layer; backward 2x forward).
#   python lstm_forward_backward_split.py CELL B H I T [layers]
import torch, sys, fused_rnn, time
torch.set_num_threads(2)
cell=sys.argv[1]; B=int(sys.argv[2]); H=int(sys.argv[3]); I=int(sys.argv[4]); T=int(sys.argv[5]); L=int(sys.argv[6]) if len(sys.argv)>6 else 1
n=20
G={'LSTM':4,'GRU':3,'RNN':1}[cell]
fl=2*B*T*G*H*((I+H)+(L-1)*2*H)
torch.manual_seed(0)
ms={'fused':getattr(fused_rnn,cell)(I,H,L),'torch':getattr(torch.nn,cell)(I,H,L)}
x=torch.randn(T,B,I).requires_grad_()
res={k:([],[],[]) for k in ms}
for r in range(n+3):
  for k,m in ms.items():
    with torch.no_grad():
        s=time.perf_counter(); m(x); inf=time.perf_counter()-s
    s=time.perf_counter(); y=m(x)[0]; f=time.perf_counter()-s
    l=y.sum()
    s=time.perf_counter(); l.backward(); b=time.perf_counter()-s
    if r>=3:
        res[k][0].append(inf); res[k][1].append(f); res[k][2].append(b)
med=lambda v: sorted(v)[len(v)//2]
for k,(i,f,b) in res.items():
    print('%s %s B=%d H=%d I=%d T=%d L=%d inf %.2f ms (%.0f GF/s) fwd-train %.2f ms (%.0f) bwd %.2f ms (%.0f)'%(k,cell,B,H,I,T,L,med(i)*1e3,fl/med(i)/1e9,med(f)*1e3,fl/med(f)/1e9,med(b)*1e3,2*fl/med(b)/1e9))
