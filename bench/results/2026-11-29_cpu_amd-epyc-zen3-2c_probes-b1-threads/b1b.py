import torch, time, sys, statistics, os
import fused_rnn
def med(f, n=61):
    for _ in range(5): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e6
torch.manual_seed(0)
torch.set_num_threads(int(os.environ.get('TH','2')))
out=[]
for H,T in [(128,50),(256,50),(256,200),(512,50),(512,200)]:
    x=torch.randn(T,1,H)
    nn=torch.nn.LSTM(H,H); fm=fused_rnn.LSTM(H,H); fm.load_state_dict(nn.state_dict())
    with torch.no_grad():
        r=[(med(lambda: nn(x)), med(lambda: fm(x))) for _ in range(3)]
    a=statistics.median([p[0] for p in r]); b=statistics.median([p[1] for p in r])
    out.append(f"H={H} T={T}: nn {a:7.0f} fused {b:7.0f} ({a/b:.2f}x)")
print(os.environ.get('TAG',''), " | ".join(out), flush=True)
