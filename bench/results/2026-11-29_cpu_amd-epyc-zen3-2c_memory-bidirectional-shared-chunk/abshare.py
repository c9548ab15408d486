# A/B of directions at once sharing the backward's chunk of dG (each 4 MiB of the default 8) against
# each holding a whole chunk (as before: emulated with a 16 MiB setting, halved per direction = 8).
# Bidirectional modules, training steps (forward + backward of sum(output)), 2 threads, float32;
# each fused run preceded by a torch.nn run, the variants' order alternating by round.
import torch, time, statistics as st, fused_rnn, sys, os
from fused_rnn import _C
torch.set_num_threads(2)
ROUNDS = int(os.environ.get("ROUNDS", "9"))
def case(cell, B, H, T):
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(H, H, bidirectional=True); f = getattr(fused_rnn, cell)(H, H, bidirectional=True)
    f.load_state_dict(ref.state_dict())
    xg = torch.randn(T, B, H).requires_grad_()
    def run(m):
        o, _ = m(xg); o.sum().backward()
    setting = {"shared": 8 << 20, "own": 16 << 20}
    res = {k: [] for k in setting}; tt = []
    for k in setting: _C._set_cpu_backward_chunk(setting[k]); run(f)
    run(ref)
    for r in range(ROUNDS):
        for k in (("shared", "own") if r % 2 == 0 else ("own", "shared")):
            a = time.perf_counter(); run(ref); tt.append(time.perf_counter() - a)
            _C._set_cpu_backward_chunk(setting[k]); a = time.perf_counter(); run(f); res[k].append(time.perf_counter() - a)
    _C._set_cpu_backward_chunk(8 << 20)
    c, w, t = st.median(res["shared"]), st.median(res["own"]), st.median(tt)
    print(f"bidirectional {cell} B={B} H={H} T={T}: torch {t*1e3:.1f} ms; shared {c*1e3:.1f} ms ({t/c:.2f}x), own {w*1e3:.1f} ms ({t/w:.2f}x); shared/own speed {w/c:.3f}", flush=True)
for a in sys.argv[1:]:
    c, B, H, T = a.split(',')
    case(c, int(B), int(H), int(T))
