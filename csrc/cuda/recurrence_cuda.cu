// The CUDA backend of the recurrence (recurrence.h). The alternating tier: per step
// one cuBLAS GEMM through ATen on the current stream and one fused pointwise
// kernel built from cell_math.h. The persistent tier (persistent.h, unverified,
// off unless FUSED_RNN_TIER=persistent) runs a whole sequence in one kernel.
// float32, float64, float16 and bfloat16; half and bfloat16 are computed in fp32
// and the LSTM's running cell state is kept in fp32.
//
// Every kernel takes a step struct of raw pointers (cells.h) and covers the
// rows * H elements of one step with a grid-stride loop; each element does all the
// gates of one hidden unit. Launches are checked and go to the current stream;
// nothing here synchronises with the host, so forward and backward can be
// captured in a CUDA graph.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../cell_math.h"
#include "../recurrence.h"
#include "../tier.h"
#include "persistent.h"

namespace fused_rnn::cuda {
namespace {

constexpr int kThreads = 256;

// Enough blocks to cover n elements, capped: the kernels loop over what is left.
inline unsigned int blocks_for(int64_t n) {
  const int64_t want = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>(want, 65535)));
}

#define FR_GRID_STRIDE(e, n)                                                         \
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < (n); \
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <typename T>
__global__ void lstm_forward_kernel(ForwardStep<T> s, int64_t rows) {
  using A = Acc<T>;
  const int64_t H = s.H;
  FR_GRID_STRIDE(e, rows * H) {
    const int64_t r = e / H, j = e % H;
    T* g = s.gates + r * s.gates_ld;
    A* c = s.c + r * H;
    const T* b = s.bias;
    const auto p = lstm_forward_point<A>(
        A(g[j]) + A(b[j]), A(g[H + j]) + A(b[H + j]), A(g[2 * H + j]) + A(b[2 * H + j]),
        A(g[3 * H + j]) + A(b[3 * H + j]), c[j]);
    g[j] = T(p.i);
    g[H + j] = T(p.f);
    g[2 * H + j] = T(p.g);
    g[3 * H + j] = T(p.o);
    c[j] = p.c;
    if (s.ws) {
      s.ws[r * s.ws_ld + 4 * H + j] = T(p.c);
    }
    if (s.h_raw) {
      s.h_raw[r * s.h_raw_ld + j] = T(p.h);
    } else {
      s.h[r * s.P + j] = T(p.h);
      s.out[r * s.P + j] = T(p.h);
    }
  }
}

template <typename T>
__global__ void lstm_backward_kernel(BackwardStep<T> s, int64_t rows) {
  using A = Acc<T>;
  const int64_t H = s.H;
  FR_GRID_STRIDE(e, rows * H) {
    const int64_t r = e / H, j = e % H;
    const T* w = s.ws + r * s.ws_ld;
    const T* c_prev = s.prev_row(r);
    const A dh = s.dh_raw ? A(s.dh_raw[r * H + j]) : A(s.dh[r * s.P + j]);
    A* dc = s.dc + r * H;
    const auto gr = lstm_backward_point<A>(
        A(w[j]), A(w[H + j]), A(w[2 * H + j]), A(w[3 * H + j]), A(w[4 * H + j]), A(c_prev[j]), dh, dc[j]);
    T* dg = s.dg + r * 4 * H;
    dg[j] = T(gr.di);
    dg[H + j] = T(gr.df);
    dg[2 * H + j] = T(gr.dg);
    dg[3 * H + j] = T(gr.d_o);
    dc[j] = gr.dc_prev;
  }
}

template <typename T>
__global__ void gru_forward_kernel(ForwardStep<T> s, int64_t rows) {
  using A = Acc<T>;
  const int64_t H = s.H;
  FR_GRID_STRIDE(e, rows * H) {
    const int64_t r = e / H, j = e % H;
    T* g = s.gates + r * s.gates_ld;
    const T* gh = s.gh + r * 3 * H;
    const T* b = s.bias;
    const T* bh = s.bias_hh;
    const auto p = gru_forward_point<A>(
        A(g[j]) + A(b[j]), A(g[H + j]) + A(b[H + j]), A(g[2 * H + j]) + A(b[2 * H + j]), A(gh[j]) + A(bh[j]),
        A(gh[H + j]) + A(bh[H + j]), A(gh[2 * H + j]) + A(bh[2 * H + j]), A(s.h[r * H + j]));
    g[j] = T(p.r);
    g[H + j] = T(p.z);
    g[2 * H + j] = T(p.n);
    if (s.ws) {
      s.ws[r * s.ws_ld + 3 * H + j] = T(p.hn);
    }
    s.h[r * H + j] = T(p.h);
    s.out[r * H + j] = T(p.h);
  }
}

template <typename T>
__global__ void gru_backward_kernel(BackwardStep<T> s, int64_t rows) {
  using A = Acc<T>;
  const int64_t H = s.H;
  FR_GRID_STRIDE(e, rows * H) {
    const int64_t r = e / H, j = e % H;
    const T* w = s.ws + r * s.ws_ld;
    const auto gr = gru_backward_point<A>(
        A(w[j]), A(w[H + j]), A(w[2 * H + j]), A(w[3 * H + j]), A(s.prev_row(r)[j]), A(s.dh[r * H + j]));
    T* dg = s.dg + r * 3 * H;
    dg[j] = T(gr.dr);
    dg[H + j] = T(gr.dz);
    dg[2 * H + j] = T(gr.dn);
    s.dgh[r * H + j] = T(gr.dhn);
    s.dh[r * H + j] = T(gr.dh_prev);
  }
}

template <typename T, Activation Act>
__global__ void elman_forward_kernel(ForwardStep<T> s, int64_t rows) {
  using A = Acc<T>;
  const int64_t H = s.H;
  FR_GRID_STRIDE(e, rows * H) {
    const int64_t r = e / H, j = e % H;
    T* g = s.gates + r * s.gates_ld;  // the output row
    const T v = T(rnn_forward_point<Act, A>(A(g[j]) + A(s.bias[j])));
    g[j] = v;
    s.h[r * H + j] = v;
  }
}

template <typename T, Activation Act>
__global__ void elman_backward_kernel(BackwardStep<T> s, int64_t rows) {
  using A = Acc<T>;
  const int64_t H = s.H;
  FR_GRID_STRIDE(e, rows * H) {
    const int64_t r = e / H, j = e % H;
    s.dg[r * H + j] = T(rnn_backward_point<Act, A>(A(s.out[r * H + j]), A(s.dh[r * H + j])));
  }
}

template <typename D, typename S>
__global__ void add_kernel(D* dst, const S* src, int64_t n) {
  FR_GRID_STRIDE(e, n) {
    dst[e] = D(Acc<D>(dst[e]) + Acc<D>(src[e]));
  }
}

template <typename T>
using ForwardKernel = void (*)(ForwardStep<T>, int64_t);
template <typename T>
using BackwardKernel = void (*)(BackwardStep<T>, int64_t);

template <typename T>
ForwardKernel<T> forward_kernel(CellKind cell) {
  switch (cell) {
    case CellKind::kLstm: return lstm_forward_kernel<T>;
    case CellKind::kGru: return gru_forward_kernel<T>;
    case CellKind::kRnnTanh: return elman_forward_kernel<T, Activation::kTanh>;
    default: return elman_forward_kernel<T, Activation::kRelu>;
  }
}

template <typename T>
BackwardKernel<T> backward_kernel(CellKind cell) {
  switch (cell) {
    case CellKind::kLstm: return lstm_backward_kernel<T>;
    case CellKind::kGru: return gru_backward_kernel<T>;
    case CellKind::kRnnTanh: return elman_backward_kernel<T, Activation::kTanh>;
    default: return elman_backward_kernel<T, Activation::kRelu>;
  }
}

// One step's pointwise kernel over rows * H elements, on the current stream, checked.
template <typename Step>
void launch(void (*kernel)(Step, int64_t), const Step& st, int64_t rows) {
  kernel<<<blocks_for(rows * st.H), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(st, rows);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

struct CudaBackend {
  template <class F>
  static auto dispatch(const LayerArgs& a, F&& f) {
    const c10::cuda::CUDAGuard guard(a.input.device());
    switch (a.input.scalar_type()) {
      case at::kDouble: return f(double{});
      case at::kFloat: return f(float{});
      case at::kHalf: return f(c10::Half{});
      case at::kBFloat16: return f(c10::BFloat16{});
      default:
        TORCH_CHECK(false, a.op, ": the CUDA kernels support float32, float64, float16 and bfloat16, got ",
                    a.input.scalar_type());
    }
  }

  template <typename T>
  static void forward(CellKind cell, const ForwardStep<T>& st, int64_t rows) {
    launch(forward_kernel<T>(cell), st, rows);
  }

  template <typename T>
  static void backward(CellKind cell, const BackwardStep<T>& st, int64_t rows) {
    launch(backward_kernel<T>(cell), st, rows);
  }

  template <typename T>
  struct Matmul {  // cuBLAS through the gemm of recurrence.h
    Matmul(int64_t, int64_t, const T*, int64_t, int64_t, int64_t) {}
    bool operator()(int64_t, const T*, int64_t, bool, T*, int64_t) const { return false; }
  };

  // dG whole: the persistent kernels run the whole sequence in one launch (and per step, the
  // alternating tier's GEMMs over all rows at the end are the larger, faster ones).
  template <typename T>
  static int64_t backward_chunk_rows(const LayerArgs& a, int64_t) {
    return a.N;
  }

  // The weight gradients go through cuBLAS (gemm.h).
  template <typename T>
  static bool weight_gemm(int64_t, int64_t, int64_t, const T*, int64_t, const T*, int64_t, bool, T*, int64_t) {
    return false;
  }

  template <typename T>
  static at::ScalarType weight_product_dtype(const LayerArgs&) {
    return c10::CppTypeToScalarType<T>::value;  // 16-bit layers run in their own dtype here
  }

  // The persistent tier runs the whole sequence where the tier is forced to it and the
  // layer fits (persistent.h); otherwise every step goes through the per-step loop of
  // recurrence.h (the alternating tier). "auto" stays on the alternating tier until a
  // GPU run has shown the persistent kernels correct.
  static bool persistent_selected() {
    return cuda_tier() == CudaTier::kPersistent;
  }

  template <typename T>
  static bool forward_sequence(CellKind cell, const LayerArgs& a, bool reverse, bool /*train*/,
                               const ForwardStep<T>& st, T* gates, T* out, T* ws) {
    return persistent_selected() && persistent_forward<T>(cell, a, reverse, st, gates, out, ws);
  }

  template <typename T, class F, class Flush>
  static bool backward_sequence(CellKind cell, const LayerArgs& a, bool reverse, const BackwardStep<T>& st,
                                const F& set_step, const T* grad_output, int64_t grad_output_ld,
                                const T* grad_cell_states, const T* w_hh,
                                const std::vector<BackwardSegment>& segments, const Flush& flush) {
    TORCH_INTERNAL_ASSERT(grad_output_ld == a.P, "the CUDA kernels read grad_output's rows P apart");
    if (!persistent_selected() || a.T == 0 || segments.size() != 1) {
      return false;
    }
    BackwardStep<T> base = st;
    set_step(0, base);  // step 0 starts at row 0: base.ws/out/dg/dgh are the sequence's first rows
    if (!persistent_backward<T>(cell, a, reverse, base, grad_output, grad_cell_states, w_hh)) {
      return false;
    }
    flush(0);
    return true;
  }

  // Where the persistent tier is selected, a bidirectional layer's forward and backward try
  // both directions in one cooperative launch (persistent_forward_pair, persistent_backward_pair);
  // otherwise, and on the alternating tier, the directions run one after the other on the
  // current stream.
  static bool runs_pairs() {
    return persistent_selected();
  }

  // The kernels read grad_output's and output's rows P apart: a bidirectional layer's halves
  // are copied contiguous first.
  static constexpr bool kStridedRows = false;

  // The input projection of every step is one GEMM: one launch.
  static constexpr int64_t kInferenceInputChunkRows = 0;

  // dG has buffers of its own: the kernels write its rows G*H (the GRU's dGh H) apart.
  static constexpr bool kWritesDgOverWorkspace = false;

  template <typename T>
  static bool forward_pair(CellKind cell, const LayerArgs (&a)[2], std::array<const ForwardStep<T>*, 2> st,
                           std::array<T*, 2> gates, std::array<T*, 2> out, std::array<T*, 2> ws) {
    return persistent_selected() && persistent_forward_pair<T>(cell, a, st, gates, out, ws);
  }

  template <typename T>
  static bool backward_pair(CellKind cell, const LayerArgs (&a)[2], std::array<const BackwardStep<T>*, 2> base,
                            std::array<const T*, 2> grad_output, std::array<const T*, 2> grad_cell_states,
                            std::array<const T*, 2> w_hh) {
    return persistent_selected() && a[0].T > 0 &&
        persistent_backward_pair<T>(cell, a, base, grad_output, grad_cell_states, w_hh);
  }

  template <class F>
  static void both(const LayerArgs&, Pass, const F& f) {
    f(0, false);
    f(1, false);
  }

  template <typename D, typename S>
  static void add(D* dst, const S* src, int64_t n) {
    if (n == 0) {
      return;
    }
    add_kernel<D, S><<<blocks_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(dst, src, n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  template <typename T>
  static void copy(T* dst, const T* src, int64_t n) {
    if (n == 0) {
      return;
    }
    C10_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(T) * n, cudaMemcpyDeviceToDevice,
                                   at::cuda::getCurrentCUDAStream()));
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fused_rnn, CUDA, m) {
  register_layer_ops<CudaBackend>(m);
}

}  // namespace fused_rnn::cuda

namespace fused_rnn {

bool cuda_kernels_run_on(int device) {
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  cudaFuncAttributes attributes;
  const cudaError_t err = cudaFuncGetAttributes(&attributes, cuda::lstm_forward_kernel<float>);
  if (err == cudaSuccess) {
    return true;
  }
  (void)cudaGetLastError();  // this error is not sticky: clear it, or the next launch check reports it
  if (err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDeviceFunction) {
    return false;
  }
  C10_CUDA_CHECK(err);
  return false;
}

}  // namespace fused_rnn
