// The per-cell traits the recurrence (recurrence.h) is written against, and the
// step structs its pointwise passes receive, on every device.
//
// A cell says how many gates it has, whether it carries a cell state, and where
// its gate buffer lives; its pointwise passes (cpu/pointwise_impl.h and
// cuda/recurrence_cuda.cu, both from the maths in cell_math.h) are reached
// through the device backend. Pointers in the step structs are already offset to
// the first row of the step; row r of a (rows, cols) block with leading dimension
// ld starts at p + r * ld. Values are stored as T and computed in Acc<T> (float for
// half and bfloat16); the LSTM's running cell state is kept in Acc<T>.
#pragma once

#include <cstdint>

#include "cell_kind.h"

namespace c10 {
struct Half;
struct BFloat16;
}  // namespace c10

namespace fused_rnn {

// The type a value of type T is computed (and the LSTM cell state kept) in.
template <typename T>
struct AccOf {
  using type = T;
};
template <>
struct AccOf<c10::Half> {
  using type = float;
};
template <>
struct AccOf<c10::BFloat16> {
  using type = float;
};
template <typename T>
using Acc = typename AccOf<T>::type;

template <typename T>
struct ForwardStep {
  int64_t H = 0, P = 0;
  T* gates = nullptr;        // (rows, G*H), ld gates_ld: x W_ih^T (+ h W_hh^T unless GRU) in, activations out
  int64_t gates_ld = 0;
  const T* gh = nullptr;     // GRU: (rows, 3H) h W_hh^T, no bias
  const T* bias = nullptr;   // LSTM/RNN: b_ih + b_hh; GRU: b_ih         (G*H,)
  const T* bias_hh = nullptr;  // GRU: b_hh                              (3H,)
  T* h = nullptr;            // (rows, P) state: h_{t-1} in, h_t out (not written by a projected LSTM)
  Acc<T>* c = nullptr;       // LSTM (rows, H) state: c_{t-1} in, c_t out
  T* out = nullptr;          // (rows, P) output of this step (not written by a projected LSTM)
  T* h_raw = nullptr;        // projected LSTM: (rows, H), ld h_raw_ld: h_t before the projection
  int64_t h_raw_ld = 0;
  T* ws = nullptr;           // training: this step's workspace rows (ld ws_ld); nullptr in inference
  int64_t ws_ld = 0;
  // CPU bf16 dot products from panels (required there): h_{t-1} in and h_t out also as
  // bfloat16 rows (ld h16_ld elements, zero past H), so each step rounds h once; nullptr elsewhere.
  const void* h16_prev = nullptr;
  void* h16 = nullptr;
  int64_t h16_ld = 0;
};

template <typename T>
struct BackwardStep {
  int64_t H = 0, P = 0;
  const T* ws = nullptr;     // this step's workspace rows, ld ws_ld
  int64_t ws_ld = 0;
  const T* out = nullptr;    // (rows, P) output of this step, rows out_ld apart (P on CUDA,
  int64_t out_ld = 0;        // whose kernels read it so; 2P for a CPU bidirectional half)
  T* dh = nullptr;           // (rows, P) gradient reaching h_t; GRU leaves the direct path dh*z in it
  const T* dh_raw = nullptr; // projected LSTM: (rows, H) gradient reaching h_t before projection
  Acc<T>* dc = nullptr;      // LSTM (rows, H): gradient reaching c_t in, reaching c_{t-1} out
  T* dg = nullptr;           // (rows, G*H) gradient of the input-side pre-activations, rows dg_ld apart
  T* dgh = nullptr;          // GRU: (rows, H) gradient of W_hn h + b_hn (the recurrent side's r and z
                             // gradients are dG's own), rows dgh_ld apart
  // G*H and H (the GRU's dgh), except where the CPU backward writes dG over the workspace rows
  // it has just read (consume_workspace): ws_ld for both. CUDA's kernels assume the former.
  int64_t dg_ld = 0, dgh_ld = 0;
  // The state entering this step: row r comes from the previous step's block when
  // r < prev_rows, otherwise from the initial state.
  const T* prev = nullptr;   // LSTM: c_t column of the previous step's ws rows; GRU: previous output rows
  int64_t prev_ld = 0;
  int64_t prev_rows = 0;
  const T* init = nullptr;   // LSTM: cx (B, H); GRU: hx (B, H)
  int64_t init_ld = 0;

#if defined(__CUDACC__)
  __host__ __device__
#endif
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

}  // namespace fused_rnn
