"""A weight gradient's product C = A^T B (A: K rows of dG, B: K rows of the input) on the
backward's shapes: MKL (torch.mm on A.t()), oneDNN as gemm.h calls it (operands copied
transposed in blocks of 256 result rows x 512 reduction rows, results added), oneDNN on operands
transposed beforehand (no copies timed), and fused_rnn's own product (_C._cpu_weight_product, the
library's AVX-512 kernel on both threads). GFLOP/s from medians of 15; two rounds."""
import time, statistics, torch, fused_rnn
from fused_rnn import _C
torch.set_num_threads(2)
def med(f, n=15):
    for _ in range(3): f()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)
lp = torch.ops.mkldnn._linear_pointwise
def onednn_blocks(A, Bm, C):
    K, M = A.shape
    for k0 in range(0, K, 512):
        w = Bm[k0:k0 + 512].t().contiguous()
        for m0 in range(0, M, 256):
            r = lp(A[k0:k0 + 512, m0:m0 + 256].t().contiguous(), w, None, "none", [], None)
            if k0 == 0: C[m0:m0 + 256].copy_(r)
            else: C[m0:m0 + 256].add_(r)
# (M = G*H, N = I, K = rows of a segment of dG): LSTM H=128/256/512/1024 at B=64, H=256 at B=8 T=50,
# GRU H=256 (3H), RNN H=512
shapes = [(512, 128, 1024, "LSTM H=128 B=64"), (1024, 256, 512, "LSTM H=256 B=64"), (1024, 256, 400, "LSTM H=256 B=8 T=50"),
          (2048, 512, 512, "LSTM H=512"), (4096, 1024, 512, "LSTM H=1024 B=64"), (4096, 1024, 400, "LSTM H=1024 B=8 T=50"),
          (768, 256, 512, "GRU H=256"), (512, 512, 512, "RNN H=512")]
print(torch.__version__, _C.build_info()["cpu_capability"])
for M, N, K, name in shapes:
    torch.manual_seed(0)
    A = torch.randn(K, M); Bm = torch.randn(K, N); C = torch.empty(M, N)
    At = A.t().contiguous(); Bt = Bm.t().contiguous()
    ref = A.double().t() @ Bm.double()
    assert _C._cpu_weight_product(A, Bm, C, False)
    err = (C.double() - ref).abs().max().item()
    fl = 2 * M * N * K
    line = []
    for rnd in range(2):
        r = {}
        r["mkl"] = fl / med(lambda: torch.mm(A.t(), Bm, out=C)) / 1e9
        r["onednn+copies"] = fl / med(lambda: onednn_blocks(A, Bm, C)) / 1e9
        r["onednn"] = fl / med(lambda: lp(At, Bt, None, "none", [], None)) / 1e9
        r["own"] = fl / med(lambda: _C._cpu_weight_product(A, Bm, C, False)) / 1e9
        line.append(" ".join(f"{k} {v:.0f}" for k, v in r.items()) + f" (own/mkl {r['own']/r['mkl']:.2f}, own/onednn+copies {r['own']/r['onednn+copies']:.2f})")
    print(f"{name}: M={M} N={N} K={K} (own max err {err:.1e}): " + " | ".join(line), flush=True)
