// The pointwise passes compiled for AVX2 + FMA; used only where the CPU has both.
#include "pointwise.h"
#if FUSED_RNN_X86_DISPATCH
#pragma GCC target("avx2,fma,f16c")
// GCC's C++ front end does not define the feature macros for a target pragma, and
// sleef.h and ATen's vector headers decide what to declare by them.
#define __SSE3__ 1
#define __SSSE3__ 1
#define __SSE4_1__ 1
#define __SSE4_2__ 1
#define __AVX__ 1
#define __AVX2__ 1
#define __FMA__ 1
#define __F16C__ 1
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#define FUSED_RNN_CAPABILITY_NS cap_avx2
#include "pointwise_impl.h"
#endif
