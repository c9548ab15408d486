#include "tier.h"

#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>
#include <string>

namespace fused_rnn {
namespace {

bool parse_tier(const std::string& name, CudaTier* out) {
  if (name == "alternating") {
    *out = CudaTier::kAlternating;
  } else if (name == "persistent") {
    *out = CudaTier::kPersistent;
  } else if (name == "auto" || name.empty()) {
    *out = CudaTier::kAuto;
  } else {
    return false;
  }
  return true;
}

std::atomic<int>& tier_flag() {
  static std::atomic<int> tier{[] {
    const char* env = std::getenv("FUSED_RNN_TIER");
    CudaTier t = CudaTier::kAuto;
    // An unknown value is reported when a CUDA layer first asks (cuda_tier), not at import.
    if (env != nullptr && !parse_tier(env, &t)) {
      return -1;
    }
    return static_cast<int>(t);
  }()};
  return tier;
}

std::atomic<int64_t> launches[2], mma_launches[2], pair_launches[2], cluster_launches[2], dsmem_launches[2],
    flags_launches[2];

std::atomic<bool>& mma_flag() {
  static std::atomic<bool> on{env_switch("FUSED_RNN_PERSISTENT_MMA")};
  return on;
}

std::atomic<bool>& cluster_flag() {
  static std::atomic<bool> on{env_switch("FUSED_RNN_PERSISTENT_CLUSTER")};
  return on;
}

std::atomic<bool>& dsmem_flag() {
  static std::atomic<bool> on{env_switch("FUSED_RNN_PERSISTENT_DSMEM")};
  return on;
}

std::atomic<bool>& flags_flag() {
  static std::atomic<bool> on{env_switch("FUSED_RNN_PERSISTENT_FLAGS", false)};
  return on;
}

}  // namespace

bool env_switch(const char* name, bool fallback) {
  const char* env = std::getenv(name);
  return env == nullptr ? fallback : std::string(env) != "0";
}

CudaTier cuda_tier() {
  const int t = tier_flag().load(std::memory_order_relaxed);
  TORCH_CHECK(t >= 0, "FUSED_RNN_TIER must be one of alternating, persistent, auto; got '",
              std::getenv("FUSED_RNN_TIER") ? std::getenv("FUSED_RNN_TIER") : "", "'");
  return static_cast<CudaTier>(t);
}

const char* cuda_tier_name(CudaTier tier) {
  switch (tier) {
    case CudaTier::kAlternating: return "alternating";
    case CudaTier::kPersistent: return "persistent";
    default: return "auto";
  }
}

std::string cuda_tier_setting() {
  const int t = tier_flag().load(std::memory_order_relaxed);
  return t < 0 ? std::string("invalid") : std::string(cuda_tier_name(static_cast<CudaTier>(t)));
}

std::string set_cuda_tier(const std::string& name) {
  CudaTier t;
  TORCH_CHECK_VALUE(parse_tier(name, &t), "tier must be one of alternating, persistent, auto; got '", name, "'");
  const int old = tier_flag().exchange(static_cast<int>(t));
  return old < 0 ? std::string("invalid") : std::string(cuda_tier_name(static_cast<CudaTier>(old)));
}

bool persistent_mma() {
  return mma_flag().load(std::memory_order_relaxed);
}

bool set_persistent_mma(bool on) {
  return mma_flag().exchange(on);
}

void count_persistent_launch(bool forward, bool mma) {
  launches[forward ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
  if (mma) {
    mma_launches[forward ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
  }
}

int64_t persistent_mma_launches(bool forward) {
  return mma_launches[forward ? 0 : 1].load(std::memory_order_relaxed);
}

int64_t persistent_launches(bool forward) {
  return launches[forward ? 0 : 1].load(std::memory_order_relaxed);
}

void count_persistent_pair_launch(bool forward) {
  pair_launches[forward ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
}

int64_t persistent_pair_launches(bool forward) {
  return pair_launches[forward ? 0 : 1].load(std::memory_order_relaxed);
}

bool persistent_cluster() {
  return cluster_flag().load(std::memory_order_relaxed);
}

bool set_persistent_cluster(bool on) {
  return cluster_flag().exchange(on);
}

void count_persistent_cluster_launch(bool forward) {
  cluster_launches[forward ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
}

int64_t persistent_cluster_launches(bool forward) {
  return cluster_launches[forward ? 0 : 1].load(std::memory_order_relaxed);
}

bool persistent_dsmem() {
  return dsmem_flag().load(std::memory_order_relaxed);
}

bool set_persistent_dsmem(bool on) {
  return dsmem_flag().exchange(on);
}

void count_persistent_dsmem_launch(bool forward) {
  dsmem_launches[forward ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
}

int64_t persistent_dsmem_launches(bool forward) {
  return dsmem_launches[forward ? 0 : 1].load(std::memory_order_relaxed);
}

#ifndef FUSED_RNN_WITH_CUDA
bool cuda_kernels_run_on(int) {
  return false;
}
#endif

bool persistent_flags() {
  return flags_flag().load(std::memory_order_relaxed);
}

bool set_persistent_flags(bool on) {
  return flags_flag().exchange(on);
}

void count_persistent_flags_launch(bool forward) {
  flags_launches[forward ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
}

int64_t persistent_flags_launches(bool forward) {
  return flags_launches[forward ? 0 : 1].load(std::memory_order_relaxed);
}

}  // namespace fused_rnn
