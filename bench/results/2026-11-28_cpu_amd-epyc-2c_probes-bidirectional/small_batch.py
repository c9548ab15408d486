"""Small-batch bidirectional inference (T=50, I=H): the directions at once against one after
the other, 9 interleaved rounds of medians of 40 calls (ms), the ratio per round. python small_batch.py"""
import time, statistics, torch, fused_rnn
from fused_rnn import _C
torch.set_num_threads(2)
def med(f, n):
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e3
for name,B,H in [("LSTM",1,128),("GRU",1,128),("RNN",1,128),("GRU",1,64),("LSTM",8,128),("GRU",8,128)]:
    fm = getattr(fused_rnn, name)(H, H, bidirectional=True)
    x = torch.randn(50, B, H)
    def run():
        with torch.no_grad(): fm(x)
    a=[];b=[]
    for r in range(9):
        _C._set_cpu_concurrent_directions(True); a.append(med(run,40))
        _C._set_cpu_concurrent_directions(False); b.append(med(run,40))
    print(name,B,H, f"at once {statistics.median(a):.3f} after {statistics.median(b):.3f} ratio {statistics.median(b)/statistics.median(a):.2f}x  per-round {[round(y/x,2) for x,y in zip(a,b)]}", flush=True)
