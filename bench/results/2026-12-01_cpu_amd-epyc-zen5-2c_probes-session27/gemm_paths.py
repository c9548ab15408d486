import time, statistics, torch
torch.set_num_threads(2)
def bench(fn, reps=20):
    fn(); ts=[]
    for _ in range(reps):
        t0=time.perf_counter(); fn(); ts.append(time.perf_counter()-t0)
    return statistics.median(ts)
print(torch.__version__, torch.backends.mkldnn.is_available(), hasattr(torch.ops.mkldnn, "_linear_pointwise"))
for (M, N, K) in [(4096, 1024, 3200), (1024, 256, 3200), (1024, 1024, 1024), (3200, 1024, 4096)]:
    # out (M x N) = A (M x K) @ B (K x N); as dW = dG^T X: A = dG^T (strided), B = X
    dG = torch.randn(K, M); X = torch.randn(K, N)
    f = 2 * M * N * K / 1e9
    t_mm = bench(lambda: torch.mm(dG.t(), X))
    Xt = X.t().contiguous()
    try:
        t_lp = bench(lambda: torch.ops.mkldnn._linear_pointwise(dG.t(), Xt, None, "none", [], ""))
        err = (torch.ops.mkldnn._linear_pointwise(dG.t(), Xt, None, "none", [], "") - torch.mm(dG.t(), X)).abs().max().item()
    except Exception as e:
        t_lp, err = float("nan"), repr(e)[:100]
    t_lp2 = bench(lambda: torch.ops.mkldnn._linear_pointwise(dG.t().contiguous(), X.t().contiguous(), None, "none", [], ""))
    print(f"M={M} N={N} K={K}: mm {f/t_mm:.0f} GFLOP/s, mkldnn linear {f/t_lp:.0f} (with both copies {f/t_lp2:.0f}) err {err}")
