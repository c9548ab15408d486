// Row-major GEMM on raw pointers for the recurrence, on any device.
//
// C (M x N, leading dimension ldc) = op(A) * op(B) + beta * C, where op(X) is X or
// its transpose; A is M x K after op, B is K x N after op. Leading dimensions are
// row strides, so a block of rows inside a wider buffer (a slice of the workspace)
// can be read or written in place.
//
// On the CPU, float32 and float64 call the BLAS that torch itself links
// (sgemm_/dgemm_, MKL in the x86 wheels) directly, when libtorch exports it: the
// same routine ATen's mm calls, without a dispatcher trip and two tensor views per
// call, which matter at small batch where a step's GEMM takes microseconds.
// Otherwise, and on CUDA, it runs through ATen's mm/addmm (cuBLAS on the current
// stream, honouring allow_tf32, accumulating half and bfloat16 in fp32), over views
// of memory the caller owns. Nothing is allocated for the result.
#pragma once

#include <ATen/ATen.h>

#include <climits>
#include <type_traits>
#include <vector>

// Fortran BLAS, resolved at load time from torch's own libraries when they export it
// (weak: null where they do not, and the ATen path is used).
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc) __attribute__((weak));
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc) __attribute__((weak));
}

namespace fused_rnn {

// Row-major C = op(A) op(B) (+ C) as column-major C^T = op(B)^T op(A)^T through Fortran BLAS.
// Returns false where no BLAS symbol is available or a size does not fit its int arguments.
template <typename T>
bool blas_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
               int64_t ldb, bool accumulate, T* C, int64_t ldc) {
  constexpr bool kFloat = std::is_same_v<T, float>;
  constexpr bool kDouble = std::is_same_v<T, double>;
  if constexpr (!kFloat && !kDouble) {
    return false;
  } else {
    if ((kFloat && sgemm_ == nullptr) || (kDouble && dgemm_ == nullptr)) {
      return false;
    }
    for (int64_t v : {M, N, K, lda, ldb, ldc}) {
      if (v > INT_MAX) {
        return false;
      }
    }
    const char ta = trans_b ? 'T' : 'N', tb = trans_a ? 'T' : 'N';
    const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
    const int la = static_cast<int>(ldb), lb = static_cast<int>(lda), lc = static_cast<int>(ldc);
    const T alpha = 1, beta = accumulate ? 1 : 0;
    if constexpr (kFloat) {
      sgemm_(&ta, &tb, &m, &n, &k, &alpha, B, &la, A, &lb, &beta, C, &lc);
    } else {
      dgemm_(&ta, &tb, &m, &n, &k, &alpha, B, &la, A, &lb, &beta, C, &lc);
    }
    return true;
  }
}

template <typename T>
at::Tensor view_rows(const T* p, int64_t rows, int64_t cols, int64_t ld, const at::Device& device) {
  // target_device spares from_blob asking the driver which device owns the pointer.
  return at::for_blob(const_cast<T*>(p), {rows, cols})
      .strides({ld, 1})
      .target_device(device)
      .options(at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value).device(device))
      .make_tensor();
}

// A product with few columns (N) and a long reduction (K), such as a weight gradient
// dG^T X over a sequence for an input of a few features, runs an order of magnitude below
// the GEMM rate in MKL (2.7 GFLOP/s for 512 x 2 over 2560 rows, measured 2026-11-28); its
// transpose, with many columns, runs at 10x that. skinny_gemm forms C^T = op(B)^T op(A)^T
// into a buffer of N x M and adds or copies its transpose into C. False where BLAS is not
// there. Taken only for reductions over rows (A transposed: the weight gradients), the
// form measured; a per-step product with few columns (a projected LSTM's h_raw W_hr^T or
// dh W_hh for proj_size < 32) keeps BLAS's own path and allocates nothing per step.
constexpr int64_t kSkinnyCols = 32, kSkinnyDepth = 256;

template <typename T>
bool skinny_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
                 int64_t ldb, bool accumulate, T* C, int64_t ldc) {
  std::vector<T> t(static_cast<size_t>(N * M));
  if (!blas_gemm<T>(!trans_b, !trans_a, N, M, K, B, ldb, A, lda, false, t.data(), M)) {
    return false;
  }
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) {
      c[j] = accumulate ? c[j] + t[j * M + i] : t[j * M + i];
    }
  }
  return true;
}

// beta is 0 (overwrite C) or 1 (accumulate into C).
template <typename T>
void gemm(
    const at::Device& device, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
    const T* A, int64_t lda, const T* B, int64_t ldb, bool accumulate, T* C, int64_t ldc) {
  if (M == 0 || N == 0) {
    return;
  }
  if (device.is_cpu() && trans_a && N < kSkinnyCols && M >= 2 * N && K >= kSkinnyDepth &&
      skinny_gemm<T>(trans_a, trans_b, M, N, K, A, lda, B, ldb, accumulate, C, ldc)) {
    return;
  }
  if (device.is_cpu() && K > 0 && blas_gemm<T>(trans_a, trans_b, M, N, K, A, lda, B, ldb, accumulate, C, ldc)) {
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
