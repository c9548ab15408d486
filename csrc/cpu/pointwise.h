// The table of pointwise passes (one step, a block of rows) for every cell, and
// the choice of the CPU capability they were compiled for.
//
// pointwise_impl.h holds the passes, written on at::vec::Vectorized; each
// pointwise_<capability>.cpp compiles them for one instruction set, and the best
// one the CPU supports is picked at first use (FUSED_RNN_CPU_CAPABILITY=default|
// avx2|avx512 overrides it).
#pragma once

#include <string>

#include <c10/core/ScalarType.h>

#include "../cells.h"
#include "../layer_args.h"

// x86-64 builds with GCC compile extra AVX2 and AVX-512 copies of the passes.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FUSED_RNN_X86_DISPATCH 1
#else
#define FUSED_RNN_X86_DISPATCH 0
#endif

namespace fused_rnn::cpu {

// The fused steps' kernels (gemm + pointwise per tile of hidden units; see pointwise_impl.h)
// for weights stored as one element type, `stored`: T itself, or (T = float) 16-bit weights
// converted to float as they are loaded, or bfloat16 in pairs along K for AVX512-BF16 dot
// products. Weight and panel pointers are type-erased: w is the weight itself (G*H rows of K)
// for the *_dots kernels, which read it in place, and a tile's panel (packed by pack_tile,
// K rounded up to a multiple of k_align) for the others.
template <typename T>
struct TileKernels {
  using PackTile = void (*)(const void* w, int64_t H, int64_t K, int64_t u, void* dst);
  using ForwardTile = void (*)(const ForwardStep<T>&, const T* h_prev, const void* w, int64_t K, int64_t u,
                               int64_t r0, int64_t r1);
  // out[r][g*H + j] (+)= x[r] . W[g*H + j] for tile u of the cell's geometry.
  using ProjectTile = void (*)(const T* x, int64_t ldx, const void* w, int64_t K, int64_t H, int64_t u, int64_t r0,
                               int64_t r1, T* out, int64_t ldo, bool accumulate);
  c10::ScalarType stored;
  int64_t k_align;
  PackTile pack_tile[4];  // indexed by CellKind
  // Whether tile u's panel is what pack_tile would pack from w now (kWeightsAsT only: the
  // 16-bit forms' panels come from kept casts, which need no such check).
  using TileMatches = bool (*)(const void* w, int64_t H, int64_t K, int64_t u, const void* panel);
  TileMatches tile_matches[4];
  ForwardTile forward_tile[4];
  ProjectTile project_tile[4];
  ForwardTile forward_dots[4];  // the in-place reading (pointwise_impl.h: tile_dots)
  ProjectTile project_dots[4];
  // kWeightsBf16Pairs only (null elsewhere): rows [r0, r1), columns [c0, c1) of a float32 x
  // rounded to bfloat16 (element (r, c) at dst[r * ld + c]), and project_tile from rows so
  // rounded (row r at x16 + r * ld2 pairs, zero past K), for an operand that every tile
  // multiplies (a chunk's inputs, dG_t): rounded once rather than by each tile.
  using RoundBf16 = void (*)(const float* x, int64_t ldx, int64_t r0, int64_t r1, int64_t c0, int64_t c1, void* dst,
                             int64_t ld);
  using ProjectPairs = void (*)(const void* x16, int64_t ld2, const void* w, int64_t K, int64_t H, int64_t u,
                                int64_t r0, int64_t r1, T* out, int64_t ldo, bool accumulate);
  RoundBf16 round_bf16 = nullptr;
  ProjectPairs project_pairs[4] = {};
};

// The forms of stored weights, indexes into PointwiseKernels::tiles.
enum WeightForm { kWeightsAsT = 0, kWeightsBf16 = 1, kWeightsHalf = 2, kWeightsBf16Pairs = 3 };

template <typename T>
struct PointwiseKernels {
  using Forward = void (*)(const ForwardStep<T>&, int64_t r0, int64_t r1);
  using Backward = void (*)(const BackwardStep<T>&, int64_t r0, int64_t r1);
  Forward forward[4];   // indexed by CellKind
  Backward backward[4];

  // Fused steps: the tile geometry of each cell, and the kernels for each WeightForm
  // ([kWeightsAsT] always; the 16-bit forms for T = float only, bf16 pairs in the AVX-512
  // kernels only; an absent form has null pointers).
  int64_t tile_units[4];   // hidden units per tile
  int64_t tile_width[4];   // panel columns per k (gates x units)
  int64_t tile_rows[4];    // rows per register block
  TileKernels<T> tiles[4];
  // Backward: the pointwise pass over rows [r0, r1) and units [j0, j1), and the
  // column panels of W_hh (single-gate geometry, column_units wide) for dG W_hh.
  using BackwardBlock = void (*)(const BackwardStep<T>&, int64_t r0, int64_t r1, int64_t j0, int64_t j1);
  using PackColumns = void (*)(const T* w, int64_t ld, int64_t H, int64_t K, int64_t u, T* dst);
  BackwardBlock backward_block[4];
  PackColumns pack_columns;
  // The same panels of a bfloat16 W_hh in bf16 pairs along K, for tiles[kWeightsBf16Pairs]'
  // single-gate products (null where that form is absent).
  void (*pack_columns_pairs)(const void* w, int64_t ld, int64_t H, int64_t K, int64_t u, void* dst);
  int64_t column_units;
  // The weight gradients' products C (+)= A^T B for C's rows [m0, m1), A (K x M) and B (K x N)
  // row-major (pointwise_impl.h: weight_product_rows): float32 with AVX-512 only, else null. A
  // thread's share of rows is best whole register blocks (weight_product_rows of them), which
  // are weight_product_cols columns wide (narrower products are left to BLAS).
  using WeightProduct = void (*)(int64_t m0, int64_t m1, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
                                 int64_t ldb, bool accumulate, T* C, int64_t ldc);
  WeightProduct weight_product;
  int64_t weight_product_rows;
  int64_t weight_product_cols;
};

#define FUSED_RNN_DECLARE_CAPABILITY(NS)          \
  namespace NS {                                   \
  template <typename T>                            \
  PointwiseKernels<T> pointwise_kernels();         \
  }

FUSED_RNN_DECLARE_CAPABILITY(cap_default)
#if FUSED_RNN_X86_DISPATCH
FUSED_RNN_DECLARE_CAPABILITY(cap_avx2)
FUSED_RNN_DECLARE_CAPABILITY(cap_avx512)
#endif

// The kernels of the capability in use.
template <typename T>
const PointwiseKernels<T>& pointwise_kernels();

// "default", "avx2" or "avx512": the capability in use.
std::string cpu_capability();

// Selects a capability (for tests and benchmarks); returns the previous one.
// Raises if the name is unknown or the CPU or this build lacks it.
std::string set_cpu_capability(const std::string& name);

// Whether unprojected layers run their steps fused (gemm and pointwise per tile of
// hidden units, on a team of threads; default on, FUSED_RNN_CPU_FUSED=0 turns it
// off) or as a BLAS gemm and a pointwise pass per step. set_fused_steps returns the
// previous setting.
bool fused_steps();
bool set_fused_steps(bool on);

// The bytes of dG (and the GRU's dGh) a backward holds at once: its reverse loop runs in
// segments of whole steps whose rows fit (at least one step), each followed by its share of
// the input and weight gradients, so a chunk is reused while warm in cache instead of the
// whole sequence's dG written to fresh pages and read back (recurrence.h: BackwardSegment).
// FUSED_RNN_CPU_BACKWARD_CHUNK sets it; 0 holds dG whole. A chunk is never fewer rows than
// backward_chunk_min_rows (512; set_backward_chunk_min_rows, for tests of segment edges): a
// segment's flush reads and writes the whole weight gradients. The setters return the previous
// setting; backward_chunk_rows is the rows of a layer's chunk, a share of the bytes where
// `sharers` backward calls run at once (a bidirectional layer's directions).
int64_t backward_chunk_bytes();
int64_t set_backward_chunk_bytes(int64_t bytes);
int64_t backward_chunk_min_rows();
int64_t set_backward_chunk_min_rows(int64_t rows);
int64_t backward_chunk_rows(const LayerArgs& a, int64_t element_size, int64_t sharers = 1);

// How the fused forward reads W_hh and W_ih: "auto" (the default) reads them in place,
// as dot products along their rows, for a batch of at most 4 rows when packing them
// into tile panels would not pay (T * B < H / 8, or weights the panel cache does not
// keep), for a single step of up to 16 rows, and for a single training step of any batch
// (an Elman RNN's over 16 rows goes to BLAS instead: recurrence_cpu.cpp, kOneStepDotBatch),
// and from panels otherwise; "always" and "never" force one way (for tests and
// benchmarks). FUSED_RNN_CPU_DOTS sets it; set_cpu_dots returns the previous mode.
std::string cpu_dots();
std::string set_cpu_dots(const std::string& mode);

// Fused forward calls so far that read the weights in place (dots) or from panels, and
// of those, the ones that read 16-bit weights behind their kept float32 casts.
int64_t forward_calls(bool dots);
int64_t narrow_forward_calls();

// Whether the fused forward reads bfloat16/float16 weights behind their kept float32 casts
// (panel_cache.h: kept_cast) in their 16-bit form (default on; FUSED_RNN_CPU_16BIT_WEIGHTS=0
// reads the casts). The results are the same bit for bit. Returns the previous setting.
bool read_16bit_weights();
bool set_read_16bit_weights(bool on);

// Whether bfloat16 weights so read are multiplied by AVX512-BF16 dot products (fp32
// accumulation, h_{t-1} and x rounded to bfloat16 for the products) where the CPU has them
// and the AVX-512 kernels are in use, and the backward of such a layer multiplies in bf16 too
// (its per-step products, and the input and weight gradients in bf16 GEMMs: recurrence.h,
// weight_product_dtype);
// FUSED_RNN_CPU_BF16_DOT=0 keeps float32 arithmetic. set_bf16_dot_products returns the
// previous setting (of the switch alone); bf16_dot_forward_calls and bf16_backward_calls
// count the fused forwards and the backwards that used them.
bool bf16_dot_products();
bool set_bf16_dot_products(bool on);
int64_t bf16_dot_forward_calls();
int64_t bf16_backward_calls();

// Whether the operand that every tile of such a layer multiplies (a chunk's inputs in the
// forward, dG_t in the backward) is rounded to bf16 pairs once, by the team, rather than by each
// tile's product (default on). The same products in the same order: the results are the same
// bit for bit; the switch is for tests and benchmarks. Returns the previous setting;
// bf16_rounded_once_calls counts the forward (or backward) calls that did so.
bool set_bf16_round_once(bool on);
int64_t bf16_rounded_once_calls(bool forward);

// Whether a bidirectional layer's two directions run at once, one on each thread, where
// torch runs exactly two intra-op threads (default on; FUSED_RNN_CPU_CONCURRENT_DIRECTIONS=0
// runs them one after the other, each on every thread). Each direction computes the same
// either way. set_concurrent_directions returns the previous setting.
bool concurrent_directions();
bool set_concurrent_directions(bool on);
// Bidirectional forward / backward calls so far that ran their directions at once.
int64_t directions_at_once_calls(bool forward);
// Backward calls whose grad_input ran on W_ih packed for the tiles (PackedMatmul), for tests.
int64_t input_grad_panel_calls();
// The backward's products over a weight (dh = dG W_hh a step, grad_input = dG W_ih) run on BLAS
// instead of the tiles where a tile's panel (K rows of column_units) holds at least this many
// bytes and a step has at least 32 rows (8 for dh where float32 W_hh is packed for MKL's packed
// GEMM, gemm.h: RepeatedGemm): by default 3/4 of a core's L2 (0, never, where the L2
// is unknown); FUSED_RNN_CPU_BLAS_PANEL_BYTES sets it. The setter returns the previous setting;
// blas_backward_calls counts the reverse loops sent to BLAS so.
int64_t blas_panel_bytes();
int64_t set_blas_panel_bytes(int64_t bytes);
int64_t blas_backward_calls();
// Whether the backward's float32 weight gradients (dG^T X, dG^T h_prev and a projected LSTM's
// dR^T h_raw) run on the capability's own product (PointwiseKernels::weight_product, AVX-512 only)
// instead of oneDNN (below) or BLAS (gemm.h): by default where MKL runs on a CPU that is not Intel's
// (gemm.h: mkl_off_intel), else off; FUSED_RNN_CPU_WEIGHT_GRAD_TILES=0/1 sets it. The setter
// returns the previous setting; weight_product_calls counts the products it ran.
bool weight_grad_tiles();
bool set_weight_grad_tiles(bool on);
int64_t weight_product_calls();
// Whether the float32 weight gradients the own product does not take (no AVX-512, or the switch
// above off) and that have at least 2^26 multiply-adds and twice as many rows as columns go
// through oneDNN (torch's mkldnn::_linear_pointwise) instead of BLAS: by default where MKL runs
// on a CPU that is not Intel's, else off; FUSED_RNN_CPU_ONEDNN_GEMM=0/1 sets it. The setter
// returns the previous setting; onednn_gemm_calls counts the products it ran.
bool onednn_gemm_on();
bool set_onednn_gemm(bool on);
int64_t onednn_gemm_calls();
// C (M x N, ldc) (+)= A^T B, A (K x M) and B (K x N) row-major, on the capability's own product
// on every thread, whatever weight_grad_tiles says; false (nothing done) where T or the
// capability has none. For weight_product below and tests.
template <typename T>
bool weight_product_run(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                        bool accumulate, T* C, int64_t ldc);
// Bytes of a core's L2 cache as the C library reports it, or 0 where unknown.
int64_t l2_cache_bytes();

}  // namespace fused_rnn::cpu
