// Row-major GEMM on raw pointers for the CPU recurrence.
//
// C (M x N, leading dimension ldc) = op(A) * op(B) + beta * C, where op(X) is X or
// its transpose; A is M x K after op, B is K x N after op. Leading dimensions are
// row strides, so a block of rows inside a wider buffer (a slice of the workspace)
// can be read or written in place.
//
// It runs through ATen's mm/addmm (MKL or the configured BLAS, on torch's
// intra-op threads), over views of memory the caller owns: nothing is allocated
// for the result.
#pragma once

#include <ATen/ATen.h>

namespace fused_rnn::cpu {

template <typename T>
at::Tensor view_rows(const T* p, int64_t rows, int64_t cols, int64_t ld) {
  return at::from_blob(
      const_cast<T*>(p), {rows, cols}, {ld, 1},
      at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value));
}

template <typename T>
void gemm(
    bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
    const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) {
    return;
  }
  at::Tensor c = view_rows(C, M, N, ldc);
  if (K == 0) {
    if (beta == T(0)) {
      c.zero_();
    } else {
      c.mul_(beta);
    }
    return;
  }
  at::Tensor a = trans_a ? view_rows(A, K, M, lda).t() : view_rows(A, M, K, lda);
  at::Tensor b = trans_b ? view_rows(B, N, K, ldb).t() : view_rows(B, K, N, ldb);
  if (beta == T(0)) {
    at::mm_out(c, a, b);
  } else {
    c.addmm_(a, b, beta, 1);
  }
}

}  // namespace fused_rnn::cpu
