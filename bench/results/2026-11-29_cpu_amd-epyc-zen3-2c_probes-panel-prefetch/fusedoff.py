# fused steps (team, tile kernels) against BLAS per step + pointwise (_set_cpu_fused(False)), B=64 LSTM
# training, each fused_rnn run preceded by a torch.nn run, the variants' order alternating by round.
import torch, time, statistics as st, fused_rnn, sys, os
from fused_rnn import _C
torch.set_num_threads(2)
R=int(os.environ.get("ROUNDS","5"))
for B,H,T in [(64,1024,50),(64,512,200),(64,256,200),(8,512,200)]:
    torch.manual_seed(0)
    ref=torch.nn.LSTM(H,H); f=fused_rnn.LSTM(H,H); f.load_state_dict(ref.state_dict())
    xg=torch.randn(T,B,H).requires_grad_()
    def run(m):
        o,_=m(xg); o.sum().backward()
    res={True:[],False:[]}; tt=[]
    for v in (True,False): _C._set_cpu_fused(v); run(f)
    for r in range(R):
        for v in ((True,False) if r%2==0 else (False,True)):
            a=time.perf_counter(); run(ref); tt.append(time.perf_counter()-a)
            _C._set_cpu_fused(v); a=time.perf_counter(); run(f); res[v].append(time.perf_counter()-a)
    _C._set_cpu_fused(True)
    t=st.median(tt); on=st.median(res[True]); off=st.median(res[False])
    print(f"LSTM train B={B} H={H} T={T}: torch {t*1e3:.0f} ms, fused steps {on*1e3:.0f} ({t/on:.2f}x), BLAS steps {off*1e3:.0f} ({t/off:.2f}x)", flush=True)
