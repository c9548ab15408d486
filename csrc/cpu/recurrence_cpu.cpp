// The CPU recurrence of one layer in one direction, written once for every cell.
//
// Forward: the input projection of all steps is one GEMM into the gate buffer
// (the workspace itself when training); then, step by step in processing order,
// one GEMM against W_hh over the rows active at that step and one fused pointwise
// pass (cells_cpu.h) that writes the activations, the state, and the output row.
// Backward: a reverse loop doing only the sequential part (pointwise backward and
// dh_{t-1} = dG_t W_hh), then the input and weight gradients as single GEMMs over
// all rows. Every buffer is allocated before the loops.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>
#include <tuple>

#include "../layer_args.h"
#include "cells_cpu.h"
#include "gemm_cpu.h"
#include "pointwise.h"

namespace fused_rnn::cpu {
namespace {

using at::Tensor;
using OptTensor = std::optional<at::Tensor>;

// Rows per parallel task so each task has enough pointwise work to pay for itself.
int64_t row_grain(int64_t cols) {
  constexpr int64_t kElementsPerTask = 16384;
  return std::max<int64_t>(1, kElementsPerTask / std::max<int64_t>(1, cols));
}

void check_cpu_dtype(const LayerArgs& a) {
  TORCH_CHECK(
      a.input.scalar_type() == at::kFloat || a.input.scalar_type() == at::kDouble,
      a.op, ": the CPU kernels support float32 and float64, got ", a.input.scalar_type());
}

// The step processed before step t (in processing order), or -1 at the first one.
int64_t previous_step(const LayerArgs& a, int64_t t, bool reverse) {
  const int64_t tp = reverse ? t + 1 : t - 1;
  return (tp < 0 || tp >= a.T) ? -1 : tp;
}

// b_ih + b_hh for cells that add both to the same pre-activation; zeros stand in for absent biases.
Tensor combined_bias(const LayerArgs& a) {
  const Tensor zeros = at::zeros({a.G * a.H}, a.input.options());
  const Tensor bi = a.b_ih.defined() ? a.b_ih : zeros;
  return a.b_hh.defined() ? (bi + a.b_hh).contiguous() : bi.contiguous();
}

template <class Cell, typename T>
std::tuple<Tensor, Tensor, Tensor, Tensor> forward_impl(const LayerArgs& a, bool reverse, bool train) {
  const int64_t G = a.G, H = a.H, P = a.P, N = a.N, I = a.I, GH = G * H;
  const bool proj = a.w_hr.defined();
  const auto opts = a.input.options();

  Tensor output = a.packed ? at::empty({N, P}, opts) : at::empty({a.T, a.B, P}, opts);
  Tensor h_n = a.hx.clone(at::MemoryFormat::Contiguous);  // the running state; its last value is h_n
  Tensor c_n = Cell::kHasCell ? a.cx.clone(at::MemoryFormat::Contiguous) : at::empty({0}, opts);
  const int64_t ws_ld = workspace_cols(a.cell, H, proj);
  Tensor ws = train ? at::empty({N, ws_ld}, opts) : at::empty({0}, opts);

  Tensor gates;
  int64_t gates_ld;
  if (Cell::kGatesInOutput) {
    gates = output;
    gates_ld = P;
  } else if (train) {
    gates = ws;
    gates_ld = ws_ld;
  } else {
    gates = at::empty({N, GH}, opts);
    gates_ld = GH;
  }
  T* gates_p = gates.data_ptr<T>();
  gemm<T>(false, true, N, GH, I, a.input.const_data_ptr<T>(), I, a.w_ih.const_data_ptr<T>(), I, T(0),
          gates_p, gates_ld);

  Tensor bias, bias_hh, gh, h_raw;
  if (Cell::kSeparateRecurrent) {
    const Tensor zeros = at::zeros({GH}, opts);
    bias = a.b_ih.defined() ? a.b_ih : zeros;
    bias_hh = a.b_hh.defined() ? a.b_hh : zeros;
    gh = at::empty({a.B, GH}, opts);
  } else {
    bias = combined_bias(a);
  }
  if (proj && !train) {
    h_raw = at::empty({a.B, H}, opts);
  }

  const T* w_hh = a.w_hh.const_data_ptr<T>();
  T* h = h_n.data_ptr<T>();
  T* out = output.data_ptr<T>();
  T* ws_p = train ? ws.data_ptr<T>() : nullptr;

  const auto pointwise = pointwise_kernels<T>().forward[static_cast<int>(Cell::kKind)];
  ForwardStep<T> st;
  st.H = H;
  st.P = P;
  st.gates_ld = gates_ld;
  st.gh = gh.defined() ? gh.const_data_ptr<T>() : nullptr;
  st.bias = bias.const_data_ptr<T>();
  st.bias_hh = bias_hh.defined() ? bias_hh.const_data_ptr<T>() : nullptr;
  st.h = h;
  st.c = Cell::kHasCell ? c_n.data_ptr<T>() : nullptr;
  st.ws_ld = ws_ld;
  st.h_raw_ld = train ? ws_ld : H;

  for (int64_t s = 0; s < a.T; ++s) {
    const int64_t t = reverse ? a.T - 1 - s : s;
    const int64_t rows = a.sizes[t], off = a.offsets[t];
    if (rows == 0) {
      continue;
    }
    T* g = gates_p + off * gates_ld;
    if (Cell::kSeparateRecurrent) {
      gemm<T>(false, true, rows, GH, P, h, P, w_hh, P, T(0), gh.data_ptr<T>(), GH);
    } else {
      gemm<T>(false, true, rows, GH, P, h, P, w_hh, P, T(1), g, gates_ld);
    }
    st.gates = g;
    st.out = out + off * P;
    st.ws = ws_p ? ws_p + off * ws_ld : nullptr;
    if (proj) {
      st.h_raw = train ? st.ws + 5 * H : h_raw.data_ptr<T>();
    }
    at::parallel_for(0, rows, row_grain(GH), [&](int64_t r0, int64_t r1) { pointwise(st, r0, r1); });
    if (proj) {
      gemm<T>(false, true, rows, P, H, st.h_raw, st.h_raw_ld, a.w_hr.const_data_ptr<T>(), H, T(0), h, P);
      std::memcpy(st.out, h, sizeof(T) * rows * P);
    }
  }
  return {output, h_n, c_n, ws};
}

template <class Cell, typename T>
std::vector<Tensor> backward_impl(
    const LayerArgs& a, const Tensor& grad_output_in, const Tensor& grad_h_n, const Tensor& grad_c_n,
    const Tensor& output_in, const Tensor& ws_in, bool reverse) {
  const int64_t G = a.G, H = a.H, P = a.P, N = a.N, I = a.I, GH = G * H, B = a.B;
  const bool proj = a.w_hr.defined();
  const auto opts = a.input.options();
  const int64_t ws_ld = workspace_cols(a.cell, H, proj);

  const std::vector<int64_t> out_shape =
      a.packed ? std::vector<int64_t>{N, P} : std::vector<int64_t>{a.T, B, P};
  check_backward_tensor(a, grad_output_in, "grad_output", out_shape);
  check_backward_tensor(a, output_in, "output", out_shape);
  check_backward_tensor(a, grad_h_n, "grad_h_n", {B, P});
  if (Cell::kHasCell) {
    check_backward_tensor(a, grad_c_n, "grad_c_n", {B, H});
  }
  if (ws_ld > 0) {  // an Elman RNN saves nothing beyond its output
    TORCH_CHECK(
        ws_in.numel() > 0 || N == 0,
        a.op, ": the workspace is empty; run the forward with train=True before the backward");
    check_backward_tensor(a, ws_in, "workspace", {N, ws_ld});
  }

  const Tensor grad_output = grad_output_in.contiguous();
  const Tensor output = output_in.contiguous();
  const Tensor ws = ws_in.contiguous();
  Tensor dh_t = grad_h_n.clone(at::MemoryFormat::Contiguous);  // becomes grad_hx
  Tensor dc_t = Cell::kHasCell ? grad_c_n.clone(at::MemoryFormat::Contiguous) : at::empty({0}, opts);
  Tensor dG = at::empty({N, GH}, opts);
  Tensor dGh = Cell::kSeparateRecurrent ? at::empty({N, GH}, opts) : dG;
  Tensor dR, dh_raw;
  if (proj) {
    dR = at::empty({N, P}, opts);
    dh_raw = at::empty({B, H}, opts);
  }

  const T* go = grad_output.const_data_ptr<T>();
  const T* out = output.const_data_ptr<T>();
  const T* ws_p = ws_ld > 0 ? ws.const_data_ptr<T>() : nullptr;
  const T* w_hh = a.w_hh.const_data_ptr<T>();
  T* dh = dh_t.data_ptr<T>();
  T* dg = dG.data_ptr<T>();
  T* dgh = dGh.data_ptr<T>();

  const auto pointwise = pointwise_kernels<T>().backward[static_cast<int>(Cell::kKind)];
  BackwardStep<T> st;
  st.H = H;
  st.P = P;
  st.ws_ld = ws_ld;
  st.dh = dh;
  st.dh_raw = proj ? dh_raw.const_data_ptr<T>() : nullptr;
  st.dc = Cell::kHasCell ? dc_t.data_ptr<T>() : nullptr;
  if (Cell::kHasCell) {
    st.init = a.cx.const_data_ptr<T>();
    st.init_ld = H;
    st.prev_ld = ws_ld;
  } else {
    st.init = a.hx.const_data_ptr<T>();
    st.init_ld = P;
    st.prev_ld = P;
  }

  for (int64_t s = a.T - 1; s >= 0; --s) {
    const int64_t t = reverse ? a.T - 1 - s : s;
    const int64_t rows = a.sizes[t], off = a.offsets[t];
    if (rows == 0) {
      continue;
    }
    const T* go_t = go + off * P;
    for (int64_t k = 0; k < rows * P; ++k) {
      dh[k] += go_t[k];
    }
    if (proj) {
      std::memcpy(dR.data_ptr<T>() + off * P, dh, sizeof(T) * rows * P);
      gemm<T>(false, false, rows, H, P, dh, P, a.w_hr.const_data_ptr<T>(), H, T(0), dh_raw.data_ptr<T>(), H);
    }
    const int64_t tp = previous_step(a, t, reverse);
    st.prev_rows = tp < 0 ? 0 : std::min(rows, a.sizes[tp]);
    if (tp >= 0) {
      st.prev = Cell::kHasCell ? ws_p + a.offsets[tp] * ws_ld + 4 * H : out + a.offsets[tp] * P;
    }
    st.ws = ws_p + off * ws_ld;
    st.out = out + off * P;
    st.dg = dg + off * GH;
    st.dgh = dgh + off * GH;
    at::parallel_for(0, rows, row_grain(GH), [&](int64_t r0, int64_t r1) { pointwise(st, r0, r1); });
    // dh_{t-1} = dG_t W_hh; the GRU's pointwise pass already left its direct path z*dh there.
    gemm<T>(false, false, rows, P, GH, st.dgh, GH, w_hh, P, Cell::kSeparateRecurrent ? T(1) : T(0), dh, P);
  }

  // The state entering each step, row-aligned with dG, for dW_hh.
  Tensor h_prev = at::empty({N, P}, opts);
  {
    T* hp = h_prev.data_ptr<T>();
    const T* hx = a.hx.const_data_ptr<T>();
    for (int64_t t = 0; t < a.T; ++t) {
      const int64_t rows = a.sizes[t], off = a.offsets[t];
      const int64_t tp = previous_step(a, t, reverse);
      const int64_t from_prev = tp < 0 ? 0 : std::min(rows, a.sizes[tp]);
      if (from_prev > 0) {
        std::memcpy(hp + off * P, out + a.offsets[tp] * P, sizeof(T) * from_prev * P);
      }
      if (rows > from_prev) {
        std::memcpy(hp + (off + from_prev) * P, hx + from_prev * P, sizeof(T) * (rows - from_prev) * P);
      }
    }
  }

  Tensor grad_input = at::empty(a.input.sizes(), opts);
  Tensor grad_w_ih = at::empty({GH, I}, opts);
  Tensor grad_w_hh = at::empty({GH, P}, opts);
  gemm<T>(false, false, N, I, GH, dg, GH, a.w_ih.const_data_ptr<T>(), I, T(0), grad_input.data_ptr<T>(), I);
  gemm<T>(true, false, GH, I, N, dg, GH, a.input.const_data_ptr<T>(), I, T(0), grad_w_ih.data_ptr<T>(), I);
  gemm<T>(true, false, GH, P, N, dgh, GH, h_prev.const_data_ptr<T>(), P, T(0), grad_w_hh.data_ptr<T>(), P);
  Tensor grad_b_ih = a.b_ih.defined() ? dG.sum(0) : at::empty({0}, opts);
  Tensor grad_b_hh = a.b_hh.defined() ? dGh.sum(0) : at::empty({0}, opts);
  Tensor grad_w_hr = at::empty({0}, opts);
  if (proj) {
    grad_w_hr = at::empty({P, H}, opts);
    gemm<T>(true, false, P, H, N, dR.const_data_ptr<T>(), P, ws_p + 5 * H, ws_ld, T(0),
            grad_w_hr.data_ptr<T>(), H);
  }
  return {grad_input, dh_t, dc_t, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, grad_w_hr};
}

// ------------------------------------------------------------------ op entry points

template <class Cell>
std::tuple<Tensor, Tensor, Tensor, Tensor> dispatch_forward(const LayerArgs& a, bool reverse, bool train) {
  check_cpu_dtype(a);
  if (a.input.scalar_type() == at::kDouble) {
    return forward_impl<Cell, double>(a, reverse, train);
  }
  return forward_impl<Cell, float>(a, reverse, train);
}

template <class Cell>
std::vector<Tensor> dispatch_backward(
    const LayerArgs& a, const Tensor& go, const Tensor& ghn, const Tensor& gcn, const Tensor& out,
    const Tensor& ws, bool reverse) {
  check_cpu_dtype(a);
  if (a.input.scalar_type() == at::kDouble) {
    return backward_impl<Cell, double>(a, go, ghn, gcn, out, ws, reverse);
  }
  return backward_impl<Cell, float>(a, go, ghn, gcn, out, ws, reverse);
}

std::tuple<Tensor, Tensor, Tensor, Tensor> lstm_forward_cpu(
    const Tensor& input, const OptTensor& hx, const OptTensor& cx, const Tensor& w_ih, const Tensor& w_hh,
    const OptTensor& b_ih, const OptTensor& b_hh, const OptTensor& w_hr, const OptTensor& batch_sizes,
    bool reverse, bool train) {
  const LayerArgs a = make_layer_args(
      "fused_rnn::lstm_forward", CellKind::kLstm, input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes);
  return dispatch_forward<LstmTraits>(a, reverse, train);
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> lstm_backward_cpu(
    const Tensor& grad_output, const Tensor& grad_h_n, const Tensor& grad_c_n, const Tensor& input,
    const OptTensor& hx, const OptTensor& cx, const Tensor& w_ih, const Tensor& w_hh, const OptTensor& b_ih,
    const OptTensor& b_hh, const OptTensor& w_hr, const OptTensor& batch_sizes, const Tensor& output,
    const Tensor& workspace, bool reverse) {
  const LayerArgs a = make_layer_args(
      "fused_rnn::lstm_backward", CellKind::kLstm, input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes);
  auto g = dispatch_backward<LstmTraits>(a, grad_output, grad_h_n, grad_c_n, output, workspace, reverse);
  return {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]};
}

// GRU and the two Elman RNNs share one signature.
template <CellKind kCell, class Cell>
std::tuple<Tensor, Tensor, Tensor> simple_forward_cpu(
    const Tensor& input, const OptTensor& hx, const Tensor& w_ih, const Tensor& w_hh, const OptTensor& b_ih,
    const OptTensor& b_hh, const OptTensor& batch_sizes, bool reverse, bool train) {
  static const std::string op = kCell == CellKind::kGru ? "fused_rnn::gru_forward"
      : kCell == CellKind::kRnnTanh                     ? "fused_rnn::rnn_tanh_forward"
                                                        : "fused_rnn::rnn_relu_forward";
  const LayerArgs a =
      make_layer_args(op.c_str(), kCell, input, hx, std::nullopt, w_ih, w_hh, b_ih, b_hh, std::nullopt, batch_sizes);
  auto [output, h_n, c_n, ws] = dispatch_forward<Cell>(a, reverse, train);
  return {output, h_n, ws};
}

template <CellKind kCell, class Cell>
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> simple_backward_cpu(
    const Tensor& grad_output, const Tensor& grad_h_n, const Tensor& input, const OptTensor& hx,
    const Tensor& w_ih, const Tensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh,
    const OptTensor& batch_sizes, const Tensor& output, const Tensor& workspace, bool reverse) {
  static const std::string op = kCell == CellKind::kGru ? "fused_rnn::gru_backward"
      : kCell == CellKind::kRnnTanh                     ? "fused_rnn::rnn_tanh_backward"
                                                        : "fused_rnn::rnn_relu_backward";
  const LayerArgs a =
      make_layer_args(op.c_str(), kCell, input, hx, std::nullopt, w_ih, w_hh, b_ih, b_hh, std::nullopt, batch_sizes);
  auto g = dispatch_backward<Cell>(a, grad_output, grad_h_n, Tensor(), output, workspace, reverse);
  return {g[0], g[1], g[3], g[4], g[5], g[6]};
}

}  // namespace

TORCH_LIBRARY_IMPL(fused_rnn, CPU, m) {
  m.impl("lstm_forward", &lstm_forward_cpu);
  m.impl("lstm_backward", &lstm_backward_cpu);
  m.impl("gru_forward", &simple_forward_cpu<CellKind::kGru, GruTraits>);
  m.impl("gru_backward", &simple_backward_cpu<CellKind::kGru, GruTraits>);
  m.impl("rnn_tanh_forward", &simple_forward_cpu<CellKind::kRnnTanh, ElmanTraits<CellKind::kRnnTanh>>);
  m.impl("rnn_tanh_backward", &simple_backward_cpu<CellKind::kRnnTanh, ElmanTraits<CellKind::kRnnTanh>>);
  m.impl("rnn_relu_forward", &simple_forward_cpu<CellKind::kRnnRelu, ElmanTraits<CellKind::kRnnRelu>>);
  m.impl("rnn_relu_backward", &simple_backward_cpu<CellKind::kRnnRelu, ElmanTraits<CellKind::kRnnRelu>>);
}

}  // namespace fused_rnn::cpu
