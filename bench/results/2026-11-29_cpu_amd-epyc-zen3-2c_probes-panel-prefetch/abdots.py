import torch, time, statistics as st, fused_rnn, sys
from fused_rnn import _C
torch.set_num_threads(2)
def ab(name, run_f, run_t, dists=(0,1,2), rounds=11, inner=1):
    res={d:[] for d in dists}; tt=[]
    for d in dists: _C._set_probe_prefetch(d); run_f()
    run_t()
    for _ in range(rounds):
        for d in dists:
            _C._set_probe_prefetch(d); a=time.perf_counter()
            for _ in range(inner): run_f()
            res[d].append(time.perf_counter()-a)
        a=time.perf_counter()
        for _ in range(inner): run_t()
        tt.append(time.perf_counter()-a)
    _C._set_probe_prefetch(0)
    m0=st.median(res[0]); t=st.median(tt)
    print(f"{name}: torch/fused " + " ".join(f"pf{d}={t/st.median(res[d]):.2f}" for d in dists) + "  pf/off " + " ".join(f"{m0/st.median(res[d]):.3f}" for d in dists[1:]), flush=True)
for cell,B,H,T in [("LSTM",1,512,50),("LSTM",1,1024,50),("LSTM",1,1024,100),("GRU",1,1024,50),("RNN",1,1024,50),("LSTM",2,512,20),("LSTM",4,1024,20)]:
    torch.manual_seed(0)
    ref=getattr(torch.nn,cell)(H,H); f=getattr(fused_rnn,cell)(H,H); f.load_state_dict(ref.state_dict()); x=torch.randn(T,B,H)
    def rf():
        with torch.no_grad(): f(x)
    def rt():
        with torch.no_grad(): ref(x)
    ab(f"{cell} inf B={B} H={H} T={T}", rf, rt)
for cell,B,H in [("LSTMCell",1,512),("LSTMCell",8,512),("LSTMCell",16,1024),("GRUCell",4,1024)]:
    ref=getattr(torch.nn,cell)(H,H); f=getattr(fused_rnn,cell)(H,H); f.load_state_dict(ref.state_dict()); x=torch.randn(B,H)
    def rf():
        with torch.no_grad(): f(x)
    def rt():
        with torch.no_grad(): ref(x)
    ab(f"{cell} inf B={B} H={H} x20", rf, rt, inner=20)
