// The CPU backend of the recurrence (recurrence.h): float32 and float64, pointwise
// passes from the SIMD kernel table (pointwise.h) spread over torch's intra-op
// threads by rows.
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#if defined(__unix__)
#include <unistd.h>
#endif

#include "../recurrence.h"
#include "panel_cache.h"
#include "pointwise.h"
#include "step_team.h"

namespace fused_rnn::cpu {
namespace {

// Rows per parallel task so each task has enough pointwise work to pay for itself.
int64_t row_grain(int64_t cols) {
  constexpr int64_t kElementsPerTask = 16384;
  return std::max<int64_t>(1, kElementsPerTask / std::max<int64_t>(1, cols));
}

// How the fused forward reads the weights (see pointwise.h): 0 auto, 1 always in place, 2 never.
const char* const kDotModes[] = {"auto", "always", "never"};

int parse_dot_mode(const std::string& name) {
  for (int i = 0; i < 3; ++i) {
    if (name == kDotModes[i]) {
      return i;
    }
  }
  TORCH_CHECK(false, "fused_rnn: unknown CPU weight reading mode '", name, "'; expected auto, always or never");
}

std::atomic<int>& dot_mode() {
  static std::atomic<int> mode{[] {
    const char* env = std::getenv("FUSED_RNN_CPU_DOTS");
    return env == nullptr ? 0 : parse_dot_mode(env);
  }()};
  return mode;
}

// Calls so far by the path they took (for tests: _cpu_forward_calls): fused forwards by how they
// read the weights, bf16 backward products, bidirectional calls at once, grad_input on the tiles,
// backward reverse loops sent to BLAS for their panels' size.
enum class Path {
  kPanels,
  kDots,
  k16BitWeights,
  kBf16Dot,
  kBf16Backward,
  kBf16RoundedForward,
  kBf16RoundedBackward,
  kAtOnceForward,
  kAtOnceBackward,
  kInputGradPanels,
  kBlasBackward,
  kWeightProduct,
  kOnednnGemm,
  kCount
};

std::atomic<int64_t>& calls(Path p) {
  static std::atomic<int64_t> counts[static_cast<int>(Path::kCount)];
  return counts[static_cast<int>(p)];
}

// Whether unprojected layers run their steps fused (pointwise.h: fused_steps).
std::atomic<bool>& fused_flag() {
  static std::atomic<bool> on{env_switch("FUSED_RNN_CPU_FUSED")};
  return on;
}

// The bytes of dG a backward holds at once (pointwise.h: backward_chunk_bytes), unless that is
// fewer than kBackwardChunkMinRows rows. Every segment's flush reads and writes both weight
// gradients and reads W_ih, so a segment of few rows against large weights is slow: LSTM B=8
// H=1024 T=50 in segments of 128 rows (2 MiB) trained 1.08x slower than in one of 400 (median
// of 7 A/B rounds, 2026-11-30, bench/results/..._memory-allocated/). Within those bounds less is
// better for the step's peak memory: 8 MiB segments left the Elman RNN and the GRU above
// torch.nn's allocated peak (RNN B=64 H=1024 T=50: 49.8 against 45.8 MiB), 2 MiB ones below.
constexpr int64_t kBackwardChunkBytes = int64_t{2} << 20;
constexpr int64_t kBackwardChunkMinRows = 512;

std::atomic<int64_t>& chunk_min_rows() {
  static std::atomic<int64_t> rows{kBackwardChunkMinRows};
  return rows;
}

std::atomic<int64_t>& chunk_bytes() {
  static std::atomic<int64_t> bytes{[] {
    const char* env = std::getenv("FUSED_RNN_CPU_BACKWARD_CHUNK");
    return env == nullptr ? kBackwardChunkBytes : std::max<int64_t>(0, std::atoll(env));
  }()};
  return bytes;
}

// Whether the weight gradients run on the capability's own product (pointwise.h: weight_grad_tiles).
std::atomic<bool>& weight_tiles_flag() {
  static std::atomic<bool> on{env_switch("FUSED_RNN_CPU_WEIGHT_GRAD_TILES", mkl_off_intel())};
  return on;
}

// Whether the larger weight gradients the own product leaves go through oneDNN (pointwise.h:
// onednn_gemm_on).
std::atomic<bool>& onednn_flag() {
  static std::atomic<bool> on{env_switch("FUSED_RNN_CPU_ONEDNN_GEMM", mkl_off_intel())};
  return on;
}

// Whether a bidirectional layer runs its directions at once (pointwise.h: concurrent_directions).
std::atomic<bool>& concurrent_flag() {
  static std::atomic<bool> on{env_switch("FUSED_RNN_CPU_CONCURRENT_DIRECTIONS")};
  return on;
}

// The tile panels (K x column_units) from which a product of at least kBlasPanelMinBatch rows a
// step (kPackedBlasMinBatch for the reverse loop's where MKL's packed GEMM serves it) goes to
// BLAS instead (pointwise.h: blas_panel_bytes): 3/4 of a core's L2, or never where the L2 is
// unknown or BLAS is MKL off Intel (gemm.h: mkl_off_intel), where MKL is the slower side: on
// AMD Zen 5 an LSTM's training step at H = 1024 ran 1.29-1.33x faster on the tiles at B = 8-64
// (bench/results/2026-12-01_cpu_amd-epyc-zen5-2c_probes-session27/lstm_train_parts.txt).
std::atomic<int64_t>& blas_panel_bytes_setting() {
  static std::atomic<int64_t> bytes{[] {
    const char* env = std::getenv("FUSED_RNN_CPU_BLAS_PANEL_BYTES");
    if (env != nullptr) {
      return std::max<int64_t>(0, std::atoll(env));
    }
    return mkl_off_intel() ? 0 : 3 * l2_cache_bytes() / 4;
  }()};
  return bytes;
}

constexpr int64_t kBlasPanelMinBatch = 32;

// Whether a backward product over K rows of a weight (dh = dG W_hh a step, or grad_input =
// dG W_ih), for `batch` rows a step, runs on BLAS rather than on the tiles: its panels (K rows
// of the single-gate tile's column_units) outgrow the L2 with the rows of dG streaming past them. An LSTM's backward at H = 960-1024
// (K = 4H, 1 MB panels, this L2 1.25 MB) ran 1.07-1.11x faster so at B = 48-64 and 1.02-1.07x
// at B = 32, while the tiles were as fast or faster at B <= 16 and for panels of 768 KB (GRU
// H = 1024, LSTM H = 768); Ice Lake with MKL only (on Zen 3 MKL was the slower side),
// bench/results/2026-11-30_cpu_intel-xeon-icelake-2c_probes-backward-blas/.
template <typename T>
bool backward_on_blas(int64_t K, int64_t batch, int64_t min_batch = kBlasPanelMinBatch) {
  const int64_t limit = blas_panel_bytes_setting().load(std::memory_order_relaxed);
  const int64_t panel_bytes = K * pointwise_kernels<T>().column_units * static_cast<int64_t>(sizeof(T));
  return limit > 0 && batch >= min_batch && panel_bytes >= limit;
}

// The same for the reverse loop's per-step products (dh = dG W_hh), from 8 rows a step where they
// multiply W_hh packed once for MKL (gemm.h: RepeatedGemm): an LSTM's training step at H = 1024
// ran 1.03-1.09x faster so than on the tiles at B = 8-16 in a quiet stretch (0.84-1.12x in one
// under host load), plain sgemm repacking W_hh every step being no faster than the tiles there
// (measured 2026-11-30, bench/results/..._probes-session23/backward_packed_LSTM_H1024.txt).
// grad_input's product, one per segment of many rows, keeps backward_on_blas's 32.
constexpr int64_t kPackedBlasMinBatch = 8;

template <typename T>
bool steps_on_blas(int64_t K, int64_t batch) {
  return backward_on_blas<T>(K, batch, packed_gemm_on<T>() ? kPackedBlasMinBatch : kBlasPanelMinBatch);
}

// Whether the fused forward reads 16-bit weights behind their kept float32 casts as they are
// stored (see fused_forward); FUSED_RNN_CPU_16BIT_WEIGHTS=0 reads the float32 casts.
std::atomic<bool>& narrow_flag() {
  static std::atomic<bool> on{env_switch("FUSED_RNN_CPU_16BIT_WEIGHTS")};
  return on;
}

// Whether bfloat16 weights read in 16 bits are multiplied by AVX512-BF16 dot products where
// the CPU has them (see fused_forward); FUSED_RNN_CPU_BF16_DOT=0 keeps float32 arithmetic.
std::atomic<bool>& bf16_dot_flag() {
  static std::atomic<bool> on{env_switch("FUSED_RNN_CPU_BF16_DOT")};
  return on;
}

// set_bf16_round_once (pointwise.h).
std::atomic<bool>& bf16_round_once_flag() {
  static std::atomic<bool> on{true};
  return on;
}

// The bf16 dot-product kernels, where the CPU has AVX512-BF16 and the kernels in use have them.
bool bf16_dot_available(const PointwiseKernels<float>& kern) {
#if FUSED_RNN_X86_DISPATCH
  static const bool cpu = __builtin_cpu_supports("avx512bf16");
#else
  constexpr bool cpu = false;
#endif
  return cpu && kern.tiles[kWeightsBf16Pairs].forward_tile[0] != nullptr;
}

// How a layer's kernels read its weights. float32 weights that are the kept casts of
// bfloat16/float16 ones (panel_cache.h: kept_cast, through which the Python layer passes 16-bit
// weights) are read in their 16-bit form (`hh`, `ih`), converted as they are loaded: half the
// bytes of W_hh per step, bit for bit the results of reading the casts. bfloat16 ones are
// multiplied by AVX512-BF16 dot products where available (kWeightsBf16Pairs: h and x rounded
// to bf16 for the products, as torch.nn's bf16 h is), and then the backward's products run
// in bf16 too, as torch.nn's bf16 backward's do. Otherwise form is kWeightsAsT.
struct WeightSource {
  CastSource hh, ih;  // hold the 16-bit weights alive while read
  int form = kWeightsAsT;
};

template <typename T>
WeightSource weight_source(const LayerArgs& a) {
  WeightSource s;
  if constexpr (std::is_same_v<T, float>) {
    if (!narrow_flag().load(std::memory_order_relaxed)) {
      return s;
    }
    CastSource hh = kept_cast_source(a.w_hh);
    if (hh.data == nullptr || (hh.dtype != at::kBFloat16 && hh.dtype != at::kHalf)) {
      return s;
    }
    CastSource ih = kept_cast_source(a.w_ih);
    if (ih.data == nullptr || ih.dtype != hh.dtype) {
      return s;
    }
    s.form = hh.dtype == at::kHalf ? kWeightsHalf
        : bf16_dot_flag().load(std::memory_order_relaxed) && bf16_dot_available(pointwise_kernels<float>())
        ? kWeightsBf16Pairs
        : kWeightsBf16;
    s.hh = std::move(hh);
    s.ih = std::move(ih);
  }
  return s;
}

// How a step's work is cut into team items: `tiles` blocks of `units` hidden units,
// and when there are few tiles for the threads, the B rows in `groups` of
// `group_rows` (whole register blocks of `mr` rows) too. Item i is tile i / groups,
// row group i % groups.
struct TileGrid {
  int64_t units, tiles, groups, group_rows;

  TileGrid(int64_t H, int64_t B, int64_t units_, int64_t mr) : units(units_), tiles((H + units_ - 1) / units_) {
    const int64_t threads = at::get_num_threads();
    const int64_t row_blocks = (B + mr - 1) / mr;
    groups = tiles >= 2 * threads ? 1 : std::max<int64_t>(1, std::min(row_blocks, (2 * threads + tiles - 1) / tiles));
    group_rows = (row_blocks + groups - 1) / groups * mr;
  }
  int64_t items() const { return tiles * groups; }
};

// An unprojected layer whole on a team of threads that each keep the same tiles of
// hidden units (and the slices of W_hh and W_ih packed for them) for the whole
// sequence. The input projection runs in chunks of about kChunkRows rows just ahead
// of the steps that read them, each tile's by the thread that owns the tile, so the
// projected inputs are read back from that core's cache (and an inference call needs
// a buffer for one chunk, not the whole sequence). One barrier per team step.
constexpr int64_t kChunkRows = 512;
// In auto mode a batch of at most kDotBatch rows reads the weights in place when the
// panel cache would not keep them, and otherwise while T * B * kDotRowsPerWidth < H:
// the crossover of a step from panels against the cost of packing or comparing them
// grows with H and shrinks with B (measured 2026-11-28 on AVX-512: at B=1 about 14 steps
// at H=128, 18 at H=256, 40 at H=512; at B=4 under 10 steps at H <= 256, over 10 at 512;
// from B=2 a step in place is 10-40% slower than from panels).
constexpr int64_t kDotBatch = 4;
constexpr int64_t kDotRowsPerWidth = 8;
// A single step (a cell) of up to kOneStepDotBatch rows reads the weights in place at any
// size: panels would be packed (after every optimizer step) or compared for one use
// (measured 2026-11-28, LSTM/GRU H=128-512 T=1: in place 1.0-1.3x panels found in the
// cache at B = 8-16, 1.4-12x panels repacked; at B = 64 panels found win by up to 25%).
// A single training step does so at any batch: a training call keeps no panels, so a
// cell stepped in a training loop would pack them afresh every step, for one use; and an
// Elman RNN's single training step over kOneStepDotBatch rows is left to BLAS (measured
// 2026-11-30, cells in a T = 20 training loop, H = 256-512, B = 32-64, two runs:
// in place against panels packed 0.97-1.22x for LSTM and GRU, 16-25% faster where H = 512
// and B = 32; the Elman RNN on BLAS 1.01-1.32x the panels and 1-10% ahead of in place,
// its one gate leaving less for the fused epilogue to save;
// bench/results/2026-11-30_cpu_amd-epyc-zen3-2c_cells-one-step-training/).
constexpr int64_t kOneStepDotBatch = 16;

template <typename T>
bool fused_forward(CellKind cell, const LayerArgs& a, bool reverse, bool train, const ForwardStep<T>& st0, T* gates,
                   T* out, T* ws) {
  const int64_t H = a.H, K = a.P, B = a.B, I = a.I, T_ = a.T, GH = a.G * a.H;
  if (!fused_flag().load(std::memory_order_relaxed) || H == 0 || B == 0 || T_ == 0) {
    return false;
  }
  const int mode = dot_mode().load(std::memory_order_relaxed);
  const WeightSource src = weight_source<T>(a);
  const int form = src.form;
  // A cell in a training loop (see kOneStepDotBatch); float weights as they are (measured so).
  const bool train_step = train && T_ == 1 && form == kWeightsAsT;
  if (mode == 0 && train_step && B > kOneStepDotBatch && a.G == 1) {
    return false;
  }
  const auto& kern = pointwise_kernels<T>();
  const int c = static_cast<int>(cell);
  const TileGrid grid(H, B, kern.tile_units[c], kern.tile_rows[c]);
  const int64_t groups = grid.groups, group_rows = grid.group_rows;
  if (form != kWeightsAsT) {
    calls(Path::k16BitWeights).fetch_add(1, std::memory_order_relaxed);
  }
  if (form == kWeightsBf16Pairs) {
    calls(Path::kBf16Dot).fetch_add(1, std::memory_order_relaxed);
  }
  const void* w_hh = form != kWeightsAsT ? src.hh.data : a.w_hh.const_data_ptr();
  const void* w_ih = form != kWeightsAsT ? src.ih.data : a.w_ih.const_data_ptr();
  const T* x = a.input.const_data_ptr<T>();
  // A small batch reads the weights in place (a tile's rows stay in its thread's cache
  // all the same) when packing them would not pay: for a short sequence, or weights the
  // panel cache does not keep (packing every call costs a transpose of each weight, and
  // a cached panel a comparison of it). A step from panels is faster where W_hh stays in
  // cache (no horizontal sums), so longer sequences pack, or find the panels packed by an
  // earlier call. 16-bit weights behind kept casts use panels wherever the cache keeps them:
  // their panels are found again without a comparison (panel_cache.h), so after the first
  // call a step from panels costs nothing more (measured 2026-11-28: 1.2-1.5x the in-place
  // reading at B <= 4 from T = 10, every cell, bf16 and fp16). A single step (a cell) of up to
  // kOneStepDotBatch rows reads in place whatever the weights. With dots, hh_p / ih_p are the
  // weights and the tile offsets zero.
  //
  // A training call packs (or finds) panels as an inference call does, but does not keep
  // them: the optimizer step that follows changes the weights, so they would not be found
  // again, while they stayed alive through the backward, the step's peak (with the copy then
  // kept for their comparison, twice the weights). Measured 2026-11-29 (training steps, fp32, 2
  // threads): panels kept and found against none kept, 0.92-1.05x; at B <= 4, reading in
  // place against panels packed every call, 0.93-1.12x either way, so the choice between
  // them is left as it was.
  const bool keep = !train;
  const bool cacheable = panels_cacheable(a.w_hh) && panels_cacheable(a.w_ih);
  const bool one_step = train_step || (T_ == 1 && B <= kOneStepDotBatch);
  const bool dots = mode == 1 ||
      (mode == 0 && (one_step ||
                     (B <= kDotBatch && (!cacheable || (form == kWeightsAsT && T_ * B * kDotRowsPerWidth < K)))));
  calls(dots ? Path::kDots : Path::kPanels).fetch_add(1, std::memory_order_relaxed);
  const TileKernels<T>& tk = kern.tiles[form];
  const int64_t esize = static_cast<int64_t>(c10::elementSize(tk.stored));
  auto round_k = [&](int64_t k) { return (k + tk.k_align - 1) / tk.k_align * tk.k_align; };
  const int64_t hh_elems = round_k(K) * kern.tile_width[c], ih_elems = round_k(I) * kern.tile_width[c];
  const PanelLayout hh_layout{0, c, &tk}, ih_layout{1, c, &tk};
  FoundPanels hh_found, ih_found;
  if (!dots) {
    hh_found = find_panels(a.w_hh, hh_layout);
    ih_found = find_panels(a.w_ih, ih_layout);
    // Only plain weights' panels come unchecked, and their kernels have the check.
    TORCH_INTERNAL_ASSERT(!(hh_found.unchecked || ih_found.unchecked) || tk.tile_matches[c] != nullptr);
  }
  // Tile u's weights: its panel, or (dots) the weight itself.
  const auto tile_of = [esize](const void* p, int64_t offset) { return static_cast<const char*>(p) + offset * esize; };
  const int64_t hh_tile = dots ? 0 : hh_elems, ih_tile = dots ? 0 : ih_elems;
  const auto forward_tile = dots ? tk.forward_dots[c] : tk.forward_tile[c];
  const auto project_tile = dots ? tk.project_dots[c] : tk.project_tile[c];

  // Chunks of steps (processing order) and the rows of the input they cover.
  const int64_t chunk_steps = std::max<int64_t>(1, kChunkRows / B);
  const int64_t chunks = (T_ + chunk_steps - 1) / chunk_steps;
  std::vector<int64_t> chunk_row0(chunks), chunk_row1(chunks);
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t q0 = k * chunk_steps;
    std::tie(chunk_row0[k], chunk_row1[k]) = rows_of_steps(a, q0, std::min(T_, q0 + chunk_steps), reverse);
  }
  // An inference LSTM or GRU keeps its projected inputs in a buffer for one chunk.
  at::Tensor chunk_buf;
  int64_t gates_ld = st0.gates_ld;
  if (gates == nullptr) {
    chunk_buf = at::empty({std::min(a.N, chunk_steps * B), GH}, a.input.options());
    gates_ld = GH;
  }
  auto gate_rows = [&](int64_t chunk) { return gates ? gates + chunk_row0[chunk] * gates_ld : chunk_buf.data_ptr<T>(); };
  // bf16 dot products from panels take a chunk's inputs rounded to bf16 pairs once, for every
  // tile, rather than rounded again by each tile's product: the team rounds chunk 0 while it
  // packs and chunk k + 1 while it projects chunk k, into two buffers taken in turn.
  const bool round_inputs = form == kWeightsBf16Pairs && !dots && tk.round_bf16 != nullptr &&
                            bf16_round_once_flag().load(std::memory_order_relaxed);
  const int64_t x16_ld = (I + 1) / 2;  // pairs a row
  at::Tensor x16;
  if (round_inputs) {
    calls(Path::kBf16RoundedForward).fetch_add(1, std::memory_order_relaxed);
    // zeros: where I is odd, the last pair's second half stays zero
    x16 = at::zeros({2, std::min(a.N, chunk_steps * B), 2 * x16_ld}, a.input.options().dtype(at::kBFloat16));
  }
  auto x16_of = [&](int64_t chunk) { return static_cast<char*>(x16.data_ptr()) + (chunk % 2) * x16.stride(0) * 2; };
  // Item `item`'s share of the rounding of chunk k's inputs.
  auto round_share = [&](int64_t k, int64_t item) {
    if (!round_inputs || k >= chunks) {
      return;
    }
    const int64_t row0 = chunk_row0[k], rows = chunk_row1[k] - row0, items = grid.items();
    const int64_t per = (rows + items - 1) / items;
    const int64_t r0 = std::min(rows, item * per), r1 = std::min(rows, r0 + per);
    if constexpr (std::is_same_v<T, float>) {  // the pairs form is float32's only
      if (r0 < r1) {
        tk.round_bf16(x + row0 * I, I, r0, r1, 0, I, x16_of(k), 2 * x16_ld);
      }
    }
  };

  // h_{t-1} and h_t alternate between two buffers; st0.h (hx in, h_n out) is the first.
  at::Tensor other = at::empty({B, H}, a.input.options());
  T* buf[2] = {st0.h, other.data_ptr<T>()};
  std::memcpy(buf[1], buf[0], sizeof(T) * B * H);
  // bf16 dot products from panels also keep h in bf16 (rows of K rounded up to pairs, zero
  // past K), rounded once a step by the epilogue rather than by every tile's product.
  at::Tensor h16;
  const int64_t h16_ld = (K + 1) / 2 * 2;
  if (form == kWeightsBf16Pairs && !dots) {
    h16 = at::zeros({2, B, h16_ld}, a.input.options().dtype(at::kBFloat16));
    h16.select(0, 0).narrow(1, 0, K).copy_(at::from_blob(buf[0], {B, K}, a.input.options()));
    h16.select(0, 1).copy_(h16.select(0, 0));
  }
  void* h16_bufs[2] = {nullptr, nullptr};
  if (h16.defined()) {
    h16_bufs[0] = h16.data_ptr();
    h16_bufs[1] = static_cast<c10::BFloat16*>(h16_bufs[0]) + B * h16_ld;
  }

  // The team's steps: pack the panels, then per chunk its projection and its steps.
  constexpr int64_t kPack = -1;
  std::vector<int64_t> plan{kPack};  // >= 0: sequence step q; <= -2: projection of chunk -2 - e
  for (int64_t k = 0; k < chunks; ++k) {
    plan.push_back(-2 - k);
    for (int64_t q = k * chunk_steps; q < std::min(T_, (k + 1) * chunk_steps); ++q) {
      plan.push_back(q);
    }
  }

  const int64_t flops = 2 * B * T_ * GH * (K + I);
  // Panels found unchecked (panel_cache.h) are compared with their weight tile by tile in the
  // packing step, each by the thread that reads it in the steps. Where one differs (the
  // weight written behind its version counter), the steps after do nothing, those panels are
  // forgotten, and the team runs again on panels packed afresh.
  for (;;) {
    at::Tensor hh = hh_found.panels, ih = ih_found.panels;
    const bool hh_cached = dots || hh.defined(), ih_cached = dots || ih.defined();
    if (!hh_cached) {
      hh = at::empty({grid.tiles * hh_elems}, a.input.options().dtype(tk.stored));
    }
    if (!ih_cached) {
      ih = at::empty({grid.tiles * ih_elems}, a.input.options().dtype(tk.stored));
    }
    const void* hh_p = dots ? w_hh : hh.const_data_ptr();
    const void* ih_p = dots ? w_ih : ih.const_data_ptr();
    std::atomic<bool> hh_stale{false}, ih_stale{false};
    run_steps(static_cast<int64_t>(plan.size()), grid.items(), [&](int64_t s, int64_t item) {
      const int64_t u = item / groups, grp = item % groups;
      const int64_t e = plan[s];
      if (e == kPack) {
        round_share(0, item);
        if (grp != 0) {
          return;
        }
        if (hh_found.unchecked && !tk.tile_matches[c](w_hh, H, K, u, tile_of(hh_p, u * hh_tile))) {
          hh_stale.store(true, std::memory_order_relaxed);
        }
        if (ih_found.unchecked && !tk.tile_matches[c](w_ih, H, I, u, tile_of(ih_p, u * ih_tile))) {
          ih_stale.store(true, std::memory_order_relaxed);
        }
        if (!hh_cached) {
          tk.pack_tile[c](w_hh, H, K, u, static_cast<char*>(hh.data_ptr()) + u * hh_elems * esize);
        }
        if (!ih_cached) {
          tk.pack_tile[c](w_ih, H, I, u, static_cast<char*>(ih.data_ptr()) + u * ih_elems * esize);
        }
        return;
      }
      if (hh_stale.load(std::memory_order_relaxed) || ih_stale.load(std::memory_order_relaxed)) {
        return;
      }
      if (e < 0) {
        const int64_t k = -2 - e, row0 = chunk_row0[k], rows = chunk_row1[k] - row0;
        const int64_t per = (rows + groups - 1) / groups;
        const int64_t r0 = std::min(rows, grp * per), r1 = std::min(rows, r0 + per);
        if (r0 < r1) {
          if (round_inputs) {
            tk.project_pairs[c](x16_of(k), x16_ld, tile_of(ih_p, u * ih_tile), I, H, u, r0, r1, gate_rows(k),
                                gates_ld, false);
          } else {
            project_tile(x + row0 * I, I, tile_of(ih_p, u * ih_tile), I, H, u, r0, r1, gate_rows(k), gates_ld, false);
          }
        }
        round_share(k + 1, item);
        return;
      }
      const int64_t q = e, t = reverse ? T_ - 1 - q : q;
      const int64_t rows = a.sizes[t], off = a.offsets[t];
      const int64_t r0 = grp * group_rows, r1 = std::min(rows, r0 + group_rows);
      if (r0 >= r1) {
        return;
      }
      const int64_t k = q / chunk_steps;
      ForwardStep<T> st = st0;
      st.gates = gate_rows(k) + (off - chunk_row0[k]) * gates_ld;
      st.gates_ld = gates_ld;
      st.out = out + off * K;
      st.ws = ws ? ws + off * st0.ws_ld : nullptr;
      st.h = buf[(q + 1) % 2];
      st.h16_prev = h16_bufs[q % 2];
      st.h16 = h16_bufs[(q + 1) % 2];
      st.h16_ld = h16_ld;
      forward_tile(st, buf[q % 2], tile_of(hh_p, u * hh_tile), K, u, r0, r1);
    }, flops, B <= kZigzagMaxRows);

    // Checked panels are trusted for the rest of the call; stale ones are looked up again (a
    // miss: they were forgotten) and packed afresh.
    const auto settle = [](FoundPanels& found, const at::Tensor& w, const PanelLayout& layout, bool stale) {
      if (found.unchecked) {
        panels_checked(w, layout, !stale);
        found = stale ? find_panels(w, layout) : FoundPanels{found.panels, false};
      }
    };
    const bool hh_bad = hh_stale.load(), ih_bad = ih_stale.load();
    settle(hh_found, a.w_hh, hh_layout, hh_bad);
    settle(ih_found, a.w_ih, ih_layout, ih_bad);
    if (hh_bad || ih_bad) {
      continue;
    }
    if (!hh_cached && keep) {
      keep_panels(a.w_hh, hh_layout, hh);
    }
    if (!ih_cached && keep) {
      keep_panels(a.w_ih, ih_layout, ih);
    }
    break;
  }
  // h_n: each row's state after the last step it was active in (step q wrote buf[(q + 1) % 2]).
  std::vector<int64_t> last(B, -1);
  for (int64_t q = 0; q < T_; ++q) {
    const int64_t t = reverse ? T_ - 1 - q : q;
    std::fill(last.begin(), last.begin() + a.sizes[t], q);
  }
  for (int64_t r = 0; r < B; ++r) {
    if (last[r] >= 0 && (last[r] + 1) % 2 == 1) {
      std::memcpy(buf[0] + r * H, buf[1] + r * H, sizeof(T) * H);
    }
  }
  return true;
}

// The backward's reverse loop of an unprojected layer on the thread team, one barrier
// a step (see below): each item runs the pointwise pass for its units (adding the
// step's output gradient to dh first) and dh_{t-1} for the same units as dG_t times
// the columns of W_hh packed for it. An item is a block of column_units hidden units
// (and a group of rows when there are few blocks).
template <typename T, class SetStep, class Flush>
bool fused_backward(CellKind cell, const LayerArgs& a, bool reverse, const BackwardStep<T>& st0,
                    const SetStep& set_step, const T* go, int64_t go_ld, const T* gcs, const T* w_hh,
                    const std::vector<BackwardSegment>& segments, const Flush& flush) {
  const int64_t H = a.H, P = a.P, B = a.B, GH = a.G * a.H;
  // A single step (a cell) has nothing to keep W_hh's panels in cache for: packing them
  // would copy all of W_hh into a new buffer to use it once.
  if (!fused_flag().load(std::memory_order_relaxed) || H == 0 || B == 0 || a.T < 2) {
    return false;
  }
  const auto& kern = pointwise_kernels<T>();
  const int c = static_cast<int>(cell);
  const int col = static_cast<int>(CellKind::kRnnTanh);  // the single-gate tile geometry
  const TileGrid grid(H, B, kern.column_units, kern.tile_rows[col]);
  const int64_t units = grid.units, tiles = grid.tiles, groups = grid.groups, group_rows = grid.group_rows;
  // A layer whose forward multiplies in bf16 pairs (weight_source) multiplies dG_t (rounded to
  // bf16, as torch.nn's bf16 backward has it) by W_hh's columns in bf16 pairs, packed from the
  // bf16 weight.
  const WeightSource src = weight_source<T>(a);
  const bool pairs = src.form == kWeightsBf16Pairs && kern.pack_columns_pairs != nullptr;
  const auto project = kern.tiles[pairs ? kWeightsBf16Pairs : kWeightsAsT].project_tile[col];
  const int64_t esize = pairs ? 2 : static_cast<int64_t>(sizeof(T));
  const int64_t tile_elems = (pairs ? (GH + 1) / 2 * 2 : GH) * units;
  if (!pairs && steps_on_blas<T>(GH, B)) {
    calls(Path::kBlasBackward).fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  at::Tensor panels =
      at::empty({tiles * tile_elems}, a.input.options().dtype(pairs ? at::kBFloat16 : a.input.scalar_type()));
  char* panel = static_cast<char*>(panels.data_ptr());
  // Row k of tile u's panel (k even in pairs: the n gate's rows of a GRU start at 2H).
  auto panel_row = [&](int64_t u, int64_t k) { return panel + (u * tile_elems + k * units) * esize; };

  // Backward step i (0 = the last step processed by the forward) is the pointwise pass of
  // its units, then dh_{t-1} = dG_t W_hh for its columns. Item (u, grp) owns the same hidden
  // units as pointwise rows and as product columns, so team step k runs item's product of
  // step k - 1 and then its pointwise pass of step k: the pass reads only the dh (and dc)
  // columns the same item has just written, and only the product needs every unit's dG,
  // which the barrier between team steps provides. One barrier a step. The steps run a
  // segment at a time (BackwardSegment), each followed by its flush, W_hh packed once.
  run_steps(1, tiles, [&](int64_t, int64_t u) {
    if (pairs) {
      kern.pack_columns_pairs(src.hh.data, P, H, GH, u, panel_row(u, 0));
    } else {
      kern.pack_columns(w_hh, P, H, GH, u, reinterpret_cast<T*>(panel_row(u, 0)));
    }
  }, GH * P);  // a copy: its elements stand for its work
  // With pairs, dG_t's columns that meet W_hh (a GRU's r and z, then its dGh) are rounded to
  // bf16 once, each item its own units and rows right after its pointwise pass, into two
  // buffers taken in turn by step, rather than by every tile's product (round_rows_bf16).
  const auto& pairs_tk = kern.tiles[kWeightsBf16Pairs];
  const bool round_dg = pairs && pairs_tk.round_bf16 != nullptr && pairs_tk.project_pairs[col] != nullptr &&
                        bf16_round_once_flag().load(std::memory_order_relaxed);
  const bool gru = cell == CellKind::kGru;
  const int64_t dg_cols = gru ? 2 * H : GH, dg16_ld = (dg_cols + 1) / 2 * 2, dgh16_ld = (H + 1) / 2 * 2;
  at::Tensor dg16, dgh16;  // zeros: an odd K's last pair keeps a zero second half
  if (round_dg) {
    calls(Path::kBf16RoundedBackward).fetch_add(1, std::memory_order_relaxed);
    dg16 = at::zeros({2, B, dg16_ld}, a.input.options().dtype(at::kBFloat16));
    if (gru) {
      dgh16 = at::zeros({2, B, dgh16_ld}, a.input.options().dtype(at::kBFloat16));
    }
  }
  auto rounded = [](const at::Tensor& buf, int64_t k) {
    return static_cast<char*>(buf.data_ptr()) + (k % 2) * buf.stride(0) * 2;
  };
  // A segment's steps k in [k0, k1) on the team, then its flush (the team idle).
  int64_t k0 = 0, k1 = 0;
  auto team_step = [&](int64_t s, int64_t item) {
    const int64_t u = item / groups, grp = item % groups;
    const int64_t j0 = u * units, j1 = std::min(H, j0 + units);
    const int64_t k = k0 + s;
    if (k > k0) {  // dh_{t-1} += dG_t W_hh for step k - 1, this item's columns and rows
      const int64_t t = backward_step(a, k - 1, reverse);
      const int64_t r0 = grp * group_rows, r1 = std::min(a.sizes[t], r0 + group_rows);
      if (r0 < r1) {
        BackwardStep<T> st = st0;
        set_step(t, st);
        if (round_dg) {
          pairs_tk.project_pairs[col](rounded(dg16, k - 1), dg16_ld / 2, panel_row(u, 0), dg_cols, H, u, r0, r1,
                                      st.dh, P, gru);
          if (gru) {
            pairs_tk.project_pairs[col](rounded(dgh16, k - 1), dgh16_ld / 2, panel_row(u, 2 * H), H, H, u, r0, r1,
                                        st.dh, P, true);
          }
        } else if (gru) {  // dG's r and z columns, then dGh for n; both onto the direct path
          project(st.dg, st.dg_ld, panel_row(u, 0), 2 * H, H, u, r0, r1, st.dh, P, true);
          project(st.dgh, st.dgh_ld, panel_row(u, 2 * H), H, H, u, r0, r1, st.dh, P, true);
        } else {
          project(st.dg, st.dg_ld, panel_row(u, 0), GH, H, u, r0, r1, st.dh, P, false);
        }
      }
    }
    if (k < k1) {  // the pointwise pass of step k: add grad_output (and grad_cell_states), write dG
      const int64_t t = backward_step(a, k, reverse);
      const int64_t rows = a.sizes[t], off = a.offsets[t];
      const int64_t r0 = grp * group_rows, r1 = std::min(rows, r0 + group_rows);
      if (r0 < r1) {
        BackwardStep<T> st = st0;
        set_step(t, st);
        for (int64_t r = r0; r < r1; ++r) {
          T* dh = st.dh + r * P;
          const T* g = go + (off + r) * go_ld;
          for (int64_t j = j0; j < j1; ++j) {
            dh[j] += g[j];
          }
          if (gcs) {
            Acc<T>* dc = st.dc + r * H;
            const T* gc = gcs + (off + r) * H;
            for (int64_t j = j0; j < j1; ++j) {
              dc[j] += gc[j];
            }
          }
        }
        kern.backward_block[c](st, r0, r1, j0, j1);
        if constexpr (std::is_same_v<T, float>) {  // the pairs form is float32's only
          if (round_dg) {
            for (int64_t g = 0; g < dg_cols / H; ++g) {
              pairs_tk.round_bf16(st.dg, st.dg_ld, r0, r1, g * H + j0, g * H + j1, rounded(dg16, k), dg16_ld);
            }
            if (gru) {
              pairs_tk.round_bf16(st.dgh, st.dgh_ld, r0, r1, j0, j1, rounded(dgh16, k), dgh16_ld);
            }
          }
        }
      }
    }
  };
  for (size_t g = 0; g < segments.size(); ++g) {
    k0 = segments[g].i0;
    k1 = segments[g].i1;
    run_steps(1 + k1 - k0, grid.items(), team_step, 2 * B * (k1 - k0) * GH * P, B <= kZigzagMaxRows);
    if (g + 1 == segments.size()) {
      panels = at::Tensor();  // W_hh's panels are done with: not alive with the flush's own buffers
    }
    flush(g);
  }
  return true;
}

// C (M x Nc, ldc) = A B (or += with accumulate) with the tiles' kernel, A and B row-major,
// for any number of calls with the same B (the backward's grad_input, a segment of rows at a
// time): B's column panels are packed at the first call that uses them, and each thread
// takes a contiguous run of (column tile, row chunk) items, column-tile major, so a panel
// stays in its cache. (The weight gradients, A^T B reducing over every row of the sequence,
// stay on BLAS: read in place the tiles ran ~20% slower, and blocked over 256 rows with each
// block of A transposed first they only matched it; probes of 2026-11-28.)
constexpr int64_t kMatmulMinRows = 32;

// The fewest rows a step for which grad_input runs on the tiles (PackedMatmul below): 17, or 8
// where the tiles run AVX-512 and BLAS is MKL off Intel (gemm.h: mkl_off_intel), whose AVX2
// code then runs at about half the tiles' rate (AMD Zen 5: 219-236 against 477-495 GFLOP/s,
// bench/results/2026-12-01_cpu_amd-epyc-zen5-2c_probes-session27/).
constexpr int64_t kMatmulMinBatch = 17, kMatmulMinBatchOffIntel = 8;

inline int64_t matmul_min_batch() {
  return mkl_off_intel() && cpu_capability() == "avx512" ? kMatmulMinBatchOffIntel : kMatmulMinBatch;
}

template <typename T>
class PackedMatmul {
 public:
  PackedMatmul(int64_t Nc, int64_t K, const T* B, int64_t ldb, int64_t steps, int64_t batch)
      : Nc_(Nc),
        K_(K),
        B_(B),
        ldb_(ldb),
        declined_(steps < 2 || batch < (gate_stacked(K, Nc) ? matmul_min_batch() : kMatmulMinBatch) ||
                  backward_on_blas<T>(K, batch) || (batch < kMatmulMinBatch && at::in_parallel_region())) {}

  // False (nothing done) for a few rows of A, for a single step (a cell) at any batch, for a
  // sequence of at most 16 rows a step (7 where matmul_min_batch says for gate_stacked
  // products, gemm.h: not the Elman RNN's, whose allocated peak the copy put at 1.08x
  // torch.nn's at B=8 H=512 on Zen 5; but 16 wherever a bidirectional layer's directions run
  // at once: CpuBackend::kTrainingAtOnceBatch), and where B's panels outgrow the L2
  // (backward_on_blas). Packing copies
  // all of B into a new buffer: for a single step BLAS reading B in place is faster (measured
  // 2026-11-30: an RNNCell training step at H=512 B=32-64 6-9% faster on BLAS;
  // bench/results/..._cells-one-step-training/); at up to 16 rows a step BLAS and
  // the tiles ran grad_input at the same speed within noise (Ice Lake: 0.93-1.01x at B=8,
  // ..._probes-session18/; Zen 3: 0.87-1.10x, ..._probes-k-chunks/), and the copy is then a large
  // share of the step's peak memory: W_ih's panels (G H x I) against grad_input's T B x I (a GRU
  // at B=1 T=200 H=I=256: 3.8 times; ..._memory-allocated/), and two of them alive together where
  // the directions run at once.
  bool operator()(int64_t M, const T* A, int64_t lda, bool accumulate, T* C, int64_t ldc) {
    if (!fused_flag().load(std::memory_order_relaxed) || declined_ || M < kMatmulMinRows || Nc_ == 0 || K_ == 0) {
      return false;
    }
    const auto& kern = pointwise_kernels<T>();
    const int col = static_cast<int>(CellKind::kRnnTanh);
    const auto project = kern.tiles[kWeightsAsT].project_tile[col];
    const int64_t units = kern.column_units;
    const int64_t tiles = (Nc_ + units - 1) / units;
    const int64_t tile_elems = K_ * units;
    if (!panels_.defined()) {
      calls(Path::kInputGradPanels).fetch_add(1, std::memory_order_relaxed);
      panels_ = at::empty({tiles * tile_elems}, c10::CppTypeToScalarType<T>::value);
      T* panel = panels_.data_ptr<T>();
      at::parallel_for(0, tiles, 1, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; ++u) {
          kern.pack_columns(B_, ldb_, Nc_, K_, u, panel + u * tile_elems);
        }
      });
    }
    const T* panel = panels_.const_data_ptr<T>();
    const int64_t chunk = 16 * kern.tile_rows[col];
    const int64_t chunks = (M + chunk - 1) / chunk;
    at::parallel_for(0, tiles * chunks, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t u = i / chunks, r0 = (i % chunks) * chunk;
        project(A, lda, panel + u * tile_elems, K_, Nc_, u, r0, std::min(M, r0 + chunk), C, ldc, accumulate);
      }
    });
    return true;
  }

 private:
  int64_t Nc_, K_;
  const T* B_;
  int64_t ldb_;
  bool declined_;
  at::Tensor panels_;
};

// The weight gradients' oneDNN route (onednn_flag): float32 products of at least kOnednnMinMacs
// multiply-adds with twice as many rows as columns (gemm.h: gate_stacked) through torch's
// mkldnn::_linear_pointwise op. The op takes its input and weight contiguous along the reduction
// and returns a new result, so the operands are copied transposed and the result added into C,
// in blocks of at most kOnednnRows rows of C by kOnednnDepth rows of the reduction: whole, the
// copies and the result (for an LSTM at H = 1024, 26 MB a segment of dG) put a training step's
// peak memory above torch.nn's (bench/results/2026-12-01_cpu_amd-epyc-zen5-2c_memory-session27/).
constexpr int64_t kOnednnMinMacs = int64_t{1} << 26, kOnednnRows = 256, kOnednnDepth = 512;

// C (+)= A^T B as oneDNN's linear(A^T, B^T); false where T is not float, the op is not
// registered (a torch built without oneDNN) or refuses its first call (and the route is then
// turned off).
template <typename T>
bool onednn_weight_product(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                           bool accumulate, T* C, int64_t ldc) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    static const std::optional<c10::OperatorHandle> op =
        c10::Dispatcher::singleton().findOp({"mkldnn::_linear_pointwise", ""});
    if (!op.has_value()) {
      return false;
    }
    const at::Device cpu(at::kCPU);
    const at::Tensor a = view_rows(A, K, M, lda, cpu).t();  // M x K
    const at::Tensor b = view_rows(B, K, N, ldb, cpu).t();  // N x K
    const at::Tensor c = view_rows(C, M, N, ldc, cpu);
    for (int64_t k0 = 0; k0 < K; k0 += kOnednnDepth) {
      const int64_t kn = std::min(kOnednnDepth, K - k0);
      const at::Tensor weight = b.narrow(1, k0, kn).contiguous();
      for (int64_t m0 = 0; m0 < M; m0 += kOnednnRows) {
        const int64_t mn = std::min(kOnednnRows, M - m0);
        std::vector<c10::IValue> stack{a.narrow(0, m0, mn).narrow(1, k0, kn).contiguous(), weight, c10::IValue(),
                                       std::string("none"), c10::List<std::optional<c10::Scalar>>(), c10::IValue()};
        try {
          op->callBoxed(&stack);
        } catch (const c10::Error&) {
          if (k0 > 0 || m0 > 0) {
            throw;  // C is partly written
          }
          onednn_flag().store(false);  // this torch's op refuses: BLAS from now on
          return false;
        }
        at::Tensor dst = c.narrow(0, m0, mn);
        if (accumulate || k0 > 0) {
          dst.add_(stack.at(0).toTensor());
        } else {
          dst.copy_(stack.at(0).toTensor());
        }
      }
    }
    return true;
  }
}

// A weight gradient C (M x N) (+)= A^T B over K rows (BackwardCall::reduce_rows) on the fastest
// of the CPU's routes besides BLAS, or false (gemm.h's gemm then: BLAS, or its path for few
// columns):
// - the capability's own product (weight_grad_tiles; AVX-512, float32), for C at least a
//   register block wide (fewer columns, as for an input of a few features, keep gemm.h's skinny
//   path, measured for them). On Zen 5, two threads, it ran 1.9-2.4x MKL's sgemm on the
//   backward's shapes, and 1.1-2.3x oneDNN's with the transposed copies oneDNN needs (which the
//   training step's profile showed costing almost as much as oneDNN's own product at B = 64,
//   H = 128; bench/results/2026-12-01_cpu_amd-epyc-zen5-2c_probes-session28/);
// - else oneDNN (onednn_flag; where the own product does not apply, as without AVX-512), for
//   large gate_stacked products that gemm.h's skinny path does not take.
template <typename T>
bool weight_product(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                    bool accumulate, T* C, int64_t ldc) {
  if (weight_tiles_flag().load(std::memory_order_relaxed) && N >= pointwise_kernels<T>().weight_product_cols &&
      weight_product_run<T>(M, N, K, A, lda, B, ldb, accumulate, C, ldc)) {
    calls(Path::kWeightProduct).fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  if (onednn_flag().load(std::memory_order_relaxed) && gate_stacked(M, N) && !skinny_shape(M, N, K) &&
      M * N * K >= kOnednnMinMacs && onednn_weight_product<T>(M, N, K, A, lda, B, ldb, accumulate, C, ldc)) {
    calls(Path::kOnednnGemm).fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  return false;
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

  template <typename T>
  static bool forward_sequence(CellKind cell, const LayerArgs& a, bool reverse, bool train,
                               const ForwardStep<T>& st, T* gates, T* out, T* ws) {
    return fused_forward<T>(cell, a, reverse, train, st, gates, out, ws);
  }

  template <typename T, class F, class Flush>
  static bool backward_sequence(CellKind cell, const LayerArgs& a, bool reverse, const BackwardStep<T>& st,
                                const F& set_step, const T* go, int64_t go_ld, const T* gcs, const T* w_hh,
                                const std::vector<BackwardSegment>& segments, const Flush& flush) {
    return fused_backward<T>(cell, a, reverse, st, set_step, go, go_ld, gcs, w_hh, segments, flush);
  }

  // The backward reads a bidirectional layer's halves of grad_output and of the output in
  // place, rows 2P apart (and a grad_output that repeats one row as that row).
  static constexpr bool kStridedRows = true;

  // A projected LSTM's inference forms its input projection a chunk of steps ahead, as the
  // fused steps do: a buffer of kChunkRows rows instead of the whole sequence's gates.
  static constexpr int64_t kInferenceInputChunkRows = kChunkRows;

  // Where autograd consumes the workspace, dG goes over it: the pointwise passes read a row's
  // gates and write its dG in the same lane block, and every step reads the row before (the
  // LSTM's c_{t-1}) in columns dG does not reach.
  static constexpr bool kWritesDgOverWorkspace = true;

  template <typename T>
  using Matmul = PackedMatmul<T>;

  template <typename T>
  static bool weight_gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                          bool accumulate, T* C, int64_t ldc) {
    return weight_product<T>(M, N, K, A, lda, B, ldb, accumulate, C, ldc);
  }

  template <typename T>
  static int64_t backward_chunk_rows(const LayerArgs& a, int64_t sharers) {
    return cpu::backward_chunk_rows(a, sizeof(T), sharers);
  }

  // bfloat16 for a layer whose forward multiplies in bf16 pairs (weight_source: kept casts of
  // bfloat16 weights read as stored, bf16 products on, AVX512-BF16), where torch's bf16 GEMM
  // runs 2.2-3.3x its float32 one (probes-bf16-training).
  template <typename T>
  static at::ScalarType weight_product_dtype(const LayerArgs& a) {
    if (weight_source<T>(a).form == kWeightsBf16Pairs) {
      calls(Path::kBf16Backward).fetch_add(1, std::memory_order_relaxed);
      return at::kBFloat16;
    }
    return c10::CppTypeToScalarType<T>::value;
  }

  // Both directions' sequences in one run is a CUDA launch; the CPU runs them through both().
  static bool runs_pairs() {
    return false;
  }

  template <typename T>
  static bool forward_pair(CellKind, const LayerArgs (&)[2], std::array<const ForwardStep<T>*, 2>, std::array<T*, 2>,
                           std::array<T*, 2>, std::array<T*, 2>) {
    return false;
  }

  template <typename T>
  static bool backward_pair(CellKind, const LayerArgs (&)[2], std::array<const BackwardStep<T>*, 2>,
                            std::array<const T*, 2>, std::array<const T*, 2>, std::array<const T*, 2>) {
    return false;
  }

  // The two directions of a bidirectional layer, f(0) and f(1). Where torch runs exactly two
  // threads, at once, one a thread: each direction then runs on one core (ATen runs the
  // parallel regions nested in this one inline, and the step team alone), and neither waits
  // for the other at every step as the threads of one team do. Otherwise one after the
  // other, each on every thread; and so too the forward of a batch of at most 4 rows whose
  // W_hh (with the rest of a step's data) outgrows a core's L2 cache while half of it fits:
  // split over both threads, each direction's W_hh stays in the two L2s from step to step,
  // while at once each core would stream a whole one from L3 every step (B = 1 inference, 1 MB
  // L2: at once 0.85-0.94x at W_hh = 1-1.2 MB, 1.02-1.07x at 0.56 MB;
  // bench/results/2026-11-28_cpu_amd-epyc-2c_probes-bidirectional/). A training step (forward
  // and backward) runs its directions at once only up to kTrainingAtOnceBatch rows a step: at
  // once both directions' buffers are alive together (the backward's dG and gradients, the
  // forward's packed panels, each about the weights' size), which put the peak memory of a
  // bidirectional training step above torch.nn's (backward at once at B = 64: 1.14-1.47x;
  // forward at once, after training calls stopped keeping panels: 1.06x for the LSTM at
  // H = 1024, 0.92x one after the other), where at once gained 0.97-1.00x for the LSTM and
  // 1.01-1.15x for GRU and RNN at B = 64; at B <= 8 it gains up to 1.35x
  // (2026-11-29_cpu_amd-epyc-2c_memory-bidirectional/, ..._memory-training-panels/).
  static constexpr int64_t kTrainingAtOnceBatch = 16;
  // (PackedMatmul declines below kMatmulMinBatch rows inside a parallel region, as the directions
  // at once run.)
  static_assert(kTrainingAtOnceBatch < kMatmulMinBatch,
                "directions at once must leave grad_input to BLAS: two packed copies of W_ih alive together");

  // Whether both() runs the directions at once; decided once a call, and handed to f.
  static bool at_once(const LayerArgs& a, Pass pass) {
    const bool forward = pass != Pass::kBackward;
    const int64_t l2 = l2_cache_bytes();
    const int64_t w_hh = a.w_hh.numel() * static_cast<int64_t>(a.w_hh.element_size());
    const bool l2_split = forward && a.B <= 4 && l2 > 0 && 4 * w_hh >= 3 * l2 && w_hh <= 2 * l2;
    const bool large_training = pass != Pass::kInferenceForward && a.B > kTrainingAtOnceBatch;
    return concurrent_flag().load() && !l2_split && !large_training && at::get_num_threads() == 2 &&
        !at::in_parallel_region();
  }

  template <class F>
  static void both(const LayerArgs& a, Pass pass, const F& f) {
    const bool together = at_once(a, pass);
    if (together) {
      calls(pass != Pass::kBackward ? Path::kAtOnceForward : Path::kAtOnceBackward)
          .fetch_add(1, std::memory_order_relaxed);
      const at::ThreadLocalState state;  // the caller's grad and inference modes, for the ATen calls inside
      at::parallel_for(0, 2, 1, [&](int64_t d0, int64_t d1) {
        const at::ThreadLocalStateGuard guard(state);
        for (int64_t d = d0; d < d1; ++d) {
          f(static_cast<int>(d), true);
        }
      });
      return;
    }
    f(0, false);
    f(1, false);
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

bool set_fused_steps(bool on) {
  return fused_flag().exchange(on);
}

bool fused_steps() {
  return fused_flag().load();
}

int64_t forward_calls(bool dots) {
  return calls(dots ? Path::kDots : Path::kPanels).load();
}

int64_t narrow_forward_calls() {
  return calls(Path::k16BitWeights).load();
}

int64_t bf16_dot_forward_calls() {
  return calls(Path::kBf16Dot).load();
}

int64_t bf16_backward_calls() {
  return calls(Path::kBf16Backward).load();
}

int64_t bf16_rounded_once_calls(bool forward) {
  return calls(forward ? Path::kBf16RoundedForward : Path::kBf16RoundedBackward).load();
}

bool bf16_dot_products() {
  return bf16_dot_flag().load() && bf16_dot_available(pointwise_kernels<float>());
}

bool set_bf16_dot_products(bool on) {
  return bf16_dot_flag().exchange(on);
}

bool set_bf16_round_once(bool on) {
  return bf16_round_once_flag().exchange(on);
}

bool read_16bit_weights() {
  return narrow_flag().load();
}

bool set_read_16bit_weights(bool on) {
  return narrow_flag().exchange(on);
}

int64_t directions_at_once_calls(bool forward) {
  return calls(forward ? Path::kAtOnceForward : Path::kAtOnceBackward).load();
}

int64_t input_grad_panel_calls() {
  return calls(Path::kInputGradPanels).load();
}

int64_t blas_backward_calls() {
  return calls(Path::kBlasBackward).load();
}

int64_t blas_panel_bytes() {
  return blas_panel_bytes_setting().load();
}

int64_t set_blas_panel_bytes(int64_t bytes) {
  TORCH_CHECK(bytes >= 0, "fused_rnn: the panel bytes from which the backward uses BLAS must be >= 0, got ", bytes);
  return blas_panel_bytes_setting().exchange(bytes);
}

int64_t l2_cache_bytes() {
  static const int64_t l2 = [] {
#if defined(_SC_LEVEL2_CACHE_SIZE)
    const long n = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return n > 0 ? static_cast<int64_t>(n) : int64_t{0};
#else
    return int64_t{0};
#endif
  }();
  return l2;
}

bool concurrent_directions() {
  return concurrent_flag().load();
}

int64_t backward_chunk_bytes() {
  return chunk_bytes().load();
}

int64_t set_backward_chunk_bytes(int64_t bytes) {
  TORCH_CHECK(bytes >= 0, "fused_rnn: the backward's chunk of dG must be at least 0 bytes, got ", bytes);
  return chunk_bytes().exchange(bytes);
}

int64_t backward_chunk_min_rows() {
  return chunk_min_rows().load();
}

int64_t set_backward_chunk_min_rows(int64_t rows) {
  TORCH_CHECK(rows >= 1, "fused_rnn: the backward's chunk of dG must be at least 1 row, got ", rows);
  return chunk_min_rows().exchange(rows);
}

int64_t backward_chunk_rows(const LayerArgs& a, int64_t element_size, int64_t sharers) {
  const int64_t bytes = chunk_bytes().load(std::memory_order_relaxed);
  const int64_t min_rows = chunk_min_rows().load(std::memory_order_relaxed);
  // A row of dG, and of dGh for the GRU.
  const int64_t row = (a.G * a.H + (a.cell == CellKind::kGru ? a.H : 0)) * element_size;
  return bytes == 0 || row == 0 ? a.N
                                : std::max(min_rows, bytes / std::max<int64_t>(1, sharers) / row);
}

bool weight_grad_tiles() {
  return weight_tiles_flag().load();
}

bool set_weight_grad_tiles(bool on) {
  return weight_tiles_flag().exchange(on);
}

int64_t weight_product_calls() {
  return calls(Path::kWeightProduct).load();
}

bool onednn_gemm_on() {
  return onednn_flag().load();
}

bool set_onednn_gemm(bool on) {
  return onednn_flag().exchange(on);
}

int64_t onednn_gemm_calls() {
  return calls(Path::kOnednnGemm).load();
}

template <typename T>
bool weight_product_run(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                        bool accumulate, T* C, int64_t ldc) {
  const auto& kern = pointwise_kernels<T>();
  if (kern.weight_product == nullptr) {
    return false;
  }
  const int64_t mr = kern.weight_product_rows;
  const int64_t strips = (M + mr - 1) / mr;
  // A thread's share is at least ~1M multiply-adds (fewer run on the calling thread alone).
  const int64_t per_strip = std::max<int64_t>(1, mr * N * K);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / per_strip);
  at::parallel_for(0, strips, grain, [&](int64_t s0, int64_t s1) {
    kern.weight_product(s0 * mr, std::min(M, s1 * mr), N, K, A, lda, B, ldb, accumulate, C, ldc);
  });
  return true;
}

template bool weight_product_run<float>(int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, bool,
                                        float*, int64_t);
template bool weight_product_run<double>(int64_t, int64_t, int64_t, const double*, int64_t, const double*, int64_t,
                                         bool, double*, int64_t);

bool set_concurrent_directions(bool on) {
  return concurrent_flag().exchange(on);
}

std::string cpu_dots() {
  return kDotModes[dot_mode().load()];
}

std::string set_cpu_dots(const std::string& mode) {
  return kDotModes[dot_mode().exchange(parse_dot_mode(mode))];
}

TORCH_LIBRARY_IMPL(fused_rnn, CPU, m) {
  register_layer_ops<CpuBackend>(m);
}

}  // namespace fused_rnn::cpu
