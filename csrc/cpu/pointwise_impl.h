// The pointwise passes of every cell over a block of rows, written once on
// at::vec::Vectorized and compiled once per CPU capability (pointwise_*.cpp).
//
// Include this only from a pointwise_<capability>.cpp, after it has defined
// FUSED_RNN_CAPABILITY_NS (and, for SIMD builds, CPU_CAPABILITY and the target):
// everything here lands in that capability's own namespace, so the copies built
// for different instruction sets never meet at link time.
#include <ATen/cpu/vec/vec.h>

#include <algorithm>

#include "../cell_math.h"
#include "pointwise.h"

namespace fused_rnn {

// The maths of cell_math.h on SIMD vectors (exp and tanh are SLEEF's 1-ulp versions on x86).
template <typename T>
struct Math<at::vec::Vectorized<T>> {
  using V = at::vec::Vectorized<T>;
  static V exp(const V& x) { return x.exp(); }
  static V tanh(const V& x) { return x.tanh(); }
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

template <typename T, typename Body>
inline void for_each_lane_block(int64_t H, Body&& body) {
  constexpr int64_t W = Vectorized<T>::size();
  for (int64_t j = 0; j < H; j += W) {
    body(j, Lanes<T>{std::min<int64_t>(W, H - j)});
  }
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
void lstm_backward_rows(const BackwardStep<T>& s, int64_t r0, int64_t r1) {
  const int64_t H = s.H;
  for (int64_t r = r0; r < r1; ++r) {
    const T* w = s.ws + r * s.ws_ld;
    const T* c_prev = s.prev_row(r);
    const T* dh = s.dh_raw ? s.dh_raw + r * H : s.dh + r * s.P;
    T* dc = s.dc + r * H;
    T* dg = s.dg + r * 4 * H;
    for_each_lane_block<T>(H, [&](int64_t j, Lanes<T> L) {
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
void gru_backward_rows(const BackwardStep<T>& s, int64_t r0, int64_t r1) {
  const int64_t H = s.H;
  for (int64_t r = r0; r < r1; ++r) {
    const T* w = s.ws + r * s.ws_ld;
    const T* h_prev = s.prev_row(r);
    T* dh = s.dh + r * H;
    T* dg = s.dg + r * 3 * H;
    T* dgh = s.dgh + r * 3 * H;
    for_each_lane_block<T>(H, [&](int64_t j, Lanes<T> L) {
      const auto gr = gru_backward_point(
          L(w + j), L(w + H + j), L(w + 2 * H + j), L(w + 3 * H + j), L(h_prev + j), L(dh + j));
      L.put(dg + j, gr.dr);
      L.put(dgh + j, gr.dr);
      L.put(dg + H + j, gr.dz);
      L.put(dgh + H + j, gr.dz);
      L.put(dg + 2 * H + j, gr.dn);
      L.put(dgh + 2 * H + j, gr.dhn);
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
void elman_backward_rows(const BackwardStep<T>& s, int64_t r0, int64_t r1) {
  const int64_t H = s.H;
  for (int64_t r = r0; r < r1; ++r) {
    const T* h = s.out + r * H;
    const T* dh = s.dh + r * H;
    T* dg = s.dg + r * H;
    for_each_lane_block<T>(H, [&](int64_t j, Lanes<T> L) {
      L.put(dg + j, rnn_backward_point<A>(L(h + j), L(dh + j)));
    });
  }
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
  return k;
}

template PointwiseKernels<float> pointwise_kernels<float>();
template PointwiseKernels<double> pointwise_kernels<double>();

}  // namespace cpu::FUSED_RNN_CAPABILITY_NS
}  // namespace fused_rnn
