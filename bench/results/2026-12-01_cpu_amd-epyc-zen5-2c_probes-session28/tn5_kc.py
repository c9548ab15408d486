import torch, time, statistics, sys
from torch.utils.cpp_extension import load
m = load('tn5probe', sources=['tn5.cpp'], extra_cflags=['-O3','-fopenmp'], extra_ldflags=['-fopenmp'], verbose=False)
torch.set_num_threads(2)
def med(f, n=15):
    for _ in range(3): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)
lp = torch.ops.mkldnn._linear_pointwise
def onednn(A, Bm, C):
    # blocks like gemm.h: 256 rows x 512 depth
    K, M = A.shape; N = Bm.shape[1]
    for k0 in range(0, K, 512):
        w = Bm[k0:k0+512].t().contiguous()
        for m0 in range(0, M, 256):
            r = lp(A[k0:k0+512, m0:m0+256].t().contiguous(), w, None, "none", [], None)
            C[m0:m0+256].add_(r)
cfgs = [(0,256,144,512),(0,512,144,512),(0,512,144,256),(0,512,72,256),(0,384,144,384),(2,256,96,480),(2,512,96,480)]
for (M,N,K) in [(4096,1024,512),(2048,512,512),(1024,256,512)]:
    A=torch.randn(K,M); Bm=torch.randn(K,N)
    C=torch.zeros(M,N); C2=torch.zeros(M,N)
    ref=A.t().double()@Bm.double()
    fl=2*M*N*K
    line=[]
    for rnd in range(2):
        t1=med(lambda: torch.mm(A.t(),Bm,out=C2)); line.append(f"mkl {fl/t1/1e9:.0f}")
        t1=med(lambda: onednn(A,Bm,C2)); line.append(f"dnnl {fl/t1/1e9:.0f}")
        for v,KC,MC,NC in cfgs:
            for pf in (0,):
                m.tn(A,Bm,C,False,v,KC,MC,NC,pf)
                err=(C.double()-ref).abs().max().item()
                assert err < 1e-2, err
                t=med(lambda: m.tn(A,Bm,C,True,v,KC,MC,NC,pf)); line.append(f"v{v}/{KC}/p{pf} {fl/t/1e9:.0f}")
    print(f"M={M} N={N} K={K}: "+" ".join(line), flush=True)
