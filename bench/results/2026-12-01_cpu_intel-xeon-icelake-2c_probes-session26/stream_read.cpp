// Pure read bandwidth of a weight-sized buffer swept once a "step" by 2 threads (each its half,
// one barrier a step), one way or zigzag, with and without a software prefetch ahead: the ceiling
// of a B=1 step whose weights do not fit the cores' L2.
//   g++ -O3 -march=native -fopenmp stream_read.cpp -o stream_read && ./stream_read MB [steps]
#include <immintrin.h>
#include <omp.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
int main(int argc, char** argv) {
  const double mb = argc > 1 ? atof(argv[1]) : 16;
  const int steps = argc > 2 ? atoi(argv[2]) : 200;
  const size_t n = size_t(mb * 1024 * 1024 / 4) / 32 * 32;
  float* w = static_cast<float*>(aligned_alloc(64, n * 4));
  for (size_t i = 0; i < n; ++i) w[i] = 1e-6f * (i % 1000);
  for (int mode = 0; mode < 4; ++mode) {
    const bool zig = mode & 1, pf = mode & 2;
    double best = 1e9; float sink = 0;
    for (int rep = 0; rep < 5; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(2) reduction(+ : sink)
      {
        const int t = omp_get_thread_num();
        const size_t lo = n / 2 * t, hi = lo + n / 2;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        for (int s = 0; s < steps; ++s) {
          const bool back = zig && (s & 1);
          if (!back) {
            for (size_t i = lo; i < hi; i += 64) {
              if (pf) _mm_prefetch(reinterpret_cast<const char*>(w + i) + 2048, _MM_HINT_T0);
              acc0 = _mm512_add_ps(acc0, _mm512_load_ps(w + i));
              acc1 = _mm512_add_ps(acc1, _mm512_load_ps(w + i + 16));
              acc2 = _mm512_add_ps(acc2, _mm512_load_ps(w + i + 32));
              acc3 = _mm512_add_ps(acc3, _mm512_load_ps(w + i + 48));
            }
          } else {
            for (size_t i = hi - 64; i + 64 > lo; i -= 64) {
              if (pf) _mm_prefetch(reinterpret_cast<const char*>(w + i) - 2048, _MM_HINT_T0);
              acc0 = _mm512_add_ps(acc0, _mm512_load_ps(w + i));
              acc1 = _mm512_add_ps(acc1, _mm512_load_ps(w + i + 16));
              acc2 = _mm512_add_ps(acc2, _mm512_load_ps(w + i + 32));
              acc3 = _mm512_add_ps(acc3, _mm512_load_ps(w + i + 48));
              if (i == lo) break;
            }
          }
#pragma omp barrier
        }
        sink += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
      }
      double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / steps;
      if (us < best) best = us;
    }
    printf("%.1f MB %s%s: %.1f us a sweep, %.1f GB/s (sink %g)\n", mb, zig ? "zigzag" : "one way", pf ? " +prefetch 2KB" : "",
           best, n * 4 / best / 1e3, sink);
  }
}
