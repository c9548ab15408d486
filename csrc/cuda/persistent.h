// The persistent tier of the CUDA recurrence: one cooperative kernel runs every
// step of a layer, each CTA keeping its slice of W_hh in shared memory for the
// whole sequence, with one grid barrier a step. See persistent.cu.
//
// UNVERIFIED ON A GPU: written and compiled without one (the kernels' logic is tested
// on a CPU emulator, tests/test_persistent_emulated.py); selected only by
// FUSED_RNN_TIER=persistent (or fused_rnn._C._set_cuda_tier("persistent")) until a
// recorded GPU run shows the CUDA test suite passing on it.
#pragma once

#include "../cells.h"
#include "../layer_args.h"

namespace fused_rnn::cuda {

// The forward of an unprojected layer, input projection (cuBLAS) included, with the
// fields and buffers recurrence.h hands to a backend's forward_sequence. Returns
// false, having launched nothing, where the layer does not fit the tier (W_hh slice
// over the shared memory of a CTA, or a grid that cannot be co-resident).
template <typename T>
bool persistent_forward(CellKind cell, const LayerArgs& a, bool reverse, const ForwardStep<T>& st, T* gates,
                        T* out, T* ws);

// The backward's reverse loop of an unprojected layer: fills dG (and the GRU's dGh)
// for every step and leaves grad_hx in base.dh and grad_cx in base.dc. `base` holds
// the per-call fields and, in ws/out/dg/dgh, the first rows of the whole sequence.
template <typename T>
bool persistent_backward(CellKind cell, const LayerArgs& a, bool reverse, const BackwardStep<T>& base,
                         const T* grad_output, const T* grad_cell_states, const T* w_hh);

}  // namespace fused_rnn::cuda
