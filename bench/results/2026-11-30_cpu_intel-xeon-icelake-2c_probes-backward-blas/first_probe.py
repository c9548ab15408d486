import time, statistics, torch, fused_rnn, sys
from fused_rnn import _C
torch.set_num_threads(2)
cell = sys.argv[1]
for B, H, T in [tuple(map(int, s.split(","))) for s in sys.argv[2:]]:
    torch.manual_seed(0)
    m = getattr(fused_rnn, cell)(H, H)
    x = torch.randn(T, B, H, requires_grad=True)
    res = {True: [], False: []}
    for r in range(int(__import__("os").environ.get("ROUNDS", 14))):
        for fused in ((True, False) if r % 2 else (False, True)):
            out, _ = m(x)
            prev = _C._set_cpu_fused(fused)
            t0 = time.perf_counter(); out.sum().backward(); res[fused].append(time.perf_counter() - t0)
            _C._set_cpu_fused(prev)
    a, b = statistics.median(res[True][2:]), statistics.median(res[False][2:])
    print(f"{cell} B={B} H={H} T={T}: bwd tiles {a*1e3:.1f} ms  per-step BLAS {b*1e3:.1f} ms  tiles/BLAS time {a/b:.2f}", flush=True)
