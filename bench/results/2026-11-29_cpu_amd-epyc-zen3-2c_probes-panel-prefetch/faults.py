# LSTM training, torch.nn and fused_rnn alternating (order alternating by round); prints medians,
# and the minor page faults each side takes per step (getrusage).
import torch, time, statistics as st, fused_rnn, sys, resource
torch.set_num_threads(2)
B,H,T=int(sys.argv[1]),int(sys.argv[2]),int(sys.argv[3]); R=int(sys.argv[4]) if len(sys.argv)>4 else 7
torch.manual_seed(0)
ref=torch.nn.LSTM(H,H); f=fused_rnn.LSTM(H,H); f.load_state_dict(ref.state_dict())
xg=torch.randn(T,B,H).requires_grad_()
def run(m):
    o,_=m(xg); o.sum().backward()
ts={'torch':[], 'fused':[]}; flt={'torch':[], 'fused':[]}
mods={'torch':ref,'fused':f}
for k in mods: run(mods[k])
for r in range(R):
    for k in (('torch','fused') if r%2==0 else ('fused','torch')):
        f0=resource.getrusage(resource.RUSAGE_SELF).ru_minflt; a=time.perf_counter(); run(mods[k]); ts[k].append(time.perf_counter()-a)
        flt[k].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt-f0)
t,fu=st.median(ts['torch']),st.median(ts['fused'])
print(f"B={B} H={H} T={T}: torch {t*1e3:.0f} ms ({st.median(flt['torch']):.0f} minor faults), fused {fu*1e3:.0f} ms ({st.median(flt['fused']):.0f} faults), torch/fused {t/fu:.2f}", flush=True)
