#include <immintrin.h>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <vector>
#include <algorithm>
// The 3x4 AVX2 micro-kernel of tile_product over panel [K][4 vectors], a of MR rows ld lda.
template <int MR, int NV>
__attribute__((noinline)) void kern(const float* a, long lda, const float* panel, long K, float* c) {
  __m256 acc[MR][NV];
  for (int m = 0; m < MR; ++m) for (int v = 0; v < NV; ++v) acc[m][v] = _mm256_setzero_ps();
  for (long k = 0; k < K; ++k) {
    const float* w = panel + k * NV * 8;
    __m256 b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) b[v] = _mm256_loadu_ps(w + v * 8);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      __m256 x = _mm256_broadcast_ss(a + m * lda + k);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[m][v] = _mm256_fmadd_ps(x, b[v], acc[m][v]);
    }
  }
  for (int m = 0; m < MR; ++m) for (int v = 0; v < NV; ++v) _mm256_storeu_ps(c + (m * NV + v) * 8, acc[m][v]);
}
template <int MR, int NV>
void run(long K, long rows, long tiles, const char* name) {
  long lda = K;
  long inner = std::max(1L, 200000000L / (rows * tiles * NV * 8 * K));
  std::vector<float> A(rows * lda, 0.5f), P(tiles * K * NV * 8, 0.25f), C(MR * NV * 8);
  double best = 1e9;
  for (int rep = 0; rep < 20; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < inner; ++it)
    for (long u = 0; u < tiles; ++u)
      for (long r = 0; r + MR <= rows; r += MR) kern<MR, NV>(A.data() + r * lda, lda, P.data() + u * K * NV * 8, K, C.data());
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (t < best) best = t;
  }
  double fl = 2.0 * inner * (rows / MR * MR) * tiles * NV * 8 * K;
  printf("%s MR=%d NV=%d K=%ld rows=%ld tiles=%ld: %.1f GFLOP/s\n", name, MR, NV, K, rows, tiles, fl / best / 1e9);
}
int main() {
  run<3, 4>(512, 63, 16, "warm");
  run<3, 4>(512, 63, 4, "A 129KB");
  run<3, 4>(512, 255, 4, "A 522KB");
  run<3, 4>(512, 1023, 4, "A 2MB");
  run<3, 4>(512, 3198, 2, "A 6.5MB");
}
