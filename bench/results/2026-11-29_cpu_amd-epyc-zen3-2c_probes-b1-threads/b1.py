import torch, time, sys, statistics
import fused_rnn
def med(f, n=41):
    for _ in range(5): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e6
torch.manual_seed(0)
for H in [128,256,512]:
  for T in [1,10,50,200]:
    x=torch.randn(T,1,H)
    nn=torch.nn.LSTM(H,H); fm=fused_rnn.LSTM(H,H); fm.load_state_dict(nn.state_dict())
    res=[]
    for th in [1,2]:
        torch.set_num_threads(th)
        with torch.no_grad():
            a=med(lambda: nn(x)); b=med(lambda: fm(x))
        res.append(f"th{th}: nn {a:8.0f} fused {b:8.0f} ({a/b:.2f}x) per-step nn {a/T:6.1f} fused {b/T:6.1f}")
    print(f"H={H} T={T} | "+" | ".join(res), flush=True)
