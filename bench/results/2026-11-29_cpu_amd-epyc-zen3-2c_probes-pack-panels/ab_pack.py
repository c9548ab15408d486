# A/B of the panel packing (probe switch: _C._set_probe_split(True) = new blocked/transposing pack,
# False = the element-by-element pack it replaces), each fused run preceded by a torch.nn run (as in
# the matrix's interleaving), the order of the two variants alternating by round. Medians.
# Cases: Cell,mode,B,H[,T]: a cell (T absent) or a layer of T steps; mode inf or train.
import torch, time, statistics as st, fused_rnn, sys, os
from fused_rnn import _C
torch.set_num_threads(2)
ROUNDS = int(os.environ.get("ROUNDS", "9"))
def setv(d): _C._set_probe_split(bool(d))
def case(cell, mode, B, H, T):
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(H, H); f = getattr(fused_rnn, cell)(H, H); f.load_state_dict(ref.state_dict())
    x = torch.randn(B, H) if T is None else torch.randn(T, B, H)
    if mode == 'inf':
        def run(m):
            with torch.no_grad(): m(x)
    else:
        xg = x.clone().requires_grad_()
        def run(m):
            o = m(xg); (o[0] if isinstance(o, tuple) else o).sum().backward()
    res = {0: [], 1: []}; tt = []
    for d in (0, 1): setv(d); run(f); run(ref)
    for r in range(ROUNDS):
        for d in ((0, 1) if r % 2 == 0 else (1, 0)):
            a = time.perf_counter(); run(ref); tt.append(time.perf_counter() - a)
            setv(d); a = time.perf_counter(); run(f); res[d].append(time.perf_counter() - a)
    setv(1)
    old, new, t = st.median(res[0]), st.median(res[1]), st.median(tt)
    print(f"{cell} {mode} B={B} H={H} T={T}: torch.nn {t*1e3:.2f} ms; torch/fused old pack {t/old:.2f}x new pack {t/new:.2f}x;"
          f" new time / old {new/old:.3f}", flush=True)
for a in sys.argv[1:]:
    p = a.split(',')
    case(p[0], p[1], int(p[2]), int(p[3]), int(p[4]) if len(p) > 4 else None)
