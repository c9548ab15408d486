"""Probe: fused_rnn float32 times at one commit, printed as one line (run alternately against another
build via PYTHONPATH; see README.md). Medians of 15 calls after 3 warm-up calls, 2 threads."""
import sys, torch, time, statistics, fused_rnn
torch.set_num_threads(2); torch.manual_seed(0)
res=[]
for (cell,B,H,T,mode) in (("LSTM",1,256,50,"inf"),("LSTM",1,256,200,"inf"),("LSTM",1,512,200,"inf"),("GRU",1,256,50,"inf"),("LSTM",8,256,200,"train"),("LSTM",64,256,50,"train"),("LSTM",64,256,50,"inf"),("GRU",8,512,50,"inf")):
    f=getattr(fused_rnn,cell)(H,H); x=torch.randn(T,B,H,requires_grad=(mode=="train"))
    def run():
        with torch.set_grad_enabled(mode=="train"):
            o,_=f(x)
            if mode=="train": o.sum().backward()
    for _ in range(3): run()
    ts=[]
    for _ in range(15):
        t0=time.perf_counter(); run(); ts.append(time.perf_counter()-t0)
    res.append(statistics.median(ts)*1e3)
print(" ".join("%.3f"%r for r in res))
