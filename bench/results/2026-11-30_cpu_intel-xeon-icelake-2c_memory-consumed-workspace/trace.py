import sys, torch, fused_rnn
from torch.profiler import profile, ProfilerActivity
from torch._C._profiler import _EventType
cls, B, I, H, T, side = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6]
torch.set_num_threads(int(sys.argv[7]) if len(sys.argv) > 7 else 2)
lib = torch.nn if side == "torch" else fused_rnn
m = getattr(lib, cls)(I, H, bidirectional=True)
x = torch.randn(T, B, I, requires_grad=True)
for _ in range(2):
    out, _ = m(x); out.sum().backward(); m.zero_grad(set_to_none=True); x.grad = None
with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
    out, _ = m(x); out.sum().backward()
allocs = []
def walk(e, parents):
    if e.tag == _EventType.Allocation:
        f = e.extra_fields
        allocs.append((e.start_time_ns, f.ptr, f.alloc_size, parents[-1] if parents else "?", f.total_allocated))
    for c in e.children:
        walk(c, parents + ([e.name] if e.tag != _EventType.Allocation else []))
for r in prof.profiler.kineto_results.experimental_event_tree():
    walk(r, [])
allocs.sort()
live = {}; cur = peak = 0; snap = None
for t, p, n, who, tot in allocs:
    cur += n
    if n > 0: live[p] = (n, who)
    else: live.pop(p, None)
    if cur > peak: peak = cur; snap = dict(live)
print(f"peak {peak/2**20:.2f} MiB")
for p, (n, who) in sorted(snap.items(), key=lambda kv: -kv[1][0]):
    if n >= 1024: print(f"{n/1024:9.1f} KiB  {who}")
print("---- sequence (>=100 KB)")
t0 = allocs[0][0]; cur = 0; names = {}; k = 0
for t, p, n, who, tot in allocs:
    cur += n
    if abs(n) >= 100 * 1024:
        if n > 0: k += 1; names[p] = k
        print(f"{(t-t0)/1e6:8.2f} ms {'+' if n>0 else '-'}{abs(n)/1024:7.1f} KiB #{names.get(p)} {who:20s} live {cur/2**20:.2f}")
