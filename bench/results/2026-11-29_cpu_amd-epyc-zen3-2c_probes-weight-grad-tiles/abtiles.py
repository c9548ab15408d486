# A/B of the weight gradients' products: the tiles' own product (pointwise_impl.h: product_tn_rows)
# against BLAS (MKL), _C._set_cpu_weight_grad_tiles(on/off); each fused run preceded by a torch.nn
# run (as in the matrix's interleaving), the order of the two variants alternating by round.
# Training steps (forward + backward of sum(output)), one layer, I = H, 2 threads, float32.
import torch, time, statistics as st, fused_rnn, sys, os
from fused_rnn import _C
torch.set_num_threads(2)
ROUNDS = int(os.environ.get("ROUNDS", "9"))
def case(cell, B, H, T):
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(H, H); f = getattr(fused_rnn, cell)(H, H); f.load_state_dict(ref.state_dict())
    xg = torch.randn(T, B, H).requires_grad_()
    def run(m):
        o, _ = m(xg); o.sum().backward()
    setting = {"tiles": True, "blas": False}
    res = {k: [] for k in setting}; tt = []
    for k in setting: _C._set_cpu_weight_grad_tiles(setting[k]); run(f)
    run(ref)
    for r in range(ROUNDS):
        for k in (("tiles", "blas") if r % 2 == 0 else ("blas", "tiles")):
            a = time.perf_counter(); run(ref); tt.append(time.perf_counter() - a)
            _C._set_cpu_weight_grad_tiles(setting[k]); a = time.perf_counter(); run(f); res[k].append(time.perf_counter() - a)
    _C._set_cpu_weight_grad_tiles(True)
    c, w, t = st.median(res["tiles"]), st.median(res["blas"]), st.median(tt)
    print(f"{cell} B={B} H={H} T={T}: torch {t*1e3:.1f} ms; tiles {c*1e3:.1f} ms ({t/c:.2f}x), blas {w*1e3:.1f} ms ({t/w:.2f}x); tiles/blas speed {w/c:.3f}", flush=True)
for a in sys.argv[1:]:
    c, B, H, T = a.split(',')
    case(c, int(B), int(H), int(T))
