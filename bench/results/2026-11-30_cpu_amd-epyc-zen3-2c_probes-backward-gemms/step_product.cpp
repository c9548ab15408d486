// standalone: tile_product MR=3 NV=4 (32-col panel) vs two halves MR=6 NV=2 reading the same panel
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include <omp.h>
template <int MR, int NV, int PS>
__attribute__((noinline)) void prod(const float* a, long lda, const float* panel, long K, float* c, long ldc);
template <> __attribute__((noinline)) void prod<3,4,32>(const float* a, long lda, const float* panel, long K, float* c, long ldc) {
  __m256 c00 = _mm256_setzero_ps();
  __m256 c01 = _mm256_setzero_ps();
  __m256 c02 = _mm256_setzero_ps();
  __m256 c03 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps();
  __m256 c11 = _mm256_setzero_ps();
  __m256 c12 = _mm256_setzero_ps();
  __m256 c13 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps();
  __m256 c21 = _mm256_setzero_ps();
  __m256 c22 = _mm256_setzero_ps();
  __m256 c23 = _mm256_setzero_ps();
  const float* a0 = a + 0*lda;
  const float* a1 = a + 1*lda;
  const float* a2 = a + 2*lda;
  for (long k = 0; k < K; ++k) {
    const float* w = panel + k*32;
    __m256 b0 = _mm256_loadu_ps(w + 0);
    __m256 b1 = _mm256_loadu_ps(w + 8);
    __m256 b2 = _mm256_loadu_ps(w + 16);
    __m256 b3 = _mm256_loadu_ps(w + 24);
    { __m256 x = _mm256_broadcast_ss(a0 + k);
      c00 = _mm256_fmadd_ps(x, b0, c00);
      c01 = _mm256_fmadd_ps(x, b1, c01);
      c02 = _mm256_fmadd_ps(x, b2, c02);
      c03 = _mm256_fmadd_ps(x, b3, c03);
    }
    { __m256 x = _mm256_broadcast_ss(a1 + k);
      c10 = _mm256_fmadd_ps(x, b0, c10);
      c11 = _mm256_fmadd_ps(x, b1, c11);
      c12 = _mm256_fmadd_ps(x, b2, c12);
      c13 = _mm256_fmadd_ps(x, b3, c13);
    }
    { __m256 x = _mm256_broadcast_ss(a2 + k);
      c20 = _mm256_fmadd_ps(x, b0, c20);
      c21 = _mm256_fmadd_ps(x, b1, c21);
      c22 = _mm256_fmadd_ps(x, b2, c22);
      c23 = _mm256_fmadd_ps(x, b3, c23);
    }
  }
  _mm256_storeu_ps(c + 0*ldc + 0, c00);
  _mm256_storeu_ps(c + 0*ldc + 8, c01);
  _mm256_storeu_ps(c + 0*ldc + 16, c02);
  _mm256_storeu_ps(c + 0*ldc + 24, c03);
  _mm256_storeu_ps(c + 1*ldc + 0, c10);
  _mm256_storeu_ps(c + 1*ldc + 8, c11);
  _mm256_storeu_ps(c + 1*ldc + 16, c12);
  _mm256_storeu_ps(c + 1*ldc + 24, c13);
  _mm256_storeu_ps(c + 2*ldc + 0, c20);
  _mm256_storeu_ps(c + 2*ldc + 8, c21);
  _mm256_storeu_ps(c + 2*ldc + 16, c22);
  _mm256_storeu_ps(c + 2*ldc + 24, c23);
}
template <> __attribute__((noinline)) void prod<1,4,32>(const float* a, long lda, const float* panel, long K, float* c, long ldc) {
  __m256 c00 = _mm256_setzero_ps();
  __m256 c01 = _mm256_setzero_ps();
  __m256 c02 = _mm256_setzero_ps();
  __m256 c03 = _mm256_setzero_ps();
  const float* a0 = a + 0*lda;
  for (long k = 0; k < K; ++k) {
    const float* w = panel + k*32;
    __m256 b0 = _mm256_loadu_ps(w + 0);
    __m256 b1 = _mm256_loadu_ps(w + 8);
    __m256 b2 = _mm256_loadu_ps(w + 16);
    __m256 b3 = _mm256_loadu_ps(w + 24);
    { __m256 x = _mm256_broadcast_ss(a0 + k);
      c00 = _mm256_fmadd_ps(x, b0, c00);
      c01 = _mm256_fmadd_ps(x, b1, c01);
      c02 = _mm256_fmadd_ps(x, b2, c02);
      c03 = _mm256_fmadd_ps(x, b3, c03);
    }
  }
  _mm256_storeu_ps(c + 0*ldc + 0, c00);
  _mm256_storeu_ps(c + 0*ldc + 8, c01);
  _mm256_storeu_ps(c + 0*ldc + 16, c02);
  _mm256_storeu_ps(c + 0*ldc + 24, c03);
}
template <> __attribute__((noinline)) void prod<6,2,32>(const float* a, long lda, const float* panel, long K, float* c, long ldc) {
  __m256 c00 = _mm256_setzero_ps();
  __m256 c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps();
  __m256 c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps();
  __m256 c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps();
  __m256 c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps();
  __m256 c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps();
  __m256 c51 = _mm256_setzero_ps();
  const float* a0 = a + 0*lda;
  const float* a1 = a + 1*lda;
  const float* a2 = a + 2*lda;
  const float* a3 = a + 3*lda;
  const float* a4 = a + 4*lda;
  const float* a5 = a + 5*lda;
  for (long k = 0; k < K; ++k) {
    const float* w = panel + k*32;
    __m256 b0 = _mm256_loadu_ps(w + 0);
    __m256 b1 = _mm256_loadu_ps(w + 8);
    { __m256 x = _mm256_broadcast_ss(a0 + k);
      c00 = _mm256_fmadd_ps(x, b0, c00);
      c01 = _mm256_fmadd_ps(x, b1, c01);
    }
    { __m256 x = _mm256_broadcast_ss(a1 + k);
      c10 = _mm256_fmadd_ps(x, b0, c10);
      c11 = _mm256_fmadd_ps(x, b1, c11);
    }
    { __m256 x = _mm256_broadcast_ss(a2 + k);
      c20 = _mm256_fmadd_ps(x, b0, c20);
      c21 = _mm256_fmadd_ps(x, b1, c21);
    }
    { __m256 x = _mm256_broadcast_ss(a3 + k);
      c30 = _mm256_fmadd_ps(x, b0, c30);
      c31 = _mm256_fmadd_ps(x, b1, c31);
    }
    { __m256 x = _mm256_broadcast_ss(a4 + k);
      c40 = _mm256_fmadd_ps(x, b0, c40);
      c41 = _mm256_fmadd_ps(x, b1, c41);
    }
    { __m256 x = _mm256_broadcast_ss(a5 + k);
      c50 = _mm256_fmadd_ps(x, b0, c50);
      c51 = _mm256_fmadd_ps(x, b1, c51);
    }
  }
  _mm256_storeu_ps(c + 0*ldc + 0, c00);
  _mm256_storeu_ps(c + 0*ldc + 8, c01);
  _mm256_storeu_ps(c + 1*ldc + 0, c10);
  _mm256_storeu_ps(c + 1*ldc + 8, c11);
  _mm256_storeu_ps(c + 2*ldc + 0, c20);
  _mm256_storeu_ps(c + 2*ldc + 8, c21);
  _mm256_storeu_ps(c + 3*ldc + 0, c30);
  _mm256_storeu_ps(c + 3*ldc + 8, c31);
  _mm256_storeu_ps(c + 4*ldc + 0, c40);
  _mm256_storeu_ps(c + 4*ldc + 8, c41);
  _mm256_storeu_ps(c + 5*ldc + 0, c50);
  _mm256_storeu_ps(c + 5*ldc + 8, c51);
}
template <> __attribute__((noinline)) void prod<4,2,32>(const float* a, long lda, const float* panel, long K, float* c, long ldc) {
  __m256 c00 = _mm256_setzero_ps();
  __m256 c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps();
  __m256 c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps();
  __m256 c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps();
  __m256 c31 = _mm256_setzero_ps();
  const float* a0 = a + 0*lda;
  const float* a1 = a + 1*lda;
  const float* a2 = a + 2*lda;
  const float* a3 = a + 3*lda;
  for (long k = 0; k < K; ++k) {
    const float* w = panel + k*32;
    __m256 b0 = _mm256_loadu_ps(w + 0);
    __m256 b1 = _mm256_loadu_ps(w + 8);
    { __m256 x = _mm256_broadcast_ss(a0 + k);
      c00 = _mm256_fmadd_ps(x, b0, c00);
      c01 = _mm256_fmadd_ps(x, b1, c01);
    }
    { __m256 x = _mm256_broadcast_ss(a1 + k);
      c10 = _mm256_fmadd_ps(x, b0, c10);
      c11 = _mm256_fmadd_ps(x, b1, c11);
    }
    { __m256 x = _mm256_broadcast_ss(a2 + k);
      c20 = _mm256_fmadd_ps(x, b0, c20);
      c21 = _mm256_fmadd_ps(x, b1, c21);
    }
    { __m256 x = _mm256_broadcast_ss(a3 + k);
      c30 = _mm256_fmadd_ps(x, b0, c30);
      c31 = _mm256_fmadd_ps(x, b1, c31);
    }
  }
  _mm256_storeu_ps(c + 0*ldc + 0, c00);
  _mm256_storeu_ps(c + 0*ldc + 8, c01);
  _mm256_storeu_ps(c + 1*ldc + 0, c10);
  _mm256_storeu_ps(c + 1*ldc + 8, c11);
  _mm256_storeu_ps(c + 2*ldc + 0, c20);
  _mm256_storeu_ps(c + 2*ldc + 8, c21);
  _mm256_storeu_ps(c + 3*ldc + 0, c30);
  _mm256_storeu_ps(c + 3*ldc + 8, c31);
}
template <> __attribute__((noinline)) void prod<2,4,32>(const float* a, long lda, const float* panel, long K, float* c, long ldc) {
  __m256 c00 = _mm256_setzero_ps();
  __m256 c01 = _mm256_setzero_ps();
  __m256 c02 = _mm256_setzero_ps();
  __m256 c03 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps();
  __m256 c11 = _mm256_setzero_ps();
  __m256 c12 = _mm256_setzero_ps();
  __m256 c13 = _mm256_setzero_ps();
  const float* a0 = a + 0*lda;
  const float* a1 = a + 1*lda;
  for (long k = 0; k < K; ++k) {
    const float* w = panel + k*32;
    __m256 b0 = _mm256_loadu_ps(w + 0);
    __m256 b1 = _mm256_loadu_ps(w + 8);
    __m256 b2 = _mm256_loadu_ps(w + 16);
    __m256 b3 = _mm256_loadu_ps(w + 24);
    { __m256 x = _mm256_broadcast_ss(a0 + k);
      c00 = _mm256_fmadd_ps(x, b0, c00);
      c01 = _mm256_fmadd_ps(x, b1, c01);
      c02 = _mm256_fmadd_ps(x, b2, c02);
      c03 = _mm256_fmadd_ps(x, b3, c03);
    }
    { __m256 x = _mm256_broadcast_ss(a1 + k);
      c10 = _mm256_fmadd_ps(x, b0, c10);
      c11 = _mm256_fmadd_ps(x, b1, c11);
      c12 = _mm256_fmadd_ps(x, b2, c12);
      c13 = _mm256_fmadd_ps(x, b3, c13);
    }
  }
  _mm256_storeu_ps(c + 0*ldc + 0, c00);
  _mm256_storeu_ps(c + 0*ldc + 8, c01);
  _mm256_storeu_ps(c + 0*ldc + 16, c02);
  _mm256_storeu_ps(c + 0*ldc + 24, c03);
  _mm256_storeu_ps(c + 1*ldc + 0, c10);
  _mm256_storeu_ps(c + 1*ldc + 8, c11);
  _mm256_storeu_ps(c + 1*ldc + 16, c12);
  _mm256_storeu_ps(c + 1*ldc + 24, c13);
}
int main(int argc, char** argv) {
  long B = atol(argv[1]), K = atol(argv[2]), tiles = atol(argv[3]); int mode = atoi(argv[4]);
  int nth = omp_get_max_threads();
  std::vector<float> A(B * K), P(tiles * K * 32), C(B * 32 * tiles);
  for (auto& x : A) x = rand() / (float)RAND_MAX;
  for (auto& x : P) x = rand() / (float)RAND_MAX;
  double best = 1e9;
  for (int rep = 0; rep < 30; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    for (int step = 0; step < 10; ++step) {
#pragma omp parallel for schedule(static)
      for (long u = 0; u < tiles; ++u) {
        const float* p = P.data() + u * K * 32;
        float* c = C.data() + u * 32;
        long ldc = 32 * tiles;
        if (mode == 0) {
          long r = 0;
          for (; r + 3 <= B; r += 3) prod<3, 4, 32>(A.data() + r * K, K, p, K, c + r * ldc, ldc);
          for (; r < B; ++r) prod<1, 4, 32>(A.data() + r * K, K, p, K, c + r * ldc, ldc);
        } else {
          long r = 0;
          for (; r + 6 <= B; r += 6) { prod<6, 2, 32>(A.data() + r * K, K, p, K, c + r * ldc, ldc); prod<6, 2, 32>(A.data() + r * K, K, p + 16, K, c + r * ldc + 16, ldc); }
          for (; r + 4 <= B; r += 4) { prod<4, 2, 32>(A.data() + r * K, K, p, K, c + r * ldc, ldc); prod<4, 2, 32>(A.data() + r * K, K, p + 16, K, c + r * ldc + 16, ldc); }
          for (; r < B; ++r) prod<1, 4, 32>(A.data() + r * K, K, p, K, c + r * ldc, ldc);
        }
      }
    }
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 10;
    best = std::min(best, dt);
  }
  double fl = 2.0 * B * K * 32 * tiles;
  printf("B=%ld K=%ld tiles=%ld mode=%d threads=%d: %.1f GF/s (%.1f us/step)\n", B, K, tiles, mode, nth, fl / best / 1e9, best * 1e6);
}
