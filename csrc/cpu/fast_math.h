// float32 exp, sigmoid and tanh for AVX2 and AVX-512 vectors, written to be inlined
// into the cells' pointwise passes (pointwise_impl.h), where SLEEF's versions are
// out-of-line calls whose divisions serialise the epilogue of a fused step.
//
//   exp(x)     = 2^n p(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 in two parts),
//                p the degree-6 Taylor polynomial of e^r on |r| <= ln2 / 2
//   sigmoid(x) = 1 / (1 + exp(-x))
//   tanh(x)    = x + x^3 q(x^2) (odd Taylor polynomial to x^11) for |x| < 0.3, else
//                sign(x) (1 - 2e / (1 + e)) with e = exp(-2|x|): near saturation the
//                error of 2e / (1 + e) is far below an ulp of the result, so tanh is
//                correctly rounded there (0.5 ulp from |x| = 2; (1 - e) / (1 + e) was
//                2-3 ulps), and so is a saturated unit's gradient factor 1 - h^2
// Reciprocals are the hardware estimate plus one Newton step. NaN propagates (min/max
// take the input as their second operand), +-inf give the limits. Accuracy and speed
// against SLEEF are recorded with the probe in bench/results (fast-math probe).
#pragma once

#include <immintrin.h>

#include <cstdint>

// In the including capability's namespace (pointwise_impl.h), as everything compiled for an
// instruction set: a copy built for AVX-512 must never stand in for another at link time.
namespace fused_rnn::cpu::FUSED_RNN_CAPABILITY_NS::fast {

#if defined(CPU_CAPABILITY_AVX512)

inline __m512 recip(__m512 d) {
  const __m512 r = _mm512_rcp14_ps(d);
  return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.f)));  // r (2 - d r)
}

inline __m512 exp(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-103.9f), _mm512_min_ps(_mm512_set1_ps(88.7f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

inline __m512 sigmoid(__m512 x) {
  return recip(_mm512_add_ps(_mm512_set1_ps(1.f), exp(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

inline __m512 tanh(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 e = exp(_mm512_mul_ps(ax, _mm512_set1_ps(-2.f)));
  __m512 big = _mm512_sub_ps(_mm512_set1_ps(1.f),
                             _mm512_mul_ps(_mm512_add_ps(e, e), recip(_mm512_add_ps(_mm512_set1_ps(1.f), e))));
  big = _mm512_castsi512_ps(_mm512_or_si512(
      _mm512_castps_si512(big), _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))));
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 q = _mm512_set1_ps(-1382.f / 155925);
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(62.f / 2835));
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-17.f / 315));
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(2.f / 15));
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.f / 3));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(q, x2), x, x);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.3f), _CMP_LT_OQ), big, small);
}

#define FUSED_RNN_FAST_MATH 1

#elif defined(CPU_CAPABILITY_AVX2)

inline __m256 recip(__m256 d) {
  const __m256 r = _mm256_rcp_ps(d);
  return _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(2.f)));
}

// Without AVX-512's scalef the exponent is added to p's bits, so x is held to
// [-87.3, 88.7], where 2^n p stays a normal number.
inline __m256 exp(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(-87.3f), _mm256_min_ps(_mm256_set1_ps(88.7f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
  __m256 p = _mm256_set1_ps(1.f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
}

inline __m256 sigmoid(__m256 x) {
  return recip(_mm256_add_ps(_mm256_set1_ps(1.f), exp(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

inline __m256 tanh(__m256 x) {
  const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN));
  const __m256 ax = _mm256_andnot_ps(sign, x);
  const __m256 e = exp(_mm256_mul_ps(ax, _mm256_set1_ps(-2.f)));
  __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.f),
                             _mm256_mul_ps(_mm256_add_ps(e, e), recip(_mm256_add_ps(_mm256_set1_ps(1.f), e))));
  big = _mm256_or_ps(big, _mm256_and_ps(x, sign));
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 q = _mm256_set1_ps(-1382.f / 155925);
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(62.f / 2835));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-17.f / 315));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(2.f / 15));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.f / 3));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(q, x2), x, x);
  return _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.3f), _CMP_LT_OQ));
}

#define FUSED_RNN_FAST_MATH 1

#endif

}  // namespace fused_rnn::cpu::FUSED_RNN_CAPABILITY_NS::fast
