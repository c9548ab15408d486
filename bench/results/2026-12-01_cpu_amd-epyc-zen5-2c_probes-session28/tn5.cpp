#include <torch/extension.h>
#include <ATen/Parallel.h>
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#define __SSE3__ 1
#define __SSSE3__ 1
#define __SSE4_1__ 1
#define __SSE4_2__ 1
#define __AVX__ 1
#define __AVX2__ 1
#define __FMA__ 1
#define __F16C__ 1
#define __AVX512F__ 1
#define __AVX512BW__ 1
#define __AVX512VL__ 1
#define __AVX512DQ__ 1
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#include <ATen/cpu/vec/vec.h>
#include <ATen/cpu/vec/functional.h>
using at::vec::Vectorized;

template <typename T, int MR, int NV>
inline void block(int64_t kc, const T* ap, const T* bp, T* c, int64_t ldc, int64_t mr, int64_t nr, bool accumulate, int pf) {
  using V = Vectorized<T>;
  constexpr int W = V::size();
  constexpr int NR = NV * W;
  alignas(64) T t[MR * NR];
  {
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[m][j] = V(T(0));
  for (int64_t k = 0; k < kc; ++k) {
    V b[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) b[j] = V::loadu(bp + k * NR + j * W);
    const T* a = ap + k * MR;
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const V x(a[m]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[m][j] = at::vec::fmadd(x, b[j], acc[m][j]);
    }
  }
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[m][j].store(t + m * NR + j * W);
  }
  if (mr == MR && nr == NR) {
    for (int m = 0; m < MR; ++m)
      for (int j = 0; j < NV; ++j) {
        T* cm = c + m * ldc + j * W;
        V v = V::loadu(t + m * NR + j * W);
        if (accumulate) v = v + V::loadu(cm);
        v.store(cm);
      }
    return;
  }
  for (int64_t m = 0; m < mr; ++m)
    for (int64_t n = 0; n < nr; ++n) c[m * ldc + n] = accumulate ? c[m * ldc + n] + t[m * NR + n] : t[m * NR + n];
}

template <typename T, int MR, int NV>
void rows(int64_t m0, int64_t m1, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
          bool accumulate, T* C, int64_t ldc, T* pack, int64_t KC, int64_t MC, int64_t NC, int pf) {
  constexpr int64_t NR = NV * Vectorized<T>::size();
  T* bp = pack;
  T* ap = pack + KC * NC;
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc), panels = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const bool acc = accumulate || pc > 0;
      for (int64_t j = 0; j < panels; ++j) {
        const int64_t n0 = jc + j * NR, nn = std::min(NR, N - n0);
        T* d = bp + j * kc * NR;
        for (int64_t k = 0; k < kc; ++k) {
          const T* src = B + (pc + k) * ldb + n0;
          std::copy(src, src + nn, d + k * NR);
          std::fill(d + k * NR + nn, d + (k + 1) * NR, T(0));
        }
      }
      for (int64_t ic = m0; ic < m1; ic += MC) {
        const int64_t mc = std::min(MC, m1 - ic), strips = (mc + MR - 1) / MR;
        for (int64_t k = 0; k < kc; ++k) {
          const T* src = A + (pc + k) * lda + ic;
          for (int64_t i = 0; i < strips; ++i) {
            T* d = ap + (i * kc + k) * MR;
            const int64_t r0 = i * MR, rr = std::min<int64_t>(MR, mc - r0);
            if (rr == MR) { std::copy_n(src + r0, MR, d); continue; }
            for (int64_t m = 0; m < MR; ++m) d[m] = m < rr ? src[r0 + m] : T(0);
          }
        }
        for (int64_t j = 0; j < panels; ++j) {
          const int64_t n0 = jc + j * NR, nn = std::min(NR, N - n0);
          for (int64_t i = 0; i < strips; ++i) {
            const int64_t r0 = ic + i * MR;
            block<T, MR, NV>(kc, ap + i * kc * MR, bp + j * kc * NR, C + r0 * ldc + n0, ldc,
                             std::min<int64_t>(MR, m1 - r0), nn, acc, pf);
          }
        }
      }
    }
  }
}

// variant 0: 12x2, 1: 6x4, 2: 8x3
void tn(torch::Tensor A, torch::Tensor B, torch::Tensor C, bool accumulate, int64_t variant, int64_t KC, int64_t MC, int64_t NC, int64_t pf) {
  const int64_t K = A.size(0), M = A.size(1), N = B.size(1);
  const float* a = A.data_ptr<float>(); const float* b = B.data_ptr<float>(); float* c = C.data_ptr<float>();
  const int MR = variant == 0 ? 12 : variant == 1 ? 6 : 8;
  const int nth = at::get_num_threads();
  int64_t strips = (M + MR - 1) / MR;
  at::parallel_for(0, nth, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t s0 = strips * t / nth, s1 = strips * (t + 1) / nth;
      const int64_t r0 = s0 * MR, r1 = std::min(M, s1 * MR);
      if (r0 >= r1) continue;
      std::vector<float> pack(KC * (NC + MC) + 64);
      if (variant == 0) rows<float, 12, 2>(r0, r1, N, K, a, M, b, N, accumulate, c, N, pack.data(), KC, MC, NC, pf);
      else if (variant == 1) rows<float, 6, 4>(r0, r1, N, K, a, M, b, N, accumulate, c, N, pack.data(), KC, MC, NC, pf);
      else rows<float, 8, 3>(r0, r1, N, K, a, M, b, N, accumulate, c, N, pack.data(), KC, MC, NC, pf);
    }
  });
}
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("tn", &tn); }
