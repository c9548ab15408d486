// The per-cell traits the CPU recurrence is written against.
//
// A cell says how many gates it has, whether it carries a cell state, and how
// one step's pointwise pass runs over a block of rows, forward and backward; the
// maths itself comes from cell_math.h. Pointers in the step structs are already
// offset to the first row of the step; row r of a (rows, cols) block with leading
// dimension ld starts at p + r * ld.
#pragma once

#include <cstdint>

#include "../cell_math.h"

namespace fused_rnn::cpu {

template <typename T>
struct ForwardStep {
  int64_t H = 0, P = 0;
  T* gates = nullptr;        // (rows, G*H), ld gates_ld: x W_ih^T (+ h W_hh^T unless GRU) in, activations out
  int64_t gates_ld = 0;
  const T* gh = nullptr;     // GRU: (rows, 3H) h W_hh^T, no bias
  const T* bias = nullptr;   // LSTM/RNN: b_ih + b_hh; GRU: b_ih         (G*H,)
  const T* bias_hh = nullptr;  // GRU: b_hh                              (3H,)
  T* h = nullptr;            // (rows, P) state: h_{t-1} in, h_t out (not written by a projected LSTM)
  T* c = nullptr;            // LSTM (rows, H) state: c_{t-1} in, c_t out
  T* out = nullptr;          // (rows, P) output of this step (not written by a projected LSTM)
  T* h_raw = nullptr;        // projected LSTM: (rows, H), ld h_raw_ld: h_t before the projection
  int64_t h_raw_ld = 0;
  T* ws = nullptr;           // training: this step's workspace rows (ld ws_ld); nullptr in inference
  int64_t ws_ld = 0;
};

template <typename T>
struct BackwardStep {
  int64_t H = 0, P = 0;
  const T* ws = nullptr;     // this step's workspace rows, ld ws_ld
  int64_t ws_ld = 0;
  const T* out = nullptr;    // (rows, P) output of this step
  T* dh = nullptr;           // (rows, P) gradient reaching h_t; GRU leaves the direct path dh*z in it
  const T* dh_raw = nullptr; // projected LSTM: (rows, H) gradient reaching h_t before projection
  T* dc = nullptr;           // LSTM (rows, H): gradient reaching c_t in, reaching c_{t-1} out
  T* dg = nullptr;           // (rows, G*H) gradient of the input-side pre-activations
  T* dgh = nullptr;          // GRU: (rows, 3H) gradient of the recurrent-side pre-activations
  // The state entering this step: row r comes from the previous step's block when
  // r < prev_rows, otherwise from the initial state.
  const T* prev = nullptr;   // LSTM: c_t column of the previous step's ws rows; GRU: previous output rows
  int64_t prev_ld = 0;
  int64_t prev_rows = 0;
  const T* init = nullptr;   // LSTM: cx (B, H); GRU: hx (B, H)
  int64_t init_ld = 0;

  const T* prev_row(int64_t r) const {
    return r < prev_rows ? prev + r * prev_ld : init + r * init_ld;
  }
};

// LSTM workspace row: i f g o (activated) | c_t | h_t before projection (projected only).
template <typename T>
struct LstmCpu {
  static constexpr int64_t kGates = 4;
  static constexpr bool kHasCell = true;
  static constexpr bool kSeparateRecurrent = false;
  static constexpr bool kGatesInOutput = false;

  static void forward_rows(const ForwardStep<T>& s, int64_t r0, int64_t r1) {
    const int64_t H = s.H;
    for (int64_t r = r0; r < r1; ++r) {
      T* g = s.gates + r * s.gates_ld;
      T* c = s.c + r * H;
      for (int64_t j = 0; j < H; ++j) {
        const auto p = lstm_forward_point<T>(
            g[j] + s.bias[j], g[H + j] + s.bias[H + j], g[2 * H + j] + s.bias[2 * H + j],
            g[3 * H + j] + s.bias[3 * H + j], c[j]);
        g[j] = p.i;
        g[H + j] = p.f;
        g[2 * H + j] = p.g;
        g[3 * H + j] = p.o;
        c[j] = p.c;
        if (s.ws) {
          s.ws[r * s.ws_ld + 4 * H + j] = p.c;
        }
        if (s.h_raw) {
          s.h_raw[r * s.h_raw_ld + j] = p.h;
        } else {
          s.h[r * s.P + j] = p.h;
          s.out[r * s.P + j] = p.h;
        }
      }
    }
  }

  static void backward_rows(const BackwardStep<T>& s, int64_t r0, int64_t r1) {
    const int64_t H = s.H;
    for (int64_t r = r0; r < r1; ++r) {
      const T* w = s.ws + r * s.ws_ld;
      const T* c_prev = s.prev_row(r);
      const T* dh = s.dh_raw ? s.dh_raw + r * H : s.dh + r * s.P;
      T* dc = s.dc + r * H;
      T* dg = s.dg + r * 4 * H;
      for (int64_t j = 0; j < H; ++j) {
        const auto gr = lstm_backward_point<T>(
            w[j], w[H + j], w[2 * H + j], w[3 * H + j], w[4 * H + j], c_prev[j], dh[j], dc[j]);
        dg[j] = gr.di;
        dg[H + j] = gr.df;
        dg[2 * H + j] = gr.dg;
        dg[3 * H + j] = gr.d_o;
        dc[j] = gr.dc_prev;
      }
    }
  }
};

// GRU workspace row: r z n (activated) | W_hn h_{t-1} + b_hn.
template <typename T>
struct GruCpu {
  static constexpr int64_t kGates = 3;
  static constexpr bool kHasCell = false;
  static constexpr bool kSeparateRecurrent = true;
  static constexpr bool kGatesInOutput = false;

  static void forward_rows(const ForwardStep<T>& s, int64_t r0, int64_t r1) {
    const int64_t H = s.H;
    const T* b = s.bias;
    const T* bh = s.bias_hh;
    for (int64_t r = r0; r < r1; ++r) {
      T* g = s.gates + r * s.gates_ld;
      const T* gh = s.gh + r * 3 * H;
      T* h = s.h + r * H;
      for (int64_t j = 0; j < H; ++j) {
        const auto p = gru_forward_point<T>(
            g[j] + b[j], g[H + j] + b[H + j], g[2 * H + j] + b[2 * H + j],
            gh[j] + bh[j], gh[H + j] + bh[H + j], gh[2 * H + j] + bh[2 * H + j], h[j]);
        g[j] = p.r;
        g[H + j] = p.z;
        g[2 * H + j] = p.n;
        if (s.ws) {
          s.ws[r * s.ws_ld + 3 * H + j] = p.hn;
        }
        h[j] = p.h;
        s.out[r * H + j] = p.h;
      }
    }
  }

  static void backward_rows(const BackwardStep<T>& s, int64_t r0, int64_t r1) {
    const int64_t H = s.H;
    for (int64_t r = r0; r < r1; ++r) {
      const T* w = s.ws + r * s.ws_ld;
      const T* h_prev = s.prev_row(r);
      T* dh = s.dh + r * H;
      T* dg = s.dg + r * 3 * H;
      T* dgh = s.dgh + r * 3 * H;
      for (int64_t j = 0; j < H; ++j) {
        const auto gr = gru_backward_point<T>(w[j], w[H + j], w[2 * H + j], w[3 * H + j], h_prev[j], dh[j]);
        dg[j] = dgh[j] = gr.dr;
        dg[H + j] = dgh[H + j] = gr.dz;
        dg[2 * H + j] = gr.dn;
        dgh[2 * H + j] = gr.dhn;
        dh[j] = gr.dh_prev;
      }
    }
  }
};

// Elman RNN: the gate buffer is the output itself, and nothing else is saved.
template <typename T, Activation A>
struct ElmanCpu {
  static constexpr int64_t kGates = 1;
  static constexpr bool kHasCell = false;
  static constexpr bool kSeparateRecurrent = false;
  static constexpr bool kGatesInOutput = true;

  static void forward_rows(const ForwardStep<T>& s, int64_t r0, int64_t r1) {
    const int64_t H = s.H;
    for (int64_t r = r0; r < r1; ++r) {
      T* g = s.gates + r * s.gates_ld;
      T* h = s.h + r * H;
      for (int64_t j = 0; j < H; ++j) {
        const T v = rnn_forward_point<A, T>(g[j] + s.bias[j]);
        g[j] = v;
        h[j] = v;
      }
    }
  }

  static void backward_rows(const BackwardStep<T>& s, int64_t r0, int64_t r1) {
    const int64_t H = s.H;
    for (int64_t r = r0; r < r1; ++r) {
      const T* h = s.out + r * H;
      const T* dh = s.dh + r * H;
      T* dg = s.dg + r * H;
      for (int64_t j = 0; j < H; ++j) {
        dg[j] = rnn_backward_point<A, T>(h[j], dh[j]);
      }
    }
  }
};

}  // namespace fused_rnn::cpu
