# A/B of serpentine item order in the step team (probe switch FUSED_RNN_PROBE_SERPENTINE=1),
# each fused run preceded by a torch.nn run (as in the matrix's interleaving), the order of the
# two variants alternating by round. Prints medians and torch/fused ratios.
import torch, time, statistics as st, fused_rnn, sys, os
torch.set_num_threads(2)
ROUNDS = int(os.environ.get("ROUNDS", "9"))
def setv(d): os.environ["FUSED_RNN_PROBE_SERPENTINE"] = "1" if d else "0"
def case(cell, B, H, T, mode):
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(H, H); f = getattr(fused_rnn, cell)(H, H); f.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, H)
    if mode == 'inf':
        def run(m):
            with torch.no_grad(): m(x)
    else:
        xg = x.clone().requires_grad_()
        def run(m):
            o, _ = m(xg); o.sum().backward()
    res = {0: [], 1: []}; tt = []
    for d in (0, 1): setv(d); run(f); run(ref)
    for r in range(ROUNDS):
        for d in ((0, 1) if r % 2 == 0 else (1, 0)):
            a = time.perf_counter(); run(ref); tt.append(time.perf_counter() - a)
            setv(d); a = time.perf_counter(); run(f); res[d].append(time.perf_counter() - a)
    setv(0)
    off, on, t = st.median(res[0]), st.median(res[1]), st.median(tt)
    print(f"{cell} {mode} B={B} H={H} T={T}: torch {t*1e3:.2f} ms; torch/fused plain {t/off:.2f}x serpentine {t/on:.2f}x;"
          f" serpentine time / plain {on/off:.3f}", flush=True)
for a in sys.argv[1:]:
    c, mode, B, H, T = a.split(',')
    case(c, int(B), int(H), int(T), mode)
