// The persistent kernels of csrc/cuda/persistent_kernels.cuh run on the emulator
// (emu.h), in float64, behind a C ABI for tests/test_persistent_emulated.py.
// Blocks have 64 threads (two warps) here, so the warp loops take turns.
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

// plan_out: ok, U, ctas, bb, kc
P::TilePlan plan(int cell, int64_t H, int64_t B, bool forward, int64_t sms, int64_t staging_bytes, int* plan_out) {
  const int64_t G = fused_rnn::gate_count(static_cast<CellKind>(cell));
  const int64_t U = (H + sms - 1) / sms;
  const size_t w_bytes = P::align16(sizeof(double) * (forward ? G * U * H : U * G * H));
  P::TilePlan p = P::plan_tiling(H, G, B, forward, sms, w_bytes + staging_bytes, sizeof(double), sizeof(double));
  plan_out[0] = p.ok;
  plan_out[1] = p.tl.U;
  plan_out[2] = p.ctas;
  plan_out[3] = p.tl.bb;
  plan_out[4] = p.tl.kc;
  return p;
}

template <class Args>
void (*forward_kernel(int cell))(Args) {
  switch (static_cast<CellKind>(cell)) {
    case CellKind::kLstm: return P::persistent_forward_kernel<double, CellKind::kLstm>;
    case CellKind::kGru: return P::persistent_forward_kernel<double, CellKind::kGru>;
    case CellKind::kRnnTanh: return P::persistent_forward_kernel<double, CellKind::kRnnTanh>;
    default: return P::persistent_forward_kernel<double, CellKind::kRnnRelu>;
  }
}

template <class Args>
void (*backward_kernel(int cell))(Args) {
  switch (static_cast<CellKind>(cell)) {
    case CellKind::kLstm: return P::persistent_backward_kernel<double, CellKind::kLstm>;
    case CellKind::kGru: return P::persistent_backward_kernel<double, CellKind::kGru>;
    case CellKind::kRnnTanh: return P::persistent_backward_kernel<double, CellKind::kRnnTanh>;
    default: return P::persistent_backward_kernel<double, CellKind::kRnnRelu>;
  }
}

}  // namespace

extern "C" {

// The forward's recurrent loop; gates holds x W_ih^T (no bias) in its first G*H columns.
int emu_forward(int cell, int64_t T, int64_t B, int64_t H, const int64_t* sizes, const int64_t* offsets, int reverse,
                int64_t sms, int64_t staging_bytes, const double* w_hh, const double* bias, const double* bias_hh,
                double* gates, int64_t gates_ld, double* out, double* h, const double* hx, double* c, double* ws,
                int64_t ws_ld, int* plan_out) {
  const P::TilePlan p = plan(cell, H, B, true, sms, staging_bytes, plan_out);
  if (!p.ok) {
    return 0;
  }
  P::ForwardArgs<double> a;
  a.steps = steps(T, B, sizes, offsets, reverse);
  a.tl = p.tl;
  a.H = H;
  a.w_hh = w_hh;
  a.bias = bias;
  a.bias_hh = bias_hh;
  a.gates = gates;
  a.gates_ld = gates_ld;
  a.out = out;
  a.h = h;
  a.hx = hx;
  a.c = c;
  a.ws = ws;
  a.ws_ld = ws_ld;
  emu::launch(forward_kernel<P::ForwardArgs<double>>(cell), p.ctas, P::kThreads, p.smem, a);
  return 1;
}

// The backward's reverse loop: fills dg (and dgh), leaves grad_hx in dh and grad_cx in dc.
int emu_backward(int cell, int64_t T, int64_t B, int64_t H, const int64_t* sizes, const int64_t* offsets, int reverse,
                 int64_t sms, int64_t staging_bytes, const double* w_hh, const double* go, const double* gcs,
                 const double* ws, int64_t ws_ld, const double* out, const double* hx, const double* cx, double* dh,
                 double* dc, double* dg, double* dgh, int* plan_out) {
  const P::TilePlan p = plan(cell, H, B, false, sms, staging_bytes, plan_out);
  if (!p.ok) {
    return 0;
  }
  P::BackwardArgs<double> a;
  a.steps = steps(T, B, sizes, offsets, reverse);
  a.tl = p.tl;
  a.H = H;
  a.w_hh = w_hh;
  a.go = go;
  a.gcs = gcs;
  a.ws = ws;
  a.ws_ld = ws_ld;
  a.out = out;
  a.hx = hx;
  a.cx = cx;
  a.dh = dh;
  a.dc = dc;
  a.dg = dg;
  a.dgh = dgh;
  emu::launch(backward_kernel<P::BackwardArgs<double>>(cell), p.ctas, P::kThreads, p.smem, a);
  return 1;
}

}  // extern "C"
