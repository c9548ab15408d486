import torch, ctypes, time, statistics, os, sys
torch.set_num_threads(2)
lib=ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__),'lib','libtorch_cpu.so'))
c_int=ctypes.c_int; c_size=ctypes.c_size_t; fp=ctypes.c_void_p
lib.cblas_sgemm_pack_get_size.restype=c_size
lib.cblas_sgemm_pack_get_size.argtypes=[c_int,c_int,c_int,c_int]
lib.cblas_sgemm_pack.argtypes=[c_int,c_int,c_int,c_int,c_int,c_int,ctypes.c_float,fp,c_int,fp]
lib.cblas_sgemm_compute.argtypes=[c_int,c_int,c_int,c_int,c_int,c_int,fp,c_int,fp,c_int,ctypes.c_float,fp,c_int]
RM,NT,BM,PK=101,111,162,151
M=int(sys.argv[1]); K=int(sys.argv[2]); N=int(sys.argv[3]); steps=50
A=[torch.randn(M,K) for _ in range(steps)]
Bw=torch.randn(K,N)
C=torch.zeros(M,N)
sz=lib.cblas_sgemm_pack_get_size(BM,M,N,K)
buf=torch.empty(sz//4+16)
def packed():
    lib.cblas_sgemm_pack(RM,BM,NT,M,N,K,1.0,Bw.data_ptr(),N,buf.data_ptr())
    for a in A:
        lib.cblas_sgemm_compute(RM,NT,PK,M,N,K,a.data_ptr(),K,buf.data_ptr(),N,1.0,C.data_ptr(),N)
def plain():
    for a in A:
        C.addmm_(a,Bw)
for f in (plain,packed): f()
ref=torch.zeros(M,N); 
for a in A: ref.addmm_(a,Bw)
C.zero_(); packed(); print('maxdiff',(C-ref).abs().max().item())
r={'plain':[],'packed':[]}
for i in range(7):
    for n,f in (('plain',plain),('packed',packed)):
        s=time.perf_counter(); f(); r[n].append(time.perf_counter()-s)
fl=2*M*K*N*steps
for n,v in r.items(): print(M,K,N,n,f"{statistics.median(v)*1e3:.1f}ms {fl/statistics.median(v)/1e9:.0f} GFLOP/s")
