// Picks the pointwise kernels for the CPU this runs on.
#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>

#include "pointwise.h"

namespace fused_rnn::cpu {
namespace {

enum class Capability { kDefault = 0, kAvx2 = 1, kAvx512 = 2 };

const char* name_of(Capability c) {
  switch (c) {
    case Capability::kAvx2: return "avx2";
    case Capability::kAvx512: return "avx512";
    default: return "default";
  }
}

bool supported(Capability c) {
#if FUSED_RNN_X86_DISPATCH
  switch (c) {
    case Capability::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Capability::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
          __builtin_cpu_supports("fma");
    default:
      return true;
  }
#else
  return c == Capability::kDefault;
#endif
}

Capability parse(const std::string& name) {
  for (Capability c : {Capability::kDefault, Capability::kAvx2, Capability::kAvx512}) {
    if (name == name_of(c)) {
      TORCH_CHECK(supported(c), "fused_rnn: CPU capability '", name, "' is not available on this CPU or build");
      return c;
    }
  }
  TORCH_CHECK(false, "fused_rnn: unknown CPU capability '", name, "'; expected default, avx2 or avx512");
}

Capability best() {
  if (const char* env = std::getenv("FUSED_RNN_CPU_CAPABILITY")) {
    return parse(env);
  }
  for (Capability c : {Capability::kAvx512, Capability::kAvx2}) {
    if (supported(c)) {
      return c;
    }
  }
  return Capability::kDefault;
}

std::atomic<int>& current() {
  static std::atomic<int> c{static_cast<int>(best())};
  return c;
}

// A capability's table, made only where the CPU has that capability (the default table
// otherwise, which parse() never selects under that name): the function that fills it is
// compiled for the instruction set, and the compiler is free to use it there (the AVX-512 one
// did, and crashed on an AVX2-only CPU at the first call of any kernel).
template <typename T>
PointwiseKernels<T> make(Capability c) {
  switch (supported(c) ? c : Capability::kDefault) {
#if FUSED_RNN_X86_DISPATCH
    case Capability::kAvx2: return cap_avx2::pointwise_kernels<T>();
    case Capability::kAvx512: return cap_avx512::pointwise_kernels<T>();
#endif
    default: return cap_default::pointwise_kernels<T>();
  }
}

template <typename T>
struct AllKernels {
  PointwiseKernels<T> by_capability[3] = {
      make<T>(Capability::kDefault), make<T>(Capability::kAvx2), make<T>(Capability::kAvx512)};
};

}  // namespace

template <typename T>
const PointwiseKernels<T>& pointwise_kernels() {
  static const AllKernels<T> all;
  return all.by_capability[current().load(std::memory_order_relaxed)];
}

template const PointwiseKernels<float>& pointwise_kernels<float>();
template const PointwiseKernels<double>& pointwise_kernels<double>();

std::string cpu_capability() {
  return name_of(static_cast<Capability>(current().load()));
}

std::string set_cpu_capability(const std::string& name) {
  const std::string previous = cpu_capability();
  current().store(static_cast<int>(parse(name)));
  return previous;
}

}  // namespace fused_rnn::cpu
