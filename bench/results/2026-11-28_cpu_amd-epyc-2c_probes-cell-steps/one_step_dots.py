"""One forward step (T = 1, training) of LSTM/GRU ops reading the weights from panels or in place
(_C._set_cpu_dots never/always), with the weights unchanged between calls (panels found after a
byte comparison) and changed (add_(0) bumps the version, as an optimizer step would: repacked).
Medians of 100 calls, us. Behind kOneStepDotBatch in recurrence_cpu.cpp. python one_step_dots.py"""
import datetime
import torch, time, statistics, fused_rnn
torch.set_num_threads(2)
print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, fused_rnn {fused_rnn.__file__}")
ops=torch.ops.fused_rnn; C=fused_rnn._C
def med(f, n=100):
    for _ in range(10): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e6
for cell,G in (("gru",3),("lstm",4)):
  for H in (128,512):
    for B in (8,16,64):
        x=torch.randn(1,B,H); hx=torch.randn(B,H)
        wih=torch.randn(G*H,H)*0.05; whh=torch.randn(G*H,H)*0.05; b=torch.randn(G*H)
        if cell=="gru": f=lambda: ops.gru_forward(x,hx,wih,whh,b,b,None,False,True)
        else: f=lambda: ops.lstm_forward(x,hx,hx,wih,whh,b,b,None,None,False,True)
        def fresh():  # weights changed every call, as after an optimizer step
            wih.add_(0.0); whh.add_(0.0); f()
        r={}
        for _ in range(2):
            for mode in ("never","always"):
                old=C._set_cpu_dots(mode); r.setdefault(mode,[]).append((med(f),med(fresh))); C._set_cpu_dots(old)
        p=min(r["never"]); d=min(r["always"])
        print(f"{cell} H={H} B={B} T=1: panels {p[0]:.0f}/{p[1]:.0f} us (same/changed weights), in place {d[0]:.0f}/{d[1]:.0f}", flush=True)
