// Gate maths of every recurrent cell, forward and backward, in one place.
//
// Every function here is a pure per-element computation on values (no pointers,
// no layout), so the same code serves the CPU loops and the CUDA kernels. The
// value type T is float or double (the CUDA half/bf16 paths convert to float
// first: fp32 accumulation), or a SIMD vector of them: `Math<T>` supplies the
// functions that are not plain arithmetic for each value type, and the CPU
// kernels specialise it for at::vec::Vectorized (csrc/cpu/pointwise_impl.h).
//
// Conventions (torch.nn's, so that state_dicts load unchanged):
//   LSTM gates (i, f, g, o): c' = f*c + i*g, h' = o*tanh(c')
//   GRU gates (r, z, n):     n = tanh(x_n + r*(W_hn h + b_hn)), h' = (1-z)*n + z*h
//   RNN:                     h' = tanh(pre) or relu(pre)
#pragma once

#include <cmath>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define FR_HD __host__ __device__ __forceinline__
#else
#define FR_HD inline
#endif

namespace fused_rnn {

template <typename T>
struct Math;

template <>
struct Math<float> {
  static FR_HD float exp(float x) { return ::expf(x); }
  static FR_HD float sigmoid(float x) { return 1.f / (1.f + ::expf(-x)); }
  static FR_HD float tanh(float x) { return ::tanhf(x); }
  static FR_HD float relu(float x) { return x < 0.f ? 0.f : x; }  // NaN propagates, as torch.relu
  static FR_HD float relu_grad(float h, float dh) { return h > 0.f ? dh : 0.f; }
};

template <>
struct Math<double> {
  static FR_HD double exp(double x) { return ::exp(x); }
  static FR_HD double sigmoid(double x) { return 1. / (1. + ::exp(-x)); }
  static FR_HD double tanh(double x) { return ::tanh(x); }
  static FR_HD double relu(double x) { return x < 0. ? 0. : x; }
  static FR_HD double relu_grad(double h, double dh) { return h > 0. ? dh : 0.; }
};

template <typename T>
FR_HD T sigmoid(T x) {
  return Math<T>::sigmoid(x);  // 1 / (1 + exp(-x))
}

// ---------------------------------------------------------------- LSTM

// Pre-activations in, activations and new state out.
template <typename T>
struct LstmPoint {
  T i, f, g, o;  // activated gates
  T c;           // new cell state
  T h;           // new hidden state (before any projection)
};

template <typename T>
FR_HD LstmPoint<T> lstm_forward_point(T pre_i, T pre_f, T pre_g, T pre_o, T c_prev) {
  LstmPoint<T> p;
  p.i = sigmoid(pre_i);
  p.f = sigmoid(pre_f);
  p.g = Math<T>::tanh(pre_g);
  p.o = sigmoid(pre_o);
  p.c = p.f * c_prev + p.i * p.g;
  p.h = p.o * Math<T>::tanh(p.c);
  return p;
}

// Gradients with respect to the four pre-activations and to c_prev.
template <typename T>
struct LstmGrad {
  T di, df, dg, d_o;  // d pre-activation
  T dc_prev;
};

// dh: gradient reaching h_t (unprojected); dc: gradient reaching c_t from step t+1.
template <typename T>
FR_HD LstmGrad<T> lstm_backward_point(T i, T f, T g, T o, T c, T c_prev, T dh, T dc) {
  const T tc = Math<T>::tanh(c);
  const T dc_total = dc + dh * o * (T(1) - tc * tc);
  LstmGrad<T> r;
  r.d_o = dh * tc * o * (T(1) - o);
  r.di = dc_total * g * i * (T(1) - i);
  r.df = dc_total * c_prev * f * (T(1) - f);
  r.dg = dc_total * i * (T(1) - g * g);
  r.dc_prev = dc_total * f;
  return r;
}

// ---------------------------------------------------------------- GRU

template <typename T>
struct GruPoint {
  T r, z, n;  // activated gates
  T hn;       // W_hn h + b_hn, needed again by the backward
  T h;        // new hidden state
};

// x_*: input projection with b_ih; h_*: recurrent projection with b_hh.
template <typename T>
FR_HD GruPoint<T> gru_forward_point(T x_r, T x_z, T x_n, T h_r, T h_z, T h_n, T h_prev) {
  GruPoint<T> p;
  p.r = sigmoid(x_r + h_r);
  p.z = sigmoid(x_z + h_z);
  p.hn = h_n;
  p.n = Math<T>::tanh(x_n + p.r * h_n);
  p.h = (T(1) - p.z) * p.n + p.z * h_prev;
  return p;
}

template <typename T>
struct GruGrad {
  T dr, dz, dn;  // d pre-activation of the input side (x_r, x_z, x_n)
  T dhn;         // d (W_hn h + b_hn); the recurrent side's r and z grads equal dr, dz
  T dh_prev;     // the direct path h' = ... + z*h (the matmul path is added by the caller)
};

template <typename T>
FR_HD GruGrad<T> gru_backward_point(T r, T z, T n, T hn, T h_prev, T dh) {
  GruGrad<T> gr;
  const T dn_pre = dh * (T(1) - z) * (T(1) - n * n);
  const T dz = dh * (h_prev - n);
  const T dr = dn_pre * hn;
  gr.dr = dr * r * (T(1) - r);
  gr.dz = dz * z * (T(1) - z);
  gr.dn = dn_pre;
  gr.dhn = dn_pre * r;
  gr.dh_prev = dh * z;
  return gr;
}

// ---------------------------------------------------------------- Elman RNN

enum class Activation { kTanh, kRelu };

template <Activation A, typename T>
FR_HD T rnn_forward_point(T pre) {
  if constexpr (A == Activation::kTanh) {
    return Math<T>::tanh(pre);
  } else {
    return Math<T>::relu(pre);
  }
}

// The derivative is written in terms of the output h, so nothing else is saved.
template <Activation A, typename T>
FR_HD T rnn_backward_point(T h, T dh) {
  if constexpr (A == Activation::kTanh) {
    return dh * (T(1) - h * h);
  } else {
    return Math<T>::relu_grad(h, dh);
  }
}

}  // namespace fused_rnn
