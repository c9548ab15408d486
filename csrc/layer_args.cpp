#include "layer_args.h"

#include <c10/util/Exception.h>

namespace fused_rnn {
namespace {

std::string shape_str(at::IntArrayRef s) {
  return c10::str(s);
}

void check_same_device_dtype(const LayerArgs& a, const at::Tensor& t, const char* name) {
  TORCH_CHECK(
      t.device() == a.input.device(),
      a.op, ": expected ", name, " on device ", a.input.device(), " (the device of input), got ",
      t.device());
  TORCH_CHECK(
      t.scalar_type() == a.input.scalar_type(),
      a.op, ": expected ", name, " of dtype ", a.input.scalar_type(), " (the dtype of input), got ",
      t.scalar_type());
}

void check_shape(const LayerArgs& a, const at::Tensor& t, const char* name, at::IntArrayRef expected) {
  TORCH_CHECK(
      t.sizes() == expected,
      a.op, ": expected ", name, " of shape ", shape_str(expected), ", got ", shape_str(t.sizes()));
}

}  // namespace

int64_t workspace_cols(CellKind cell, int64_t H, bool has_proj) {
  switch (cell) {
    case CellKind::kLstm: return 5 * H + (has_proj ? H : 0);  // i f g o | c | h before projection
    case CellKind::kGru: return 4 * H;                         // r z n | W_hn h + b_hn
    default: return 0;                                         // the output is all an RNN needs
  }
}

void check_backward_tensor(
    const LayerArgs& a, const at::Tensor& t, const char* name, at::IntArrayRef expected) {
  TORCH_CHECK(t.defined(), a.op, ": ", name, " must be a tensor");
  check_same_device_dtype(a, t, name);
  check_shape(a, t, name, expected);
}

LayerArgs make_layer_args(
    const char* op,
    CellKind cell,
    const at::Tensor& input,
    const std::optional<at::Tensor>& hx,
    const std::optional<at::Tensor>& cx,
    const at::Tensor& w_ih,
    const at::Tensor& w_hh,
    const std::optional<at::Tensor>& b_ih,
    const std::optional<at::Tensor>& b_hh,
    const std::optional<at::Tensor>& w_hr,
    const std::optional<at::Tensor>& batch_sizes) {
  LayerArgs a;
  a.op = op;
  a.cell = cell;
  a.G = gate_count(cell);
  a.packed = batch_sizes.has_value() && batch_sizes->defined();
  const bool is_lstm = cell == CellKind::kLstm;

  TORCH_CHECK(input.defined(), op, ": input must be a tensor");
  a.input = input;
  TORCH_CHECK(
      at::isFloatingType(input.scalar_type()),
      op, ": expected input of a floating point dtype, got ", input.scalar_type());
  TORCH_CHECK(
      input.dim() == (a.packed ? 2 : 3),
      op, ": expected input with ", (a.packed ? 2 : 3), " dimensions (",
      (a.packed ? "rows, input_size) for packed input" : "seq_len, batch, input_size)"),
      ", got ", input.dim(), " dimensions of shape ", shape_str(input.sizes()));

  // Step layout.
  if (a.packed) {
    const at::Tensor& bs = *batch_sizes;
    TORCH_CHECK(bs.device().is_cpu(), op, ": expected batch_sizes on the CPU, got ", bs.device());
    TORCH_CHECK(
        bs.scalar_type() == at::kLong,
        op, ": expected batch_sizes of dtype Long, got ", bs.scalar_type());
    TORCH_CHECK(bs.dim() == 1, op, ": expected batch_sizes to be 1-D, got ", bs.dim(), "-D");
    a.T = bs.size(0);
    TORCH_CHECK(a.T > 0, "Expected sequence length to be larger than 0 in RNN");
    const at::Tensor bsc = bs.contiguous();
    const int64_t* p = bsc.const_data_ptr<int64_t>();
    a.sizes.assign(p, p + a.T);
    int64_t total = 0;
    for (int64_t t = 0; t < a.T; ++t) {
      TORCH_CHECK(
          a.sizes[t] > 0 && (t == 0 || a.sizes[t] <= a.sizes[t - 1]),
          op, ": batch_sizes must be positive and non-increasing, got ", a.sizes[t], " at step ", t,
          t > 0 ? c10::str(" after ", a.sizes[t - 1]) : std::string());
      total += a.sizes[t];
    }
    TORCH_CHECK(
        total == input.size(0),
        op, ": batch_sizes sum to ", total, " but packed input has ", input.size(0), " rows");
    a.B = a.sizes[0];
    a.N = total;
  } else {
    a.T = input.size(0);
    TORCH_CHECK(a.T > 0, "Expected sequence length to be larger than 0 in RNN");
    a.B = input.size(1);
    a.sizes.assign(a.T, a.B);
    a.N = a.T * a.B;
  }
  a.offsets.resize(a.T);
  for (int64_t t = 0, off = 0; t < a.T; ++t) {
    a.offsets[t] = off;
    off += a.sizes[t];
  }
  a.I = input.size(-1);

  // Weights.
  TORCH_CHECK(w_hh.defined() && w_ih.defined(), op, ": w_ih and w_hh must be tensors");
  TORCH_CHECK(
      w_hh.dim() == 2 && w_hh.size(0) % a.G == 0 && w_hh.size(0) > 0,
      op, ": expected w_hh of shape (", a.G, "*hidden_size, ", is_lstm ? "proj_size or " : "",
      "hidden_size), got ", shape_str(w_hh.sizes()));
  a.H = w_hh.size(0) / a.G;
  const bool has_proj = w_hr.has_value() && w_hr->defined();
  TORCH_CHECK(!has_proj || is_lstm, op, ": w_hr (projection) is only supported for LSTM");
  a.P = has_proj ? w_hr->size(0) : a.H;

  a.w_ih = w_ih;
  a.w_hh = w_hh;
  check_same_device_dtype(a, w_ih, "w_ih");
  check_same_device_dtype(a, w_hh, "w_hh");
  check_shape(a, w_ih, "w_ih", {a.G * a.H, a.I});
  check_shape(a, w_hh, "w_hh", {a.G * a.H, a.P});
  if (has_proj) {
    check_same_device_dtype(a, *w_hr, "w_hr");
    check_shape(a, *w_hr, "w_hr", {a.P, a.H});
    a.w_hr = w_hr->contiguous();
  }
  auto take_bias = [&](const std::optional<at::Tensor>& b, const char* name) -> at::Tensor {
    if (!b.has_value() || !b->defined()) {
      return at::Tensor();
    }
    check_same_device_dtype(a, *b, name);
    check_shape(a, *b, name, {a.G * a.H});
    return b->contiguous();
  };
  a.b_ih = take_bias(b_ih, "b_ih");
  a.b_hh = take_bias(b_hh, "b_hh");

  // Initial states: zeros when absent, so the kernels never branch on them.
  auto take_state = [&](const std::optional<at::Tensor>& s, const char* name, int64_t width) {
    if (!s.has_value() || !s->defined()) {
      return at::zeros({a.B, width}, input.options());
    }
    check_same_device_dtype(a, *s, name);
    check_shape(a, *s, name, {a.B, width});
    return s->contiguous();
  };
  a.hx = take_state(hx, "hx", a.P);
  if (is_lstm) {
    a.cx = take_state(cx, "cx", a.H);
  } else {
    TORCH_CHECK(!(cx.has_value() && cx->defined()), op, ": cx is only meaningful for LSTM");
  }

  a.input = input.contiguous();
  a.w_ih = w_ih.contiguous();
  a.w_hh = w_hh.contiguous();
  return a;
}

}  // namespace fused_rnn
