// Probe: the fused forward's tile product (MR rows of h times a K x 64 panel, 4 zmm accumulators a row)
// in three forms, one thread, panels of NT tiles resident in L2 or streamed:
//   fp32  : float32 panel, FMA                                  (today's float32 path)
//   cvt   : bfloat16 panel converted as loaded, FMA               (today's 16-bit-weight path)
//   dpbf16: bfloat16 pair panel [K/2][64][2], vdpbf16ps, h as bf16 pairs (AVX512-BF16)
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <algorithm>
template <int MR> __attribute__((noinline)) void fp32(const float* a, int K, const float* p, float* c) {
  __m512 acc[MR][4];
  for (int m = 0; m < MR; ++m) for (int v = 0; v < 4; ++v) acc[m][v] = _mm512_setzero_ps();
  for (int k = 0; k < K; ++k) {
    __m512 b0 = _mm512_loadu_ps(p + k * 64), b1 = _mm512_loadu_ps(p + k * 64 + 16), b2 = _mm512_loadu_ps(p + k * 64 + 32), b3 = _mm512_loadu_ps(p + k * 64 + 48);
    for (int m = 0; m < MR; ++m) { __m512 x = _mm512_set1_ps(a[m * K + k]);
      acc[m][0] = _mm512_fmadd_ps(x, b0, acc[m][0]); acc[m][1] = _mm512_fmadd_ps(x, b1, acc[m][1]);
      acc[m][2] = _mm512_fmadd_ps(x, b2, acc[m][2]); acc[m][3] = _mm512_fmadd_ps(x, b3, acc[m][3]); }
  }
  for (int m = 0; m < MR; ++m) for (int v = 0; v < 4; ++v) _mm512_storeu_ps(c + (m * 4 + v) * 16, acc[m][v]);
}
static inline __m512 cvt(const uint16_t* q) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)q)), 16)); }
template <int MR> __attribute__((noinline)) void cvtk(const float* a, int K, const uint16_t* p, float* c) {
  __m512 acc[MR][4];
  for (int m = 0; m < MR; ++m) for (int v = 0; v < 4; ++v) acc[m][v] = _mm512_setzero_ps();
  for (int k = 0; k < K; ++k) {
    __m512 b0 = cvt(p + k * 64), b1 = cvt(p + k * 64 + 16), b2 = cvt(p + k * 64 + 32), b3 = cvt(p + k * 64 + 48);
    for (int m = 0; m < MR; ++m) { __m512 x = _mm512_set1_ps(a[m * K + k]);
      acc[m][0] = _mm512_fmadd_ps(x, b0, acc[m][0]); acc[m][1] = _mm512_fmadd_ps(x, b1, acc[m][1]);
      acc[m][2] = _mm512_fmadd_ps(x, b2, acc[m][2]); acc[m][3] = _mm512_fmadd_ps(x, b3, acc[m][3]); }
  }
  for (int m = 0; m < MR; ++m) for (int v = 0; v < 4; ++v) _mm512_storeu_ps(c + (m * 4 + v) * 16, acc[m][v]);
}
template <int MR> __attribute__((noinline, target("avx512bf16"))) void dpk(const uint32_t* a2, int K, const uint16_t* p, float* c) {
  __m512 acc[MR][4];
  for (int m = 0; m < MR; ++m) for (int v = 0; v < 4; ++v) acc[m][v] = _mm512_setzero_ps();
  for (int k2 = 0; k2 < K / 2; ++k2) {
    const uint16_t* q = p + k2 * 128;
    __m512bh b0 = (__m512bh)_mm512_loadu_si512(q), b1 = (__m512bh)_mm512_loadu_si512(q + 32), b2 = (__m512bh)_mm512_loadu_si512(q + 64), b3 = (__m512bh)_mm512_loadu_si512(q + 96);
    for (int m = 0; m < MR; ++m) { __m512bh x = (__m512bh)_mm512_set1_epi32(a2[m * (K / 2) + k2]);
      acc[m][0] = _mm512_dpbf16_ps(acc[m][0], x, b0); acc[m][1] = _mm512_dpbf16_ps(acc[m][1], x, b1);
      acc[m][2] = _mm512_dpbf16_ps(acc[m][2], x, b2); acc[m][3] = _mm512_dpbf16_ps(acc[m][3], x, b3); }
  }
  for (int m = 0; m < MR; ++m) for (int v = 0; v < 4; ++v) _mm512_storeu_ps(c + (m * 4 + v) * 16, acc[m][v]);
}
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
template <int MR> void run(int K, int NT, int reps) {
  float* a = (float*)aligned_alloc(64, 4 * MR * K); uint32_t* a2 = (uint32_t*)aligned_alloc(64, 4 * MR * K);
  float* p = (float*)aligned_alloc(64, 4L * NT * K * 64); uint16_t* q = (uint16_t*)aligned_alloc(64, 2L * NT * K * 64);
  float c[MR * 64];
  for (long i = 0; i < (long)NT * K * 64; ++i) { p[i] = (i % 7) * 0.01f; q[i] = 0x3c00 + (i % 5); }
  for (int i = 0; i < MR * K; ++i) { a[i] = 0.1f; a2[i] = 0x3dcc3dcc; }
  double t[3] = {1e9, 1e9, 1e9};
  for (int r = 0; r < reps; ++r) {
    double t0 = now(); for (int u = 0; u < NT; ++u) fp32<MR>(a, K, p + (long)u * K * 64, c);
    double t1 = now(); for (int u = 0; u < NT; ++u) cvtk<MR>(a, K, q + (long)u * K * 64, c);
    double t2 = now(); for (int u = 0; u < NT; ++u) dpk<MR>(a2, K, q + (long)u * K * 64, c);
    double t3 = now(); t[0] = std::min(t[0], t1 - t0); t[1] = std::min(t[1], t2 - t1); t[2] = std::min(t[2], t3 - t2);
  }
  const double flop = 2.0 * MR * K * 64 * NT;
  printf("MR=%d K=%d tiles=%d (fp32 panel %.1f MB): fp32 %.1f GFLOP/s | bf16 converted %.1f | vdpbf16ps %.1f\n", MR, K, NT,
         4.0 * NT * K * 64 / 1048576, flop / t[0] / 1e9, flop / t[1] / 1e9, flop / t[2] / 1e9);
}
int main() {
  run<1>(256, 8, 200); run<1>(1024, 32, 50);
  run<4>(256, 8, 200); run<6>(256, 8, 200); run<6>(512, 8, 100); run<6>(1024, 32, 20);
}
