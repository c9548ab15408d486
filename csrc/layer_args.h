// Argument checking and layout of one recurrent layer in one direction,
// shared by every op and every device.
//
// Layout of a layer call (G gates: LSTM 4, GRU 3, RNN 1; P = proj_size or H):
//   input    dense (T, B, I), time-major; packed (N, I) with batch_sizes (T,)
//   hx       (B, P)            optional, zeros when absent
//   cx       (B, H)            LSTM only, optional
//   w_ih     (G*H, I)          w_hh (G*H, P)      b_ih, b_hh (G*H,) optional
//   w_hr     (P, H)            LSTM with projection only
//   batch_sizes (T,) int64 on the CPU, non-increasing, all > 0 (PyTorch's packed layout)
// Internally dense input is the packed layout with batch_sizes all equal to B:
// step t owns rows [offsets[t], offsets[t] + sizes[t]) of every (rows, features) buffer.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "cell_kind.h"

namespace fused_rnn {

struct LayerArgs {
  std::string op;  // "fused_rnn::lstm_forward", for messages
  CellKind cell;
  at::Tensor input;      // contiguous
  at::Tensor hx;         // contiguous (B, P); zeros when the caller gave none
  at::Tensor cx;         // contiguous (B, H); LSTM only
  at::Tensor w_ih, w_hh; // contiguous
  at::Tensor b_ih, b_hh; // contiguous, or undefined when absent
  at::Tensor w_hr;       // contiguous, or undefined without projection
  bool packed = false;
  int64_t T = 0, B = 0, I = 0, H = 0, P = 0, N = 0, G = 0;
  std::vector<int64_t> sizes;    // rows active at step t
  std::vector<int64_t> offsets;  // first row of step t
};

// Checks every argument (naming the tensor, the expected and the actual value) and
// returns the contiguous tensors and the step layout.
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
    const std::optional<at::Tensor>& batch_sizes);

// Checks a tensor that the backward receives (gradients, saved output, workspace).
void check_backward_tensor(
    const LayerArgs& a, const at::Tensor& t, const char* name, at::IntArrayRef expected);

// Columns of the saved workspace per row (see each cell's kernel for the layout).
int64_t workspace_cols(CellKind cell, int64_t H, bool has_proj);

}  // namespace fused_rnn
