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

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <string>
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
// MKL's packed GEMM (an operand packed once into MKL's own layout, then multiplied many times),
// the LP64 CBLAS entry points; weak like the above. The enum arguments are passed as the ints
// they are (CBLAS_LAYOUT, CBLAS_IDENTIFIER, CBLAS_TRANSPOSE, and MKL_INT 151 for a packed operand).
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k) __attribute__((weak));
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha, const float* src,
                      int ld, float* dest) __attribute__((weak));
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float* a, int lda,
                         const float* b, int ldb, float beta, float* c, int ldc) __attribute__((weak));
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

// Whether C (+)= A^T B (M x N over K rows) takes skinny_gemm (gemm below).
inline bool skinny_shape(int64_t M, int64_t N, int64_t K) {
  return N < kSkinnyCols && M >= 2 * N && K >= kSkinnyDepth;
}

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

// Whether torch's BLAS is MKL (it exports MKL's packed GEMM) on an x86 CPU that is not Intel's.
// MKL then runs its AVX2 code at best: on AMD Zen 5 (AVX-512) its sgemm ran 219-236 GFLOP/s with
// two threads where oneDNN's ran 300-471 and fused_rnn's own AVX-512 tiles 477-495 on the forward
// (bench/results/2026-12-01_cpu_amd-epyc-zen5-2c_probes-session27/), and on Zen 3 (AVX2) oneDNN's
// was 1.4x MKL's for a weight gradient's shape (..._probes-weight-grad-tiles/).
inline bool mkl_off_intel() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool v = cblas_sgemm_pack != nullptr && !__builtin_cpu_is("intel");
  return v;
#else
  return false;
#endif
}

// Whether a product over the gates (gate_rows = G*H) against `cols` features is one of the LSTM's
// or GRU's, at least twice as many gate rows as features, rather than the Elman RNN's at I = H.
// Where MKL runs off Intel only these take the copies of the faster routes (oneDNN's weight
// gradients and grad_input's packed W_ih, recurrence_cpu.cpp): the Elman RNN's training step
// already ran 3.5x torch.nn's on Zen 5 without them, while the copies put its allocated peak at
// 1.04-1.28x torch.nn's, whose own is small (..._memory-session27/memory_blocked.txt).
inline bool gate_stacked(int64_t gate_rows, int64_t cols) {
  return gate_rows >= 2 * cols;
}

// beta is 0 (overwrite C) or 1 (accumulate into C).
template <typename T>
void gemm(
    const at::Device& device, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
    const T* A, int64_t lda, const T* B, int64_t ldb, bool accumulate, T* C, int64_t ldc) {
  if (M == 0 || N == 0) {
    return;
  }
  if (device.is_cpu() && trans_a && skinny_shape(M, N, K) &&
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

// C (M x N) (+)= A op(B) for many calls with the same B (K x N row-major, or N x K with trans_b):
// a backward's per-step dh_{t-1} = dG_t W_hh, and in inference a projected LSTM's per-step h W_hh^T
// and h_raw W_hr^T. On the CPU in float32, where torch's MKL exports its packed GEMM, B is
// packed into MKL's layout at the first call of at least kMinRows rows and multiplied from there
// after: sgemm repacks the whole of B at every call (at H = 1024 an LSTM's 16 MB W_hh each
// step). Measured 2026-11-30 on the Ice Lake VM, 2 threads, 50 products against a 4096 x 1024
// B: M = 64 147 -> 189 GFLOP/s, M = 8 42 -> 76, M = 4 28 -> 52, M = 1 16 -> 15 (the packed
// form is no faster for a single row; bench/results/..._probes-session23/mkl_packed.txt).
// Elsewhere (no MKL, another dtype, CUDA, a B under kMinElements, a single call, fewer rows,
// packed_gemm_flag() off: FUSED_RNN_CPU_PACKED_GEMM=0) each call is gemm().
// The packed B lives until release() or the object's end.
inline std::atomic<bool>& packed_gemm_flag() {
  static std::atomic<bool> on{[] {
    const char* env = std::getenv("FUSED_RNN_CPU_PACKED_GEMM");
    return env == nullptr || *env == '\0' || std::atoi(env) != 0;
  }()};
  return on;
}

// Calls of RepeatedGemm that packed B (for tests).
inline std::atomic<int64_t>& packed_gemm_packs() {
  static std::atomic<int64_t> n{0};
  return n;
}

inline bool mkl_packed_gemm_available() {
  return cblas_sgemm_pack_get_size != nullptr && cblas_sgemm_pack != nullptr && cblas_sgemm_compute != nullptr;
}

// Whether RepeatedGemm<T> may pack at all: float32, MKL's packed GEMM there, the switch on.
template <typename T>
bool packed_gemm_on() {
  return std::is_same_v<T, float> && mkl_packed_gemm_available() &&
      packed_gemm_flag().load(std::memory_order_relaxed);
}

template <typename T>
class RepeatedGemm {
 public:
  static constexpr int64_t kMinRows = 4;
  // MKL's packed form of even a small B takes about 8 MB (measured: 7.9 MB for 300 x 77, 9.2 MB
  // for 1024 x 256, 34 MB for 4096 x 1024): a B of fewer elements (1 MB of float32) is
  // multiplied as it is.
  static constexpr int64_t kMinElements = int64_t{1} << 18;

  // calls: how many products the caller expects (packing pays from two); max_rows: the most
  // rows of any of them (MKL's packed B serves products of any rows; it is sized for these).
  RepeatedGemm(int64_t N, int64_t K, const T* B, int64_t ldb, int64_t calls, int64_t max_rows, bool trans_b = false)
      : N_(N), K_(K), B_(B), ldb_(ldb), calls_(calls), max_rows_(max_rows), trans_b_(trans_b) {}

  void operator()(const at::Device& device, int64_t M, const T* A, int64_t lda, bool accumulate, T* C,
                  int64_t ldc) {
    if constexpr (std::is_same_v<T, float>) {
      if (device.is_cpu() && M > 0 && lda <= INT_MAX && ldc <= INT_MAX && (packed_.defined() || try_pack(M))) {
        cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, static_cast<int>(M), static_cast<int>(N_),
                            static_cast<int>(K_), A, static_cast<int>(lda), packed_.const_data_ptr<float>(),
                            static_cast<int>(N_), accumulate ? 1.0f : 0.0f, C, static_cast<int>(ldc));
        return;
      }
    }
    gemm<T>(device, false, trans_b_, M, N_, K_, A, lda, B_, ldb_, accumulate, C, ldc);
  }

  void release() { packed_ = at::Tensor(); }

 private:
  static constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kPacked = 151, kBMatrix = 162;

  bool try_pack(int64_t M) {
    if (tried_ || M < kMinRows || calls_ < 2 || N_ * K_ < kMinElements || !packed_gemm_on<T>()) {
      return false;
    }
    tried_ = true;
    const int64_t m = std::max(M, max_rows_);
    for (int64_t v : {m, N_, K_, ldb_}) {
      if (v > INT_MAX) {
        return false;
      }
    }
    const size_t bytes = cblas_sgemm_pack_get_size(kBMatrix, static_cast<int>(m), static_cast<int>(N_),
                                                   static_cast<int>(K_));
    if (bytes == 0) {
      return false;
    }
    packed_ = at::empty({static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float))}, at::kFloat);
    cblas_sgemm_pack(kRowMajor, kBMatrix, trans_b_ ? kTrans : kNoTrans, static_cast<int>(m), static_cast<int>(N_),
                     static_cast<int>(K_), 1.0f, reinterpret_cast<const float*>(B_), static_cast<int>(ldb_),
                     packed_.data_ptr<float>());
    packed_gemm_packs().fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  int64_t N_, K_;
  const T* B_;
  int64_t ldb_, calls_, max_rows_;
  bool trans_b_;
  bool tried_ = false;
  at::Tensor packed_;
};

}  // namespace fused_rnn
