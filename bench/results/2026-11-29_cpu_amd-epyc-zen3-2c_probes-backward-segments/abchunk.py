# A/B of the backward in segments: dG held in chunks of CHUNK bytes (default 8 MiB) against dG whole
# (_set_cpu_backward_chunk(0)); each fused run preceded by a torch.nn run (as in the matrix's
# interleaving), the order of the two variants alternating by round. Training steps (forward +
# backward of sum(output)).
import torch, time, statistics as st, fused_rnn, sys, os
from fused_rnn import _C
torch.set_num_threads(2)
ROUNDS = int(os.environ.get("ROUNDS", "9"))
CHUNK = int(os.environ.get("CHUNK", str(8 << 20)))
def case(cell, B, H, T):
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(H, H); f = getattr(fused_rnn, cell)(H, H); f.load_state_dict(ref.state_dict())
    xg = torch.randn(T, B, H).requires_grad_()
    def run(m):
        o, _ = m(xg); o.sum().backward()
    setting = {"chunked": CHUNK, "whole": 0}
    res = {k: [] for k in setting}; tt = []
    for k in setting: _C._set_cpu_backward_chunk(setting[k]); run(f)
    run(ref)
    for r in range(ROUNDS):
        for k in (("chunked", "whole") if r % 2 == 0 else ("whole", "chunked")):
            a = time.perf_counter(); run(ref); tt.append(time.perf_counter() - a)
            _C._set_cpu_backward_chunk(setting[k]); a = time.perf_counter(); run(f); res[k].append(time.perf_counter() - a)
    _C._set_cpu_backward_chunk(8 << 20)
    c, w, t = st.median(res["chunked"]), st.median(res["whole"]), st.median(tt)
    print(f"{cell} B={B} H={H} T={T}: torch {t*1e3:.1f} ms; chunked {c*1e3:.1f} ms ({t/c:.2f}x), whole {w*1e3:.1f} ms ({t/w:.2f}x); chunked/whole speed {w/c:.3f}", flush=True)
for a in sys.argv[1:]:
    c, B, H, T = a.split(',')
    case(c, int(B), int(H), int(T))
