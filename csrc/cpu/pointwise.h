// The table of pointwise passes (one step, a block of rows) for every cell, and
// the choice of the CPU capability they were compiled for.
//
// pointwise_impl.h holds the passes, written on at::vec::Vectorized; each
// pointwise_<capability>.cpp compiles them for one instruction set, and the best
// one the CPU supports is picked at first use (FUSED_RNN_CPU_CAPABILITY=default|
// avx2|avx512 overrides it).
#pragma once

#include <string>

#include "../cells.h"

// x86-64 builds with GCC compile extra AVX2 and AVX-512 copies of the passes.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FUSED_RNN_X86_DISPATCH 1
#else
#define FUSED_RNN_X86_DISPATCH 0
#endif

namespace fused_rnn::cpu {

template <typename T>
struct PointwiseKernels {
  using Forward = void (*)(const ForwardStep<T>&, int64_t r0, int64_t r1);
  using Backward = void (*)(const BackwardStep<T>&, int64_t r0, int64_t r1);
  Forward forward[4];   // indexed by CellKind
  Backward backward[4];
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

}  // namespace fused_rnn::cpu
