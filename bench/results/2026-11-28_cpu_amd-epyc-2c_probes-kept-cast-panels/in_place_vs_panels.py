"""Probe: bfloat16 LSTM inference at B <= 4 with the weights read in place (always), from panels (never) and
as auto picks, interleaved in one process with torch.nn; 11 rounds, medians, 2 threads. Run after the
panels of kept casts stopped being byte-compared (the auto rule still the old one then)."""
import torch, fused_rnn, time, statistics, sys
torch.set_num_threads(2)
C=fused_rnn._C
for (cell,B,H,T) in [("LSTM",b,h,t) for b in (1,2,4) for h in (256,512,1024) for t in (20,100)]:
    ref=getattr(torch.nn,cell)(H,H).bfloat16(); f=getattr(fused_rnn,cell)(H,H).bfloat16(); f.load_state_dict(ref.state_dict()); x=torch.randn(T,B,H,dtype=torch.bfloat16)
    r={"always":[],"never":[],"auto":[]};n=[]
    with torch.no_grad():
        for m in r: C._set_cpu_dots(m); f(x); f(x)
        ref(x)
        for _ in range(11):
            for m,lst in r.items():
                C._set_cpu_dots(m); t0=time.perf_counter(); f(x); lst.append(time.perf_counter()-t0)
            t0=time.perf_counter(); ref(x); n.append(time.perf_counter()-t0)
    C._set_cpu_dots("auto")
    md={m:statistics.median(v)*1e3 for m,v in r.items()}; mn=statistics.median(n)*1e3
    print(f"{cell} B={B} H={H} T={T}: torch.nn {mn:.3f} | in place {md['always']:.3f} | panels {md['never']:.3f} | auto {md['auto']:.3f} ms | in place/panels {md['never']/md['always']:.2f}x")
