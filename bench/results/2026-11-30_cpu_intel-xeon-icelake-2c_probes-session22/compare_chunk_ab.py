# Same-process A/B of the panel cache's comparison chunk (bytes a parallel task compares), at the
# batch sizes whose calls compare cached panels. torch.nn's call before each (caches cold, as in
# the matrix), the variants' order rotated every round.
import torch, time, statistics, sys, fused_rnn
torch.set_num_threads(2)
C=fused_rnn._C
cell=sys.argv[1]; rounds=int(sys.argv[2]); Bs=[int(b) for b in sys.argv[3].split(',')]; Hs=[int(h) for h in sys.argv[4].split(',')]; Ts=[int(t) for t in sys.argv[5].split(',')]
chunks=[int(c) for c in sys.argv[6].split(',')]
def with_chunk(m,x,c):
    def f():
        old=C._set_cpu_compare_chunk(c)
        try: m(x)
        finally: C._set_cpu_compare_chunk(old)
    return f
for B in Bs:
 for H in Hs:
  for T in Ts:
    torch.manual_seed(0)
    t=getattr(torch.nn,cell)(H,H).eval(); m=getattr(fused_rnn,cell)(H,H).eval(); m.load_state_dict(t.state_dict())
    x=torch.randn(T,B,H)
    runs={'torch':lambda: t(x)}
    for c in chunks: runs[c]=with_chunk(m,x,c)
    ts={k:[] for k in runs}
    with torch.no_grad():
        for f in runs.values(): f()
        a=C._cpu_forward_calls()
        for r in range(rounds):
            order=chunks[r%len(chunks):]+chunks[:r%len(chunks)]
            for k in order:
                s=time.perf_counter(); runs['torch'](); ts['torch'].append(time.perf_counter()-s)
                s=time.perf_counter(); runs[k](); ts[k].append(time.perf_counter()-s)
        path={k:v-a[k] for k,v in C._cpu_forward_calls().items() if v-a[k]}
    md={k:statistics.median(v)*1e6 for k,v in ts.items()}
    base=md[chunks[0]]
    print(f"{cell} B={B} H={H} T={T} {path}: torch {md['torch']:.0f} " + ' '.join(f"chunk {c>>10}K {md[c]:.0f} ({base/md[c]:.3f}x)" for c in chunks), flush=True)
