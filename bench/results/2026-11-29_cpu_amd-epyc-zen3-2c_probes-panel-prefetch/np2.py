import os, sys
lib=sys.argv[1]
os.environ["OPENBLAS_NUM_THREADS"]="2"
import numpy as np, time, statistics as st
if lib=="mkl":
    import torch; torch.set_num_threads(2)
def t(f, reps=15):
    f(); f()
    xs=[]
    for _ in range(reps):
        a=time.perf_counter(); f(); xs.append(time.perf_counter()-a)
    return st.median(xs)*1e3
for (N,GH,I) in [(1600,2048,512),(3200,2048,512),(12800,1024,256),(2048,2048,2048),(1600,4096,1024),(400,2048,512)]:
    dG=np.random.randn(N,GH).astype(np.float32); X=np.random.randn(N,I).astype(np.float32)
    out=np.empty((GH,I),np.float32); W=np.random.randn(GH,I).astype(np.float32); o2=np.empty((N,I),np.float32)
    fl=2*N*GH*I/1e9
    if lib=="mkl":
        tdG=torch.from_numpy(dG); tX=torch.from_numpy(X); tout=torch.from_numpy(out); tW=torch.from_numpy(W); to2=torch.from_numpy(o2)
        a=t(lambda: torch.mm(tdG.t(),tX,out=tout)); c=t(lambda: torch.mm(tdG,tW,out=to2))
    else:
        a=t(lambda: np.matmul(dG.T,X,out=out)); c=t(lambda: np.matmul(dG,W,out=o2))
    print(f"{lib} N={N} GH={GH} I={I}: gw {fl/a*1e3:.0f} gin {fl/c*1e3:.0f} GFLOP/s")
