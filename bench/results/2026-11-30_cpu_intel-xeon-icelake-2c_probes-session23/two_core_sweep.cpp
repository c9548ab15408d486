#include <immintrin.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>
#include <algorithm>
constexpr int K = 256, NT = 8;
alignas(64) float h[2][K];
std::atomic<long> done{0};
void sweep(const float* P, int tid, long steps, int nth) {
  for (long s = 0; s < steps; ++s) {
    const float* hp = h[s % 2];
    for (int t = 0; t < NT; ++t) {
      const float* p = P + (size_t)t * K * 64;
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int k = 0; k < K; ++k) {
        __m512 x = _mm512_set1_ps(hp[k]);
        a0 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64), a0);
        a1 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64 + 16), a1);
        a2 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64 + 32), a2);
        a3 = _mm512_fmadd_ps(x, _mm512_load_ps(p + k * 64 + 48), a3);
      }
      __m512 r = _mm512_mul_ps(_mm512_add_ps(a0, a1), _mm512_set1_ps(1e-3f));
      r = _mm512_add_ps(r, _mm512_mul_ps(_mm512_add_ps(a2, a3), _mm512_set1_ps(1e-3f)));
      _mm512_storeu_ps(&h[(s + 1) % 2][(tid * NT + t) * 16 % K], r);
    }
    done.fetch_add(1, std::memory_order_release);
    long target = (s + 1) * nth;
    if (getenv("BAR")) while (done.load(std::memory_order_acquire) < target) _mm_pause();
  }
}
int main(int argc, char** argv) {
  int nth = atoi(argv[1]);
  long steps = 20000;
  std::vector<float*> P(nth);
  for (int i = 0; i < nth; ++i) {
    P[i] = (float*)aligned_alloc(64, (size_t)NT * K * 64 * 4);
    for (size_t j = 0; j < (size_t)NT * K * 64; ++j) P[i][j] = (j % 7) * 0.1f;
  }
  for (int rep = 0; rep < 5; ++rep) {
    done = 0;
    auto s = std::chrono::steady_clock::now();
    std::vector<std::thread> th;
    for (int i = 1; i < nth; ++i) th.emplace_back(sweep, P[i], i, steps, nth);
    sweep(P[0], 0, steps, nth);
    for (auto& t : th) t.join();
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count() / steps;
    printf("threads %d: %.2f us/step (512 KB each)\n", nth, us);
  }
}
