import torch, time, statistics
torch.set_num_threads(2)
def med(f, n=9):
    for _ in range(2): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)
lp=torch.ops.mkldnn._linear_pointwise
for (M,N,K) in [(4096,1024,512),(2048,512,1024),(4096,256,512),(1024,1024,512)]:
    # weight grad: dW (M x N) = dG^T (M x K) @ X (K x N); dG stored (K,M), X stored (K,N)
    dG=torch.randn(K,M); X=torch.randn(K,N)
    fl=2*M*N*K
    r=dG.t()@X
    t1=med(lambda: torch.mm(dG.t(),X))
    # linear: Y = x @ w^T, x (M,K) = dG^T (strided), w (N,K) = X^T (strided)
    try:
        y=lp(dG.t(),X.t(),None,"none",[],"")
        err=(y-r).abs().max().item()
        t2=med(lambda: lp(dG.t(),X.t(),None,"none",[],""))
        s2=f"{fl/t2/1e9:.0f} err {err:.1e}"
    except Exception as e: s2=str(e)[:200]
    # contiguous copies for comparison
    a=dG.t().contiguous(); b=X.t().contiguous()
    t3=med(lambda: lp(a,b,None,"none",[],""))
    t4=med(lambda: torch.mm(a,b.t()))
    print(f"M={M} N={N} K={K}: mkl TN {fl/t1/1e9:.0f}  lp strided {s2}  lp contig {fl/t3/1e9:.0f}  mkl NT {fl/t4/1e9:.0f}",flush=True)
