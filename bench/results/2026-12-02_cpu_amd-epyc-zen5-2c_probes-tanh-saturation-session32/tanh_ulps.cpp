// tanh's error in ulps of the result by |x| range: the formula before this change
// (sign(x) (1 - e) / (1 + e), e = exp(-2|x|), above |x| = 0.3) against fast_math.h's now
// (sign(x) (1 - 2e / (1 + e))), both on fast_math.h's exp and reciprocal, against double.
// Every 38th float in each range. Build (AVX-512, or -DCAP2 -mavx2 -mfma for AVX2), from this folder:
//   g++ -O2 -std=c++17 -DCAP512 -mavx512f -mavx512dq -mavx512vl -mfma tanh_ulps.cpp -o tu && ./tu
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#if defined(CAP512)
#define CPU_CAPABILITY_AVX512 1
#else
#define CPU_CAPABILITY_AVX2 1
#endif
#define FUSED_RNN_CAPABILITY_NS probe
#include "../../../csrc/cpu/fast_math.h"
namespace F = fused_rnn::cpu::probe::fast;

#if defined(CAP512)
using V = __m512;
constexpr int kLanes = 16;
V load(const float* p) { return _mm512_loadu_ps(p); }
void store(float* p, V v) { _mm512_storeu_ps(p, v); }
V before(V x) {  // the big branch as it was; the small one is unchanged (F::tanh's)
  const V ax = _mm512_abs_ps(x);
  const V e = F::exp(_mm512_mul_ps(ax, _mm512_set1_ps(-2.f)));
  V big = _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(1.f), e), F::recip(_mm512_add_ps(_mm512_set1_ps(1.f), e)));
  big = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(big),
                                            _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.3f), _CMP_LT_OQ), big, F::tanh(x));
}
#else
using V = __m256;
constexpr int kLanes = 8;
V load(const float* p) { return _mm256_loadu_ps(p); }
void store(float* p, V v) { _mm256_storeu_ps(p, v); }
V before(V x) {
  const V sign = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN));
  const V ax = _mm256_andnot_ps(sign, x);
  const V e = F::exp(_mm256_mul_ps(ax, _mm256_set1_ps(-2.f)));
  V big = _mm256_mul_ps(_mm256_sub_ps(_mm256_set1_ps(1.f), e), F::recip(_mm256_add_ps(_mm256_set1_ps(1.f), e)));
  big = _mm256_or_ps(big, _mm256_and_ps(x, sign));
  return _mm256_blendv_ps(big, F::tanh(x), _mm256_cmp_ps(ax, _mm256_set1_ps(0.3f), _CMP_LT_OQ));
}
#endif

int main() {
  const double edges[] = {0, 0.3, 0.6, 1, 2, 3, 5, 9, 20};
  for (int variant = 0; variant < 2; ++variant) {
    printf("%s: max (mean) error in ulps of the result, by |x|\n", variant ? "now: 1 - 2e/(1+e)" : "before: (1-e)/(1+e)");
    for (int b = 0; b + 1 < 9; ++b) {
      double worst = 0, sum = 0;
      long n = 0;
      for (float x0 = edges[b]; x0 < edges[b + 1];) {
        float xs[kLanes], r[kLanes];
        for (int l = 0; l < kLanes; ++l) {
          xs[l] = x0;
          for (int s = 0; s < 38; ++s) x0 = std::nextafter(x0, 100.f);
        }
        store(r, variant ? F::tanh(load(xs)) : before(load(xs)));
        for (int l = 0; l < kLanes; ++l) {
          if (xs[l] >= edges[b + 1]) continue;
          const double t = std::tanh(static_cast<double>(xs[l]));
          const float tf = static_cast<float>(t);
          const double ulp = std::nextafter(tf, 2.f) - tf;
          const double d = std::fabs(r[l] - t) / ulp;
          worst = std::max(worst, d);
          sum += d;
          ++n;
        }
      }
      printf("  [%4.1f, %4.1f): %.2f (%.3f)\n", edges[b], edges[b + 1], worst, sum / n);
    }
  }
}
