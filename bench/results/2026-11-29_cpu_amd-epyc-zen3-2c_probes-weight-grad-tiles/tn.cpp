#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <algorithm>
#include <vector>
#pragma GCC target("avx2,fma")

constexpr int MR = 6, NR = 16;

// C (mr x nr, ldc) (+)= sum_k Ap[k][0..6) x Bp[k][0..16)
static int g_pf = 0;
static inline void micro(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float* C, int64_t ldc,
                         int mr, int nr, bool acc) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(),
         c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(),
         c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  if (g_pf) { for (int m = 0; m < MR; ++m) { _mm_prefetch((const char*)(C + m * ldc), _MM_HINT_T0); _mm_prefetch((const char*)(C + m * ldc + 8), _MM_HINT_T0);} }
  for (int64_t k = 0; k < kc; ++k) {
    if (g_pf && (k & 7) == 0) _mm_prefetch((const char*)(Ap + (k + 64) * MR), _MM_HINT_T0);
    __m256 b0 = _mm256_loadu_ps(Bp + k * NR), b1 = _mm256_loadu_ps(Bp + k * NR + 8);
    asm("" : "+x"(b0), "+x"(b1));
    const float* a = Ap + k * MR;
    __m256 x;
    x = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
  }
  alignas(32) float t[MR * NR];
  __m256 cs[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
  if (mr == MR && nr == NR) {
    for (int m = 0; m < MR; ++m) {
      float* c = C + m * ldc;
      __m256 v0 = cs[2 * m], v1 = cs[2 * m + 1];
      if (acc) { v0 = _mm256_add_ps(v0, _mm256_loadu_ps(c)); v1 = _mm256_add_ps(v1, _mm256_loadu_ps(c + 8)); }
      _mm256_storeu_ps(c, v0); _mm256_storeu_ps(c + 8, v1);
    }
    return;
  }
  for (int i = 0; i < 12; ++i) _mm256_store_ps(t + 8 * i, cs[i]);
  for (int m = 0; m < mr; ++m)
    for (int n = 0; n < nr; ++n) C[m * ldc + n] = (acc ? C[m * ldc + n] : 0.f) + t[m * NR + n];
}

// C (M x N) (+)= A^T B ; A K x M (lda), B K x N (ldb)
void gemm_tn(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
             int64_t ldc, bool accumulate, int64_t KC, int64_t MC, int64_t NC) {
  const int64_t strips = (M + MR - 1) / MR;
  at::parallel_for(0, strips, 1, [&](int64_t s0, int64_t s1) {
    const int64_t m0 = s0 * MR, m1 = std::min(M, s1 * MR);
    std::vector<float> bp_(KC * ((std::min(NC, N) + NR - 1) / NR) * NR + 64);
    std::vector<float> ap_(KC * ((MC + MR - 1) / MR) * MR + 64);
    float* bp = bp_.data();
    float* ap = ap_.data();
    for (int64_t jc = 0; jc < N; jc += NC) {
      const int64_t nc = std::min(NC, N - jc);
      const int64_t npan = (nc + NR - 1) / NR;
      for (int64_t pc = 0; pc < K; pc += KC) {
        const int64_t kc = std::min(KC, K - pc);
        const bool acc = accumulate || pc > 0;
        // pack B: panel j: kc x 16
        for (int64_t j = 0; j < npan; ++j) {
          const int64_t n0 = jc + j * NR, nn = std::min<int64_t>(NR, N - n0);
          float* d = bp + j * kc * NR;
          for (int64_t k = 0; k < kc; ++k) {
            const float* s = B + (pc + k) * ldb + n0;
            if (nn == NR) { _mm256_storeu_ps(d + k * NR, _mm256_loadu_ps(s)); _mm256_storeu_ps(d + k * NR + 8, _mm256_loadu_ps(s + 8)); }
            else { for (int n = 0; n < NR; ++n) d[k * NR + n] = n < nn ? s[n] : 0.f; }
          }
        }
        for (int64_t ic = m0; ic < m1; ic += MC) {
          const int64_t mc = std::min(MC, m1 - ic);
          const int64_t ms = (mc + MR - 1) / MR;
          // pack A: strip i: kc x 6 from A[pc+k][ic + 6i ..]
          for (int64_t k = 0; k < kc; ++k) {
            const float* s = A + (pc + k) * lda + ic;
            for (int64_t i = 0; i < ms; ++i) {
              float* d = ap + i * kc * MR + k * MR;
              const int64_t r0 = i * MR, rr = std::min<int64_t>(MR, mc - r0);
              for (int m = 0; m < MR; ++m) d[m] = m < rr ? s[r0 + m] : 0.f;
            }
          }
          for (int64_t j = 0; j < npan; ++j) {
            const int64_t n0 = jc + j * NR, nn = std::min<int64_t>(NR, N - n0);
            for (int64_t i = 0; i < ms; ++i) {
              const int64_t r0 = ic + i * MR, rr = std::min<int64_t>(MR, m1 - r0);
              micro(kc, ap + i * kc * MR, bp + j * kc * NR, C + r0 * ldc + n0, ldc, (int)rr, (int)nn, acc);
            }
          }
        }
      }
    }
  });
}

void tn(at::Tensor A, at::Tensor B, at::Tensor C, bool accumulate, int64_t KC, int64_t MC, int64_t NC) {
  g_pf = NC < 0; if (NC < 0) NC = -NC;
  // A: K x M row-major (any ld), B: K x N
  gemm_tn(C.size(0), C.size(1), A.size(0), A.data_ptr<float>(), A.stride(0), B.data_ptr<float>(), B.stride(0),
          C.data_ptr<float>(), C.stride(0), accumulate, KC, MC, NC);
}
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("tn", &tn); }
