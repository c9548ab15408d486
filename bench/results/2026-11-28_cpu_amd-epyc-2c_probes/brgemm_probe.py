import torch, time
from torch.utils.cpp_extension import load_inline
src = r'''
#include <torch/extension.h>
#include <ATen/native/CPUBlas.h>
#include <ATen/Parallel.h>
// C (M x N) = A (M x K) * B (K x N), all row-major fp32; N split over threads in blocks of nb
void brg(torch::Tensor A, torch::Tensor B, torch::Tensor C, int64_t nb, int64_t mb) {
  int64_t M = A.size(0), K = A.size(1), N = B.size(1);
  const float* a = A.data_ptr<float>(); const float* b = B.data_ptr<float>(); float* c = C.data_ptr<float>();
  int64_t nblocks = (N + nb - 1) / nb, mblocks = (M + mb - 1) / mb;
  at::parallel_for(0, nblocks * mblocks, 1, [&](int64_t s, int64_t e) {
    for (int64_t blk = s; blk < e; ++blk) {
      int64_t i = blk / nblocks, j = blk % nblocks;
      int64_t m0 = i * mb, n0 = j * nb;
      int64_t mm = std::min(mb, M - m0), nn = std::min(nb, N - n0);
      at::native::cpublas::brgemm(mm, nn, K, K, N, N, false, a + m0 * K, b + n0, c + m0 * N + n0, false);
    }
  });
  at::native::cpublas::brgemm_release(false);
}
bool could() { return at::native::cpublas::could_pack(at::kFloat); }
'''
m = load_inline("brg", cpp_sources=src, functions=["brg", "could"], extra_cflags=["-O3"], verbose=False)
print("could_pack f32:", m.could())
def bench(fn, n=100):
    for _ in range(5): fn()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); fn(); ts.append(time.perf_counter()-t)
    ts.sort(); return ts[len(ts)//2]*1e6
for (M,K,N) in [(64,256,1024),(1,256,1024),(3200,256,1024),(64,512,2048)]:
    A=torch.randn(M,K); B=torch.randn(K,N); C=torch.empty(M,N)
    for nb, mb in [(64, 64), (128, 32), (256, 64)]:
        m.brg(A,B,C,nb,mb)
        ok = torch.allclose(C, A@B, atol=1e-3, rtol=1e-4)
        t2 = bench(lambda: m.brg(A,B,C,nb,mb), 20 if M>1000 else 200)
        print(M,K,N,'nb',nb,'mb',mb,'brgemm us',round(t2,1), 'GFLOP/s', round(2*M*N*K/t2/1e3,1), 'ok', ok)
    t1 = bench(lambda: torch.mm(A,B,out=C), 20 if M>1000 else 200)
    print(M,K,N,'mkl mm us', round(t1,1), 'GFLOP/s', round(2*M*N*K/t1/1e3,1))
