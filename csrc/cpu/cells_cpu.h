// The per-cell traits the CPU recurrence is written against, and the step
// structs its pointwise passes receive.
//
// A cell says how many gates it has, whether it carries a cell state, and where
// its gate buffer lives; its pointwise passes (pointwise_impl.h, from the maths in
// cell_math.h) are reached through the kernel table of pointwise.h. Pointers in
// the step structs are already offset to the first row of the step; row r of a
// (rows, cols) block with leading dimension ld starts at p + r * ld.
#pragma once

#include <cstdint>

#include "../cell_kind.h"

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
struct LstmTraits {
  static constexpr CellKind kKind = CellKind::kLstm;
  static constexpr bool kHasCell = true;
  static constexpr bool kSeparateRecurrent = false;  // h W_hh^T is added into the gate buffer
  static constexpr bool kGatesInOutput = false;
};

// GRU workspace row: r z n (activated) | W_hn h_{t-1} + b_hn.
struct GruTraits {
  static constexpr CellKind kKind = CellKind::kGru;
  static constexpr bool kHasCell = false;
  static constexpr bool kSeparateRecurrent = true;  // W_hn h stays apart: n = tanh(x_n + r * (W_hn h + b_hn))
  static constexpr bool kGatesInOutput = false;
};

// Elman RNN: the gate buffer is the output itself, and nothing else is saved.
template <CellKind kCell>
struct ElmanTraits {
  static constexpr CellKind kKind = kCell;
  static constexpr bool kHasCell = false;
  static constexpr bool kSeparateRecurrent = false;
  static constexpr bool kGatesInOutput = true;
};

}  // namespace fused_rnn::cpu
