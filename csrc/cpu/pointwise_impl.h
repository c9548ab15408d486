// The pointwise passes of every cell over a block of rows, written once on
// at::vec::Vectorized and compiled once per CPU capability (pointwise_*.cpp).
//
// Include this only from a pointwise_<capability>.cpp, after it has defined
// FUSED_RNN_CAPABILITY_NS (and, for SIMD builds, CPU_CAPABILITY and the target):
// everything here lands in that capability's own namespace, so the copies built
// for different instruction sets never meet at link time.
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(CPU_CAPABILITY_AVX512)
#include <immintrin.h>
#endif

#include "../cell_math.h"
#include "fast_math.h"
#include "pointwise.h"

namespace fused_rnn {

// The maths of cell_math.h on SIMD vectors. float32 on AVX2/AVX-512: the inlined
// exp, sigmoid and tanh of fast_math.h (a few ulp, NaN-propagating). Otherwise
// SLEEF's 1-ulp exp and tanh through at::vec.
template <typename T>
struct Math<at::vec::Vectorized<T>> {
  using V = at::vec::Vectorized<T>;
  static V exp(const V& x) {
#if defined(FUSED_RNN_FAST_MATH)
    if constexpr (std::is_same_v<T, float>) {
      return V(cpu::FUSED_RNN_CAPABILITY_NS::fast::exp(x));
    }
#endif
    return x.exp();
  }
  static V sigmoid(const V& x) {
#if defined(FUSED_RNN_FAST_MATH)
    if constexpr (std::is_same_v<T, float>) {
      return V(cpu::FUSED_RNN_CAPABILITY_NS::fast::sigmoid(x));
    }
#endif
    return V(T(1)) / (V(T(1)) + x.neg().exp());
  }
  static V tanh(const V& x) {
#if defined(FUSED_RNN_FAST_MATH)
    if constexpr (std::is_same_v<T, float>) {
      return V(cpu::FUSED_RNN_CAPABILITY_NS::fast::tanh(x));
    }
#endif
    return x.tanh();
  }
  static V relu(const V& x) { return at::vec::maximum(x, V(T(0))); }
  static V relu_grad(const V& h, const V& dh) { return V::blendv(V(T(0)), dh, h > V(T(0))); }
};

namespace cpu::FUSED_RNN_CAPABILITY_NS {

using at::vec::Vectorized;

// Loads and stores of n <= Vectorized<T>::size() lanes (the tail of a row is shorter).
template <typename T>
struct Lanes {
  using V = Vectorized<T>;
  int64_t n;
  V operator()(const T* p) const { return V::loadu(p, n); }
  void put(T* p, const V& v) const { v.store(p, n); }
};

// body(j, lanes) over units [j0, j1) in vectors.
template <typename T, typename Body>
inline void for_each_lane_block(int64_t j0, int64_t j1, Body&& body) {
  constexpr int64_t W = Vectorized<T>::size();
  for (int64_t j = j0; j < j1; j += W) {
    body(j, Lanes<T>{std::min<int64_t>(W, j1 - j)});
  }
}

template <typename T, typename Body>
inline void for_each_lane_block(int64_t H, Body&& body) {
  for_each_lane_block<T>(0, H, body);
}

template <typename T>
void lstm_forward_rows(const ForwardStep<T>& s, int64_t r0, int64_t r1) {
  const int64_t H = s.H;
  const T* b = s.bias;
  for (int64_t r = r0; r < r1; ++r) {
    T* g = s.gates + r * s.gates_ld;
    T* c = s.c + r * H;
    T* ws_c = s.ws ? s.ws + r * s.ws_ld + 4 * H : nullptr;
    T* h_out = s.h_raw ? s.h_raw + r * s.h_raw_ld : s.h + r * s.P;
    T* out = s.h_raw ? nullptr : s.out + r * s.P;
    for_each_lane_block<T>(H, [&](int64_t j, Lanes<T> L) {
      const auto p = lstm_forward_point(
          L(g + j) + L(b + j), L(g + H + j) + L(b + H + j), L(g + 2 * H + j) + L(b + 2 * H + j),
          L(g + 3 * H + j) + L(b + 3 * H + j), L(c + j));
      L.put(g + j, p.i);
      L.put(g + H + j, p.f);
      L.put(g + 2 * H + j, p.g);
      L.put(g + 3 * H + j, p.o);
      L.put(c + j, p.c);
      if (ws_c) {
        L.put(ws_c + j, p.c);
      }
      L.put(h_out + j, p.h);
      if (out) {
        L.put(out + j, p.h);
      }
    });
  }
}

template <typename T>
void lstm_backward_block(const BackwardStep<T>& s, int64_t r0, int64_t r1, int64_t j0, int64_t j1) {
  const int64_t H = s.H;
  for (int64_t r = r0; r < r1; ++r) {
    const T* w = s.ws + r * s.ws_ld;
    const T* c_prev = s.prev_row(r);
    const T* dh = s.dh_raw ? s.dh_raw + r * H : s.dh + r * s.P;
    T* dc = s.dc + r * H;
    T* dg = s.dg + r * s.dg_ld;  // may be w itself: each lane block reads before it writes
    for_each_lane_block<T>(j0, j1, [&](int64_t j, Lanes<T> L) {
      const auto gr = lstm_backward_point(
          L(w + j), L(w + H + j), L(w + 2 * H + j), L(w + 3 * H + j), L(w + 4 * H + j), L(c_prev + j), L(dh + j),
          L(dc + j));
      L.put(dg + j, gr.di);
      L.put(dg + H + j, gr.df);
      L.put(dg + 2 * H + j, gr.dg);
      L.put(dg + 3 * H + j, gr.d_o);
      L.put(dc + j, gr.dc_prev);
    });
  }
}

template <typename T>
void gru_forward_rows(const ForwardStep<T>& s, int64_t r0, int64_t r1) {
  const int64_t H = s.H;
  const T* b = s.bias;
  const T* bh = s.bias_hh;
  for (int64_t r = r0; r < r1; ++r) {
    T* g = s.gates + r * s.gates_ld;
    const T* gh = s.gh + r * 3 * H;
    T* h = s.h + r * H;
    T* out = s.out + r * H;
    T* ws_hn = s.ws ? s.ws + r * s.ws_ld + 3 * H : nullptr;
    for_each_lane_block<T>(H, [&](int64_t j, Lanes<T> L) {
      const auto p = gru_forward_point(
          L(g + j) + L(b + j), L(g + H + j) + L(b + H + j), L(g + 2 * H + j) + L(b + 2 * H + j),
          L(gh + j) + L(bh + j), L(gh + H + j) + L(bh + H + j), L(gh + 2 * H + j) + L(bh + 2 * H + j), L(h + j));
      L.put(g + j, p.r);
      L.put(g + H + j, p.z);
      L.put(g + 2 * H + j, p.n);
      if (ws_hn) {
        L.put(ws_hn + j, p.hn);
      }
      L.put(h + j, p.h);
      L.put(out + j, p.h);
    });
  }
}

template <typename T>
void gru_backward_block(const BackwardStep<T>& s, int64_t r0, int64_t r1, int64_t j0, int64_t j1) {
  const int64_t H = s.H;
  for (int64_t r = r0; r < r1; ++r) {
    const T* w = s.ws + r * s.ws_ld;
    const T* h_prev = s.prev_row(r);
    T* dh = s.dh + r * H;
    T* dg = s.dg + r * s.dg_ld;  // may be w itself: each lane block reads before it writes
    T* dhn = s.dgh + r * s.dgh_ld;
    for_each_lane_block<T>(j0, j1, [&](int64_t j, Lanes<T> L) {
      const auto gr = gru_backward_point(
          L(w + j), L(w + H + j), L(w + 2 * H + j), L(w + 3 * H + j), L(h_prev + j), L(dh + j));
      L.put(dg + j, gr.dr);
      L.put(dg + H + j, gr.dz);
      L.put(dg + 2 * H + j, gr.dn);
      L.put(dhn + j, gr.dhn);
      L.put(dh + j, gr.dh_prev);
    });
  }
}

template <typename T, Activation A>
void elman_forward_rows(const ForwardStep<T>& s, int64_t r0, int64_t r1) {
  const int64_t H = s.H;
  for (int64_t r = r0; r < r1; ++r) {
    T* g = s.gates + r * s.gates_ld;  // the output row
    T* h = s.h + r * H;
    for_each_lane_block<T>(H, [&](int64_t j, Lanes<T> L) {
      const auto v = rnn_forward_point<A>(L(g + j) + L(s.bias + j));
      L.put(g + j, v);
      L.put(h + j, v);
    });
  }
}

template <typename T, Activation A>
void elman_backward_block(const BackwardStep<T>& s, int64_t r0, int64_t r1, int64_t j0, int64_t j1) {
  const int64_t H = s.H;
  for (int64_t r = r0; r < r1; ++r) {
    const T* h = s.out + r * s.out_ld;
    const T* dh = s.dh + r * H;
    T* dg = s.dg + r * s.dg_ld;
    for_each_lane_block<T>(j0, j1, [&](int64_t j, Lanes<T> L) {
      L.put(dg + j, rnn_backward_point<A>(L(h + j), L(dh + j)));
    });
  }
}

template <typename T>
void lstm_backward_rows(const BackwardStep<T>& s, int64_t r0, int64_t r1) {
  lstm_backward_block(s, r0, r1, 0, s.H);
}

template <typename T>
void gru_backward_rows(const BackwardStep<T>& s, int64_t r0, int64_t r1) {
  gru_backward_block(s, r0, r1, 0, s.H);
}

template <typename T, Activation A>
void elman_backward_rows(const BackwardStep<T>& s, int64_t r0, int64_t r1) {
  elman_backward_block<T, A>(s, r0, r1, 0, s.H);
}

// ---------------------------------------------------------------- fused step tiles
//
// One step of the recurrence for a tile of hidden units: the product h_{t-1} W_hh^T
// for every gate of those units, kept in registers, then the pointwise pass on it,
// so the recurrent pre-activations never travel through memory. W_hh is packed
// once per call into one panel per tile, [K][G][U*W]: for each k, the G gates of
// the tile's U*W units side by side, zero past H.

template <typename T, CellKind C>
struct TileShape {
  using V = Vectorized<T>;
  static constexpr int W = V::size();
  static constexpr int G = C == CellKind::kLstm ? 4 : (C == CellKind::kGru ? 3 : 1);
  static constexpr int U = G == 1 ? 4 : 1;   // vectors of units per gate: a single-gate tile is widened
  static constexpr int NV = G * U;           // vectors per k of the panel
  // Accumulator registers: 24 of the 32 AVX-512 registers, 12 of the 16 of AVX2.
  static constexpr int kRegs = sizeof(V) >= 64 ? 24 : 12;
  static constexpr int MR = kRegs / NV > 0 ? kRegs / NV : 1;  // rows per register block
  static constexpr int kUnits = U * W;
  // Rows per register block of the in-place products (tile_dots): 4 accumulators a row.
  static constexpr int DR = sizeof(V) >= 64 ? 4 : 2;
};

// pack_tile's k-block: rows kb..kb + kPackBlock (at most K) of the panel.
template <typename T, typename Tw>
constexpr int64_t kPackBlock = std::max<int64_t>(4 * (64 / static_cast<int64_t>(sizeof(Tw))), TileShape<T, CellKind::kLstm>::W);

// Rows kb..ke of tile u's panel, written to dst (row k at dst + (k - kb) * kWidth).
template <typename T, CellKind C, typename Tw>
inline void pack_tile_block(const Tw* w_hh, int64_t H, int64_t K, int64_t u, int64_t kb, int64_t ke, Tw* dst) {
  using S = TileShape<T, C>;
  constexpr int64_t kWidth = S::G * S::kUnits;
  constexpr int W = S::W;
  constexpr int64_t kLine = 64 / static_cast<int64_t>(sizeof(Tw));
  constexpr int64_t kBlock = kPackBlock<T, Tw>;
  const int64_t j0 = u * S::kUnits;
  for (int g = 0; g < S::G; ++g) {
    for (int q0 = 0; q0 < S::kUnits; q0 += W) {
      const int64_t j = j0 + q0;
      const int64_t n = std::max<int64_t>(0, std::min<int64_t>(W, H - j));
      const Tw* rows = n > 0 ? w_hh + (g * H + j) * K : w_hh;  // rows j.. of gate g (none past H)
      Tw* d = dst + g * S::kUnits + q0 - kb * kWidth;
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t p = kb + 2 * kBlock; p < std::min(K, kb + 3 * kBlock); p += kLine) {
          __builtin_prefetch(rows + i * K + p, 0, 2);
        }
      }
      int64_t k = kb;
      if constexpr (std::is_same_v<Tw, float>) {
        if (n == W) {
          for (; k + W <= ke; k += W) {
            at::vec::transpose_mxn<float, W, W>(rows + k, K, d + k * kWidth, kWidth);
          }
        }
      }
      for (; k < ke; ++k) {
        for (int64_t i = 0; i < W; ++i) {
          d[k * kWidth + i] = i < n ? rows[i * K + k] : Tw(0);
        }
      }
    }
  }
}

template <typename T, CellKind C, typename Tw = T>
void pack_tile(const Tw* w_hh, int64_t H, int64_t K, int64_t u, Tw* dst) {
  constexpr int64_t kWidth = TileShape<T, C>::G * TileShape<T, C>::kUnits;
  // A transpose, in blocks of k whose destination (kBlock x kWidth) stays in L1 while each
  // source row gives it kBlock contiguous elements (four cache lines); float32 weights as W x W
  // register transposes, a group of W rows at a time. The rows are more streams than a hardware
  // prefetcher follows, so each row's block two ahead is asked for (into L2; into L1 was no
  // faster in the probe). Element by element, and without the prefetches, the
  // source lines were misses waiting on L3 or memory: 1.4-2.9 GB/s packing LSTM weights of
  // 1-4 MB (measured 2026-11-29; bench/results/..._probes-pack-panels).
  constexpr int64_t kBlock = kPackBlock<T, Tw>;
  for (int64_t kb = 0; kb < K; kb += kBlock) {
    pack_tile_block<T, C, Tw>(w_hh, H, K, u, kb, std::min(K, kb + kBlock), dst + kb * kWidth);
  }
}

#if defined(CPU_CAPABILITY_AVX512)
// The bits by which rows[0..15][0..15] (row i at rows + i * ld) differ from the transpose held
// in lines[0..15][0..15] (line k at lines + k * ld_lines), OR-ed into diff: the 16 x 16 block
// transposed in registers (unpack, then 32- and 128-bit shuffles) and XOR-ed with the lines.
inline __m512i transposed_diff16(const float* rows, int64_t ld, const float* lines, int64_t ld_lines, __m512i diff) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) {
    r[i] = _mm512_loadu_ps(rows + i * ld);
  }
  for (int i = 0; i < 16; i += 2) {  // per 128-bit lane: rows i, i+1 interleaved
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // r[i + m]: lane l holds column 4l + m of rows i..i+3
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {  // column m + 4l gathers lane l of r[m], r[4 + m], r[8 + m], r[12 + m]
    const __m512 even_lo = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88), even_hi = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88);
    const __m512 odd_lo = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xDD), odd_hi = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xDD);
    t[m] = _mm512_shuffle_f32x4(even_lo, even_hi, 0x88);
    t[m + 8] = _mm512_shuffle_f32x4(even_lo, even_hi, 0xDD);
    t[m + 4] = _mm512_shuffle_f32x4(odd_lo, odd_hi, 0x88);
    t[m + 12] = _mm512_shuffle_f32x4(odd_lo, odd_hi, 0xDD);
  }
  for (int k = 0; k < 16; ++k) {
    const __m512i line = _mm512_castps_si512(_mm512_loadu_ps(lines + k * ld_lines));
    diff = _mm512_or_si512(diff, _mm512_xor_si512(_mm512_castps_si512(t[k]), line));
  }
  return diff;
}
#endif

// Whether tile u's panel holds what pack_tile would pack from w_hh now: each k-block packed
// into an L1 buffer and compared with the panel's, so the weight is read once and the panel
// is left in the cache of the thread that compared it (the panel cache's check of a weight
// that may have been written without its version counter knowing: panel_cache.h).
// float32 on AVX-512, a whole tile: 16 rows of a gate at a time, their 16 x 16 blocks transposed
// in registers and compared bit for bit with the panel's lines, each row read from start to end
// with a software prefetch four lines ahead (the rows are more streams than the hardware
// prefetcher follows). Not pack_tile_block's at::vec::transpose_mxn: it stores each block to
// memory, and a probe comparing from that store ran no faster than the packed form (`aten_pf`
// in check_cost_probe5.txt, below). Calls at batch 1, which this check starts, ran 0.99-1.05x as fast as with
// blocks packed into a buffer for memcmp (LSTM H = 256 T = 50: 1.04-1.05x), the two forms switched
// in one process with their order rotated (LSTM/GRU/RNN H = 128-512, T = 50-200;
// bench/results/2026-12-01_cpu_intel-xeon-icelake-2c_probes-session26/check_ab_rotated.txt).
template <typename T, CellKind C, typename Tw = T>
bool tile_matches(const Tw* w_hh, int64_t H, int64_t K, int64_t u, const Tw* panel) {
  using S = TileShape<T, C>;
  constexpr int64_t kWidth = S::G * S::kUnits;
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<Tw, float> && S::W == 16) {
    const int64_t j0 = u * S::kUnits;
    if (j0 + S::kUnits <= H) {
      const int64_t k_full = K - K % 16;
      __m512i diff = _mm512_setzero_si512();
      bool tail_equal = true;
      for (int g = 0; g < S::G; ++g) {
        for (int q0 = 0; q0 < S::kUnits; q0 += 16) {
          const float* rows = w_hh + (g * H + j0 + q0) * K;
          const float* lines = panel + g * S::kUnits + q0;
          for (int64_t k = 0; k < k_full; k += 16) {
            for (int i = 0; i < 16; ++i) {
              _mm_prefetch(reinterpret_cast<const char*>(rows + i * K + k + 64), _MM_HINT_T0);
            }
            diff = transposed_diff16(rows + k, K, lines + k * kWidth, kWidth, diff);
          }
          for (int64_t k = k_full; k < K; ++k) {
            for (int i = 0; i < 16; ++i) {
              tail_equal &= std::memcmp(rows + i * K + k, lines + k * kWidth + i, sizeof(float)) == 0;
            }
          }
        }
      }
      return tail_equal && _mm512_test_epi32_mask(diff, diff) == 0;
    }
  }
#endif
  constexpr int64_t kBlock = kPackBlock<T, Tw>;
  alignas(64) Tw block[kBlock * kWidth];
  for (int64_t kb = 0; kb < K; kb += kBlock) {
    const int64_t ke = std::min(K, kb + kBlock);
    pack_tile_block<T, C, Tw>(w_hh, H, K, u, kb, ke, block);
    if (std::memcmp(block, panel + kb * kWidth, sizeof(Tw) * (ke - kb) * kWidth) != 0) {
      return false;
    }
  }
  return true;
}

// A vector of T from weights stored as Tw: T itself, or (T = float) bfloat16 / float16
// converted as they are loaded. The conversion is exact, so a kernel reading 16-bit
// weights computes bit for bit what it computes from their float32 copy.
template <typename T, typename Tw>
inline Vectorized<T> load_w(const Tw* p) {
  if constexpr (std::is_same_v<T, Tw>) {
    return Vectorized<T>::loadu(p);
  } else {
    static_assert(std::is_same_v<T, float>, "16-bit weights are read into float32 only");
    Vectorized<float> v;
    at::vec::load_to_float<Tw>(p, v);
    return v;
  }
}

template <typename T, typename Tw>
inline Vectorized<T> load_w(const Tw* p, int64_t count) {
  if constexpr (std::is_same_v<T, Tw>) {
    return Vectorized<T>::loadu(p, count);
  } else {
    Tw tail[Vectorized<float>::size()] = {};
    std::copy(p, p + count, tail);
    return load_w<T>(static_cast<const Tw*>(tail));
  }
}

// c[m][v*W..] = sum_k a[m*lda + k] * panel[k][v*W..] for MR rows of a (panel stored as Tw).
template <typename T, int MR, int NV, typename Tw = T>
inline void tile_product(const T* a, int64_t lda, const Tw* panel, int64_t K, T* c) {
  using V = Vectorized<T>;
  constexpr int W = V::size();
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int m = 0; m < MR; ++m) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      acc[m][v] = V(T(0));
    }
  }
  for (int64_t k = 0; k < K; ++k) {
    const Tw* w = panel + k * NV * W;
    const T* ak = a + k;
    V b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      b[v] = load_w<T>(w + v * W);
    }
#pragma GCC unroll 32
    for (int m = 0; m < MR; ++m) {
      const V x(ak[m * lda]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        acc[m][v] = at::vec::fmadd(x, b[v], acc[m][v]);
      }
    }
  }
#pragma GCC unroll 32
  for (int m = 0; m < MR; ++m) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      acc[m][v].store(c + (m * NV + v) * W);
    }
  }
}

// f(std::integral_constant<int, M>{}) for the largest register block M <= MR that `rows`
// fills (rows <= MR): how a product kernel templated on its block height serves any rows.
template <int MR, class F>
inline void with_block_rows(int rows, const F& f) {
  if constexpr (MR > 1) {
    if (rows < MR) {
      with_block_rows<MR - 1>(rows, f);
      return;
    }
  }
  f(std::integral_constant<int, MR>{});
}

// The in-place products' weight rows for one group: the rows g*H + j + i (i < kDotRows) of w
// (ld K) that exist, n of them (returned); the rest repeat the first, and their sums are not kept.
template <int kDotRows, typename Tw>
inline int dot_rows(const Tw* w, int g, int64_t H, int64_t j, int64_t K, const Tw* (&row)[kDotRows]) {
  const int n = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(kDotRows, H - j)));
  for (int i = 0; i < kDotRows; ++i) {
    row[i] = i < n ? w + (g * H + j + i) * K : (n > 0 ? row[0] : nullptr);
  }
  return n;
}

// tile_product's products read in place from the rows of a row-major weight w (ld K), for a
// batch too small to pay for packing it: c[m][v*W + l] = a[m] . w[g*H + j] with g = v / U,
// j = j0 + (v % U)*W + l (zero past H). Each accumulator holds a row's partial dot
// product across the lanes; kDotRows rows of w at a time meet MR rows of a, so a
// weight row is read once per register block and the accumulator chains are
// independent, and a horizontal sum closes each dot product.
template <typename T, int MR, int G, int U, typename Tw = T>
inline void tile_dots(const T* a, int64_t lda, const Tw* w, int64_t K, int64_t H, int64_t j0, T* c) {
  using V = Vectorized<T>;
  constexpr int W = V::size(), NV = G * U;
  // 8 independent FMA chains at a single row of a; never more rows than lanes.
  constexpr int kDotRows = std::min(W, MR == 1 ? 8 : 4);
  const int64_t k_full = K - K % W;
  const auto sum = [](V x, V y) { return x + y; };
  for (int v = 0; v < NV; ++v) {
    const int g = v / U;
    for (int l = 0; l < W; l += kDotRows) {
      const int64_t j = j0 + (v % U) * W + l;
      const Tw* row[kDotRows];
      const int n = dot_rows<kDotRows>(w, g, H, j, K, row);
      V acc[MR][kDotRows];
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) {
#pragma GCC unroll 8
        for (int i = 0; i < kDotRows; ++i) {
          acc[m][i] = V(T(0));
        }
      }
      if (n > 0) {
        auto step = [&](int64_t k, int64_t count) {
          V b[kDotRows];
#pragma GCC unroll 8
          for (int i = 0; i < kDotRows; ++i) {
            b[i] = count == W ? load_w<T>(row[i] + k) : load_w<T>(row[i] + k, count);
          }
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m) {
            const V x = count == W ? V::loadu(a + m * lda + k) : V::loadu(a + m * lda + k, count);
#pragma GCC unroll 8
            for (int i = 0; i < kDotRows; ++i) {
              acc[m][i] = at::vec::fmadd(x, b[i], acc[m][i]);
            }
          }
        };
        for (int64_t k = 0; k < k_full; k += W) {
          step(k, W);
        }
        if (k_full < K) {
          step(k_full, K - k_full);
        }
      }
      for (int m = 0; m < MR; ++m) {
        for (int i = 0; i < kDotRows; ++i) {
          c[(m * NV + v) * W + l + i] = i < n ? at::vec::vec_reduce_all<T>(sum, acc[m][i]) : T(0);
        }
      }
    }
  }
}

#if defined(CPU_CAPABILITY_AVX512)
// Weight tag for bfloat16 weights multiplied by AVX512-BF16 dot products (vdpbf16ps, fp32
// accumulation) in pairs along K: panels of [ceil(K/2)][G][U*W] pairs (w[k], w[k+1]) of one
// column, zero past K and H, or (the in-place reading) the row-major weight itself, whose rows
// are pairs along K already; the other operand (h_{t-1} or x) is rounded to bfloat16, as
// torch.nn's bfloat16 recurrences round h. Twice the rate of the float32 FMA forms
// (probes-bf16-dot-products). Compiled in the AVX-512 capability; run only where the CPU has
// AVX512-BF16 (bf16_dot_products() in pointwise.h).
struct Bf16Pairs {
  uint32_t bits;
};

#define FUSED_RNN_BF16_DOT __attribute__((noinline, target("avx512bf16,avx512f,avx512bw,avx512vl")))

// MR rows of a (float32, ld lda, K long) rounded to bfloat16 (nearest even) into a thread-local
// buffer, each row padded with zeros to a multiple of 32 elements (ld returned in *ld): the
// other operand of the bf16 dot products, whose pairs along K are its adjacent elements.
template <int MR>
FUSED_RNN_BF16_DOT const uint16_t* round_rows_bf16(const float* a, int64_t lda, int64_t K, int64_t* ld) {
  const int64_t K32 = (K + 31) / 32 * 32;
  thread_local std::vector<uint16_t> rounded;
  if (static_cast<int64_t>(rounded.size()) < MR * K32) {
    rounded.resize(MR * K32);
  }
  uint16_t* const out = rounded.data();  // taken once: named in a loop, each use is a __tls_get_addr call
  for (int m = 0; m < MR; ++m) {
    const float* row = a + m * lda;
    for (int64_t k = 0; k < K32; k += 32) {
      const __mmask16 lo = k + 16 <= K ? 0xffff : (k < K ? (1u << (K - k)) - 1 : 0);
      const __mmask16 hi = k + 32 <= K ? 0xffff : (k + 16 < K ? (1u << (K - k - 16)) - 1 : 0);
      const __m512bh b =
          _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, row + k + 16), _mm512_maskz_loadu_ps(lo, row + k));
      _mm512_storeu_si512(out + m * K32 + k, (__m512i)b);
    }
  }
  *ld = K32;
  return out;
}

// acc[m][v] = sum_k a[m][k] * w[k][v*16..] for MR rows of a given as bf16 pairs (row m at
// a + m*lda2, ceil(K/2) pairs, zero past K): the register block of the products below.
template <int MR, int NV>
__attribute__((always_inline, target("avx512bf16,avx512f,avx512bw,avx512vl"))) inline void pairs_block(
    const uint32_t* a, int64_t lda2, const uint16_t* panel, int64_t K, __m512 (&acc)[MR][NV]) {
  const int64_t K2 = (K + 1) / 2;
  for (int m = 0; m < MR; ++m) {
    for (int v = 0; v < NV; ++v) {
      acc[m][v] = _mm512_setzero_ps();
    }
  }
  for (int64_t k2 = 0; k2 < K2; ++k2) {
    const uint16_t* w = panel + k2 * NV * 32;
    __m512bh b[NV];
    for (int v = 0; v < NV; ++v) {
      b[v] = (__m512bh)_mm512_loadu_si512(w + v * 32);
    }
    for (int m = 0; m < MR; ++m) {
      const __m512bh x = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[m * lda2 + k2]));
      for (int v = 0; v < NV; ++v) {
        acc[m][v] = _mm512_dpbf16_ps(acc[m][v], x, b[v]);
      }
    }
  }
}

// c[m][v*16..] = the products of pairs_block, MR x NV vectors in a row.
template <int MR, int NV>
FUSED_RNN_BF16_DOT void tile_product_pairs_of(const uint32_t* a, int64_t lda2, const uint16_t* panel, int64_t K,
                                              float* c) {
  __m512 acc[MR][NV];
  pairs_block<MR, NV>(a, lda2, panel, K, acc);
  for (int m = 0; m < MR; ++m) {
    for (int v = 0; v < NV; ++v) {
      _mm512_storeu_ps(c + (m * NV + v) * 16, acc[m][v]);
    }
  }
}

// The same for MR rows of a in float32 (row m at a + m*lda), rounded to bf16 here.
template <int MR, int NV>
FUSED_RNN_BF16_DOT void tile_product_pairs(const float* a, int64_t lda, const uint16_t* panel, int64_t K, float* c) {
  int64_t ld = 0;
  const uint16_t* rounded = round_rows_bf16<MR>(a, lda, K, &ld);
  tile_product_pairs_of<MR, NV>(reinterpret_cast<const uint32_t*>(rounded), ld / 2, panel, K, c);
}

// Rows [r0, r1), columns [c0, c1) of x (float32, ld ldx) rounded to bfloat16 (nearest even):
// element (r, c) at dst[r * ld + c], the rest of dst untouched. Rows so rounded are pairs along
// their columns for an operand that many tiles multiply (a chunk's inputs, dG_t): rounded once,
// by the team, rather than by each tile's product (round_rows_bf16). Columns may start odd:
// the stores are of 16-bit elements, so threads rounding neighbouring columns do not meet.
FUSED_RNN_BF16_DOT void round_bf16(const float* x, int64_t ldx, int64_t r0, int64_t r1, int64_t c0, int64_t c1,
                                   void* dst, int64_t ld) {
  auto* out = static_cast<uint16_t*>(dst);
  for (int64_t r = r0; r < r1; ++r) {
    const float* row = x + r * ldx;
    uint16_t* o = out + r * ld;
    for (int64_t c = c0; c < c1; c += 32) {
      const int64_t n = std::min<int64_t>(32, c1 - c);
      const __mmask16 lo = n >= 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1);
      const __mmask16 hi = n >= 32 ? 0xffff : (n > 16 ? static_cast<__mmask16>((1u << (n - 16)) - 1) : 0);
      const __m512bh b =
          _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, row + c + 16), _mm512_maskz_loadu_ps(lo, row + c));
      _mm512_mask_storeu_epi16(o + c, n == 32 ? ~__mmask32(0) : static_cast<__mmask32>((1ull << n) - 1), (__m512i)b);
    }
  }
}

// tile_product_pairs_of's products written (or added) straight to the gates: vector v of the
// tile (gate v / U, units j0 + (v % U)*16..) of row m at out + m*ldo + (v / U)*H + j, lanes past
// H neither read nor written.
template <int MR, int NV, int U>
FUSED_RNN_BF16_DOT void tile_product_pairs_into(const uint32_t* a, int64_t lda2, const uint16_t* panel, int64_t K,
                                                float* out, int64_t ldo, int64_t H, int64_t j0, bool accumulate) {
  __m512 acc[MR][NV];
  pairs_block<MR, NV>(a, lda2, panel, K, acc);
  for (int v = 0; v < NV; ++v) {
    const int64_t j = j0 + (v % U) * 16, n = std::min<int64_t>(16, H - j);
    if (n <= 0) {
      continue;
    }
    const __mmask16 mask = n == 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1);
    float* o = out + (v / U) * H + j;
    for (int m = 0; m < MR; ++m) {
      __m512 r = acc[m][v];
      if (accumulate) {
        r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask, o + m * ldo));
      }
      _mm512_mask_storeu_ps(o + m * ldo, mask, r);
    }
  }
}

// tile_dots' products in bf16 dot products, read in place from the rows of a row-major
// bfloat16 weight w (ld K): a row of w is already its pairs along K, so 32 of its elements
// meet 32 of a row of a (rounded to bf16 here, zero past K) in one vdpbf16ps, and a
// horizontal sum closes each dot product. The loads of w stop at K (masked), so nothing
// past the weight is read.
template <int MR, int G, int U>
FUSED_RNN_BF16_DOT void tile_dots_pairs(const float* a, int64_t lda, const uint16_t* w, int64_t K, int64_t H,
                                        int64_t j0, float* c) {
  constexpr int W = 16, NV = G * U;
  constexpr int kDotRows = MR == 1 ? 8 : 4;
  int64_t K32 = 0;
  const uint16_t* const xs = round_rows_bf16<MR>(a, lda, K, &K32);
  const int64_t k_full = K - K % 32;
  const __mmask32 tail = K % 32 == 0 ? 0 : static_cast<__mmask32>((1ull << (K % 32)) - 1);
  for (int v = 0; v < NV; ++v) {
    const int g = v / U;
    for (int l = 0; l < W; l += kDotRows) {
      const int64_t j = j0 + (v % U) * W + l;
      const uint16_t* row[kDotRows];
      const int n = dot_rows<kDotRows>(w, g, H, j, K, row);
      __m512 acc[MR][kDotRows];
      for (int m = 0; m < MR; ++m) {
        for (int i = 0; i < kDotRows; ++i) {
          acc[m][i] = _mm512_setzero_ps();
        }
      }
      if (n > 0) {
        auto step = [&](int64_t k, __mmask32 mask) {
          __m512bh b[kDotRows];
          for (int i = 0; i < kDotRows; ++i) {
            b[i] = (__m512bh)_mm512_maskz_loadu_epi16(mask, row[i] + k);
          }
          for (int m = 0; m < MR; ++m) {
            const __m512bh x = (__m512bh)_mm512_loadu_si512(xs + m * K32 + k);
            for (int i = 0; i < kDotRows; ++i) {
              acc[m][i] = _mm512_dpbf16_ps(acc[m][i], x, b[i]);
            }
          }
        };
        for (int64_t k = 0; k < k_full; k += 32) {
          step(k, ~__mmask32(0));
        }
        if (tail != 0) {
          step(k_full, tail);
        }
      }
      for (int m = 0; m < MR; ++m) {
        for (int i = 0; i < kDotRows; ++i) {
          c[(m * NV + v) * W + l + i] = i < n ? _mm512_reduce_add_ps(acc[m][i]) : 0.0f;
        }
      }
    }
  }
}

// pack_columns' panel of a bfloat16 (K, H) matrix, in bf16 pairs along K: [ceil(K/2)][kUnits]
// pairs (w[k][j], w[k+1][j]), zero past K and H; for the backward's dh_{t-1} = dG_t W_hh of a
// bfloat16 layer, multiplied by tile_product_pairs in the single-gate geometry.
template <typename T>
void pack_columns_pairs(const void* w_in, int64_t ld, int64_t H, int64_t K, int64_t u, void* dst_out) {
  constexpr int64_t kUnits = TileShape<T, CellKind::kRnnTanh>::kUnits;
  const auto* w = static_cast<const c10::BFloat16*>(w_in);
  auto* dst = static_cast<c10::BFloat16*>(dst_out);
  const int64_t j0 = u * kUnits, n = std::max<int64_t>(0, std::min(kUnits, H - j0)), K2 = (K + 1) / 2;
  for (int64_t k2 = 0; k2 < K2; ++k2) {
    for (int i = 0; i < 2; ++i) {
      const int64_t k = 2 * k2 + i;
      c10::BFloat16* d = dst + k2 * kUnits * 2 + i;
      for (int64_t q = 0; q < kUnits; ++q) {
        d[2 * q] = k < K && q < n ? w[k * ld + j0 + q] : c10::BFloat16(0.0f);
      }
    }
  }
}

// pack_tile's panel in bf16 pairs along K (see Bf16Pairs).
template <typename T, CellKind C>
void pack_pairs(const void* w_in, int64_t H, int64_t K, int64_t u, void* dst_out) {
  using S = TileShape<T, C>;
  constexpr int64_t kWidth = S::G * S::kUnits;
  const auto* w = static_cast<const c10::BFloat16*>(w_in);
  auto* dst = static_cast<c10::BFloat16*>(dst_out);
  const int64_t j0 = u * S::kUnits, K2 = (K + 1) / 2;
  for (int g = 0; g < S::G; ++g) {
    for (int q = 0; q < S::kUnits; ++q) {
      const int64_t j = j0 + q, col = g * S::kUnits + q;
      const c10::BFloat16* row = j < H ? w + (g * H + j) * K : nullptr;
      for (int64_t k2 = 0; k2 < K2; ++k2) {
        c10::BFloat16* d = dst + (k2 * kWidth + col) * 2;
        for (int i = 0; i < 2; ++i) {
          const int64_t k = 2 * k2 + i;
          d[i] = row != nullptr && k < K ? row[k] : c10::BFloat16(0.0f);
        }
      }
    }
  }
}
#endif

// The rows of the next register block when `left` rows remain: blocks of (nearly)
// equal size, so 8 rows run as 4 + 4 rather than 6 + 2 (a 2-row block keeps a
// third of the accumulators busy).
inline int64_t block_rows(int64_t left, int64_t mr) {
  const int64_t blocks = (left + mr - 1) / mr;
  return (left + blocks - 1) / blocks;
}

// The products of tile u for `rows` rows of a (ld lda) into c: from the tile's packed
// panel (kDots false: w is that panel), or in place from the rows of the row-major
// weight (kDots true: w is the weight, G*H rows of K).
template <typename T, CellKind C, bool kDots, typename Tw = T>
inline void tile_products(int rows, const T* a, int64_t lda, const Tw* w, int64_t K, int64_t H, int64_t u, T* c) {
  using S = TileShape<T, C>;
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<Tw, Bf16Pairs>) {
    static_assert(std::is_same_v<T, float>, "bf16 pairs are for float32");
    const auto* w16 = reinterpret_cast<const uint16_t*>(w);
    if constexpr (kDots) {  // w is the bfloat16 weight itself, its rows pairs along K
      with_block_rows<S::DR>(rows, [&](auto m) {
        tile_dots_pairs<decltype(m)::value, S::G, S::U>(a, lda, w16, K, H, u * S::kUnits, c);
      });
    } else {
      with_block_rows<S::MR>(rows, [&](auto m) { tile_product_pairs<decltype(m)::value, S::NV>(a, lda, w16, K, c); });
    }
  } else
#endif
  if constexpr (kDots) {
    with_block_rows<S::DR>(rows, [&](auto m) {
      tile_dots<T, decltype(m)::value, S::G, S::U, Tw>(a, lda, w, K, H, u * S::kUnits, c);
    });
  } else {
    with_block_rows<S::MR>(rows, [&](auto m) { tile_product<T, decltype(m)::value, S::NV, Tw>(a, lda, w, K, c); });
  }
}

// Rows [r0, r1) of one step for tile u: st as for the row passes above, except that
// st.gates holds only x W_ih^T (the recurrent part is computed here from h_prev,
// ld K) and st.h receives h_t (it is not read). w as for tile_products.
template <typename T, CellKind C, bool kDots, typename Tw = T>
void forward_tile(const ForwardStep<T>& st, const T* h_prev, const Tw* w, int64_t K, int64_t u, int64_t r0,
                  int64_t r1) {
  using S = TileShape<T, C>;
  using V = Vectorized<T>;
  constexpr int W = S::W;
  const int64_t H = st.H;
  alignas(64) T acc[S::MR * S::NV * W];
  for (int64_t rb = r0, rows = 0; rb < r1; rb += rows) {
    rows = block_rows(r1 - rb, kDots ? S::DR : S::MR);
    // The epilogue's rows of the gate buffer (and the cell state) are far apart in a
    // buffer larger than the caches: ask for them now, so they arrive during the product.
    for (int m = 0; m < rows; ++m) {
      const T* g = st.gates + (rb + m) * st.gates_ld + u * S::kUnits;
      for (int k = 0; k < S::G; ++k) {
        for (int q = 0; q < S::U; ++q) {
          __builtin_prefetch(g + k * H + q * W, 1);
        }
      }
      if constexpr (C == CellKind::kLstm) {
        __builtin_prefetch(st.c + (rb + m) * H + u * S::kUnits, 1);
      }
    }
#if defined(CPU_CAPABILITY_AVX512)
    if constexpr (std::is_same_v<Tw, Bf16Pairs> && !kDots) {  // h_{t-1} already in bf16 pairs (st.h16_prev)
      const auto* a16 = static_cast<const uint32_t*>(st.h16_prev) + rb * st.h16_ld / 2;
      with_block_rows<S::MR>(static_cast<int>(rows), [&](auto m) {
        tile_product_pairs_of<decltype(m)::value, S::NV>(a16, st.h16_ld / 2, reinterpret_cast<const uint16_t*>(w), K,
                                                         acc);
      });
    } else
#endif
    {
      tile_products<T, C, kDots, Tw>(static_cast<int>(rows), h_prev + rb * K, K, w, K, H, u, acc);
    }
    for (int m = 0; m < rows; ++m) {
      const int64_t r = rb + m;
      T* g = st.gates + r * st.gates_ld;
      // h_t's lanes in bf16 too, for the next step's products (st.h16).
      auto put16 = [&](int64_t j, const Lanes<T>& L, const Vectorized<T>& h) {
#if defined(CPU_CAPABILITY_AVX512)
        if constexpr (std::is_same_v<Tw, Bf16Pairs> && !kDots) {
          _mm256_mask_storeu_epi16(static_cast<uint16_t*>(st.h16) + r * st.h16_ld + j,
                                   static_cast<__mmask16>((1u << L.n) - 1), at::vec::cvtfp32_bf16(__m512(h)));
        }
#endif
        (void)j, (void)L, (void)h;
      };
      for (int q = 0; q < S::U; ++q) {
        const int64_t j = u * S::kUnits + q * W;
        if (j >= H) {
          break;
        }
        const Lanes<T> L{std::min<int64_t>(W, H - j)};
        // The recurrent product of gate k for these lanes.
        auto R = [&](int k) { return V::loadu(acc + (m * S::NV + k * S::U + q) * W); };
        if constexpr (C == CellKind::kLstm) {
          const T* b = st.bias;
          Acc<T>* c = st.c + r * H;
          const auto p = lstm_forward_point(
              L(g + j) + R(0) + L(b + j), L(g + H + j) + R(1) + L(b + H + j),
              L(g + 2 * H + j) + R(2) + L(b + 2 * H + j), L(g + 3 * H + j) + R(3) + L(b + 3 * H + j), L(c + j));
          if (st.ws) {  // training: the gates live in the workspace, followed by c_t
            L.put(g + j, p.i);
            L.put(g + H + j, p.f);
            L.put(g + 2 * H + j, p.g);
            L.put(g + 3 * H + j, p.o);
            L.put(st.ws + r * st.ws_ld + 4 * H + j, p.c);
          }
          L.put(c + j, p.c);
          L.put(st.h + r * H + j, p.h);
          L.put(st.out + r * H + j, p.h);
          put16(j, L, p.h);
        } else if constexpr (C == CellKind::kGru) {
          const T* b = st.bias;
          const T* bh = st.bias_hh;
          const auto p = gru_forward_point(
              L(g + j) + L(b + j), L(g + H + j) + L(b + H + j), L(g + 2 * H + j) + L(b + 2 * H + j),
              R(0) + L(bh + j), R(1) + L(bh + H + j), R(2) + L(bh + 2 * H + j), L(h_prev + r * K + j));
          if (st.ws) {
            L.put(g + j, p.r);
            L.put(g + H + j, p.z);
            L.put(g + 2 * H + j, p.n);
            L.put(st.ws + r * st.ws_ld + 3 * H + j, p.hn);
          }
          L.put(st.h + r * H + j, p.h);
          L.put(st.out + r * H + j, p.h);
          put16(j, L, p.h);
        } else {
          constexpr Activation A = C == CellKind::kRnnTanh ? Activation::kTanh : Activation::kRelu;
          const V v = rnn_forward_point<A>(L(g + j) + R(0) + L(st.bias + j));
          L.put(g + j, v);  // the output row
          L.put(st.h + r * H + j, v);
          put16(j, L, v);
        }
      }
    }
  }
}

// The input projection for tile u: out[r][g*H + j] (+)= x[r] . W[g*H + j] for the tile's
// units j and every gate g, rows [r0, r1) (row r of x at x + r*ldx); panel packed
// from W (G*H, K) by pack_tile. In the single-gate geometry, with a panel from
// pack_columns, this is any product A B. With kDots, w is W itself (tile_products).
template <typename T, CellKind C, bool kDots, typename Tw = T>
void project_tile(const T* x, int64_t ldx, const Tw* w, int64_t K, int64_t H, int64_t u, int64_t r0, int64_t r1,
                  T* out, int64_t ldo, bool accumulate) {
  using S = TileShape<T, C>;
  using V = Vectorized<T>;
  constexpr int W = S::W;
  alignas(64) T acc[S::MR * S::NV * W];
  for (int64_t rb = r0, rows = 0; rb < r1; rb += rows) {
    rows = block_rows(r1 - rb, kDots ? S::DR : S::MR);
    for (int m = 0; m < rows; ++m) {  // the rows this block will write, as in forward_tile
      for (int g = 0; g < S::G; ++g) {
        for (int q = 0; q < S::U; ++q) {
          __builtin_prefetch(out + (rb + m) * ldo + g * H + u * S::kUnits + q * W, 1);
        }
      }
    }
    tile_products<T, C, kDots, Tw>(static_cast<int>(rows), x + rb * ldx, ldx, w, K, H, u, acc);
    for (int m = 0; m < rows; ++m) {
      T* o = out + (rb + m) * ldo;
      for (int q = 0; q < S::U; ++q) {
        const int64_t j = u * S::kUnits + q * W;
        if (j >= H) {
          break;
        }
        const int64_t n = std::min<int64_t>(W, H - j);
        for (int g = 0; g < S::G; ++g) {
          V v = V::loadu(acc + (m * S::NV + g * S::U + q) * W);
          if (accumulate) {
            v = v + V::loadu(o + g * H + j, n);
          }
          v.store(o + g * H + j, n);
        }
      }
    }
  }
}

#if defined(CPU_CAPABILITY_AVX512)
// project_tile for bfloat16 weights in pairs (pack_pairs' panel) and inputs already rounded to
// bf16 pairs (round_bf16: row r at x16 + r * ld2 pairs), so a chunk's inputs are rounded once
// rather than once for every tile; the products go straight to out.
template <typename T, CellKind C>
void project_tile_pairs(const void* x16, int64_t ld2, const void* w, int64_t K, int64_t H, int64_t u, int64_t r0,
                        int64_t r1, T* out, int64_t ldo, bool accumulate) {
  static_assert(std::is_same_v<T, float>, "bf16 pairs are for float32");
  using S = TileShape<T, C>;
  const auto* a = static_cast<const uint32_t*>(x16);
  const auto* panel = static_cast<const uint16_t*>(w);
  const int64_t j0 = u * S::kUnits;
  for (int64_t rb = r0, rows = 0; rb < r1; rb += rows) {
    rows = block_rows(r1 - rb, S::MR);
    for (int64_t m = 0; m < rows; ++m) {  // the rows this block will write, as in forward_tile
      for (int g = 0; g < S::G; ++g) {
        for (int q = 0; q < S::U; ++q) {
          __builtin_prefetch(out + (rb + m) * ldo + g * H + j0 + q * S::W, 1);
        }
      }
    }
    with_block_rows<S::MR>(static_cast<int>(rows), [&](auto m) {
      tile_product_pairs_into<decltype(m)::value, S::NV, S::U>(a + rb * ld2, ld2, panel, K, out + rb * ldo, ldo, H,
                                                               j0, accumulate);
    });
  }
}
#endif

// The panel of columns [u*kUnits, (u+1)*kUnits) of a row-major (K, H) matrix with
// leading dimension ld, in the single-gate tile geometry: W_hh read as W_hh^T's
// tiles for the backward's dh_{t-1} = dG_t W_hh.
template <typename T>
void pack_columns(const T* w, int64_t ld, int64_t H, int64_t K, int64_t u, T* dst) {
  constexpr int64_t kUnits = TileShape<T, CellKind::kRnnTanh>::kUnits;
  const int64_t j0 = u * kUnits, n = std::max<int64_t>(0, std::min(kUnits, H - j0));
  for (int64_t k = 0; k < K; ++k) {
    T* d = dst + k * kUnits;
    std::copy(w + k * ld + j0, w + k * ld + j0 + n, d);
    std::fill(d + n, d + kUnits, T(0));
  }
}

// The weight gradients' product C (+)= A^T B, reduced over the K rows of A (K x M, lda) and B
// (K x N, ldb), all row-major: dW (G*H x I) += dG^T X over a segment of the backward's rows, read
// where they lie (no transposed copies). Blocked as a BLIS-style GEMM: B's block of kKC rows x kNC
// columns packed in panels of NV vectors (a panel is reused by a block's strips), A's block of kKC
// rows x kMC columns transposed into strips of MR (a strip contiguous along k), and a register
// block of MR rows of C x NV vectors, accumulated over kKC rows before it meets C. The
// accumulation order of an element of C is fixed by kKC alone (not by the threads), so the result
// does not depend on how the rows of C are shared. Measured against MKL and oneDNN on Zen 5
// (bench/results/2026-12-01_cpu_amd-epyc-zen5-2c_probes-session28/).
template <typename T>
struct WeightProductShape {
  static constexpr int W = Vectorized<T>::size();
  static constexpr int MR = 12, NV = 2;  // 24 accumulators of 32 vector registers (AVX-512)
  static constexpr int64_t NR = NV * W;
  // 512 rows a reduction block: one pass over C for the backward's segments of 512 rows (at 256,
  // 0.90-0.94x as fast at M = 4096, N = 1024 from C's second pass; level elsewhere).
  static constexpr int64_t kKC = 512, kMC = 12 * MR, kNC = 512;
  static_assert(kNC % NR == 0, "a column block is whole panels");
};

// C's MR x NR block (mr x nr of it kept) from a strip of A and a panel of B over kc rows. The
// accumulators go through a buffer on their way out: indexing them by the run-time mr, nr would
// keep them in memory for the whole loop. tile_product's block is the same but for reading its
// MR rows of A lda apart: with the strip laid out so (m-major, lda = kc = 512) the 12 rows alias
// in L1 and the product ran 0.5-0.6x as fast at kc = 512 (probes-session28/gemm_tn_reuse.txt).
template <typename T>
inline void weight_product_block(int64_t kc, const T* ap, const T* bp, T* c, int64_t ldc, int64_t mr, int64_t nr,
                                 bool accumulate) {
  using S = WeightProductShape<T>;
  using V = Vectorized<T>;
  constexpr int W = S::W, MR = S::MR, NV = S::NV;
  constexpr int64_t NR = S::NR;
  alignas(64) T t[MR * NR];
  {
    V acc[MR][NV];
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        acc[m][v] = V(T(0));
      }
    }
    for (int64_t k = 0; k < kc; ++k) {
      V b[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        b[v] = V::loadu(bp + k * NR + v * W);
      }
      const T* a = ap + k * MR;
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) {
        const V x(a[m]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          acc[m][v] = at::vec::fmadd(x, b[v], acc[m][v]);
        }
      }
    }
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        acc[m][v].store(t + m * NR + v * W);
      }
    }
  }
  for (int64_t m = 0; m < mr; ++m) {
    T* cm = c + m * ldc;
    const T* tm = t + m * NR;
    int64_t n = 0;
    for (; n + W <= nr; n += W) {
      V v = V::loadu(tm + n);
      if (accumulate) {
        v = v + V::loadu(cm + n);
      }
      v.store(cm + n);
    }
    if (n < nr) {
      V v = V::loadu(tm + n, nr - n);
      if (accumulate) {
        v = v + V::loadu(cm + n, nr - n);
      }
      v.store(cm + n, nr - n);
    }
  }
}

// weight_product for C's rows [m0, m1). The packed blocks live in a buffer of the calling thread,
// kept for its next call (at most kKC * (kNC + kMC) elements: 1.3 MB in float32).
template <typename T>
void weight_product_rows(int64_t m0, int64_t m1, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
                         int64_t ldb, bool accumulate, T* C, int64_t ldc) {
  using S = WeightProductShape<T>;
  constexpr int MR = S::MR;
  constexpr int64_t NR = S::NR;
  if (K == 0) {
    if (!accumulate) {
      for (int64_t m = m0; m < m1; ++m) {
        std::fill(C + m * ldc, C + m * ldc + N, T(0));
      }
    }
    return;
  }
  const int64_t kc_max = std::min(S::kKC, K);
  const int64_t nc_max = std::min(S::kNC, (N + NR - 1) / NR * NR);
  const int64_t mc_max = std::min(S::kMC, (m1 - m0 + MR - 1) / MR * MR);
  thread_local std::vector<T> pack;
  if (static_cast<int64_t>(pack.size()) < kc_max * (nc_max + mc_max)) {
    pack.resize(kc_max * (nc_max + mc_max));
  }
  T* bp = pack.data();
  T* ap = bp + kc_max * nc_max;
  for (int64_t jc = 0; jc < N; jc += S::kNC) {
    const int64_t nc = std::min(S::kNC, N - jc), panels = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < K; pc += S::kKC) {
      const int64_t kc = std::min(S::kKC, K - pc);
      const bool acc = accumulate || pc > 0;
      for (int64_t j = 0; j < panels; ++j) {
        const int64_t n0 = jc + j * NR, nn = std::min(NR, N - n0);
        T* d = bp + j * kc * NR;
        for (int64_t k = 0; k < kc; ++k) {
          const T* src = B + (pc + k) * ldb + n0;
          std::copy(src, src + nn, d + k * NR);
          std::fill(d + k * NR + nn, d + (k + 1) * NR, T(0));
        }
      }
      for (int64_t ic = m0; ic < m1; ic += S::kMC) {
        const int64_t mc = std::min(S::kMC, m1 - ic), strips = (mc + MR - 1) / MR;
        for (int64_t k = 0; k < kc; ++k) {
          const T* src = A + (pc + k) * lda + ic;
          for (int64_t i = 0; i < strips; ++i) {
            T* d = ap + (i * kc + k) * MR;
            const int64_t r0 = i * MR, rr = std::min<int64_t>(MR, mc - r0);
            std::copy(src + r0, src + r0 + rr, d);
            std::fill(d + rr, d + MR, T(0));
          }
        }
        for (int64_t j = 0; j < panels; ++j) {
          const int64_t n0 = jc + j * NR;
          for (int64_t i = 0; i < strips; ++i) {
            const int64_t r0 = ic + i * MR;
            weight_product_block<T>(kc, ap + i * kc * MR, bp + j * kc * NR, C + r0 * ldc + n0, ldc,
                                    std::min<int64_t>(MR, m1 - r0), std::min(NR, N - n0), acc);
          }
        }
      }
    }
  }
}

// The tile kernels over weights stored as Tw, behind TileKernels' type-erased pointers.
template <typename T, CellKind C, typename Tw>
void pack_tile_erased(const void* w, int64_t H, int64_t K, int64_t u, void* dst) {
  pack_tile<T, C, Tw>(static_cast<const Tw*>(w), H, K, u, static_cast<Tw*>(dst));
}

template <typename T, CellKind C>
bool tile_matches_erased(const void* w, int64_t H, int64_t K, int64_t u, const void* panel) {
  return tile_matches<T, C, T>(static_cast<const T*>(w), H, K, u, static_cast<const T*>(panel));
}

template <typename T, CellKind C, bool kDots, typename Tw>
void forward_tile_erased(const ForwardStep<T>& st, const T* h_prev, const void* w, int64_t K, int64_t u, int64_t r0,
                         int64_t r1) {
  forward_tile<T, C, kDots, Tw>(st, h_prev, static_cast<const Tw*>(w), K, u, r0, r1);
}

template <typename T, CellKind C, bool kDots, typename Tw>
void project_tile_erased(const T* x, int64_t ldx, const void* w, int64_t K, int64_t H, int64_t u, int64_t r0,
                         int64_t r1, T* out, int64_t ldo, bool accumulate) {
  project_tile<T, C, kDots, Tw>(x, ldx, static_cast<const Tw*>(w), K, H, u, r0, r1, out, ldo, accumulate);
}

// Cell C's entries of the table for weights stored as Tw.
template <typename T, CellKind C, typename Tw>
void set_tile_kernels(TileKernels<T>& t, at::ScalarType stored, int64_t k_align = 1,
                      typename TileKernels<T>::PackTile pack = &pack_tile_erased<T, C, Tw>) {
  const int i = static_cast<int>(C);
  t.stored = stored;
  t.k_align = k_align;
  t.pack_tile[i] = pack;
  t.forward_tile[i] = &forward_tile_erased<T, C, false, Tw>;
  t.project_tile[i] = &project_tile_erased<T, C, false, Tw>;
  t.forward_dots[i] = &forward_tile_erased<T, C, true, Tw>;
  t.project_dots[i] = &project_tile_erased<T, C, true, Tw>;
}

template <typename T, CellKind C>
void set_tiles(PointwiseKernels<T>& k) {
  using S = TileShape<T, C>;
  const int i = static_cast<int>(C);
  k.tile_units[i] = S::kUnits;
  k.tile_width[i] = S::G * S::kUnits;
  k.tile_rows[i] = S::MR;
  set_tile_kernels<T, C, T>(k.tiles[kWeightsAsT], c10::CppTypeToScalarType<T>::value);
  k.tiles[kWeightsAsT].tile_matches[i] = &tile_matches_erased<T, C>;
  if constexpr (std::is_same_v<T, float>) {
    set_tile_kernels<T, C, c10::BFloat16>(k.tiles[kWeightsBf16], at::kBFloat16);
    set_tile_kernels<T, C, c10::Half>(k.tiles[kWeightsHalf], at::kHalf);
#if defined(CPU_CAPABILITY_AVX512)
    set_tile_kernels<T, C, Bf16Pairs>(k.tiles[kWeightsBf16Pairs], at::kBFloat16, 2, &pack_pairs<T, C>);
    k.tiles[kWeightsBf16Pairs].round_bf16 = &round_bf16;
    k.tiles[kWeightsBf16Pairs].project_pairs[i] = &project_tile_pairs<T, C>;
#endif
  }
}

template <typename T>
void set_backward_tiles(PointwiseKernels<T>& k) {
  k.column_units = TileShape<T, CellKind::kRnnTanh>::kUnits;
  k.pack_columns = &pack_columns<T>;
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<T, float>) {
    k.pack_columns_pairs = &pack_columns_pairs<T>;
    // AVX-512 only: with AVX2's 16 registers the same blocking only matched MKL on Zen 3
    // (bench/results/2026-11-29_cpu_amd-epyc-zen3-2c_probes-weight-grad-tiles/).
    k.weight_product = &weight_product_rows<T>;
    k.weight_product_rows = WeightProductShape<T>::MR;
    k.weight_product_cols = WeightProductShape<T>::NR;
  }
#endif
  k.backward_block[static_cast<int>(CellKind::kLstm)] = &lstm_backward_block<T>;
  k.backward_block[static_cast<int>(CellKind::kGru)] = &gru_backward_block<T>;
  k.backward_block[static_cast<int>(CellKind::kRnnTanh)] = &elman_backward_block<T, Activation::kTanh>;
  k.backward_block[static_cast<int>(CellKind::kRnnRelu)] = &elman_backward_block<T, Activation::kRelu>;
}

template <typename T>
PointwiseKernels<T> pointwise_kernels() {
  PointwiseKernels<T> k{};
  k.forward[static_cast<int>(CellKind::kLstm)] = &lstm_forward_rows<T>;
  k.backward[static_cast<int>(CellKind::kLstm)] = &lstm_backward_rows<T>;
  k.forward[static_cast<int>(CellKind::kGru)] = &gru_forward_rows<T>;
  k.backward[static_cast<int>(CellKind::kGru)] = &gru_backward_rows<T>;
  k.forward[static_cast<int>(CellKind::kRnnTanh)] = &elman_forward_rows<T, Activation::kTanh>;
  k.backward[static_cast<int>(CellKind::kRnnTanh)] = &elman_backward_rows<T, Activation::kTanh>;
  k.forward[static_cast<int>(CellKind::kRnnRelu)] = &elman_forward_rows<T, Activation::kRelu>;
  k.backward[static_cast<int>(CellKind::kRnnRelu)] = &elman_backward_rows<T, Activation::kRelu>;
  set_tiles<T, CellKind::kLstm>(k);
  set_tiles<T, CellKind::kGru>(k);
  set_tiles<T, CellKind::kRnnTanh>(k);
  set_tiles<T, CellKind::kRnnRelu>(k);
  set_backward_tiles<T>(k);
  return k;
}

template PointwiseKernels<float> pointwise_kernels<float>();
template PointwiseKernels<double> pointwise_kernels<double>();

}  // namespace cpu::FUSED_RNN_CAPABILITY_NS
}  // namespace fused_rnn
