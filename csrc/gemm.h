// Row-major GEMM on raw pointers for the recurrence, on any device.
//
// C (M x N, leading dimension ldc) = op(A) * op(B) + beta * C, where op(X) is X or
// its transpose; A is M x K after op, B is K x N after op. Leading dimensions are
// row strides, so a block of rows inside a wider buffer (a slice of the workspace)
// can be read or written in place.
//
// It runs through ATen's mm/addmm (on the CPU: MKL or the configured BLAS on
// torch's intra-op threads; on CUDA: cuBLAS on the current stream, honouring
// allow_tf32, accumulating half and bfloat16 in fp32), over views of memory the
// caller owns: nothing is allocated for the result.
#pragma once

#include <ATen/ATen.h>

namespace fused_rnn {

template <typename T>
at::Tensor view_rows(const T* p, int64_t rows, int64_t cols, int64_t ld, const at::Device& device) {
  // target_device spares from_blob asking the driver which device owns the pointer.
  return at::for_blob(const_cast<T*>(p), {rows, cols})
      .strides({ld, 1})
      .target_device(device)
      .options(at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value).device(device))
      .make_tensor();
}

// beta is 0 (overwrite C) or 1 (accumulate into C).
template <typename T>
void gemm(
    const at::Device& device, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
    const T* A, int64_t lda, const T* B, int64_t ldb, bool accumulate, T* C, int64_t ldc) {
  if (M == 0 || N == 0) {
    return;
  }
  at::Tensor c = view_rows(C, M, N, ldc, device);
  if (K == 0) {
    if (!accumulate) {
      c.zero_();
    }
    return;
  }
  at::Tensor a = trans_a ? view_rows(A, K, M, lda, device).t() : view_rows(A, M, K, lda, device);
  at::Tensor b = trans_b ? view_rows(B, N, K, ldb, device).t() : view_rows(B, K, N, ldb, device);
  if (accumulate) {
    c.addmm_(a, b);
  } else {
    at::mm_out(c, a, b);
  }
}

}  // namespace fused_rnn
