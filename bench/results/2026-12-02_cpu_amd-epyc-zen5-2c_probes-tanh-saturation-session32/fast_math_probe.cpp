// Accuracy and throughput of csrc/cpu/fast_math.h against SLEEF (as shipped in torch),
// for the AVX-512 build (-DCAP512) or the AVX2 build (-DCAP2). See README.md for the
// command lines and the recorded output. (A copy of 2026-11-28's probe, with fast_math.h's
// namespace as it is now: inside a capability namespace the includer names.)
#if defined(CAP512)
#define CPU_CAPABILITY_AVX512
#else
#define CPU_CAPABILITY_AVX2
#endif
#include <sleef.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#define FUSED_RNN_CAPABILITY_NS probe
#include "../../../csrc/cpu/fast_math.h"

namespace F = fused_rnn::cpu::probe::fast;
#if defined(CAP512)
using V = __m512;
constexpr int W = 16;
V load(const float* p) { return _mm512_loadu_ps(p); }
void store(float* p, V v) { _mm512_storeu_ps(p, v); }
V sleef_exp(V x) { return Sleef_expf16_u10(x); }
V sleef_tanh(V x) { return Sleef_tanhf16_u35(x); }
V sleef_sig(V x) { return _mm512_div_ps(_mm512_set1_ps(1.f), _mm512_add_ps(_mm512_set1_ps(1.f), Sleef_expf16_u10(_mm512_sub_ps(_mm512_setzero_ps(), x)))); }
#else
using V = __m256;
constexpr int W = 8;
V load(const float* p) { return _mm256_loadu_ps(p); }
void store(float* p, V v) { _mm256_storeu_ps(p, v); }
V sleef_exp(V x) { return Sleef_expf8_u10(x); }
V sleef_tanh(V x) { return Sleef_tanhf8_u35(x); }
V sleef_sig(V x) { return _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_add_ps(_mm256_set1_ps(1.f), Sleef_expf8_u10(_mm256_sub_ps(_mm256_setzero_ps(), x)))); }
#endif

template <class Fn> double ns_per_vector(Fn f) {
  std::vector<float> in(4096), out(4096);
  for (int i = 0; i < 4096; ++i) in[i] = -8.f + 16.f * i / 4096;
  double best = 1e9;
  for (int rep = 0; rep < 50; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < 100; ++it)
      for (int i = 0; i < 4096; i += W) store(&out[i], f(load(&in[i])));
    best = std::min(best, std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / (100.0 * 4096 / W));
  }
  return best;
}

template <class Fn, class Ref> void accuracy(const char* name, Fn f, Ref ref, float lo, float hi) {
  double worst_rel = 0, worst_ulp = 0;
  const int n = 1 << 23;
  for (int i = 0; i < n; i += W) {
    float xs[16], ys[16];
    for (int k = 0; k < W; ++k) xs[k] = lo + (hi - lo) * (float)(i + k) / n;
    store(ys, f(load(xs)));
    for (int k = 0; k < W; ++k) {
      const double r = ref((double)xs[k]);
      if (r == 0) continue;
      const float rf = (float)std::fabs(r);
      worst_rel = std::max(worst_rel, std::fabs((ys[k] - r) / r));
      worst_ulp = std::max(worst_ulp, std::fabs(ys[k] - r) / (std::nextafter(rf, INFINITY) - rf));
    }
  }
  printf("  %-16s on [%g, %g]: max rel err %.3g, max %.2f ulp\n", name, lo, hi, worst_rel, worst_ulp);
}

int main() {
  printf("throughput (best of 50, ns per %d-lane vector, one core):\n", W);
  printf("  exp      SLEEF u10 %.2f   fast %.2f\n", ns_per_vector(sleef_exp), ns_per_vector([](V x) { return F::exp(x); }));
  printf("  sigmoid  SLEEF u10 + div %.2f   fast %.2f\n", ns_per_vector(sleef_sig), ns_per_vector([](V x) { return F::sigmoid(x); }));
  printf("  tanh     SLEEF u35 %.2f   fast %.2f\n", ns_per_vector(sleef_tanh), ns_per_vector([](V x) { return F::tanh(x); }));
  printf("accuracy against double precision:\n");
  accuracy("fast exp", [](V x) { return F::exp(x); }, [](double x) { return std::exp(x); }, -87.f, 88.f);
  accuracy("SLEEF exp", sleef_exp, [](double x) { return std::exp(x); }, -87.f, 88.f);
  accuracy("fast sigmoid", [](V x) { return F::sigmoid(x); }, [](double x) { return 1 / (1 + std::exp(-x)); }, -80.f, 80.f);
  accuracy("SLEEF sigmoid", sleef_sig, [](double x) { return 1 / (1 + std::exp(-x)); }, -80.f, 80.f);
  accuracy("fast tanh", [](V x) { return F::tanh(x); }, [](double x) { return std::tanh(x); }, -10.f, 10.f);
  accuracy("fast tanh", [](V x) { return F::tanh(x); }, [](double x) { return std::tanh(x); }, -0.5f, 0.5f);
  accuracy("SLEEF tanh", sleef_tanh, [](double x) { return std::tanh(x); }, -10.f, 10.f);
  printf("special values (x: sigmoid, tanh):\n");
  for (float v : {-INFINITY, -200.f, -0.f, 0.f, 200.f, INFINITY, NAN}) {
    float s[16], t[16];
    store(s, F::sigmoid(load(std::vector<float>(16, v).data())));
    store(t, F::tanh(load(std::vector<float>(16, v).data())));
    printf("  %g: %g, %g\n", v, s[0], t[0]);
  }
}
