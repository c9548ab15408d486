// The persistent kernels of csrc/cuda/persistent_kernels.cuh run on the emulator
// (emu.h) behind a C ABI for tests/test_persistent_emulated.py, in float64, float32,
// float16 and bfloat16 (c10's header-only Half and BFloat16, as on the GPU).
// Blocks have 64 threads (two warps) here, so the warp loops take turns.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "emu.h"

#define FR_PERSISTENT_THREADS 64
#include "../../csrc/cuda/persistent_kernels.cuh"

using fused_rnn::CellKind;
namespace P = fused_rnn::cuda::persistent;

namespace {

P::Steps steps(int64_t T, int64_t B, const int64_t* sizes, const int64_t* offsets, int reverse) {
  P::Steps S;
  S.T = T;
  S.B = B;
  S.sizes = sizes;
  S.offsets = offsets;
  S.reverse = reverse != 0;
  return S;
}

// plan_out: ok, U, ctas, bb, kc, mma, groups, group_rows, hrows
// mma: the tensor-core products (where MmaElem<T>::ok; ignored elsewhere). groups: 0 plans the
// grid mode on `sms` SMs; n > 0 the cluster mode, clusters of `sms` CTAs, at most n of them a
// direction, with the products' input (h_t, dG_t) exchanged through distributed shared memory
// where dsmem and the buffers fit (hrows then the rows of each exchange buffer). The limit given to the planner is the weight slice (laid
// out as the kernels lay it out) plus staging_bytes.
template <typename T>
P::TilePlan plan(int cell, int64_t H, int64_t B, bool forward, int64_t sms, int64_t staging_bytes, int mma,
                 int64_t groups, int dsmem, int* plan_out) {
  const int64_t G = fused_rnn::gate_count(static_cast<CellKind>(cell));
  const bool use_mma = mma != 0 && P::MmaElem<T>::ok;
  const size_t acc = sizeof(fused_rnn::Acc<T>);
  const size_t w_bytes = P::smem_layout(P::slice_tiling(H, G, forward, sms, use_mma), sizeof(T), acc).xs;
  const size_t limit = w_bytes + staging_bytes;
  P::TilePlan p = groups > 0
      ? P::plan_cluster(H, G, B, forward, static_cast<int>(sms), groups, limit, sizeof(T), acc, use_mma, dsmem != 0)
      : P::plan_tiling(H, G, B, forward, sms, limit, sizeof(T), acc, use_mma);
  plan_out[0] = p.ok;
  plan_out[1] = p.tl.U;
  plan_out[2] = p.ctas;
  plan_out[3] = p.tl.bb;
  plan_out[4] = p.tl.kc;
  plan_out[5] = p.tl.mma;
  plan_out[6] = p.groups;
  plan_out[7] = static_cast<int>(p.group_rows);
  plan_out[8] = p.tl.hrows;
  return p;
}

// Copies a plan's group fields into a launch and runs it: clusters of p.ctas blocks in cluster
// mode, a cooperative grid otherwise, there with per-step flags (zeroed) instead of grid.sync()
// where `flags`.
template <class Kernel, class Launch>
void run(Kernel kernel, const P::TilePlan& p, Launch& launch, int flags) {
  launch.take(p);
  std::vector<unsigned> counts(static_cast<size_t>(launch.dirs) * p.ctas, 0u);
  launch.flags = flags != 0 && !p.cluster ? counts.data() : nullptr;
  emu::launch(kernel, launch.dirs * p.groups * p.ctas, P::kThreads, p.smem, launch, p.cluster ? p.ctas : 0);
}

// Pointers a direction hands the forward kernel, in this order (ptrs[d * kForwardPtrs + i]).
enum ForwardPtr { kFwWhh, kFwBias, kFwBiasHh, kFwGates, kFwOut, kFwH, kFwHx, kFwC, kFwWs, kForwardPtrs };
// ... and the backward kernel.
enum BackwardPtr { kBwWhh, kBwGo, kBwGcs, kBwWs, kBwOut, kBwHx, kBwCx, kBwDh, kBwDc, kBwDg, kBwDgh, kBackwardPtrs };

// One launch of `dirs` directions (1, or 2: both directions of a layer at once, the second
// direction's CTAs after the first's), each planned as one direction on `sms` SMs (grid mode) or
// in clusters of `sms` CTAs (groups > 0).
template <typename T>
int forward(int cell, int64_t T_, int64_t B, int64_t H, const int64_t* sizes, const int64_t* offsets, int dirs,
            const int* reverse, int64_t sms, int64_t staging_bytes, int mma, int64_t groups, int dsmem, int flags,
            int64_t gates_ld, int64_t ws_ld, void* const* ptrs, int* plan_out) {
  const P::TilePlan p = plan<T>(cell, H, B, true, sms, staging_bytes, mma, groups, dsmem, plan_out);
  if (!p.ok) {
    return 0;
  }
  P::ForwardLaunch<T> launch;
  launch.dirs = dirs;
  for (int d = 0; d < dirs; ++d) {
    void* const* q = ptrs + d * kForwardPtrs;
    P::ForwardArgs<T>& a = launch.dir[d];
    a.steps = steps(T_, B, sizes, offsets, reverse[d]);
    a.tl = p.tl;
    a.H = H;
    a.w_hh = static_cast<const T*>(q[kFwWhh]);
    a.bias = static_cast<const T*>(q[kFwBias]);
    a.bias_hh = static_cast<const T*>(q[kFwBiasHh]);
    a.gates = static_cast<T*>(q[kFwGates]);
    a.gates_ld = gates_ld;
    a.out = static_cast<T*>(q[kFwOut]);
    a.h = static_cast<T*>(q[kFwH]);
    a.hx = static_cast<const T*>(q[kFwHx]);
    a.c = static_cast<fused_rnn::Acc<T>*>(q[kFwC]);
    a.ws = static_cast<T*>(q[kFwWs]);
    a.ws_ld = ws_ld;
  }
  run(P::forward_kernel<T>(static_cast<CellKind>(cell), p.tl.mma), p, launch, flags);
  return 1;
}

template <typename T>
int backward(int cell, int64_t T_, int64_t B, int64_t H, const int64_t* sizes, const int64_t* offsets, int dirs,
             const int* reverse, int64_t sms, int64_t staging_bytes, int mma, int64_t groups, int dsmem, int flags,
             int64_t ws_ld, void* const* ptrs, int* plan_out) {
  const P::TilePlan p = plan<T>(cell, H, B, false, sms, staging_bytes, mma, groups, dsmem, plan_out);
  if (!p.ok) {
    return 0;
  }
  P::BackwardLaunch<T> launch;
  launch.dirs = dirs;
  for (int d = 0; d < dirs; ++d) {
    void* const* q = ptrs + d * kBackwardPtrs;
    P::BackwardArgs<T>& a = launch.dir[d];
    a.steps = steps(T_, B, sizes, offsets, reverse[d]);
    a.tl = p.tl;
    a.H = H;
    a.w_hh = static_cast<const T*>(q[kBwWhh]);
    a.go = static_cast<const T*>(q[kBwGo]);
    a.gcs = static_cast<const T*>(q[kBwGcs]);
    a.ws = static_cast<const T*>(q[kBwWs]);
    a.ws_ld = ws_ld;
    a.out = static_cast<const T*>(q[kBwOut]);
    a.hx = static_cast<const T*>(q[kBwHx]);
    a.cx = static_cast<const T*>(q[kBwCx]);
    a.dh = static_cast<T*>(q[kBwDh]);
    a.dc = static_cast<fused_rnn::Acc<T>*>(q[kBwDc]);
    a.dg = static_cast<T*>(q[kBwDg]);
    a.dgh = static_cast<T*>(q[kBwDgh]);
  }
  run(P::backward_kernel<T>(static_cast<CellKind>(cell), p.tl.mma), p, launch, flags);
  return 1;
}

// dtype: 0 float64, 1 float32, 2 float16, 3 bfloat16
template <class F>
int by_dtype(int dtype, F&& f) {
  switch (dtype) {
    case 0: return f(double{});
    case 1: return f(float{});
    case 2: return f(c10::Half{});
    default: return f(c10::BFloat16{});
  }
}

}  // namespace

extern "C" {

// The forward's recurrent loop of `dirs` directions in one launch; each direction's gates
// buffer holds x W_ih^T (no bias) in its first G*H columns; c is in Acc<T> (float32 for the
// 16-bit types). ptrs: kForwardPtrs pointers a direction (ForwardPtr's order). groups: 0 for the
// grid mode on `sms` SMs, n > 0 for clusters of `sms` CTAs, at most n a direction, exchanging
// h_t through distributed shared memory where dsmem and the buffers fit. flags: in grid mode, per-step
// flags instead of grid.sync() (ignored in cluster mode).
int emu_forward(int dtype, int cell, int64_t T, int64_t B, int64_t H, const int64_t* sizes, const int64_t* offsets,
                int dirs, const int* reverse, int64_t sms, int64_t staging_bytes, int mma, int64_t groups, int dsmem,
                int flags, int64_t gates_ld, int64_t ws_ld, void* const* ptrs, int* plan_out) {
  return by_dtype(dtype, [&](auto tag) {
    return forward<decltype(tag)>(cell, T, B, H, sizes, offsets, dirs, reverse, sms, staging_bytes, mma, groups,
                                  dsmem, flags, gates_ld, ws_ld, ptrs, plan_out);
  });
}

// The backward's reverse loop of `dirs` directions in one launch: fills dg (and dgh), leaves
// grad_hx in dh and grad_cx in dc (Acc<T>). ptrs: kBackwardPtrs pointers a direction; groups and
// dsmem and flags as emu_forward's (dG_t exchanged).
int emu_backward(int dtype, int cell, int64_t T, int64_t B, int64_t H, const int64_t* sizes, const int64_t* offsets,
                 int dirs, const int* reverse, int64_t sms, int64_t staging_bytes, int mma, int64_t groups, int dsmem,
                 int flags, int64_t ws_ld, void* const* ptrs, int* plan_out) {
  return by_dtype(dtype, [&](auto tag) {
    return backward<decltype(tag)>(cell, T, B, H, sizes, offsets, dirs, reverse, sms, staging_bytes, mma, groups,
                                   dsmem, flags, ws_ld, ptrs, plan_out);
  });
}

}  // extern "C"
