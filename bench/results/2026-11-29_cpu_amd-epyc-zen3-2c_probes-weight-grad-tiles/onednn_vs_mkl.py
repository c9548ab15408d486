import torch, time, statistics
torch.set_num_threads(2)
def med(f, n=9):
    for _ in range(2): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)
for (M,N,K,tA) in [(4096,1024,512,True),(2048,512,1024,True),(4096,1024,3200,True),(512,2048,2048,False),(3200,1024,4096,False),(3200,4096,1024,False)]:
    if tA:
        A=torch.randn(K,M).t()
    else:
        A=torch.randn(M,K)
    Bm=torch.randn(K,N)
    fl=2*M*N*K
    t1=med(lambda: A@Bm)
    # oneDNN via mkldnn_linear: out = x @ w^T ; x (M,K), w (N,K)
    xm=A.contiguous().to_mkldnn(); wm=Bm.t().contiguous().to_mkldnn()
    try:
        t2=med(lambda: torch._C._nn.mkldnn_linear(xm,wm,None))
        s2=f"{fl/t2/1e9:.0f}"
    except Exception as e:
        s2=str(e)[:80]
    print(f"M={M} N={N} K={K} transA={tA}: mkl {fl/t1/1e9:.0f} GF/s  onednn {s2}", flush=True)
