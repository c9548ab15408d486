// The pointwise passes compiled for AVX-512 (F, BW, VL, DQ); used only where the CPU has them.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13 && (defined(__x86_64__) || defined(__i386__))
// GCC 12's avx512fintrin.h makes its undefined vectors by initialising them from themselves
// (`__m512 __Y = __Y;`), which -Wall reports as used uninitialised wherever an intrinsic built on
// one is inlined: about 900 warnings in this file, none about this project's code. GCC 13 and newer
// silence them in the header itself; here its first inclusion does, as its lines keep the state
// in force where they were read.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
#include "pointwise.h"
#if FUSED_RNN_X86_DISPATCH
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
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
#define __AVX512F__ 1
#define __AVX512BW__ 1
#define __AVX512VL__ 1
#define __AVX512DQ__ 1
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#define FUSED_RNN_CAPABILITY_NS cap_avx512
#include "pointwise_impl.h"
#endif
