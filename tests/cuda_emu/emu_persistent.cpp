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

// plan_out: ok, U, ctas, bb, kc, mma
// mma: the tensor-core products (where MmaElem<T>::ok; ignored elsewhere). The limit
// given to the planner is the weight slice (laid out as the kernels lay it out) plus
// staging_bytes.
template <typename T>
P::TilePlan plan(int cell, int64_t H, int64_t B, bool forward, int64_t sms, int64_t staging_bytes, int mma,
                 int* plan_out) {
  const int64_t G = fused_rnn::gate_count(static_cast<CellKind>(cell));
  const bool use_mma = mma != 0 && P::MmaElem<T>::ok;
  const size_t acc = sizeof(fused_rnn::Acc<T>);
  const size_t w_bytes = P::smem_layout(P::slice_tiling(H, G, forward, sms, use_mma), sizeof(T), acc).xs;
  P::TilePlan p = P::plan_tiling(H, G, B, forward, sms, w_bytes + staging_bytes, sizeof(T), acc, use_mma);
  plan_out[0] = p.ok;
  plan_out[1] = p.tl.U;
  plan_out[2] = p.ctas;
  plan_out[3] = p.tl.bb;
  plan_out[4] = p.tl.kc;
  plan_out[5] = p.tl.mma;
  return p;
}

template <typename T>
int forward(int cell, int64_t T_, int64_t B, int64_t H, const int64_t* sizes, const int64_t* offsets, int reverse,
            int64_t sms, int64_t staging_bytes, int mma, const void* w_hh, const void* bias, const void* bias_hh,
            void* gates, int64_t gates_ld, void* out, void* h, const void* hx, void* c, void* ws, int64_t ws_ld,
            int* plan_out) {
  const P::TilePlan p = plan<T>(cell, H, B, true, sms, staging_bytes, mma, plan_out);
  if (!p.ok) {
    return 0;
  }
  P::ForwardArgs<T> a;
  a.steps = steps(T_, B, sizes, offsets, reverse);
  a.tl = p.tl;
  a.H = H;
  a.w_hh = static_cast<const T*>(w_hh);
  a.bias = static_cast<const T*>(bias);
  a.bias_hh = static_cast<const T*>(bias_hh);
  a.gates = static_cast<T*>(gates);
  a.gates_ld = gates_ld;
  a.out = static_cast<T*>(out);
  a.h = static_cast<T*>(h);
  a.hx = static_cast<const T*>(hx);
  a.c = static_cast<fused_rnn::Acc<T>*>(c);
  a.ws = static_cast<T*>(ws);
  a.ws_ld = ws_ld;
  emu::launch(P::forward_kernel<T>(static_cast<CellKind>(cell), p.tl.mma), p.ctas, P::kThreads, p.smem, a);
  return 1;
}

template <typename T>
int backward(int cell, int64_t T_, int64_t B, int64_t H, const int64_t* sizes, const int64_t* offsets, int reverse,
             int64_t sms, int64_t staging_bytes, int mma, const void* w_hh, const void* go, const void* gcs,
             const void* ws, int64_t ws_ld, const void* out, const void* hx, const void* cx, void* dh, void* dc,
             void* dg, void* dgh, int* plan_out) {
  const P::TilePlan p = plan<T>(cell, H, B, false, sms, staging_bytes, mma, plan_out);
  if (!p.ok) {
    return 0;
  }
  P::BackwardArgs<T> a;
  a.steps = steps(T_, B, sizes, offsets, reverse);
  a.tl = p.tl;
  a.H = H;
  a.w_hh = static_cast<const T*>(w_hh);
  a.go = static_cast<const T*>(go);
  a.gcs = static_cast<const T*>(gcs);
  a.ws = static_cast<const T*>(ws);
  a.ws_ld = ws_ld;
  a.out = static_cast<const T*>(out);
  a.hx = static_cast<const T*>(hx);
  a.cx = static_cast<const T*>(cx);
  a.dh = static_cast<T*>(dh);
  a.dc = static_cast<fused_rnn::Acc<T>*>(dc);
  a.dg = static_cast<T*>(dg);
  a.dgh = static_cast<T*>(dgh);
  emu::launch(P::backward_kernel<T>(static_cast<CellKind>(cell), p.tl.mma), p.ctas, P::kThreads, p.smem, a);
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

// The forward's recurrent loop; gates holds x W_ih^T (no bias) in its first G*H columns.
// c is in Acc<T> (float32 for the 16-bit types).
int emu_forward(int dtype, int cell, int64_t T, int64_t B, int64_t H, const int64_t* sizes, const int64_t* offsets,
                int reverse, int64_t sms, int64_t staging_bytes, int mma, const void* w_hh, const void* bias,
                const void* bias_hh, void* gates, int64_t gates_ld, void* out, void* h, const void* hx, void* c,
                void* ws, int64_t ws_ld, int* plan_out) {
  return by_dtype(dtype, [&](auto tag) {
    return forward<decltype(tag)>(cell, T, B, H, sizes, offsets, reverse, sms, staging_bytes, mma, w_hh, bias,
                                  bias_hh, gates, gates_ld, out, h, hx, c, ws, ws_ld, plan_out);
  });
}

// The backward's reverse loop: fills dg (and dgh), leaves grad_hx in dh and grad_cx in dc (Acc<T>).
int emu_backward(int dtype, int cell, int64_t T, int64_t B, int64_t H, const int64_t* sizes, const int64_t* offsets,
                 int reverse, int64_t sms, int64_t staging_bytes, int mma, const void* w_hh, const void* go,
                 const void* gcs, const void* ws, int64_t ws_ld, const void* out, const void* hx, const void* cx,
                 void* dh, void* dc, void* dg, void* dgh, int* plan_out) {
  return by_dtype(dtype, [&](auto tag) {
    return backward<decltype(tag)>(cell, T, B, H, sizes, offsets, reverse, sms, staging_bytes, mma, w_hh, go, gcs,
                                   ws, ws_ld, out, hx, cx, dh, dc, dg, dgh, plan_out);
  });
}

}  // extern "C"
