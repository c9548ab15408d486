// The recurrence of one layer in one direction, written once for every cell and
// every device, and the op entry points built on it.
//
// Forward: the input projection of all steps is one GEMM into the gate buffer
// (the workspace itself when training); then, step by step in processing order,
// one GEMM against W_hh over the rows active at that step (accumulated into the
// gate buffer, or kept apart for the GRU) and one fused pointwise pass that writes
// the activations, the state, and the output row.
// Backward: a reverse loop doing only the sequential part (pointwise backward and
// dh_{t-1} = dG_t W_hh) over a segment of steps, then the input and weight gradients
// of that segment's rows as GEMMs (accumulated over segments), segment after segment:
// dG is held a chunk at a time, as large as the backend asks (the whole sequence on
// CUDA). Every buffer is allocated before the loops; the reverse loops allocate
// nothing and never wait for the device.
//
// A Backend supplies what differs between devices:
//   template <class F> static auto dispatch(const LayerArgs&, F&& f)  // f(T{}) for each supported dtype
//   template <class T> static void forward(CellKind, const ForwardStep<T>&, int64_t rows)
//   template <class T> static void backward(CellKind, const BackwardStep<T>&, int64_t rows)
//   template <class D, class S> static void add(D* dst, const S* src, int64_t n)   // dst += src
//   template <class T> static void copy(T* dst, const T* src, int64_t n)
//   template <class T> static bool forward_sequence(CellKind, const LayerArgs&, bool reverse,
//       bool train, const ForwardStep<T>& st, T* gates, T* out, T* ws)
//     runs an unprojected layer whole, input projection included, and returns true,
//     or returns false to leave it to the code here (st holds the per-call fields;
//     gates, out and ws are the first rows of the whole sequence, gates null where
//     the backend is to keep its own buffer, ws null in inference and for cells that
//     keep nothing beyond their output, whose training calls train tells apart;
//     st.h holds h_0 in and h_n out)
//   template <class T> struct Matmul { Matmul(int64_t N, int64_t K, const T* B, int64_t ldb, int64_t steps,
//       int64_t batch); bool operator()(int64_t M, const T* A, int64_t lda, bool accumulate, T* C, int64_t ldc); }
//     C = A B (C += A B with accumulate), all row-major, for any number of calls with the same
//     B (N x K) over the rows of a sequence of `steps` steps of up to `batch` rows, returning
//     true, or false for the gemm here
//   template <class T> static int64_t backward_chunk_rows(const LayerArgs&, int64_t sharers)
//     the rows of dG the backward holds at once (it rounds to whole steps, at least one): a.N
//     for the whole sequence; sharers backward calls running together split one chunk
//   template <class T, class F, class Flush> static bool backward_sequence(CellKind, const LayerArgs&,
//       bool reverse, const BackwardStep<T>& st, const F& set_step, const T* grad_output,
//       int64_t grad_output_ld, const T* grad_cell_states, const T* w_hh,
//       const std::vector<BackwardSegment>& segments, const Flush& flush)
//     the same for the backward's reverse loop: for each segment s in turn, fills dG (and dGh)
//     for its steps, then calls flush(s), which reads that chunk of dG; leaves grad_hx in st.dh
//     and grad_cx in st.dc; set_step(t, st) sets a step's rows (in the segment being run);
//     grad_output's rows are grad_output_ld apart (P unless kStridedRows; 0 where every row is
//     the same one), the output's st.out_ld (or st.prev_ld as h_{t-1})
//   static constexpr bool kWritesDgOverWorkspace
//     whether the backward, where its caller consumes the workspace (GradMask), writes dG
//     over it (dG's rows ws_ld apart in the backend's steps and backward_sequence)
//   static constexpr bool kStridedRows
//     whether the backward reads a bidirectional layer's halves of grad_output and of the
//     output in place, rows 2P apart, and a grad_output that repeats one row as that row;
//     otherwise each is copied contiguous
//   static constexpr int64_t kInferenceInputChunkRows
//     where the steps run here in inference, about how many rows of the input projection are
//     formed at once, just ahead of the steps that read them (kInferenceInputChunkRows / B
//     whole steps, at least one); 0 for the whole sequence
//   static bool runs_pairs()
//   template <class T> static bool forward_pair(CellKind, const LayerArgs (&a)[2],
//       std::array<const ForwardStep<T>*, 2> st, std::array<T*, 2> gates, std::array<T*, 2> out,
//       std::array<T*, 2> ws)
//     forward_sequence for both directions of a bidirectional layer (a[0] forward, a[1]
//     reverse) in one run, or false to leave each to forward_sequence; tried only where
//     runs_pairs() is true
//   template <class T> static bool backward_pair(CellKind, const LayerArgs (&a)[2],
//       std::array<const BackwardStep<T>*, 2> base, std::array<const T*, 2> grad_output,
//       std::array<const T*, 2> grad_cell_states, std::array<const T*, 2> w_hh)
//     the same for backward_sequence; base holds each direction's per-call fields and, in
//     ws/out/dg/dgh, the first rows of its whole sequence (a backend that runs pairs holds
//     dG whole: backward_chunk_rows a.N); the caller flushes
//   template <class F> static void both(const LayerArgs& a, Pass pass, const F& f)
//     f(0, at_once) and f(1, at_once), the two directions of a bidirectional layer shaped as
//     `a` (in an inference or training forward, or the backward), at once or one after the
//     other (then f(0, false) returns before f(1, false) starts)
//   template <class T> static at::ScalarType weight_product_dtype(const LayerArgs&)
//     the dtype of the backward's large products over all rows (input and weight
//     gradients): T's own, or bfloat16 where the layer's weights are bfloat16 at heart
//     (the CPU's kept casts) and the device multiplies bf16 fast, as torch.nn's bf16
//     backward does
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cells.h"
#include "gemm.h"
#include "layer_args.h"

namespace fused_rnn {

// Which pass of a layer a call is: Backend::both may run a training step's two directions
// differently from an inference call's.
enum class Pass { kInferenceForward, kTrainingForward, kBackward };

// Backward steps [i0, i1) of one direction, counted from the last step processed (i = 0),
// and the rows of the sequence they cover, [lo, hi): a chunk of dG the backward holds at once.
struct BackwardSegment {
  int64_t i0, i1, lo, hi;
};

// The step t of backward step i (0: the last step processed).
inline int64_t backward_step(const LayerArgs& a, int64_t i, bool reverse) {
  return reverse ? i : a.T - 1 - i;
}

// The rows of the sequence, [first, last), that the steps processed q0 .. q1 - 1 (q0 < q1, in
// processing order) cover: one run, a direction's steps sitting at consecutive offsets.
inline std::pair<int64_t, int64_t> rows_of_steps(const LayerArgs& a, int64_t q0, int64_t q1, bool reverse) {
  const int64_t t_lo = reverse ? a.T - q1 : q0, t_hi = reverse ? a.T - 1 - q0 : q1 - 1;
  return {a.offsets[t_lo], a.offsets[t_hi] + a.sizes[t_hi]};
}

namespace detail {

using at::Tensor;

// The step processed before step t (in processing order), or -1 at the first one.
inline int64_t previous_step(const LayerArgs& a, int64_t t, bool reverse) {
  const int64_t tp = reverse ? t + 1 : t - 1;
  return (tp < 0 || tp >= a.T) ? -1 : tp;
}

// b_ih + b_hh for cells that add both to the same pre-activation: the one given where the other
// is absent, zeros where neither is (allocated only then: a cell step's call is short enough
// for an allocation and a fill to show).
inline Tensor combined_bias(const LayerArgs& a) {
  if (a.b_ih.defined() && a.b_hh.defined()) {
    return (a.b_ih + a.b_hh).contiguous();
  }
  const Tensor& b = a.b_ih.defined() ? a.b_ih : a.b_hh;
  return b.defined() ? b.contiguous() : at::zeros({a.G * a.H}, a.input.options());
}

inline at::ScalarType acc_type(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

// One direction's forward, in parts, so that a backend can run two directions' whole
// sequences in one launch (bidir_forward_impl): the constructor allocates the results and
// fills the per-call step fields; run_whole() hands the whole sequence to the backend, which
// may decline; finish(whole) runs the per-step loop where the backend did not run the
// sequence, and returns (output, h_n, c_n, workspace). ws_into, where defined, is the training
// workspace to fill (N, ws_ld), contiguous: a bidirectional layer's two directions write into
// one buffer.
template <class Backend, class Cell, typename T>
struct ForwardCall {
  const LayerArgs& a;
  const bool reverse, train, proj;
  const int64_t ws_ld, gates_ld;
  Tensor output, h_n, c_state, ws, gates, bias, bias_hh, h_raw;
  ForwardStep<T> st;

  ForwardCall(const LayerArgs& args, bool rev, bool tr, const Tensor& ws_into)
      : a(args),
        reverse(rev),
        train(tr),
        proj(args.w_hr.defined()),
        ws_ld(workspace_cols(args.cell, args.H, proj)),
        gates_ld(Cell::kGatesInOutput ? args.P : (tr ? ws_ld : args.G * args.H)) {
    const int64_t H = a.H, P = a.P, N = a.N, GH = a.G * H;
    const auto opts = a.input.options();
    output = a.packed ? at::empty({N, P}, opts) : at::empty({a.T, a.B, P}, opts);
    h_n = a.hx.clone(at::MemoryFormat::Contiguous);  // the running state; its last value is h_n
    // The running cell state, in Acc<T>.
    c_state = Cell::kHasCell ? a.cx.to(acc_type(a.input.scalar_type()), false, true).contiguous()
                             : at::empty({0}, opts);
    ws = train ? (ws_into.defined() ? ws_into : at::empty({N, ws_ld}, opts)) : at::empty({0}, opts);
    // The gate buffer: x W_ih^T of every step in, activations out. An Elman RNN uses its
    // output, training the workspace; an inference LSTM or GRU allocates one in finish()
    // only if the backend does not run the whole sequence itself.
    gates = Cell::kGatesInOutput ? output : (train ? ws : Tensor());
    if (Cell::kSeparateRecurrent) {
      const Tensor zeros = a.b_ih.defined() && a.b_hh.defined() ? Tensor() : at::zeros({GH}, opts);
      bias = a.b_ih.defined() ? a.b_ih : zeros;
      bias_hh = a.b_hh.defined() ? a.b_hh : zeros;
    } else {
      bias = combined_bias(a);
    }
    if (proj && !train) {
      h_raw = at::empty({a.B, H}, opts);
    }
    st.H = H;
    st.P = P;
    st.gates_ld = gates_ld;
    st.bias = bias.const_data_ptr<T>();
    st.bias_hh = bias_hh.defined() ? bias_hh.const_data_ptr<T>() : nullptr;
    st.h = h_n.data_ptr<T>();
    st.c = Cell::kHasCell ? c_state.data_ptr<Acc<T>>() : nullptr;
    st.ws_ld = ws_ld;
    st.h_raw_ld = train ? ws_ld : H;
  }

  T* gates_ptr() { return gates.defined() ? gates.data_ptr<T>() : nullptr; }
  T* out_ptr() { return output.data_ptr<T>(); }
  T* ws_ptr() { return train ? ws.data_ptr<T>() : nullptr; }

  // A backend may run the whole sequence itself, input projection included (the CPU's
  // fused steps); st then carries the per-call fields.
  bool run_whole() {
    return !proj &&
        Backend::template forward_sequence<T>(Cell::kKind, a, reverse, train, st, gates_ptr(), out_ptr(), ws_ptr());
  }

  std::tuple<Tensor, Tensor, Tensor, Tensor> finish(bool whole) {
    const int64_t H = a.H, P = a.P, N = a.N, I = a.I, GH = a.G * H;
    const at::Device dev = a.input.device();
    const T* w_hh = a.w_hh.const_data_ptr<T>();
    T* h = st.h;
    T* out = out_ptr();
    T* ws_p = ws_ptr();
    Tensor gh;
    T* gates_p = nullptr;
    // The input projection goes into the gate buffer for chunk_steps steps at a time: the whole
    // sequence at once, unless an inference call forms it a chunk ahead (the backend's
    // kInferenceInputChunkRows, as the CPU's fused steps do; the gate buffer then holds one chunk).
    // Its first row is the sequence's row chunk_lo.
    int64_t chunk_steps = a.T, chunk_lo = 0;
    if (!whole) {
      if (!gates.defined()) {
        // Only an inference LSTM or GRU comes here without a gate buffer (see the constructor).
        if (Backend::kInferenceInputChunkRows > 0) {
          chunk_steps = std::max<int64_t>(1, Backend::kInferenceInputChunkRows / std::max<int64_t>(a.B, 1));
        }
        gates = at::empty({std::min(N, chunk_steps * a.B), GH}, a.input.options());
      }
      gates_p = gates.data_ptr<T>();
      if (Cell::kSeparateRecurrent) {
        gh = at::empty({a.B, GH}, a.input.options());
        st.gh = gh.const_data_ptr<T>();
      }
    }
    // Every step multiplies the same W_hh (and a projected LSTM's W_hr, whose steps all run
    // here): packed once for MKL where RepeatedGemm does, in inference. MKL's packed form of
    // a B holds about 8-12 MB beyond B's own size, which in a training step of a projected
    // LSTM at small T * B would be most of the step's memory (see BackwardCall::hh_product).
    const int64_t repeats = whole || train ? 0 : a.T;
    RepeatedGemm<T> hh_product(GH, P, w_hh, P, repeats, a.B, true);
    RepeatedGemm<T> hr_product(P, H, proj ? a.w_hr.const_data_ptr<T>() : nullptr, H, proj ? repeats : 0, a.B, true);
    for (int64_t s = 0; s < (whole ? 0 : a.T); ++s) {
      if (s % chunk_steps == 0) {
        const auto [lo, hi] = rows_of_steps(a, s, std::min(a.T, s + chunk_steps), reverse);
        chunk_lo = lo;
        gemm<T>(dev, false, true, hi - lo, GH, I, a.input.const_data_ptr<T>() + lo * I, I,
                a.w_ih.const_data_ptr<T>(), I, false, gates_p, gates_ld);
      }
      const int64_t t = reverse ? a.T - 1 - s : s;
      const int64_t rows = a.sizes[t], off = a.offsets[t];
      if (rows == 0) {
        continue;
      }
      T* g = gates_p + (off - chunk_lo) * gates_ld;
      if (Cell::kSeparateRecurrent) {
        hh_product(dev, rows, h, P, false, gh.data_ptr<T>(), GH);
      } else {
        hh_product(dev, rows, h, P, true, g, gates_ld);
      }
      st.gates = g;
      st.out = out + off * P;
      st.ws = ws_p ? ws_p + off * ws_ld : nullptr;
      if (proj) {
        st.h_raw = train ? st.ws + 5 * H : h_raw.data_ptr<T>();
      }
      Backend::template forward<T>(Cell::kKind, st, rows);
      if (proj) {
        hr_product(dev, rows, st.h_raw, st.h_raw_ld, false, h, P);
        Backend::copy(st.out, h, rows * P);
      }
    }
    Tensor c_n = Cell::kHasCell ? c_state.to(a.input.scalar_type()) : c_state;
    return {output, h_n, c_n, ws};
  }
};

template <class Backend, class Cell, typename T>
std::tuple<Tensor, Tensor, Tensor, Tensor> forward_impl(const LayerArgs& a, bool reverse, bool train,
                                                        const Tensor& ws_into = Tensor()) {
  ForwardCall<Backend, Cell, T> call(a, reverse, train, ws_into);
  return call.finish(call.run_whole());
}

// Which gradients a backward forms beyond the states' and biases' (always formed): the
// input's (one GEMM) and the weights' (two or three GEMMs); the others come back empty.
struct GradMask {
  bool input = true;
  bool weights = true;
  // The caller's word that nothing reads the workspace after this backward (autograd's, with
  // the graph not retained): a backend with kWritesDgOverWorkspace then writes dG over the
  // workspace rows each step has just read instead of into a buffer of its own.
  bool consume_workspace = false;
};

// The distance between consecutive rows of t viewed as (rows, t.size(-1)), where its columns
// are unit-stride and every row starts the same distance past the one before (a half of a
// bidirectional layer's output: 2P); 0 otherwise (expanded, overlapping or irregular rows).
inline int64_t row_stride(const Tensor& t) {
  if (t.dim() < 2 || t.numel() == 0 || (t.size(-1) > 1 && t.stride(-1) != 1)) {
    return 0;
  }
  int64_t ld = 0, span = 0;  // the innermost leading dimension's stride; the extent of those inside d
  for (int64_t d = t.dim() - 2; d >= 0; --d) {
    if (t.size(d) == 1) {
      continue;
    }
    if (t.stride(d) == 0 || (ld > 0 && t.stride(d) != span)) {
      return 0;
    }
    ld = ld > 0 ? ld : t.stride(d);
    span = t.stride(d) * t.size(d);
  }
  ld = ld > 0 ? ld : t.size(-1);  // a single row
  return ld >= t.size(-1) ? ld : 0;
}

// Whether every row of t (its last dimension) is the same row in memory: the leading
// dimensions all have stride 0 or size 1, as in a gradient expanded from a scalar.
inline bool repeats_one_row(const Tensor& t) {
  if (t.dim() < 2 || t.numel() == 0) {
    return false;
  }
  for (int64_t d = 0; d + 1 < t.dim(); ++d) {
    if (t.size(d) > 1 && t.stride(d) != 0) {
      return false;
    }
  }
  return true;
}

// t's first row (index 0 of every leading dimension): a 1-D view.
inline Tensor first_row(const Tensor& t) {
  Tensor row = t;
  while (row.dim() > 1) {
    row = row.select(0, 0);
  }
  return row;
}

// One direction's backward, in parts as ForwardCall: the constructor checks the arguments,
// allocates the gradients and fills the per-call step fields; run_whole() hands the reverse
// loop to the backend, which may decline; finish(whole) runs the loop where the backend did
// not, and returns (grad_input, grad_hx, grad_cx, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh,
// grad_w_hr). dG is never whole unless the backend asks: the reverse loop runs in segments of
// at most Backend::backward_chunk_rows rows (whole steps), and after each one flush() adds its
// share of the input and weight gradients and the bias sums, so a chunk of dG is reused while
// it is warm in cache rather than written to fresh pages and read back from memory.
template <class Backend, class Cell, typename T>
struct BackwardCall {
  const LayerArgs& a;
  const bool reverse;
  const GradMask mask;
  int64_t ws_ld = 0;
  bool keep_dr = false;
  // Whether dG (and dGh) live in the workspace's rows, over the gates each step has read
  // (mask.consume_workspace): row for row with the sequence, rows ws_ld apart; otherwise in a
  // chunk of their own whose first row is the segment's first (dg_row0()), rows G*H (H) apart.
  bool dg_in_ws = false;
  int64_t dg_ld = 0, dgh_ld = 0;
  Tensor grad_cell_states, grad_output, output, ws, dh_t, dc_t, dG, dGh, dR, dh_raw;
  // Row strides of grad_output and output: P, or 2P for a half of a bidirectional layer's
  // read in place (kStridedRows); grad_output's is 0 where every row is the same one.
  int64_t go_ld = 0, out_ld = 0;
  // Where defined before the first flush, the input's gradient is added into this (the other
  // direction's, already formed) instead of a buffer of its own.
  Tensor grad_input_into;
  // Where set before the first flush (one segment: dG whole), the flush leaves the input's
  // gradient to input_product, and finish returns an empty one.
  bool defer_input = false;
  BackwardStep<T> st;
  // What set_step offsets, once.
  const T* ws_p = nullptr;
  const T* out_p = nullptr;
  T* dg_p = nullptr;
  T* dgh_p = nullptr;
  // The segments of the reverse loop, and how many are flushed: the one being run is the
  // first not flushed (dg_row0(): the sequence row in dG's first row).
  std::vector<BackwardSegment> segments;
  size_t flushed = 0;
  // The dtype of the large products (weight_product_dtype), and what flush() accumulates into.
  at::ScalarType lp;
  Tensor grad_input, grad_w_ih, grad_w_hh, sum_dG, sum_dGh;
  bool add_input = false;
  // The backend's product for grad_input's rows: W_ih prepared once for every segment.
  typename Backend::template Matmul<T> input_matmul;
  // dh_{t-1} = dG_t W_hh where the reverse loop runs here (run_steps_here): W_hh's rows (the
  // GRU's r and z rows, and its n rows apart) for every step's product. Not packed for a
  // projected LSTM: there MKL's packed copy (W_hh's size and 8-12 MB more) took the training
  // step's allocated peak above torch.nn's (B=8 I=H=512 P=128 T=200: 39.8 against 36.0 MiB,
  // 28.8 unpacked) for no gain beyond the A/B's noise (training steps at H = 512-1024, B = 8-64:
  // 0.96-1.14x; measured 2026-12-01, bench/results/..._probes-session24/memory_projected_*.md,
  // projected_backward_packing_ab.txt).
  RepeatedGemm<T> hh_product, hn_product;

  // sharers: how many backward calls run at once and share the backend's chunk of dG (the two
  // directions of a bidirectional layer run together hold half a chunk each).
  BackwardCall(const LayerArgs& args, const Tensor& grad_output_in, const Tensor& grad_h_n, const Tensor& grad_c_n,
               const Tensor& output_in, const Tensor& ws_in, bool rev, const Tensor& grad_cell_states_in, GradMask m,
               int64_t sharers = 1)
      : a(args),
        reverse(rev),
        mask(m),
        input_matmul(args.I, args.G * args.H, args.w_ih.const_data_ptr<T>(), args.I, args.T, args.B),
        hh_product(args.P, (Cell::kSeparateRecurrent ? 2 : args.G) * args.H, args.w_hh.const_data_ptr<T>(), args.P,
                   args.w_hr.defined() ? 0 : args.T, args.B),
        hn_product(args.P, Cell::kSeparateRecurrent ? args.H : 0,
                   Cell::kSeparateRecurrent ? args.w_hh.const_data_ptr<T>() + 2 * args.H * args.P : nullptr, args.P,
                   args.T, args.B) {
    const int64_t G = a.G, H = a.H, P = a.P, N = a.N, GH = G * H, B = a.B;
    const bool proj = a.w_hr.defined();
    const auto opts = a.input.options();
    ws_ld = workspace_cols(a.cell, H, proj);

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
    if (grad_cell_states_in.defined()) {
      check_backward_tensor(a, grad_cell_states_in, "grad_cell_states", {N, H});
      grad_cell_states = grad_cell_states_in.contiguous();
    }

    // A backend with kStridedRows reads a direction's half of a bidirectional layer's
    // grad_output and output in place (the kernels read the output's rows out_ld apart, as
    // h_t or, through prev_ld, h_{t-1}), besides the weight gradients' GEMMs: a contiguous
    // copy of each half costs N x P a direction, at the backward's peak.
    auto rows_of = [&](const Tensor& in, bool in_place, Tensor& kept) {  // kept = in or its copy; its ld
      const int64_t ld = in_place ? row_stride(in) : 0;
      kept = ld > 0 ? in : in.contiguous();
      return ld > 0 ? ld : P;
    };
    // A grad_output that repeats one row (expanded: the gradient of a sum or a mean of the
    // output, or the zeros of one autograd did not pass) is read as that row alone, ld 0: no
    // N x P copy of it at the backward's peak.
    if (Backend::kStridedRows && repeats_one_row(grad_output_in)) {
      grad_output = first_row(grad_output_in).contiguous();
      go_ld = 0;
    } else {
      go_ld = rows_of(grad_output_in, Backend::kStridedRows, grad_output);
    }
    out_ld = rows_of(output_in, Backend::kStridedRows, output);
    ws = ws_in.contiguous();
    // dG over the workspace (or over the copy above, ours alike): its row's gates first (the
    // GRU's dGh over W_hn h + b_hn, the LSTM's c_t and h_raw left as they are for the steps
    // still to run).
    dg_in_ws = mask.consume_workspace && Backend::kWritesDgOverWorkspace &&
        ws_ld >= GH + (Cell::kSeparateRecurrent ? H : 0);
    dh_t = grad_h_n.clone(at::MemoryFormat::Contiguous);  // becomes grad_hx
    dc_t = Cell::kHasCell ? grad_c_n.to(acc_type(a.input.scalar_type()), false, true).contiguous()
                          : at::empty({0}, opts);  // in Acc<T>; becomes grad_cx

    // The segments: consecutive backward steps while their rows fit in the chunk (at least
    // one step each). The bf16 products (lp) are formed over all rows at once, as torch.nn's.
    lp = Backend::template weight_product_dtype<T>(a);
    const int64_t chunk = lp != a.input.scalar_type() ? N : Backend::template backward_chunk_rows<T>(a, sharers);
    int64_t chunk_rows = 0;
    for (int64_t i0 = 0; i0 < a.T;) {
      BackwardSegment seg{i0, i0, N, 0};
      for (int64_t rows = 0; seg.i1 < a.T; ++seg.i1) {
        const int64_t t = backward_step(a, seg.i1, reverse);
        if (seg.i1 > i0 && rows + a.sizes[t] > chunk) {
          break;
        }
        rows += a.sizes[t];
        seg.lo = std::min(seg.lo, a.offsets[t]);
        seg.hi = std::max(seg.hi, a.offsets[t] + a.sizes[t]);
      }
      seg.lo = std::min(seg.lo, seg.hi);
      chunk_rows = std::max(chunk_rows, seg.hi - seg.lo);
      segments.push_back(seg);
      i0 = seg.i1;
    }
    // The gradient of the recurrent-side pre-activations: dG itself, except the GRU's
    // n gate, whose recurrent part (W_hn h + b_hn, scaled by r) gets columns of its own.
    if (dg_in_ws) {
      dG = ws.narrow(1, 0, GH);
      dGh = Cell::kSeparateRecurrent ? ws.narrow(1, GH, H) : dG;
      dg_ld = dgh_ld = ws_ld;
    } else {
      dG = at::empty({chunk_rows, GH}, opts);
      dGh = Cell::kSeparateRecurrent ? at::empty({chunk_rows, H}, opts) : dG;
      dg_ld = GH;
      dgh_ld = Cell::kSeparateRecurrent ? H : GH;
    }
    // A projected LSTM keeps every step's dh (the gradient of r_t = W_hr h_raw_t) for grad_w_hr.
    keep_dr = proj && mask.weights;
    if (proj) {
      dh_raw = at::empty({B, H}, opts);
    }
    if (keep_dr) {
      dR = at::empty({N, P}, opts);
    }
    // grad_w_ih and grad_w_hh wait for the first flush: a backend's loop that holds buffers of
    // its own (the CPU's W_hh panels) frees them before the last flush, so a backward in one
    // segment never holds both.

    ws_p = ws_ld > 0 ? ws.const_data_ptr<T>() : nullptr;
    out_p = output.const_data_ptr<T>();
    dg_p = dG.data_ptr<T>();
    dgh_p = dGh.data_ptr<T>();
    st.H = H;
    st.P = P;
    st.ws_ld = ws_ld;
    st.out_ld = out_ld;
    st.dg_ld = dg_ld;
    st.dgh_ld = dgh_ld;
    st.dh = dh_t.data_ptr<T>();
    st.dh_raw = proj ? dh_raw.const_data_ptr<T>() : nullptr;
    st.dc = Cell::kHasCell ? dc_t.data_ptr<Acc<T>>() : nullptr;
    if (Cell::kHasCell) {
      st.init = a.cx.const_data_ptr<T>();
      st.init_ld = H;
      st.prev_ld = ws_ld;
    } else {
      st.init = a.hx.const_data_ptr<T>();
      st.init_ld = P;
      st.prev_ld = out_ld;
    }
  }

  // The sequence row held in dG's first row: the first row of the segment being run (or of
  // the last), or the sequence's first where dG is over the workspace.
  int64_t dg_row0() const { return dg_in_ws ? 0 : segments[std::min(flushed, segments.size() - 1)].lo; }

  // The per-step fields of a step struct for step t (of the segment being run: its dG rows).
  void set_step(int64_t t, BackwardStep<T>& sb) const {
    const int64_t H = a.H, off = a.offsets[t];
    const int64_t tp = previous_step(a, t, reverse);
    sb.prev_rows = tp < 0 ? 0 : std::min(a.sizes[t], a.sizes[tp]);
    if (tp >= 0) {
      sb.prev = Cell::kHasCell ? ws_p + a.offsets[tp] * ws_ld + 4 * H : out_p + a.offsets[tp] * out_ld;
    }
    sb.ws = ws_p ? ws_p + off * ws_ld : nullptr;
    sb.out = out_p + off * out_ld;
    sb.dg = dg_p + (off - dg_row0()) * dg_ld;
    sb.dgh = dgh_p + (off - dg_row0()) * dgh_ld;
  }

  const T* grad_output_ptr() const { return grad_output.const_data_ptr<T>(); }
  // op(r, src_r, n) over `rows` rows of P elements ld apart from src, to contiguous rows: one
  // call for all of them (r = 0, n = rows * P) where ld == P.
  template <class Op>
  void by_rows(int64_t rows, const T* src, int64_t ld, const Op& op) const {
    if (ld == a.P) {
      op(0, src, rows * a.P);
      return;
    }
    for (int64_t r = 0; r < rows; ++r) {
      op(r, src + r * ld, a.P);
    }
  }
  const T* grad_cell_states_ptr() const {
    return grad_cell_states.defined() ? grad_cell_states.const_data_ptr<T>() : nullptr;
  }
  // set_step as a callable, for the backends.
  auto step_fields() const {
    return [this](int64_t t, BackwardStep<T>& sb) { set_step(t, sb); };
  }

  // The backend's reverse loop over every segment, flushing each (see backward_sequence).
  bool run_whole() {
    return !a.w_hr.defined() &&
        Backend::template backward_sequence<T>(
               Cell::kKind, a, reverse, st, step_fields(), grad_output_ptr(), go_ld, grad_cell_states_ptr(),
               a.w_hh.const_data_ptr<T>(), segments, [this](size_t s) {
                 TORCH_INTERNAL_ASSERT(s == flushed, "backward segments flushed out of order");
                 flush();
               });
  }

  // The reverse loop of backward steps [i0, i1) here, a step at a time.
  void run_steps_here(int64_t i0, int64_t i1) {
    const int64_t H = a.H, P = a.P;
    const bool proj = a.w_hr.defined();
    const at::Device dev = a.input.device();
    const T* go = grad_output.const_data_ptr<T>();
    T* dh = dh_t.data_ptr<T>();
    Acc<T>* dc = Cell::kHasCell ? dc_t.data_ptr<Acc<T>>() : nullptr;
    const T* gcs = grad_cell_states_ptr();
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = backward_step(a, i, reverse);
      const int64_t rows = a.sizes[t], off = a.offsets[t];
      if (rows == 0) {
        continue;
      }
      by_rows(rows, go + off * go_ld, go_ld,
              [&](int64_t r, const T* src, int64_t n) { Backend::add(dh + r * P, src, n); });
      if (gcs) {
        Backend::add(dc, gcs + off * H, rows * H);
      }
      if (keep_dr) {
        Backend::copy(dR.data_ptr<T>() + off * P, dh, rows * P);
      }
      if (proj) {
        gemm<T>(dev, false, false, rows, H, P, dh, P, a.w_hr.const_data_ptr<T>(), H, false, dh_raw.data_ptr<T>(), H);
      }
      set_step(t, st);
      Backend::template backward<T>(Cell::kKind, st, rows);
      // dh_{t-1} = dG_t W_hh; the GRU's pointwise pass already left its direct path z*dh there,
      // and its n rows of W_hh meet dGh instead of dG.
      if (Cell::kSeparateRecurrent) {
        hh_product(dev, rows, st.dg, dg_ld, true, dh, P);
        hn_product(dev, rows, st.dgh, dgh_ld, true, dh, P);
      } else {
        hh_product(dev, rows, st.dgh, dgh_ld, false, dh, P);
      }
    }
    if (i1 == a.T) {  // the last steps: W_hh's packed copies are done with before the last flush
      hh_product.release();
      hn_product.release();
    }
  }

  // h_prev for a segment's rows, the state entering each row's step: the output of the
  // previous step processed, or hx where a row starts.
  Tensor h_prev(const BackwardSegment& seg) const {
    const int64_t P = a.P, lo = seg.lo;
    Tensor h = at::empty({seg.hi - lo, P}, a.input.options());
    T* hp = h.data_ptr<T>();
    const T* hx = a.hx.const_data_ptr<T>();
    for (int64_t i = seg.i0; i < seg.i1; ++i) {
      const int64_t t = backward_step(a, i, reverse);
      const int64_t rows = a.sizes[t], off = a.offsets[t];
      if (rows == 0) {
        continue;
      }
      const int64_t tp = previous_step(a, t, reverse);
      const int64_t from_prev = tp < 0 ? 0 : std::min(rows, a.sizes[tp]);
      if (from_prev > 0) {
        by_rows(from_prev, out_p + a.offsets[tp] * out_ld, out_ld,
                [&](int64_t r, const T* src, int64_t n) { Backend::copy(hp + (off - lo + r) * P, src, n); });
      }
      if (rows > from_prev) {
        Backend::copy(hp + (off - lo + from_prev) * P, hx + from_prev * P, (rows - from_prev) * P);
      }
    }
    return h;
  }

  // C (M x N) (+)= A^T B over K rows (a weight gradient): the backend's own product where it has
  // one (CpuBackend: weight_product), else gemm.
  void reduce_rows(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                   bool accumulate, T* C, int64_t ldc) const {
    if (M > 0 && N > 0 && K > 0 && Backend::template weight_gemm<T>(M, N, K, A, lda, B, ldb, accumulate, C, ldc)) {
      return;
    }
    gemm<T>(a.input.device(), true, false, M, N, K, A, lda, B, ldb, accumulate, C, ldc);
  }

  // dst (+)= d^T h_prev over a segment's rows (d: their rows of dG or dGh, ld apart), M columns
  // of d. A packed sequence's h_prev is hp (h_prev(seg), formed once for both of the GRU's
  // calls); a dense one is read in place: the output one step over, and hx at the first step
  // processed.
  void grad_hh(int64_t M, const T* d, int64_t ld, const BackwardSegment& seg, const Tensor& hp, bool accumulate,
               T* dst) const {
    const int64_t P = a.P, B = a.B, N = a.N, lo = seg.lo, hi = seg.hi;
    if (a.packed) {
      reduce_rows(M, P, hi - lo, d, ld, hp.const_data_ptr<T>(), P, accumulate, dst, P);
      return;
    }
    // The rows whose step starts from hx: the sequence's first B (last B in reverse).
    const int64_t x0 = reverse ? N - B : 0;
    const bool first = lo <= x0 && x0 < hi;
    if (first) {  // that step's product first: a single step (a cell) neither zeroes dst nor reads it back
      reduce_rows(M, P, B, d + (x0 - lo) * ld, ld, a.hx.const_data_ptr<T>(), P, accumulate, dst, P);
    }
    const int64_t r0 = first && !reverse ? lo + B : lo, r1 = first && reverse ? hi - B : hi;
    if (r1 > r0 || !(accumulate || first)) {  // none: no rows at all (B = 0), and dst zeroed
      const T* h = out_p + (reverse ? r0 + B : r0 - B) * out_ld;
      reduce_rows(M, P, std::max<int64_t>(0, r1 - r0), d + (r0 - lo) * ld, ld, h, out_ld, accumulate || first, dst,
                  P);
    }
  }

  // gi = dG W_ih (+= with accumulate) over rows of dG (dg: in T, or in lp as the bf16 products
  // have it), gi those rows of grad_input (N, I) viewed: by the backend's own kernel where it
  // has one.
  void input_rows(const Tensor& dg, const Tensor& gi, bool accumulate) {
    if (dg.scalar_type() != a.input.scalar_type()) {
      const Tensor product = at::mm(dg, a.w_ih.to(dg.scalar_type()));
      accumulate ? gi.add_(product) : gi.copy_(product);
      return;
    }
    const int64_t rows = dg.size(0), I = a.I;
    const T* d = dg.const_data_ptr<T>();
    T* g = gi.data_ptr<T>();
    if (!input_matmul(rows, d, dg_ld, accumulate, g, I)) {
      gemm<T>(a.input.device(), false, false, rows, I, a.G * a.H, d, dg_ld, a.w_ih.const_data_ptr<T>(), I, accumulate,
              g, I);
    }
  }

  // The deferred input gradient (defer_input), after finish: gi (N, I) (+)= dG W_ih, dG whole.
  void input_product(const Tensor& gi, bool accumulate) {
    TORCH_INTERNAL_ASSERT(defer_input && flushed == 1, "input_product without a deferred, finished backward");
    const Tensor dg = dG.narrow(0, segments[0].lo - dg_row0(), segments[0].hi - segments[0].lo);
    input_rows(lp != a.input.scalar_type() ? dg.to(lp) : dg, gi.view({a.N, a.I}).narrow(0, segments[0].lo,
                                                                                          dg.size(0)), accumulate);
  }

  // The input and weight gradients and the bias sums of the next segment's rows, from its dG.
  void flush() {
    const BackwardSegment& seg = segments[flushed];
    const int64_t H = a.H, P = a.P, I = a.I, GH = a.G * H;
    const int64_t lo = seg.lo, rows = seg.hi - seg.lo;
    const bool more = flushed > 0;  // whether this segment adds to what earlier ones formed
    const auto opts = a.input.options();
    const Tensor dg = dG.narrow(0, lo - dg_row0(), rows);
    const Tensor dgh = dGh.narrow(0, lo - dg_row0(), rows);
    const bool input = mask.input && !defer_input;
    if (!more) {
      TORCH_INTERNAL_ASSERT(!defer_input || segments.size() == 1, "the input's gradient deferred over segments");
      add_input = input && grad_input_into.defined();
      grad_input = !input ? Tensor() : add_input ? grad_input_into : at::empty(a.input.sizes(), opts);
      if (mask.weights) {
        grad_w_ih = at::empty({GH, I}, opts);
        grad_w_hh = at::empty({GH, P}, opts);
      }
    }
    if (lp != a.input.scalar_type()) {
      TORCH_INTERNAL_ASSERT(segments.size() == 1, "the backward's bf16 products are formed over all rows at once");
      // The three large products in lp (bfloat16) with lp results, as torch.nn's bf16 backward
      // forms them: dG and h_prev rounded to lp, the input and weights exact in it (they are
      // casts of lp tensors).
      const Tensor dG_lp = dg.to(lp);
      if (input) {
        input_rows(dG_lp, grad_input.view({a.N, I}), add_input);
      }
      if (mask.weights) {
        grad_w_ih.copy_(at::mm(dG_lp.t(), a.input.reshape({a.N, I}).to(lp)));
        const Tensor hp = h_prev(seg).to(lp);
        if (Cell::kSeparateRecurrent) {
          grad_w_hh.narrow(0, 0, 2 * H).copy_(at::mm(dG_lp.narrow(1, 0, 2 * H).t(), hp));
          grad_w_hh.narrow(0, 2 * H, H).copy_(at::mm(dgh.to(lp).t(), hp));
        } else {
          grad_w_hh.copy_(at::mm(dG_lp.t(), hp));
        }
      }
    } else {
      const T* d = dg.const_data_ptr<T>();
      if (input) {
        input_rows(dg, grad_input.view({a.N, I}).narrow(0, lo, rows), add_input);
      }
      if (mask.weights) {
        reduce_rows(GH, I, rows, d, dg_ld, a.input.const_data_ptr<T>() + lo * I, I, more, grad_w_ih.data_ptr<T>(), I);
        T* gw_hh = grad_w_hh.data_ptr<T>();
        const Tensor hp = a.packed ? h_prev(seg) : Tensor();
        if (Cell::kSeparateRecurrent) {
          grad_hh(2 * H, d, dg_ld, seg, hp, more, gw_hh);
          grad_hh(H, dgh.const_data_ptr<T>(), dgh_ld, seg, hp, more, gw_hh + 2 * H * P);
        } else {
          grad_hh(GH, d, dg_ld, seg, hp, more, gw_hh);
        }
      }
    }
    // Bias gradients are column sums of dG (the GRU's n block of b_hh: of dGh), reduced in fp32
    // for half and bfloat16; dG is summed once for both biases.
    if (a.b_ih.defined() || a.b_hh.defined()) {
      const auto acc = acc_type(a.input.scalar_type());
      const Tensor s = dg.sum(0, false, acc);
      sum_dG = more ? sum_dG.add_(s) : s;
      if (Cell::kSeparateRecurrent && a.b_hh.defined()) {
        const Tensor sh = dgh.sum(0, false, acc);
        sum_dGh = more ? sum_dGh.add_(sh) : sh;
      }
    }
    ++flushed;
  }

  std::vector<Tensor> finish(bool whole) {
    const int64_t H = a.H;
    const auto opts = a.input.options();
    // What the backend's loop (or a backward_pair) did not flush: every segment, or (a
    // backward_pair) the one segment whose loop it ran.
    while (flushed < segments.size()) {
      if (!whole) {
        run_steps_here(segments[flushed].i0, segments[flushed].i1);
      }
      flush();
    }
    // A gradient not asked for is an empty tensor of its own (outputs of an op never alias).
    auto none = [&] { return at::empty({0}, opts); };
    if (mask.weights && !grad_w_ih.defined()) {  // no segment at all: no rows
      grad_w_ih = at::zeros({a.G * H, a.I}, opts);
      grad_w_hh = at::zeros({a.G * H, a.P}, opts);
    }
    const auto dtype = a.input.scalar_type();
    Tensor grad_b_ih = none(), grad_b_hh = none();
    if (a.b_ih.defined()) {
      grad_b_ih = sum_dG.to(dtype, false, true);
    }
    if (a.b_hh.defined()) {
      grad_b_hh = Cell::kSeparateRecurrent ? at::cat({sum_dG.narrow(0, 0, 2 * H), sum_dGh}).to(dtype)
                                           : sum_dG.to(dtype, false, true);
    }
    Tensor grad_w_hr = none();
    if (keep_dr) {
      grad_w_hr = at::empty({a.P, H}, opts);
      reduce_rows(a.P, H, a.N, dR.const_data_ptr<T>(), a.P, ws_p + 5 * H, ws_ld, false, grad_w_hr.data_ptr<T>(), H);
    }
    Tensor grad_cx = Cell::kHasCell ? dc_t.to(dtype) : dc_t;
    return {mask.input && !defer_input ? grad_input : none(), dh_t, grad_cx, mask.weights ? grad_w_ih : none(),
            mask.weights ? grad_w_hh : none(), grad_b_ih, grad_b_hh, grad_w_hr};
  }
};

template <class Backend, class Cell, typename T>
std::vector<Tensor> backward_impl(
    const LayerArgs& a, const Tensor& grad_output_in, const Tensor& grad_h_n, const Tensor& grad_c_n,
    const Tensor& output_in, const Tensor& ws_in, bool reverse, const Tensor& grad_cell_states_in,
    GradMask mask) {
  BackwardCall<Backend, Cell, T> call(a, grad_output_in, grad_h_n, grad_c_n, output_in, ws_in, reverse,
                                      grad_cell_states_in, mask);
  return call.finish(call.run_whole());
}


// The two directions of a bidirectional layer in one call (a[0] forward, a[1] reverse, the
// same input): Backend::both runs them, at once where the device can. Returns the output
// with both directions' features side by side (T, B, 2P) or (N, 2P), h_n (2, B, P), c_n
// (2, B, H) for the LSTM, and the training workspace of both, (2, N, ws_ld).
template <class Backend, class Cell, typename T>
std::tuple<Tensor, Tensor, Tensor, Tensor> bidir_forward_impl(const LayerArgs (&a)[2], bool train) {
  const int64_t ws_ld = workspace_cols(a[0].cell, a[0].H, a[0].w_hr.defined());
  const auto opts = a[0].input.options();
  const Tensor ws = train ? at::empty({2, a[0].N, ws_ld}, opts) : at::empty({0}, opts);
  auto ws_of = [&](int d) { return train ? ws.select(0, d) : Tensor(); };
  std::tuple<Tensor, Tensor, Tensor, Tensor> r[2];
  if (Backend::runs_pairs() && !a[0].w_hr.defined()) {
    // Both directions' whole sequences in one launch where the backend can (CUDA's
    // persistent tier), else each on its own.
    ForwardCall<Backend, Cell, T> c0(a[0], false, train, ws_of(0)), c1(a[1], true, train, ws_of(1));
    const bool pair = Backend::template forward_pair<T>(Cell::kKind, a, {&c0.st, &c1.st},
                                                        {c0.gates_ptr(), c1.gates_ptr()}, {c0.out_ptr(), c1.out_ptr()},
                                                        {c0.ws_ptr(), c1.ws_ptr()});
    r[0] = c0.finish(pair || c0.run_whole());
    r[1] = c1.finish(pair || c1.run_whole());
  } else {
    Backend::both(a[0], train ? Pass::kTrainingForward : Pass::kInferenceForward,
                  [&](int d, bool) { r[d] = forward_impl<Backend, Cell, T>(a[d], d == 1, train, ws_of(d)); });
  }
  Tensor output = at::cat({std::get<0>(r[0]), std::get<0>(r[1])}, -1);
  Tensor h_n = at::stack({std::get<1>(r[0]), std::get<1>(r[1])});
  Tensor c_n = Cell::kHasCell ? at::stack({std::get<2>(r[0]), std::get<2>(r[1])}) : std::get<2>(r[0]);
  return {output, h_n, c_n, ws};
}

// The backward of bidir_forward_impl: grad_input summed over both directions, grad_hx
// (2, B, P), grad_cx (2, B, H) for the LSTM (else empty), and the weights' gradients in
// the order of `a`'s weights: w_ih, w_hh, b_ih, b_hh (and w_hr for the LSTM) of the
// forward direction, then of the reverse one (empty where absent or not asked for).
template <class Backend, class Cell, typename T>
std::tuple<Tensor, Tensor, Tensor, std::vector<Tensor>> bidir_backward_impl(
    const LayerArgs (&a)[2], const Tensor& grad_output, const Tensor& grad_h_n, const Tensor& grad_c_n,
    const Tensor& output, const Tensor& ws, GradMask mask) {
  const LayerArgs& f = a[0];
  const int64_t P = f.P, H = f.H, B = f.B, N = f.N;
  const int64_t ws_ld = workspace_cols(f.cell, H, f.w_hr.defined());
  const std::vector<int64_t> out_shape =
      f.packed ? std::vector<int64_t>{N, 2 * P} : std::vector<int64_t>{f.T, B, 2 * P};
  check_backward_tensor(f, grad_output, "grad_output", out_shape);
  check_backward_tensor(f, output, "output", out_shape);
  check_backward_tensor(f, grad_h_n, "grad_h_n", {2, B, P});
  if (Cell::kHasCell) {
    check_backward_tensor(f, grad_c_n, "grad_c_n", {2, B, H});
  }
  if (ws_ld > 0) {
    TORCH_CHECK(ws.numel() > 0 || N == 0, f.op,
                ": the workspace is empty; run the forward with train=True before the backward");
    check_backward_tensor(f, ws, "workspace", {2, N, ws_ld});
  }
  // Directions run at once share one chunk of dG between them, so the two together hold no more
  // than one direction after the other.
  std::optional<BackwardCall<Backend, Cell, T>> calls[2];
  auto call = [&](int d, bool at_once) -> BackwardCall<Backend, Cell, T>& {
    return calls[d].emplace(a[d], grad_output.narrow(-1, d * P, P), grad_h_n.select(0, d),
                            Cell::kHasCell ? grad_c_n.select(0, d) : Tensor(), output.narrow(-1, d * P, P),
                            ws_ld > 0 ? ws.select(0, d) : ws, d == 1, Tensor(), mask, at_once ? 2 : 1);
  };
  std::vector<Tensor> g[2];
  // Direction d's gradients, its reverse loop run by `run` (true where it ran whole). Where the
  // reverse direction runs after the forward one, it adds its input gradient into the forward
  // one's: no second N x I buffer, no pass to sum them.
  auto finish = [&](BackwardCall<Backend, Cell, T>& c, int d, bool after_the_other, const auto& run) {
    if (mask.input && d == 1 && after_the_other) {
      c.grad_input_into = g[0][0];
    }
    g[d] = c.finish(run());
  };
  if (Backend::runs_pairs() && !f.w_hr.defined()) {
    // Both directions' reverse loops in one launch where the backend can, else each on its own.
    auto& c0 = call(0, false);
    auto& c1 = call(1, false);
    BackwardStep<T> base0 = c0.st, base1 = c1.st;  // with step 0's rows: the sequence's first rows
    c0.set_step(0, base0);
    c1.set_step(0, base1);
    const bool pair = Backend::template backward_pair<T>(
        Cell::kKind, a, {&base0, &base1}, {c0.grad_output_ptr(), c1.grad_output_ptr()}, {nullptr, nullptr},
        {a[0].w_hh.const_data_ptr<T>(), a[1].w_hh.const_data_ptr<T>()});
    finish(c0, 0, true, [&] { return pair || c0.run_whole(); });
    finish(c1, 1, true, [&] { return pair || c1.run_whole(); });
  } else {
    // An Elman RNN's directions at once, each with its dG whole (one segment), leave the input's
    // gradient to after both: dG_0 W_ih0 into one buffer, then dG_1 W_ih1 added, rather than a
    // buffer a direction alive with both directions' weight gradients, the peak at small batches
    // (bidirectional RNN B=1 I=H=256 T=200: 2.2 -> 2.0 MiB, torch.nn 2.0). The two products then
    // run one after the other instead of side by side, a thread each: no slower for the Elman RNN
    // (old/new 1.00 over 7 process pairs; 1.04-1.25 over 20 in ..._memory-session22/), 0.94x for
    // the LSTM and 0.99x for the GRU, whose W_ih is 4x and 3x larger
    // (bench/results/2026-11-30_cpu_intel-xeon-icelake-2c_memory-consumed-workspace/
    // one_input_buffer_ab/); those keep a buffer a direction. (The CUDA backend never runs the
    // directions at once, so this is CPU only.)
    constexpr bool kDeferInput = Cell::kKind != CellKind::kLstm && Cell::kKind != CellKind::kGru;
    Backend::both(a[0], Pass::kBackward, [&](int d, bool at_once) {
      BackwardCall<Backend, Cell, T>& c = call(d, at_once);
      c.defer_input = kDeferInput && at_once && mask.input && c.segments.size() == 1;
      finish(c, d, !at_once, [&] { return c.run_whole(); });
      if (!c.defer_input) {
        calls[d].reset();  // its dG gone before the other direction's is formed (one after the other)
      }
    });
    TORCH_INTERNAL_ASSERT(calls[0].has_value() == calls[1].has_value(), "one direction's input gradient deferred");
    if (calls[0].has_value()) {
      g[0][0] = at::empty(f.input.sizes(), f.input.options());
      calls[0]->input_product(g[0][0], false);
      calls[1]->input_product(g[0][0], true);
      g[1][0] = g[0][0];
    }
  }
  Tensor grad_input = mask.input && !g[1][0].is_same(g[0][0]) ? g[0][0].add_(g[1][0]) : g[0][0];
  Tensor grad_hx = at::stack({g[0][1], g[1][1]});
  Tensor grad_cx = Cell::kHasCell ? at::stack({g[0][2], g[1][2]}) : g[0][2];
  std::vector<Tensor> grad_weights;
  for (int d = 0; d < 2; ++d) {
    for (int k = 3; k < (Cell::kHasCell ? 8 : 7); ++k) {
      grad_weights.push_back(g[d][k]);
    }
  }
  return {grad_input, grad_hx, grad_cx, grad_weights};
}

}  // namespace detail

// The op entry points of one device, as registered by TORCH_LIBRARY_IMPL in its file.
template <class Backend>
struct LayerOps {
  using Tensor = at::Tensor;
  using OptTensor = std::optional<at::Tensor>;

  template <class Cell>
  static std::tuple<Tensor, Tensor, Tensor, Tensor> forward(const LayerArgs& a, bool reverse, bool train) {
    return Backend::dispatch(a, [&](auto tag) {
      using T = decltype(tag);
      return detail::forward_impl<Backend, Cell, T>(a, reverse, train);
    });
  }

  template <class Cell>
  static std::vector<Tensor> backward(
      const LayerArgs& a, const Tensor& go, const Tensor& ghn, const Tensor& gcn, const Tensor& out,
      const Tensor& ws, bool reverse, const Tensor& gcs, detail::GradMask mask) {
    return Backend::dispatch(a, [&](auto tag) {
      using T = decltype(tag);
      return detail::backward_impl<Backend, Cell, T>(a, go, ghn, gcn, out, ws, reverse, gcs, mask);
    });
  }

  static std::tuple<Tensor, Tensor, Tensor, Tensor> lstm_forward(
      const Tensor& input, const OptTensor& hx, const OptTensor& cx, const Tensor& w_ih, const Tensor& w_hh,
      const OptTensor& b_ih, const OptTensor& b_hh, const OptTensor& w_hr, const OptTensor& batch_sizes,
      bool reverse, bool train) {
    const LayerArgs a = make_layer_args(
        "fused_rnn::lstm_forward", CellKind::kLstm, input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes);
    return forward<LstmTraits>(a, reverse, train);
  }

  static std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> lstm_backward(
      const Tensor& grad_output, const Tensor& grad_h_n, const Tensor& grad_c_n, const Tensor& input,
      const OptTensor& hx, const OptTensor& cx, const Tensor& w_ih, const Tensor& w_hh, const OptTensor& b_ih,
      const OptTensor& b_hh, const OptTensor& w_hr, const OptTensor& batch_sizes, const Tensor& output,
      const Tensor& workspace, bool reverse, const OptTensor& grad_cell_states, bool input_grad, bool weight_grad,
      bool consume_workspace) {
    const LayerArgs a = make_layer_args(
        "fused_rnn::lstm_backward", CellKind::kLstm, input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes);
    auto g = backward<LstmTraits>(a, grad_output, grad_h_n, grad_c_n, output, workspace, reverse,
                                  grad_cell_states.value_or(Tensor()), {input_grad, weight_grad, consume_workspace});
    return {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]};
  }

  static const char* op_name(CellKind cell, bool is_forward) {
    switch (cell) {
      case CellKind::kGru: return is_forward ? "fused_rnn::gru_forward" : "fused_rnn::gru_backward";
      case CellKind::kRnnTanh: return is_forward ? "fused_rnn::rnn_tanh_forward" : "fused_rnn::rnn_tanh_backward";
      default: return is_forward ? "fused_rnn::rnn_relu_forward" : "fused_rnn::rnn_relu_backward";
    }
  }

  // GRU and the two Elman RNNs share one signature.
  template <class Cell>
  static std::tuple<Tensor, Tensor, Tensor> simple_forward(
      const Tensor& input, const OptTensor& hx, const Tensor& w_ih, const Tensor& w_hh, const OptTensor& b_ih,
      const OptTensor& b_hh, const OptTensor& batch_sizes, bool reverse, bool train) {
    const LayerArgs a = make_layer_args(
        op_name(Cell::kKind, true), Cell::kKind, input, hx, std::nullopt, w_ih, w_hh, b_ih, b_hh, std::nullopt,
        batch_sizes);
    auto [output, h_n, c_n, ws] = forward<Cell>(a, reverse, train);
    return {output, h_n, ws};
  }

  template <class Cell>
  static std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> simple_backward(
      const Tensor& grad_output, const Tensor& grad_h_n, const Tensor& input, const OptTensor& hx,
      const Tensor& w_ih, const Tensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh,
      const OptTensor& batch_sizes, const Tensor& output, const Tensor& workspace, bool reverse, bool input_grad,
      bool weight_grad, bool consume_workspace) {
    const LayerArgs a = make_layer_args(
        op_name(Cell::kKind, false), Cell::kKind, input, hx, std::nullopt, w_ih, w_hh, b_ih, b_hh, std::nullopt,
        batch_sizes);
    auto g = backward<Cell>(a, grad_output, grad_h_n, Tensor(), output, workspace, reverse, Tensor(),
                            {input_grad, weight_grad, consume_workspace});
    return {g[0], g[1], g[3], g[4], g[5], g[6]};
  }

  // ------------------------------------------------------------ both directions at once

  using WeightList = c10::List<OptTensor>;

  static std::string bidir_op_name(CellKind cell, bool is_forward) {
    const char* base = cell == CellKind::kLstm ? "lstm" : cell == CellKind::kGru ? "gru"
                       : cell == CellKind::kRnnTanh ? "rnn_tanh" : "rnn_relu";
    return std::string("fused_rnn::") + base + (is_forward ? "_bidir_forward" : "_bidir_backward");
  }

  // The arguments of each direction of a bidirectional call: `weights` holds w_ih, w_hh,
  // b_ih, b_hh (and w_hr for the LSTM) of the forward direction, then of the reverse one;
  // hx and cx are (2, B, .).
  static void bidir_args(LayerArgs (&a)[2], CellKind cell, bool is_forward, const Tensor& input,
                         const OptTensor& hx, const OptTensor& cx, const WeightList& weights,
                         const OptTensor& batch_sizes) {
    const std::string op = bidir_op_name(cell, is_forward);
    const bool lstm = cell == CellKind::kLstm;
    const int64_t per = lstm ? 5 : 4;
    TORCH_CHECK(static_cast<int64_t>(weights.size()) == 2 * per, op, ": expected ", 2 * per, " weights (",
                lstm ? "w_ih, w_hh, b_ih, b_hh, w_hr" : "w_ih, w_hh, b_ih, b_hh",
                " of each direction, None where absent), got ", weights.size());
    auto state = [&](const OptTensor& s, const char* name, int d) -> OptTensor {
      if (!s.has_value()) {
        return std::nullopt;
      }
      TORCH_CHECK(s->dim() == 3 && s->size(0) == 2, op, ": expected ", name,
                  " of shape (2, batch, features), one state a direction, got ", s->sizes());
      return s->select(0, d);
    };
    for (int d = 0; d < 2; ++d) {
      auto w = [&](int64_t k) -> OptTensor { return weights.get(d * per + k); };
      TORCH_CHECK(w(0).has_value() && w(1).has_value(), op, ": w_ih and w_hh of direction ", d,
                  " are required, got None");
      a[d] = make_layer_args(op.c_str(), cell, input, state(hx, "hx", d), lstm ? state(cx, "cx", d) : std::nullopt,
                             *w(0), *w(1), w(2), w(3), lstm ? w(4) : std::nullopt, batch_sizes);
    }
  }

  // Both directions of a layer of any cell (cx is the LSTM's; None for the others).
  template <class Cell>
  static std::tuple<Tensor, Tensor, Tensor, Tensor> bidir_forward(
      const Tensor& input, const OptTensor& hx, const OptTensor& cx, const WeightList& weights,
      const OptTensor& batch_sizes, bool train) {
    LayerArgs a[2];
    bidir_args(a, Cell::kKind, true, input, hx, cx, weights, batch_sizes);
    return Backend::dispatch(a[0], [&](auto tag) {
      using T = decltype(tag);
      return detail::bidir_forward_impl<Backend, Cell, T>(a, train);
    });
  }

  template <class Cell>
  static std::tuple<Tensor, Tensor, Tensor, std::vector<Tensor>> bidir_backward(
      const Tensor& grad_output, const Tensor& grad_h_n, const Tensor& grad_c_n, const Tensor& input,
      const OptTensor& hx, const OptTensor& cx, const WeightList& weights, const OptTensor& batch_sizes,
      const Tensor& output, const Tensor& workspace, bool input_grad, bool weight_grad, bool consume_workspace) {
    LayerArgs a[2];
    bidir_args(a, Cell::kKind, false, input, hx, cx, weights, batch_sizes);
    return Backend::dispatch(a[0], [&](auto tag) {
      using T = decltype(tag);
      return detail::bidir_backward_impl<Backend, Cell, T>(a, grad_output, grad_h_n, grad_c_n, output, workspace,
                                                           {input_grad, weight_grad, consume_workspace});
    });
  }

  // The GRU's and the Elman RNNs' signatures: no cell state.
  template <class Cell>
  static std::tuple<Tensor, Tensor, Tensor> simple_bidir_forward(
      const Tensor& input, const OptTensor& hx, const WeightList& weights, const OptTensor& batch_sizes,
      bool train) {
    auto [output, h_n, c_n, ws] = bidir_forward<Cell>(input, hx, std::nullopt, weights, batch_sizes, train);
    return {output, h_n, ws};
  }

  template <class Cell>
  static std::tuple<Tensor, Tensor, std::vector<Tensor>> simple_bidir_backward(
      const Tensor& grad_output, const Tensor& grad_h_n, const Tensor& input, const OptTensor& hx,
      const WeightList& weights, const OptTensor& batch_sizes, const Tensor& output, const Tensor& workspace,
      bool input_grad, bool weight_grad, bool consume_workspace) {
    auto [grad_input, grad_hx, grad_cx, grad_weights] = bidir_backward<Cell>(
        grad_output, grad_h_n, Tensor(), input, hx, std::nullopt, weights, batch_sizes, output, workspace,
        input_grad, weight_grad, consume_workspace);
    return {grad_input, grad_hx, grad_weights};
  }
};

// Registers every op of `Backend` on dispatch key `m` (inside TORCH_LIBRARY_IMPL).
template <class Backend>
void register_layer_ops(torch::Library& m) {
  using Ops = LayerOps<Backend>;
  using Tanh = ElmanTraits<CellKind::kRnnTanh>;
  using Relu = ElmanTraits<CellKind::kRnnRelu>;
  m.impl("lstm_forward", &Ops::lstm_forward);
  m.impl("lstm_backward", &Ops::lstm_backward);
  m.impl("gru_forward", &Ops::template simple_forward<GruTraits>);
  m.impl("gru_backward", &Ops::template simple_backward<GruTraits>);
  m.impl("rnn_tanh_forward", &Ops::template simple_forward<Tanh>);
  m.impl("rnn_tanh_backward", &Ops::template simple_backward<Tanh>);
  m.impl("rnn_relu_forward", &Ops::template simple_forward<Relu>);
  m.impl("rnn_relu_backward", &Ops::template simple_backward<Relu>);
  m.impl("lstm_bidir_forward", &Ops::template bidir_forward<LstmTraits>);
  m.impl("lstm_bidir_backward", &Ops::template bidir_backward<LstmTraits>);
  m.impl("gru_bidir_forward", &Ops::template simple_bidir_forward<GruTraits>);
  m.impl("gru_bidir_backward", &Ops::template simple_bidir_backward<GruTraits>);
  m.impl("rnn_tanh_bidir_forward", &Ops::template simple_bidir_forward<Tanh>);
  m.impl("rnn_tanh_bidir_backward", &Ops::template simple_bidir_backward<Tanh>);
  m.impl("rnn_relu_bidir_forward", &Ops::template simple_bidir_forward<Relu>);
  m.impl("rnn_relu_bidir_backward", &Ops::template simple_bidir_backward<Relu>);
}

}  // namespace fused_rnn
