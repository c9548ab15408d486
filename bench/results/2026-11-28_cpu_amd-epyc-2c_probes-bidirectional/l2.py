"""B=1 bidirectional inference (T=50, I=H) where one direction's W_hh is near a core's L2 (1 MiB
here): the directions at once against one after the other, 7 interleaved rounds of medians of 30
calls (ms), the ratio (after other / at once) per round. python l2.py"""
import time, statistics, torch, fused_rnn
from fused_rnn import _C
torch.set_num_threads(2)
def med(f, n):
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e3
for name,H in [("LSTM",192),("LSTM",256),("LSTM",320),("GRU",256),("GRU",320)]:
    fm = getattr(fused_rnn, name)(H, H, bidirectional=True)
    x = torch.randn(50, 1, H)
    def run():
        with torch.no_grad(): fm(x)
    a=[];b=[]
    for r in range(7):
        _C._set_cpu_concurrent_directions(True); a.append(med(run,30))
        _C._set_cpu_concurrent_directions(False); b.append(med(run,30))
    print(name,H, f"at once {statistics.median(a):.3f} after {statistics.median(b):.3f} ratio {statistics.median(b)/statistics.median(a):.2f}x  per-round {[round(y/x,2) for x,y in zip(a,b)]}", flush=True)
