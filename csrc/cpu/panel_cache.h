// Packed weight panels kept from one call to the next while the weight is unchanged.
//
// Packing W_hh and W_ih into tile panels is a transpose of the whole weight; at
// batch 1 it costs as much as tens of steps. A panel is used again only for the
// same live tensor (same TensorImpl, held weakly) at the same data pointer and
// version, and only after its contents are seen to be what packing the weight now
// would give: writes through `.data` or a raw pointer leave the version counter alone,
// so the version alone cannot be trusted (gradcheck perturbs weights that way). That
// check is the caller's (find_panels returns such panels `unchecked`): the fused steps
// compare each tile's panel with its rows of the weight on the thread that then reads
// the panel (TileKernels::tile_matches), so the weight is read once, no copy of it is
// kept, and the panel is left in that thread's cache for the steps.
// Inference tensors carry no version counter and are never cached, nor are weights
// over kMaxWeightBytes (their calls are long enough that packing does not show).
// Panels of a cast kept by kept_cast (below) need no check: kept_cast compared its
// weight with a copy when the call began, and no one else holds the cast; they are kept
// up to the casts' size limit.
// FUSED_RNN_CPU_PANEL_CACHE=0 or fused_rnn._C._set_cpu_panel_cache(False) turn it off.
#pragma once

#include <ATen/ATen.h>

namespace fused_rnn::cpu {

// What a panel was packed as: the weight's role, the cell, and the kernel table
// (instruction set and dtype) whose geometry it follows.
struct PanelLayout {
  int role;      // 0: W_hh tiles (forward), 1: W_ih tiles (input projection), 2: a cast (kept_cast)
  int cell;      // for a cast, the ScalarType cast to
  const void* kernels;
};

// The panels packed from w with layout (undefined where none are kept). Where `unchecked`,
// they are w's panels only if w's contents have not changed behind its version counter:
// the caller compares them with w before using them and reports with panels_checked.
struct FoundPanels {
  at::Tensor panels;
  bool unchecked = false;
};
FoundPanels find_panels(const at::Tensor& w, const PanelLayout& layout);

// The caller's comparison of unchecked panels found for w: panels that match count as
// found; those that do not are forgotten (and the caller packs afresh, a miss then).
void panels_checked(const at::Tensor& w, const PanelLayout& layout, bool matched);

// Keeps panels for later calls (a no-op for tensors that cannot be tracked).
void keep_panels(const at::Tensor& w, const PanelLayout& layout, const at::Tensor& panels);

// Whether panels packed from w would be kept for later calls.
bool panels_cacheable(const at::Tensor& w);

// w cast to dtype, kept under the same rules: the very same tensor from call to call while
// w is unchanged (so panels packed from it are found again too), a fresh cast where w
// cannot be tracked. For low-precision CPU weights, which the kernels read as float32:
// casting a large weight afresh costs more than the kernels at a small batch (the new
// buffer's pages fault in on every call). Limit kMaxCastBytes (64 MB) of w.
at::Tensor kept_cast(const at::Tensor& w, at::ScalarType dtype);

// Calls so far of kept_cast that found their cast kept or made it, and of find_panels (for
// panels, not casts) for a trackable weight that found its panels (unchecked ones once the
// check matched) or not.
enum class CacheCall { kCastKept, kCastMade, kPanelsFound, kPanelsMissed };
int64_t cache_calls(CacheCall c);

// Where `cast` is a cast kept by kept_cast (or an alias of one) and untouched since (version
// 0), with its weight alive and at the data pointer and version it had when last found
// unchanged: that weight (its data and dtype) and the kept cast itself. Otherwise data is null.
struct CastSource {
  at::Tensor weight;
  at::Tensor cast;
  const void* data = nullptr;
  at::ScalarType dtype = at::kFloat;
};
CastSource kept_cast_source(const at::Tensor& cast);

bool panel_cache_enabled();
bool set_panel_cache(bool on);  // returns the previous setting; off also empties the cache
int64_t set_compare_chunk(int64_t bytes);  // bytes a task of a weight's comparison compares; returns the previous

}  // namespace fused_rnn::cpu
