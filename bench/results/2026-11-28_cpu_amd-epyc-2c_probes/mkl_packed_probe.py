import torch, ctypes, time, os
lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
def bench(fn, n=200):
    fn(); ts=[]
    for _ in range(n):
        t=time.perf_counter(); fn(); ts.append(time.perf_counter()-t)
    ts.sort(); return ts[len(ts)//2]*1e6
RowMajor, NoTrans, Trans, AMat, BMat, Packed = 101, 111, 112, 161, 162, 151
for (M,K,N) in [(64,256,1024),(8,256,1024),(1,256,1024),(64,1024,4096),(3200,256,1024)]:
    A=torch.randn(M,K); W=torch.randn(N,K); C=torch.empty(M,N)
    size = lib.cblas_sgemm_pack_get_size(BMat, M, N, K)
    buf = torch.empty(size//4+16)
    lib.cblas_sgemm_pack.argtypes=[ctypes.c_int]*5+[ctypes.c_int]+[ctypes.c_float, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    # C = A · W^T : B = W^T (K x N) given W row-major (N x K) -> op(B)=Trans with ldb=K
    lib.cblas_sgemm_pack(RowMajor, BMat, Trans, M, N, K, ctypes.c_float(1.0), ctypes.c_void_p(W.data_ptr()), K, ctypes.c_void_p(buf.data_ptr()))
    lib.cblas_sgemm_compute.argtypes=[ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_void_p, ctypes.c_int]
    comp=lambda: lib.cblas_sgemm_compute(RowMajor, NoTrans, Packed, M, N, K, ctypes.c_void_p(A.data_ptr()), K, ctypes.c_void_p(buf.data_ptr()), K, ctypes.c_float(0.0), ctypes.c_void_p(C.data_ptr()), N)
    comp()
    ok = torch.allclose(C, A@W.t(), atol=1e-3)
    n = 20 if M*N*K > 1e8 else 200
    t1=bench(lambda: torch.mm(A,W.t(),out=C), n); t2=bench(comp, n)
    print(M,K,N,'mm us',round(t1,1),'packed us',round(t2,1), 'ok',ok, 'GFLOP/s', round(2*M*N*K/t1/1e3,1), round(2*M*N*K/t2/1e3,1))
