// The floor of a B=1 recurrent step on this machine, for probes-b1-floor/b1_floor.py: each of P
// threads (pinned to CPU p) streams its slice of a packed W_hh panel (K = H rows, G*H/P columns,
// float32) in a GEMV as the fused kernel's one-row tile does (broadcast h[k], one 64-byte load
// per FMA into NV accumulators), writes its outputs, copies its share of them to h and meets the
// others at one spinning barrier a step (barriers = 2 adds one between the GEMV and the copy).
// No gate maths and no input projection. Timing only: with one barrier the h copy races with
// the other thread's reads, which changes values, not the bytes streamed.
// Build: g++ -O3 -march=native -std=c++17 -pthread -shared -fPIC floor.cpp -o libfloor.so
#include <immintrin.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>
#include <pthread.h>
#include <sched.h>
constexpr int NV = 4;  // 4 zmm = 64 columns a tile
struct alignas(64) Bar { std::atomic<int> count{0}; std::atomic<int> gen{0}; };
static void wait(Bar& b, int n) {
  int g = b.gen.load(std::memory_order_acquire);
  if (b.count.fetch_add(1, std::memory_order_acq_rel) + 1 == n) { b.count.store(0, std::memory_order_relaxed); b.gen.store(g + 1, std::memory_order_release); }
  else while (b.gen.load(std::memory_order_acquire) == g) _mm_pause();
}
extern "C" double floor_step_us(int H, int G, int P, int T, int barriers) {
  const int K = H, cols = G * H, per = cols / P, tiles = per / (NV * 16);
  std::vector<float*> panel(P);
  float* h = (float*)aligned_alloc(64, sizeof(float) * K);
  float* out = (float*)aligned_alloc(64, sizeof(float) * cols);
  for (int k = 0; k < K; ++k) h[k] = 0.01f * (k % 7);
  Bar bar;
  std::vector<double> us(P);
  auto work = [&](int p) {
    cpu_set_t s; CPU_ZERO(&s); CPU_SET(p, &s); pthread_setaffinity_np(pthread_self(), sizeof s, &s);
    float* w = (float*)aligned_alloc(64, sizeof(float) * size_t(K) * per);  // first touch by its thread
    for (size_t i = 0; i < size_t(K) * per; ++i) w[i] = 1e-4f * ((i * 2654435761u) % 1000);
    panel[p] = w;
    wait(bar, P);
    auto step = [&]() {
      for (int t = 0; t < tiles; ++t) {
        const float* wt = w + size_t(t) * K * NV * 16;
        __m512 acc[NV];
        for (int v = 0; v < NV; ++v) acc[v] = _mm512_setzero_ps();
        for (int k = 0; k < K; ++k) {
          const __m512 x = _mm512_set1_ps(h[k]);
          for (int v = 0; v < NV; ++v) acc[v] = _mm512_fmadd_ps(x, _mm512_load_ps(wt + (k * NV + v) * 16), acc[v]);
        }
        for (int v = 0; v < NV; ++v) _mm512_store_ps(out + p * per + (t * NV + v) * 16, acc[v]);
      }
      if (barriers == 2) wait(bar, P);
      // h_t from the outputs (each thread its share), then a barrier: the step's dependency.
      for (int k = p * (K / P); k < (p + 1) * (K / P); ++k) h[k] = out[k] * 1e-3f;
      wait(bar, P);
    };
    for (int i = 0; i < 20; ++i) step();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < T; ++i) step();
    us[p] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / T;
  };
  std::vector<std::thread> th;
  for (int p = 0; p < P; ++p) th.emplace_back(work, p);
  for (auto& t : th) t.join();
  for (auto w : panel) free(w);
  free(h); free(out);
  return us[0];
}
