import torch, time, statistics, sys
from torch.utils.cpp_extension import load
m = load('tnprobe', sources=['tn.cpp'], extra_cflags=['-O3','-march=haswell','-mtune=znver3','-fopenmp'], extra_ldflags=['-fopenmp'], verbose=False)
torch.set_num_threads(2)
def med(f, n=9):
    for _ in range(2): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)
cfgs=[(256,72,512),(256,72,-512),(512,72,-512)]
for (M,N,K) in [(4096,1024,512),(2048,512,1024),(2048,512,512)]:
    A=torch.randn(K,M); Bm=torch.randn(K,N)
    C=torch.zeros(M,N); C2=torch.zeros(M,N)
    ref=A.t().double()@Bm.double()
    fl=2*M*N*K
    line=[]
    for rnd in range(3):
        t1=med(lambda: torch.mm(A.t(),Bm,out=C2)); line.append(f"mkl {fl/t1/1e9:.0f}")
        for KC,MC,NC in cfgs:
            m.tn(A,Bm,C,False,KC,MC,NC)
            err=(C.double()-ref).abs().max().item()
            assert err < 1e-2, err
            t=med(lambda: m.tn(A,Bm,C,True,KC,MC,NC)); line.append(f"{KC}/{MC} {fl/t/1e9:.0f}")
    print(f"M={M} N={N} K={K}: "+" ".join(line), flush=True)
