// Per-thread: sum over k of h[k] * panel[k][64] for 8 panels of K=256 (512 KB), repeated; L2-resident.
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>
constexpr int K = 256, NT = 8, NV = 4, W = 16;
alignas(64) float h[K];
float* P;
alignas(64) float out[NT][64];
template <int PF>
__attribute__((noinline)) void base() {
  for (int t = 0; t < NT; ++t) {
    const float* p = P + (size_t)t * K * 64;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int k = 0; k < K; ++k) {
      if (PF) { _mm_prefetch((const char*)(p + (k + PF) * 64), _MM_HINT_T0); _mm_prefetch((const char*)(p + (k + PF) * 64 + 16), _MM_HINT_T0);
                _mm_prefetch((const char*)(p + (k + PF) * 64 + 32), _MM_HINT_T0); _mm_prefetch((const char*)(p + (k + PF) * 64 + 48), _MM_HINT_T0); }
      __m512 x = _mm512_set1_ps(h[k]);
      a0 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64), a0);
      a1 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64 + 16), a1);
      a2 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64 + 32), a2);
      a3 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64 + 48), a3);
    }
    _mm512_store_ps(out[t], a0); _mm512_store_ps(out[t] + 16, a1); _mm512_store_ps(out[t] + 32, a2); _mm512_store_ps(out[t] + 48, a3);
  }
}
// 8 accumulators: even and odd k.
__attribute__((noinline)) void acc8() {
  for (int t = 0; t < NT; ++t) {
    const float* p = P + (size_t)t * K * 64;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int k = 0; k < K; k += 2) {
      __m512 x = _mm512_set1_ps(h[k]), y = _mm512_set1_ps(h[k + 1]);
      a0 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64), a0);
      a1 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64 + 16), a1);
      a2 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64 + 32), a2);
      a3 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64 + 48), a3);
      b0 = _mm512_fmadd_ps(y, _mm512_load_ps(p + k * 64 + 64), b0);
      b1 = _mm512_fmadd_ps(y, _mm512_load_ps(p + k * 64 + 80), b1);
      b2 = _mm512_fmadd_ps(y, _mm512_load_ps(p + k * 64 + 96), b2);
      b3 = _mm512_fmadd_ps(y, _mm512_load_ps(p + k * 64 + 112), b3);
    }
    _mm512_store_ps(out[t], a0 + b0); _mm512_store_ps(out[t] + 16, a1 + b1); _mm512_store_ps(out[t] + 32, a2 + b2); _mm512_store_ps(out[t] + 48, a3 + b3);
  }
}
// two tiles at once (two streams)
__attribute__((noinline)) void two() {
  for (int t = 0; t < NT; t += 2) {
    const float* p = P + (size_t)t * K * 64; const float* q = p + K * 64;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int k = 0; k < K; ++k) {
      __m512 x = _mm512_set1_ps(h[k]);
      a0 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64), a0);
      a1 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64 + 16), a1);
      a2 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64 + 32), a2);
      a3 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64 + 48), a3);
      b0 = _mm512_fmadd_ps(x, _mm512_load_ps(q + k * 64), b0);
      b1 = _mm512_fmadd_ps(x, _mm512_load_ps(q + k * 64 + 16), b1);
      b2 = _mm512_fmadd_ps(x, _mm512_load_ps(q + k * 64 + 32), b2);
      b3 = _mm512_fmadd_ps(x, _mm512_load_ps(q + k * 64 + 48), b3);
    }
    _mm512_store_ps(out[t], a0); _mm512_store_ps(out[t] + 16, a1); _mm512_store_ps(out[t] + 32, a2); _mm512_store_ps(out[t] + 48, a3);
    _mm512_store_ps(out[t+1], b0); _mm512_store_ps(out[t+1] + 16, b1); _mm512_store_ps(out[t+1] + 32, b2); _mm512_store_ps(out[t+1] + 48, b3);
  }
}
template <class F> double run(F f, const char* name) {
  for (int i = 0; i < 50; ++i) f();
  double best = 1e9; std::vector<double> v;
  for (int r = 0; r < 15; ++r) {
    auto s = std::chrono::steady_clock::now();
    for (int i = 0; i < 200; ++i) f();
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count() / 200;
    v.push_back(us);
  }
  std::sort(v.begin(), v.end());
  double med = v[v.size() / 2];
  printf("%-10s %.2f us per 512 KB sweep (%.1f GB/s)\n", name, med, 512.0 * 1024 / med / 1e3);
  return med;
}
#include <algorithm>
int main() {
  P = (float*)aligned_alloc(64, (size_t)NT * K * 64 * 4);
  for (size_t i = 0; i < (size_t)NT * K * 64; ++i) P[i] = (i % 7) * 0.1f;
  for (int k = 0; k < K; ++k) h[k] = k * 0.01f;
  for (int rep = 0; rep < 2; ++rep) {
  run(base<0>, "base");
  run(base<4>, "pf4");
  run(base<8>, "pf8");
  run(base<16>, "pf16");
  run(acc8, "acc8");
  run(two, "two");
  }
}
