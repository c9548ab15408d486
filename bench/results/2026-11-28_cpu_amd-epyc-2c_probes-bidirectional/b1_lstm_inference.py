"""LSTM B=1 inference (T=50, I=H, bidirectional) with the session-start build (no switch: one
fused column) and the new one (at once, then one after the other), medians of 7 interleaved rounds of
medians of 40 calls, ms. python b1_lstm_inference.py LABEL"""
import time, statistics, torch, fused_rnn, sys
torch.set_num_threads(2)
def med(f, n):
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e3
has = hasattr(fused_rnn._C, "_set_cpu_concurrent_directions")
for name,B,H in [("LSTM",1,128),("LSTM",1,64)]:
    ref = getattr(torch.nn, name)(H, H, bidirectional=True)
    fm = getattr(fused_rnn, name)(H, H, bidirectional=True); fm.load_state_dict(ref.state_dict())
    x = torch.randn(50, B, H)
    def run(m):
        with torch.no_grad(): m(x)
    out=[]
    for r in range(7):
        a=med(lambda: run(ref),40)
        if has: fused_rnn._C._set_cpu_concurrent_directions(True)
        b=med(lambda: run(fm),40)
        c=float('nan')
        if has:
            fused_rnn._C._set_cpu_concurrent_directions(False); c=med(lambda: run(fm),40)
        out.append((a,b,c))
    m=[statistics.median(x[i] for x in out) for i in range(3)]
    print(sys.argv[1], name, B, H, "nn %.3f fused %.3f seq %.3f  nn/fused %.2f nn/seq %.2f" % (m[0],m[1],m[2],m[0]/m[1],m[0]/m[2]), flush=True)
