import torch, ctypes, os
torch.set_num_threads(2)
lib=ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__),'lib','libtorch_cpu.so'))
c_int=ctypes.c_int; fp=ctypes.c_void_p
lib.cblas_sgemm_pack_get_size.restype=ctypes.c_size_t
lib.cblas_sgemm_pack_get_size.argtypes=[c_int]*4
lib.cblas_sgemm_pack.argtypes=[c_int]*6+[ctypes.c_float,fp,c_int,fp]
lib.cblas_sgemm_compute.argtypes=[c_int]*6+[fp,c_int,fp,c_int,ctypes.c_float,fp,c_int]
for packm in (1,4,64):
  for K,N in ((4096,1024),(300,77)):
    Bw=torch.randn(K,N); sz=lib.cblas_sgemm_pack_get_size(162,packm,N,K); buf=torch.empty(sz//4+1)
    lib.cblas_sgemm_pack(101,162,111,packm,N,K,1.0,Bw.data_ptr(),N,buf.data_ptr())
    worst=0
    for m in (1,3,4,17,64,100,500):
        A=torch.randn(m,K); C=torch.randn(m,N); ref=C+A.double()@Bw.double()
        lib.cblas_sgemm_compute(101,111,151,m,N,K,A.data_ptr(),K,buf.data_ptr(),N,1.0,C.data_ptr(),N)
        worst=max(worst,((C-ref).abs().max()/ref.abs().max()).item())
    print('pack m',packm,'K N',K,N,'size',sz,'worst rel err over m',worst)
