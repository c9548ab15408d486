// The CPU backend of the recurrence (recurrence.h): float32 and float64, pointwise
// passes from the SIMD kernel table (pointwise.h) spread over torch's intra-op
// threads by rows.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>

#include "../recurrence.h"
#include "pointwise.h"

namespace fused_rnn::cpu {
namespace {

// Rows per parallel task so each task has enough pointwise work to pay for itself.
int64_t row_grain(int64_t cols) {
  constexpr int64_t kElementsPerTask = 16384;
  return std::max<int64_t>(1, kElementsPerTask / std::max<int64_t>(1, cols));
}

struct CpuBackend {
  template <class F>
  static auto dispatch(const LayerArgs& a, F&& f) {
    switch (a.input.scalar_type()) {
      case at::kDouble: return f(double{});
      case at::kFloat: return f(float{});
      default:
        TORCH_CHECK(false, a.op, ": the CPU kernels support float32 and float64, got ", a.input.scalar_type());
    }
  }

  template <typename T>
  static void forward(CellKind cell, const ForwardStep<T>& st, int64_t rows) {
    const auto pass = pointwise_kernels<T>().forward[static_cast<int>(cell)];
    at::parallel_for(0, rows, row_grain(gate_count(cell) * st.H), [&](int64_t r0, int64_t r1) { pass(st, r0, r1); });
  }

  template <typename T>
  static void backward(CellKind cell, const BackwardStep<T>& st, int64_t rows) {
    const auto pass = pointwise_kernels<T>().backward[static_cast<int>(cell)];
    at::parallel_for(0, rows, row_grain(gate_count(cell) * st.H), [&](int64_t r0, int64_t r1) { pass(st, r0, r1); });
  }

  template <typename D, typename S>
  static void add(D* dst, const S* src, int64_t n) {
    for (int64_t k = 0; k < n; ++k) {
      dst[k] += src[k];
    }
  }

  template <typename T>
  static void copy(T* dst, const T* src, int64_t n) {
    std::memcpy(dst, src, sizeof(T) * n);
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fused_rnn, CPU, m) {
  register_layer_ops<CpuBackend>(m);
}

}  // namespace fused_rnn::cpu
