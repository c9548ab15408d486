#include "panel_cache.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <string>

namespace fused_rnn::cpu {
namespace {

constexpr size_t kMaxEntries = 64;
constexpr int64_t kMaxWeightBytes = 8 << 20;
constexpr int kCastRole = 2;
constexpr int64_t kMaxCastBytes = int64_t{64} << 20;

struct Entry {
  c10::weak_intrusive_ptr<c10::TensorImpl> weight;
  const c10::TensorImpl* impl;
  const void* data;
  int64_t version;
  std::vector<int64_t> sizes;
  at::ScalarType dtype;
  PanelLayout layout;
  at::Tensor panels;
  at::Tensor contents;  // a cast's weight as it was cast; undefined for panels (see find_panels)
};

// The cache's lock. Work under it may take the GIL (locking an entry's weak reference to a
// weight, or dropping an entry, can touch the tensor's Python object), so it must never be taken
// while holding the GIL: the ops are called without it, and the two Python entry points that
// reach it (_kept_cast, _set_cpu_panel_cache: ops.cpp) release it first.
std::mutex& lock() {
  static std::mutex m;
  return m;
}

std::list<Entry>& entries() {  // most recently used first
  static std::list<Entry> e;
  return e;
}

std::atomic<bool>& enabled() {
  static std::atomic<bool> on{[] {
    const char* env = std::getenv("FUSED_RNN_CPU_PANEL_CACHE");
    return env == nullptr || std::string(env) != "0";
  }()};
  return on;
}

// Where w is (an alias of) a cast kept by kept_cast whose weight is unchanged, that cast:
// the key its panels are kept under, so the fresh alias a training call gets each time
// (functional.py) finds them too. Its contents need no comparison, since kept_cast compared
// the weight's bytes when the call began, and nothing outside this library holds the cast
// to write into it (a write that bumps its version ends the trust, kept_cast_source).
// Panels of such a cast follow the casts' size limit too.
at::Tensor trusted_key(const at::Tensor& w, const PanelLayout& l) {
  return l.role != kCastRole ? kept_cast_source(w).cast : at::Tensor();
}

bool trackable(const at::Tensor& w, const PanelLayout& l, bool trust) {
  return enabled().load(std::memory_order_relaxed) && w.defined() && !w.is_inference() && w.is_contiguous() &&
      static_cast<int64_t>(w.nbytes()) <= (l.role == kCastRole || trust ? kMaxCastBytes : kMaxWeightBytes);
}

std::atomic<int64_t>& count(CacheCall c) {
  static std::atomic<int64_t> counts[4];
  return counts[static_cast<int>(c)];
}

// Bytes a task of a cast's comparison compares; weights over twice this are compared on all
// threads. (Panels were compared so too until they were checked tile by tile, panel_cache.h.)
// 64 KB (from 1 MB) sped up B=1 LSTM/GRU calls that find their panels 1.09-1.13x at H = 256 (1 MB
// weights, compared on one core before) and 0.99-1.11x at H = 128, with torch.nn's call between
// (caches cold, as in the benchmark), and changed nothing where the weights were already
// compared in parallel or read in place (2026-11-30, Ice Lake, 2 threads;
// bench/results/2026-11-30_cpu_intel-xeon-icelake-2c_probes-session22/compare_chunk_*.txt).
// _C._set_cpu_compare_chunk sets it, for such A/Bs.
constexpr int64_t kCompareChunk = int64_t{64} << 10;

std::atomic<int64_t>& compare_chunk() {
  static std::atomic<int64_t> bytes{kCompareChunk};
  return bytes;
}

// Whether n bytes at a and b are equal: in parallel chunks for a large weight, whose
// comparison on one core at batch 1 is a good part of a call (two 8 MB bf16 weights: about
// 0.5 ms of 6).
bool equal_bytes(const void* a, const void* b, int64_t n) {
  const int64_t chunk = std::max<int64_t>(4096, compare_chunk().load(std::memory_order_relaxed));
  if (n <= 2 * chunk || at::in_parallel_region()) {
    return std::memcmp(a, b, n) == 0;
  }
  std::atomic<bool> equal{true};
  at::parallel_for(0, (n + chunk - 1) / chunk, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1 && equal.load(std::memory_order_relaxed); ++c) {
      const int64_t off = c * chunk, len = std::min(chunk, n - off);
      if (std::memcmp(static_cast<const char*>(a) + off, static_cast<const char*>(b) + off, len) != 0) {
        equal.store(false, std::memory_order_relaxed);
      }
    }
  });
  return equal.load();
}

// Whether e is w's as far as can be told without its contents.
bool same_tensor(const Entry& e, const at::Tensor& w, const PanelLayout& l) {
  return !e.weight.expired() && e.impl == w.unsafeGetTensorImpl() && e.data == w.const_data_ptr() &&
      e.version == w._version() && e.sizes == w.sizes().vec() && e.dtype == w.scalar_type() &&
      e.layout.role == l.role && e.layout.cell == l.cell && e.layout.kernels == l.kernels;
}

// A cast's contents compared here; panels of a trusted weight need no comparison, others are
// compared by the caller (find_panels: unchecked).
bool same(const Entry& e, const at::Tensor& w, const PanelLayout& l) {
  return same_tensor(e, w, l) &&
      (!e.contents.defined() || equal_bytes(e.contents.const_data_ptr(), w.const_data_ptr(), w.nbytes()));
}

}  // namespace

FoundPanels find_panels(const at::Tensor& w_in, const PanelLayout& layout) {
  const at::Tensor key = trusted_key(w_in, layout);
  const bool trust = key.defined();
  const at::Tensor& w = trust ? key : w_in;
  if (!trackable(w, layout, trust)) {
    return {};
  }
  std::lock_guard<std::mutex> g(lock());
  auto& e = entries();
  for (auto it = e.begin(); it != e.end(); ++it) {
    if (same(*it, w, layout)) {
      e.splice(e.begin(), e, it);
      const bool unchecked = layout.role != kCastRole && !trust;
      if (layout.role != kCastRole && !unchecked) {
        count(CacheCall::kPanelsFound).fetch_add(1, std::memory_order_relaxed);
      }
      return {e.front().panels, unchecked};
    }
  }
  if (layout.role != kCastRole) {
    count(CacheCall::kPanelsMissed).fetch_add(1, std::memory_order_relaxed);
  }
  return {};
}

void panels_checked(const at::Tensor& w, const PanelLayout& layout, bool matched) {
  if (matched) {
    count(CacheCall::kPanelsFound).fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::lock_guard<std::mutex> g(lock());
  entries().remove_if([&](const Entry& x) { return same_tensor(x, w, layout); });
}

void keep_panels(const at::Tensor& w_in, const PanelLayout& layout, const at::Tensor& panels) {
  const at::Tensor key = trusted_key(w_in, layout);
  const bool trust = key.defined();
  const at::Tensor& w = trust ? key : w_in;
  if (!trackable(w, layout, trust)) {
    return;
  }
  std::lock_guard<std::mutex> g(lock());
  auto& e = entries();
  // Drop what can never be found again: dead weights, and older packings of this one.
  e.remove_if([&](const Entry& x) {
    return x.weight.expired() ||
        (x.impl == w.unsafeGetTensorImpl() && x.layout.role == layout.role && x.layout.cell == layout.cell &&
         x.layout.kernels == layout.kernels);
  });
  e.push_front(Entry{c10::weak_intrusive_ptr<c10::TensorImpl>(w.getIntrusivePtr()), w.unsafeGetTensorImpl(),
                     w.const_data_ptr(), w._version(), w.sizes().vec(), w.scalar_type(), layout, panels,
                     layout.role == kCastRole ? w.clone() : at::Tensor()});
  while (e.size() > kMaxEntries) {
    e.pop_back();
  }
}

bool panels_cacheable(const at::Tensor& w) {
  const PanelLayout any{0, 0, nullptr};
  const at::Tensor key = trusted_key(w, any);
  return trackable(key.defined() ? key : w, any, key.defined());
}

at::Tensor kept_cast(const at::Tensor& w, at::ScalarType dtype) {
  const PanelLayout layout{kCastRole, static_cast<int>(dtype), nullptr};
  at::Tensor cast = find_panels(w, layout).panels;
  const bool kept = cast.defined();
  if (!kept) {
    cast = w.detach().to(dtype);
    keep_panels(w, layout, cast);
  }
  count(kept ? CacheCall::kCastKept : CacheCall::kCastMade).fetch_add(1, std::memory_order_relaxed);
  return cast;
}

int64_t cache_calls(CacheCall c) {
  return count(c).load();
}

CastSource kept_cast_source(const at::Tensor& cast) {
  CastSource src;
  if (!cast.defined() || cast.is_inference() || cast._version() != 0) {
    return src;
  }
  std::lock_guard<std::mutex> g(lock());
  for (const Entry& e : entries()) {
    // The cast itself or an alias of it (detach() shares its storage and version counter); no
    // other tensor can start at its data while the entry keeps that storage alive.
    if (e.layout.role != kCastRole || !e.panels.defined() || e.panels.const_data_ptr() != cast.const_data_ptr() ||
        e.panels.sizes() != cast.sizes() || e.panels.strides() != cast.strides() ||
        e.panels.scalar_type() != cast.scalar_type()) {
      continue;
    }
    auto w = e.weight.lock();
    if (w && w.get() == e.impl && w->version_counter().current_version() == static_cast<uint32_t>(e.version) &&
        w->data() == e.data) {
      src.dtype = e.dtype;
      src.data = e.data;
      src.weight = at::Tensor(std::move(w));
      src.cast = e.panels;
    }
    break;
  }
  return src;
}

int64_t set_compare_chunk(int64_t bytes) {
  return compare_chunk().exchange(bytes);
}

bool panel_cache_enabled() {
  return enabled().load();
}

bool set_panel_cache(bool on) {
  const bool previous = enabled().exchange(on);
  if (!on) {
    std::lock_guard<std::mutex> g(lock());
    entries().clear();
  }
  return previous;
}

}  // namespace fused_rnn::cpu
