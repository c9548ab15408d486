# Same-process A/B of the forward's two weight readings at small batch: in place ("dots") against
# panels (cached, compared each call). Interleaved as the matrix times them (torch.nn between the
# calls: cold caches), and warm (the timed call right after two of its own).
import torch, time, statistics, sys, fused_rnn
torch.set_num_threads(2)
C=fused_rnn._C
cell=sys.argv[1]; rounds=int(sys.argv[2]); Bs=[int(b) for b in sys.argv[3].split(',')]; Hs=[int(h) for h in sys.argv[4].split(',')]; Ts=[int(t) for t in sys.argv[5].split(',')]
def forced(m,x,mode):
    def f():
        old=C._set_cpu_dots(mode)
        try: m(x)
        finally: C._set_cpu_dots(old)
    return f
for B in Bs:
 for H in Hs:
  for T in Ts:
    torch.manual_seed(0)
    t=getattr(torch.nn,cell)(H,H).eval(); m=getattr(fused_rnn,cell)(H,H).eval(); m.load_state_dict(t.state_dict())
    x=torch.randn(T,B,H)
    runs={'torch':lambda: t(x),'dots':forced(m,x,'always'),'panels':forced(m,x,'never')}
    res={}
    with torch.no_grad():
        for f in runs.values(): f()
        for setting in ('interleaved','warm'):
            ts={k:[] for k in runs}
            for r in range(rounds):
                for k,f in runs.items():
                    if setting=='warm': f(); f()
                    s=time.perf_counter(); f(); ts[k].append(time.perf_counter()-s)
            res[setting]={k:statistics.median(v)*1e6 for k,v in ts.items()}
    i,w=res['interleaved'],res['warm']
    print(f"{cell} B={B} H={H} T={T} T*B/H={T*B/H:.2f}: interleaved torch {i['torch']:.0f} dots {i['dots']:.0f} panels {i['panels']:.0f} panels/dots {i['panels']/i['dots']:.2f} | warm torch {w['torch']:.0f} dots {w['dots']:.0f} panels {w['panels']:.0f} panels/dots {w['panels']/w['dots']:.2f}", flush=True)
