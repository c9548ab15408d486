// The persistent tier of the CUDA recurrence: one cooperative kernel runs every
// step of a layer, each CTA keeping its slice of W_hh in shared memory for the
// whole sequence, with one grid barrier a step. See persistent.cu.
//
// UNVERIFIED ON A GPU: written and compiled without one (the kernels' logic is tested
// on a CPU emulator, tests/test_persistent_emulated.py); selected only by
// FUSED_RNN_TIER=persistent (or fused_rnn._C._set_cuda_tier("persistent")) until a
// recorded GPU run shows the CUDA test suite passing on it.
#pragma once

#include <array>

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

// persistent_forward for both directions of a bidirectional layer (a[0] forward, a[1]
// reverse) in one cooperative launch, half the SMs a direction: false, having launched
// nothing, where the pair does not fit (each direction may still fit alone).
template <typename T>
bool persistent_forward_pair(CellKind cell, const LayerArgs (&a)[2], std::array<const ForwardStep<T>*, 2> st,
                             std::array<T*, 2> gates, std::array<T*, 2> out, std::array<T*, 2> ws);

// The backward's reverse loop of an unprojected layer: fills dG (and the GRU's dGh)
// for every step and leaves grad_hx in base.dh and grad_cx in base.dc. `base` holds
// the per-call fields and, in ws/out/dg/dgh, the first rows of the whole sequence.
template <typename T>
bool persistent_backward(CellKind cell, const LayerArgs& a, bool reverse, const BackwardStep<T>& base,
                         const T* grad_output, const T* grad_cell_states, const T* w_hh);

// persistent_backward for both directions of a bidirectional layer in one cooperative launch
// (as persistent_forward_pair); base[d] as persistent_backward's base.
template <typename T>
bool persistent_backward_pair(CellKind cell, const LayerArgs (&a)[2], std::array<const BackwardStep<T>*, 2> base,
                              std::array<const T*, 2> grad_output, std::array<const T*, 2> grad_cell_states,
                              std::array<const T*, 2> w_hh);

}  // namespace fused_rnn::cuda
