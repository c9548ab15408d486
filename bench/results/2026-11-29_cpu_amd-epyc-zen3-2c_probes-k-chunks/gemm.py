import torch, time, statistics, sys
torch.set_num_threads(2)
def med(f, n=9):
    for _ in range(2): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e3
lp = torch.ops.mkldnn._linear_pointwise
for (N,GH,K) in [(1600,2048,512),(1600,1024,256),(400,4096,1024),(3200,1024,256),(12800,1024,256),(2048,2048,2048)]:
    dG=torch.randn(N,GH); X=torch.randn(N,K); W=torch.randn(GH,K)
    fl=2*N*GH*K
    r={}
    r['mkl_gw']=med(lambda: dG.t()@X)               # (GH x K) = dG^T X
    r['mkl_gin']=med(lambda: dG@W)                  # (N x K) = dG W
    r['mkl_fwd']=med(lambda: X@W.t())               # (N x GH) = X W^T
    try:
        r['dnnl_fwd']=med(lambda: lp(X,W,None,"none",[],""))
        r['dnnl_gin']=med(lambda: lp(dG,W.t(),None,"none",[],""))
        dGt=dG.t(); Xt=X.t()
        r['dnnl_gw']=med(lambda: lp(Xt.contiguous(),dGt.contiguous(),None,"none",[],"").t())
        r['dnnl_gw_view']=med(lambda: lp(dGt,Xt,None,"none",[],""))
        assert torch.allclose(lp(dGt,Xt,None,"none",[],""), dG.t()@X, rtol=1e-3, atol=1e-2)
    except Exception as e:
        print("dnnl:", e)
    print(f"N={N} GH={GH} K={K}", " ".join(f"{k}={v:.2f}ms({fl/v/1e6:.0f})" for k,v in r.items()), flush=True)
