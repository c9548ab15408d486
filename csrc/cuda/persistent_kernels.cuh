// The device code of the persistent tier (persistent.cu has the host side and the
// design notes). Kept free of ATen and of the CUDA runtime API so that the same
// source also compiles as plain C++ against tests/cuda_emu/emu.h, which runs the
// kernels with one OS thread per CUDA thread: the test suite checks the kernels'
// indexing, staging and barriers on any machine. What the emulator cannot show
// (the memory model of a real GPU, ld.global.cg, timing) needs a GPU run.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "../cell_math.h"
#include "../cells.h"

#if !defined(__CUDACC__)
#include <chrono>
#endif

#if defined(__CUDACC__)
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>
#define FR_DYNAMIC_SMEM(name) extern __shared__ __align__(128) unsigned char name[]
#endif

namespace fused_rnn::cuda::persistent {

#ifndef FR_PERSISTENT_THREADS
#define FR_PERSISTENT_THREADS 256
#endif
constexpr int kThreads = FR_PERSISTENT_THREADS;
constexpr int kWarps = kThreads / 32;

template <CellKind C>
constexpr int kGates = C == CellKind::kLstm ? 4 : (C == CellKind::kGru ? 3 : 1);

constexpr size_t align16(size_t n) {
  return (n + 15) / 16 * 16;
}

constexpr size_t align128(size_t n) {
  return (n + 127) / 128 * 128;
}

// The tensor-core (WMMA) form of T's products, where T has one: `type` is the element
// type the fragments load (CUDA's own 16-bit types on the GPU, bit-compatible with c10's;
// c10's in the emulator; float for TF32), kK the depth of an MMA tile (16 for the 16-bit
// types, 8 for TF32), tf32 whether the fragments are TF32 rounded from float.
template <typename E, int K, bool Tf32>
struct MmaForm {
  static constexpr bool ok = true;
  using type = E;
  static constexpr int kK = K;
  static constexpr bool tf32 = Tf32;
};
template <typename T>
struct MmaElem {
  static constexpr bool ok = false;
  using type = T;
  static constexpr int kK = 16;
  static constexpr bool tf32 = false;
};
#if defined(__CUDACC__)
template <>
struct MmaElem<c10::Half> : MmaForm<__half, 16, false> {};
template <>
struct MmaElem<c10::BFloat16> : MmaForm<__nv_bfloat16, 16, false> {};
#else
template <>
struct MmaElem<c10::Half> : MmaForm<c10::Half, 16, false> {};
template <>
struct MmaElem<c10::BFloat16> : MmaForm<c10::BFloat16, 16, false> {};
#endif
template <>
struct MmaElem<float> : MmaForm<float, 8, true> {};

// Tensor-core products: 16 x 16 output tiles (WMMA), at most this many accumulator tiles a warp.
constexpr int kMmaTile = 16;
constexpr int kMmaItemsPerWarp = 4;

// A load that bypasses L1, for data other CTAs wrote before the last grid barrier.
template <typename T>
__device__ __forceinline__ T load_cg(const T* p) {
  if constexpr (sizeof(T) == 2) {
    const unsigned short bits = __ldcg(reinterpret_cast<const unsigned short*>(p));
    T v;
    memcpy(&v, &bits, sizeof(T));
    return v;
  } else {
    return __ldcg(p);
  }
}

// Asks for n elements from p into L2 ahead of their use, one prefetch a 128-byte line: a
// hint with no effect on any result (and nothing at all in the emulator).
template <typename T>
__device__ __forceinline__ void prefetch_l2(const T* p, int64_t n) {
#if defined(__CUDA_ARCH__)
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t o = 0; o < n * static_cast<int64_t>(sizeof(T)); o += 128) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(c + o));
  }
#else
  (void)p;
  (void)n;
#endif
}

// Grid mode's per-step flags (Launch::flags): a CTA's count of the steps whose products' input
// it has written, stored with release semantics at GPU scope, read with acquire semantics (the
// emulator: C++ release/acquire atomics, which ThreadSanitizer checks). Before sm_70 (no
// .release/.acquire in PTX): volatile accesses with fences on both sides.
__device__ __forceinline__ void store_release(unsigned* p, unsigned v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
  asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
#elif defined(__CUDA_ARCH__)
  __threadfence();
  *reinterpret_cast<volatile unsigned*>(p) = v;
#else
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
#endif
}

__device__ __forceinline__ unsigned load_acquire(const unsigned* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
#elif defined(__CUDA_ARCH__)
  const unsigned v = *reinterpret_cast<const volatile unsigned*>(p);
  __threadfence();
  return v;
#else
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
#endif
}

// A spin-wait's clock (ns) and one pause of it. A wait that has lasted kSpinLimitNs ends the
// launch with an error (__trap), which no step of a co-resident grid comes near: a wait that
// cannot end fails instead of hanging the process.
constexpr uint64_t kSpinLimitNs = 20ull * 1000 * 1000 * 1000;

__device__ __forceinline__ uint64_t spin_clock() {
#if defined(__CUDA_ARCH__)
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
#elif defined(__CUDACC__)
  return 0;
#else
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
#endif
}

__device__ __forceinline__ void spin_pause(uint64_t start) {
#if defined(__CUDA_ARCH__)
#if __CUDA_ARCH__ >= 700
  __nanosleep(32);
#endif
  if (spin_clock() - start > kSpinLimitNs) {
    __trap();
  }
#elif !defined(__CUDACC__)
  std::this_thread::yield();
  if (spin_clock() - start > kSpinLimitNs) {
    emu::fail("a step flag's wait did not end");
  }
#else
  (void)start;
#endif
}

// The step layout: dense sequences pass no tables (B rows a step at offset t*B).
struct Steps {
  const int64_t* sizes = nullptr;    // (T,) on the device, or null when dense
  const int64_t* offsets = nullptr;  // (T,)
  int64_t T = 0, B = 0;
  bool reverse = false;

  __device__ int64_t rows(int64_t t) const { return sizes ? sizes[t] : B; }
  __device__ int64_t offset(int64_t t) const { return sizes ? offsets[t] : t * B; }

  // Step s of the processing order: its rows and first row, and how many of its rows
  // carry their state in from the step processed before it (at prev_off; the others
  // start from hx, cx).
  struct Rows {
    int64_t rows, off, prev_rows, prev_off;
  };
  __device__ Rows at(int64_t s) const {
    const int64_t t = reverse ? T - 1 - s : s, tp = reverse ? t + 1 : t - 1;
    Rows r{rows(t), offset(t), 0, 0};
    if (tp >= 0 && tp < T) {
      r.prev_rows = min(r.rows, rows(tp));
      r.prev_off = offset(tp);
    }
    return r;
  }
};

// The shared-memory layout common to both kernels.
struct Tiling {
  int U = 0;    // hidden units a CTA owns
  int R = 0;    // weight rows in shared memory (forward G*U, backward U)
  int K = 0;    // their length (forward H, backward G*H)
  int kc = 0;   // columns of X staged at once
  int bb = 0;   // batch rows staged at once
  // Ws holds rows_w rows of ldw (R and K; with mma, both rounded up to 16, zeros between).
  int rows_w = 0, ldw = 0;
  bool mma = false;  // products on the tensor cores (MmaElem<T>: 16-bit types, float as TF32)
  int ksplit = 1;    // mma: warps that share a 16-row tile of Ws, each taking every ksplit-th k tile
  // Cluster mode with the products' input (the forward's h_t, the backward's dG_t) exchanged
  // through distributed shared memory: two buffers (even and odd steps) of hrows x K elements of
  // T after the other buffers; 0: none, it goes through L2.
  int hrows = 0;
};

// Where each buffer of a CTA's dynamic shared memory begins (bytes): Ws at 0, then the
// staged X (Acc<T>, or T for the tensor cores), the sums (Acc<T>, bb x R), with mma the
// warps' partial tiles (float, 16 x 16 each), and with hrows the two exchange buffers (T).
struct SmemLayout {
  size_t xs = 0, gs = 0, ps = 0, hs = 0, total = 0;
};

__host__ __device__ inline SmemLayout smem_layout(const Tiling& tl, size_t w_size, size_t acc_size) {
  SmemLayout l;
  const size_t w_bytes = w_size * static_cast<size_t>(tl.rows_w) * tl.ldw;
  const size_t staged = static_cast<size_t>(tl.bb) * tl.kc, sums = acc_size * static_cast<size_t>(tl.bb) * tl.R;
  if (!tl.mma) {
    l.xs = align16(w_bytes);
    l.gs = l.xs + acc_size * staged;
    l.total = l.gs + sums;
  } else {
    l.xs = align128(w_bytes);
    l.gs = align128(l.xs + w_size * staged);
    l.ps = align128(l.gs + sums);
    l.total = l.ps + sizeof(float) * kMmaTile * kMmaTile * (tl.rows_w / kMmaTile) * tl.ksplit;
  }
  if (tl.hrows > 0) {
    l.hs = align16(l.total);
    l.total = l.hs + 2 * w_size * static_cast<size_t>(tl.hrows) * tl.K;
  }
  return l;
}

// How a layer is cut: U units a CTA (ceil(H / sms)), and the largest batch chunk (16, 8,
// 4 rows) and K chunk (1024 down to 32 columns) whose staging buffers fit `smem_limit`
// bytes next to the weight slice. ok is false where even the smallest do not fit.
struct TilePlan {
  bool ok = false;
  Tiling tl;
  int ctas = 0;  // CTAs a group (Launch)
  size_t smem = 0;
  // Groups a direction and the batch rows of each: one group of all B rows, or in cluster mode
  // (plan_cluster) one a cluster.
  bool cluster = false;
  int groups = 1;
  int64_t group_rows = 0;
};

// The weight slice of a CTA (H > 0, sms > 0): U, R, K and the shape of Ws (padded to
// 16-multiples with mma), and with mma how many warps share a weight tile; bb and kc
// are left 0. smem_layout(slice, ...).xs is then the bytes of the slice.
inline Tiling slice_tiling(int64_t H, int64_t G, bool forward, int64_t sms, bool mma) {
  const int64_t U = (H + sms - 1) / sms;
  Tiling tl;
  tl.U = static_cast<int>(U);
  tl.R = static_cast<int>(forward ? G * U : U);
  tl.K = static_cast<int>(forward ? H : G * H);
  tl.mma = mma;
  const auto round16 = [](int n) { return (n + kMmaTile - 1) / kMmaTile * kMmaTile; };
  tl.rows_w = mma ? round16(tl.R) : tl.R;
  tl.ldw = mma ? round16(tl.K) : tl.K;
  const int tiles = tl.rows_w / kMmaTile;
  tl.ksplit = !mma || tiles >= kWarps ? 1 : kWarps / tiles;
  return tl;
}

// With mma (the tensor cores): batch chunks of 16 rows (the MMA tile's height; fewer
// rows are zero-padded), Ws padded to 16-multiples, and at most kMmaItemsPerWarp
// accumulator tiles a warp (ok false beyond).
inline TilePlan plan_tiling(int64_t H, int64_t G, int64_t B, bool forward, int64_t sms, size_t smem_limit,
                            size_t w_size, size_t acc_size, bool mma = false) {
  TilePlan plan;
  if (H <= 0 || B <= 0 || sms <= 0) {
    return plan;
  }
  Tiling tl = slice_tiling(H, G, forward, sms, mma);
  if (mma && tl.rows_w / kMmaTile > kMmaItemsPerWarp * kWarps) {
    return plan;
  }
  for (int bb : {16, 8, 4}) {
    bb = mma ? kMmaTile : static_cast<int>(B < bb ? B : bb);
    for (int kc : {1024, 512, 256, 128, 64, 32}) {
      kc = kc < tl.ldw ? kc : tl.ldw;
      tl.bb = bb;
      tl.kc = kc;
      const size_t smem = smem_layout(tl, w_size, acc_size).total;
      if (smem <= smem_limit) {
        plan.ok = true;
        plan.tl = tl;
        plan.smem = smem;
        plan.ctas = static_cast<int>((H + tl.U - 1) / tl.U);
        plan.group_rows = B;
        return plan;
      }
    }
  }
  return plan;
}

// Cluster mode: the layer's W_hh split over the `size` CTAs of one thread-block cluster (U =
// ceil(H / size); CTAs past H hold nothing but take part in the barriers), and the batch over at
// most max_groups clusters, each running ceil(B / max_groups) rows of every step with a whole copy
// of W_hh; the batch chunk is planned for those rows. With dsmem, the two exchange buffers of a
// group's rows (tl.hrows; h_t, H wide, in the forward, dG_t, G*H wide, in the backward) are planned
// first, and dropped where the slice and the smallest staging do not fit beside them. ok false
// where the slice does not fit.
inline TilePlan plan_cluster(int64_t H, int64_t G, int64_t B, bool forward, int size, int64_t max_groups,
                             size_t smem_limit, size_t w_size, size_t acc_size, bool mma = false, bool dsmem = false) {
  if (B <= 0 || size <= 0 || max_groups <= 0) {
    return TilePlan{};
  }
  const int64_t group_rows = (B + max_groups - 1) / max_groups;
  TilePlan plan;
  if (dsmem) {
    // The buffers go last in the layout, 16-byte aligned: room for them, with that alignment's slack.
    const size_t width = static_cast<size_t>(forward ? H : G * H);
    const size_t exchange = 2 * w_size * static_cast<size_t>(group_rows) * width + 16;
    if (exchange < smem_limit) {
      plan = plan_tiling(H, G, group_rows, forward, size, smem_limit - exchange, w_size, acc_size, mma);
      if (plan.ok) {
        plan.tl.hrows = static_cast<int>(group_rows);
        plan.smem = smem_layout(plan.tl, w_size, acc_size).total;
      }
    }
  }
  if (!plan.ok) {
    plan = plan_tiling(H, G, group_rows, forward, size, smem_limit, w_size, acc_size, mma);
  }
  if (plan.ok) {
    plan.ctas = size;
    plan.cluster = true;
    plan.group_rows = group_rows;
    plan.groups = static_cast<int>((B + group_rows - 1) / group_rows);
  }
  return plan;
}

// Row r of Ws (rows_w x ldw) from w(r, k) for r < R, k < K, where `valid(r)`; zeros elsewhere.
template <typename T, class W, class Valid>
__device__ void fill_weights(T* Ws, const Tiling& tl, const W& w, const Valid& valid) {
  for (int e = threadIdx.x; e < tl.rows_w * tl.ldw; e += blockDim.x) {
    const int r = e / tl.ldw, k = e % tl.ldw;
    Ws[e] = r < tl.R && k < tl.K && valid(r) ? w(r, k) : T(0);
  }
}

// out[b * R + r] = sum_k X(b, k) * Ws[r * K + k] for b < nb, r < R, in shared memory.
// X is staged into Xs (bb x kc) chunk by chunk through load_x(b, k), each chunk of columns
// [k0, k0 + kn) after ready(k0, kn) (every thread calls it; a block barrier follows it before
// the chunk is read). Every thread of the block calls this; it begins and ends with a block
// barrier.
template <typename T, typename A, class LoadX, class Ready>
__device__ void product(const T* Ws, const Tiling& tl, A* Xs, int nb, A* out, const LoadX& load_x,
                        const Ready& ready) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int R = tl.R, K = tl.K, kc = tl.kc;
  __syncthreads();  // earlier readers of out and Xs are done
  for (int e = threadIdx.x; e < nb * R; e += blockDim.x) {
    out[e] = A(0);
  }
  const int nbr = (R + 3) / 4, items = ((nb + 3) / 4) * nbr;
  for (int k0 = 0; k0 < K; k0 += kc) {
    const int kn = min(kc, K - k0);
    ready(k0, kn);
    __syncthreads();
    for (int e = threadIdx.x; e < nb * kn; e += blockDim.x) {
      const int b = e / kn, k = e % kn;
      Xs[b * kc + k] = load_x(b, k0 + k);
    }
    __syncthreads();
    for (int it = warp; it < items; it += kWarps) {
      const int b0 = (it / nbr) * 4, r0 = (it % nbr) * 4;
      const A* xr[4];
      const T* wr[4];
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        xr[q] = Xs + min(b0 + q, nb - 1) * kc;
        wr[q] = Ws + static_cast<size_t>(min(r0 + q, R - 1)) * tl.ldw + k0;
      }
      A acc[4][4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          acc[i][q] = A(0);
        }
      }
      for (int k = lane; k < kn; k += 32) {
        A x[4], w[4];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          x[q] = xr[q][k];
          w[q] = A(wr[q][k]);
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            acc[i][q] += x[i] * w[q];
          }
        }
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int q = 0; q < 4; ++q) {
#pragma unroll
          for (int off = 16; off > 0; off /= 2) {
            acc[i][q] += __shfl_xor_sync(0xffffffffu, acc[i][q], off);
          }
          if (lane == i * 4 + q && b0 + i < nb && r0 + q < R) {
            out[(b0 + i) * R + r0 + q] += acc[i][q];
          }
        }
      }
    }
  }
  __syncthreads();
}

// The same sums on the tensor cores (T float16 or bfloat16; or float as TF32, each
// element rounded to TF32 as loaded; fp32 accumulation): the staged X chunk (16 x kc,
// zero past nb rows and past K) is WMMA's matrix_a, row-major;
// a 16-row tile of Ws read column-major is matrix_b (W^T). Warp w takes accumulator
// tiles w, w + kWarps, ...: tile i is Ws row tile i % n_tiles over every ksplit-th k
// tile from i / n_tiles, kept in registers across the K chunks; the partial tiles then
// go through shared memory (Ps) and are summed in a fixed order into out. Devices
// before sm_80 have no bf16 MMA; the host never selects this there.
template <typename T, typename A, class LoadX, class Ready>
__device__ void product_mma(const T* Ws, const Tiling& tl, T* Xs, float* Ps, int nb, A* out, const LoadX& load_x,
                            const Ready& ready) {
#if !defined(__CUDACC__) || (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800)
  namespace wmma = nvcuda::wmma;
  using M = typename MmaElem<T>::type;
  constexpr bool kTf32 = MmaElem<T>::tf32;
  using F = std::conditional_t<kTf32, wmma::precision::tf32, M>;  // the fragments' element type
  constexpr int kT = kMmaTile, kK = MmaElem<T>::kK;
  const int warp = threadIdx.x / 32;
  const int R = tl.R, K = tl.K, kc = tl.kc, ldw = tl.ldw;
  const int n_tiles = tl.rows_w / kT, ksplit = tl.ksplit, items = n_tiles * ksplit;
  wmma::fragment<wmma::accumulator, kT, kT, kK, float> acc[kMmaItemsPerWarp];
#pragma unroll
  for (int i = 0; i < kMmaItemsPerWarp; ++i) {
    wmma::fill_fragment(acc[i], 0.0f);
  }
  for (int k0 = 0; k0 < ldw; k0 += kc) {
    const int kn = min(kc, ldw - k0);  // a multiple of 16, as are kc and ldw
    ready(k0, kn);
    __syncthreads();  // earlier readers of Xs are done
    for (int e = threadIdx.x; e < kT * kn; e += blockDim.x) {
      const int b = e / kn, k = e % kn;
      Xs[b * kc + k] = b < nb && k0 + k < K ? T(load_x(b, k0 + k)) : T(0);
    }
    __syncthreads();
    const int k_tiles = kn / kK;
#pragma unroll
    for (int i = 0; i < kMmaItemsPerWarp; ++i) {
      const int item = warp + i * kWarps;
      if (item < items) {
        const int n = item % n_tiles;
        for (int s = item / n_tiles; s < k_tiles; s += ksplit) {
          wmma::fragment<wmma::matrix_a, kT, kT, kK, F, wmma::row_major> a;
          wmma::fragment<wmma::matrix_b, kT, kT, kK, F, wmma::col_major> b;
          wmma::load_matrix_sync(a, reinterpret_cast<const M*>(Xs + s * kK), kc);
          wmma::load_matrix_sync(b, reinterpret_cast<const M*>(Ws + static_cast<size_t>(n) * kT * ldw + k0 + s * kK),
                                 ldw);
          if constexpr (kTf32) {
            for (int t = 0; t < a.num_elements; ++t) {
              a.x[t] = wmma::__float_to_tf32(a.x[t]);
            }
            for (int t = 0; t < b.num_elements; ++t) {
              b.x[t] = wmma::__float_to_tf32(b.x[t]);
            }
          }
          wmma::mma_sync(acc[i], a, b, acc[i]);
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kMmaItemsPerWarp; ++i) {
    const int item = warp + i * kWarps;
    if (item < items) {
      wmma::store_matrix_sync(Ps + item * kT * kT, acc[i], kT, wmma::mem_row_major);
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < nb * R; e += blockDim.x) {
    const int b = e / R, r = e % R, n = r / kT;
    float sum = 0.0f;
    for (int part = 0; part < ksplit; ++part) {
      sum += Ps[(part * n_tiles + n) * kT * kT + b * kT + r % kT];
    }
    out[e] = A(sum);
  }
  __syncthreads();
#endif
}

// The products of either kind, with the staging buffer at xs.
template <bool kMma, typename T, typename A, class LoadX, class Ready>
__device__ void products(const T* Ws, const Tiling& tl, unsigned char* xs, float* Ps, int nb, A* out,
                         const LoadX& load_x, const Ready& ready) {
  if constexpr (kMma) {
    product_mma(Ws, tl, reinterpret_cast<T*>(xs), Ps, nb, out, load_x, ready);
  } else {
    product(Ws, tl, reinterpret_cast<A*>(xs), nb, out, load_x, ready);
  }
}

template <typename T>
struct ForwardArgs {
  Steps steps;
  Tiling tl;
  int64_t H = 0;
  const T* w_hh = nullptr;     // (G*H, H)
  const T* bias = nullptr;     // LSTM, RNN: b_ih + b_hh; GRU: b_ih
  const T* bias_hh = nullptr;  // GRU: b_hh
  T* gates = nullptr;          // (N, G*H) ld gates_ld: x W_ih^T in, activations out (RNN: the output)
  int64_t gates_ld = 0;
  T* out = nullptr;            // (N, H)
  T* h = nullptr;              // (B, H): h_n out
  const T* hx = nullptr;       // (B, H)
  Acc<T>* c = nullptr;         // LSTM (B, H): c_0 in, c_n out
  T* ws = nullptr;             // training workspace (N, ws_ld), or null
  int64_t ws_ld = 0;
};

// What a launch of a kernel runs: one direction of a layer (dirs 1), or both directions of a
// bidirectional layer at once (dirs 2), each direction's CTAs after the other's. A direction's
// CTAs form `groups` groups of `ctas` CTAs: the CTAs of a group hold W_hh between them (CTA k of
// a group the slice of units [k U, k U + U)) and run rows [g group_rows, (g + 1) group_rows) of
// every step (group g), meeting at one barrier a step:
//   grid mode (cluster false)    one group a direction, every row; the barrier is grid.sync(), so
//                                the launch is cooperative and every CTA co-resident; or, with
//                                flags, no barrier: each CTA publishes a count of the steps it has
//                                written (step_barrier) and the products wait, chunk by chunk of
//                                their input, for the CTAs that wrote that chunk (wait_units);
//   cluster mode (cluster true)  each group is one thread-block cluster of `ctas` CTAs (sm_90),
//                                the batch split between the groups, each group holding the whole
//                                W_hh; the barrier is the cluster's, groups never wait for each
//                                other, and the launch is an ordinary one with that cluster size.
// The two directions take the same number of steps, and their tilings are the same (one
// shared-memory size a launch).
template <class Args>
struct Launch {
  Args dir[2];
  int dirs = 1;
  int ctas = 0;                      // CTAs a group
  int groups = 1;                    // groups a direction
  int64_t group_rows = 0;            // batch rows a group (grid mode: all)
  bool cluster = false;
  // Grid mode: dirs x ctas step counts in global memory, zero at launch (word d * ctas + k: the
  // steps CTA k of direction d has published), or null (the step's barrier is grid.sync()).
  unsigned* flags = nullptr;

  // The group fields of a plan (plan_tiling or plan_cluster).
  void take(const TilePlan& plan) {
    ctas = plan.ctas;
    groups = plan.groups;
    group_rows = plan.group_rows;
    cluster = plan.cluster;
  }

  // The direction of this CTA, its group within the direction and its index within the group.
  __device__ int direction() const {
    return dirs == 2 && static_cast<int>(blockIdx.x) >= groups * ctas ? 1 : 0;
  }
  __device__ int group() const { return (static_cast<int>(blockIdx.x) / ctas) % groups; }
  __device__ int cta() const { return static_cast<int>(blockIdx.x) % ctas; }
  // The rows of a step of `rows` rows that this CTA's group runs: [lo, hi), empty where the
  // step has none of the group's rows.
  __device__ int64_t rows_lo(int64_t rows) const { return min(rows, group() * group_rows); }
  __device__ int64_t rows_hi(int64_t rows) const { return min(rows, (group() + 1) * group_rows); }
  // dir[direction()], read with constant indices (a dynamic index into kernel parameters
  // would copy them to local memory).
  __device__ Args args() const { return direction() == 1 ? dir[1] : dir[0]; }
  // The barrier of a step, which has written the products' input of `done` steps: the group's
  // CTAs have all finished the step's writes before any of them reads what the step wrote (the
  // writes are ordinary stores, the reads ld.global.cg). With flags only the publishing half:
  // the readers wait in wait_units.
  __device__ void step_barrier(int64_t done) const {
    if (cluster) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
      cooperative_groups::this_cluster().sync();
#else
      __trap();  // the host plans clusters only on devices of compute capability 9.0 and newer
#endif
    } else if (flags) {
      __syncthreads();  // every thread's stores of the step before thread 0's release
      if (threadIdx.x == 0) {
        __threadfence();
        store_release(flags + direction() * ctas + cta(), static_cast<unsigned>(done));
      }
    } else {
      cooperative_groups::this_grid().sync();
    }
  }
  // With flags: waits until the CTAs that own units [u0, u1] (U units a CTA) have published
  // `done` steps (nothing where u1 < u0). Every thread calls this; a block barrier must follow
  // before the input is read.
  __device__ void wait_units(int64_t u0, int64_t u1, int U, int64_t done) const {
    if (u1 < u0) {
      return;
    }
    const unsigned* f = flags + direction() * ctas;
    const int64_t first = u0 / U + threadIdx.x;  // this thread polls CTAs first, first + blockDim.x, ...
    for (int64_t k = first; k <= u1 / U; k += blockDim.x) {
      const uint64_t start = spin_clock();
      while (load_acquire(f + k) < static_cast<unsigned>(done)) {
        spin_pause(start);
      }
    }
    if (first <= u1 / U) {
      __threadfence();  // as cooperative groups' grid barrier does after its spin (the acquire loads suffice)
    }
  }
};

template <typename T>
using ForwardLaunch = Launch<ForwardArgs<T>>;

// v into the same element of every CTA's shared memory in this CTA's cluster of `ctas` CTAs
// (local: this CTA's copy): distributed shared memory stores, seen by the other CTAs after the
// cluster's next barrier (its arrive.release / wait.acquire order them).
template <typename T>
__device__ __forceinline__ void store_to_cluster(T* local, T v, int ctas) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
  cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
  for (int r = 0; r < ctas; ++r) {
    *cluster.map_shared_rank(local, r) = v;
  }
#else
  (void)local;
  (void)v;
  (void)ctas;
  __trap();  // the host plans exchange buffers only in cluster mode, on sm_90 and newer
#endif
}

// A CTA's two exchange buffers in cluster mode (Tiling::hrows rows of K elements each, after its
// other shared memory): step s's product input (the forward's h_t, the backward's dG_t) for the
// group's rows in buffer s % 2, each CTA storing its units' part into every CTA's copy. Off
// (false, nothing stored) where hrows is 0: the input then goes through L2.
template <typename T>
struct Exchange {
  T* buf = nullptr;
  int64_t rows = 0, width = 0, group_lo = 0;
  int ctas = 0;

  template <class Args>
  __device__ Exchange(unsigned char* smem, const SmemLayout& lay, const Tiling& tl, const Launch<Args>& launch)
      : buf(tl.hrows > 0 ? reinterpret_cast<T*>(smem + lay.hs) : nullptr),
        rows(tl.hrows),
        width(tl.K),
        group_lo(static_cast<int64_t>(launch.group()) * launch.group_rows),
        ctas(launch.ctas) {}

  __device__ explicit operator bool() const { return buf != nullptr; }
  // Element k of batch row `row` in this CTA's buffer of step s.
  __device__ T* at(int64_t s, int64_t row, int64_t k) const {
    return buf + ((s & 1) * rows + (row - group_lo)) * width + k;
  }
  // v into that element of every CTA of the cluster (nothing where off).
  __device__ void share(int64_t s, int64_t row, int64_t k, T v) const {
    if (buf) {
      store_to_cluster(at(s, row, k), v, ctas);
    }
  }
};

template <typename T, CellKind kCell, bool kMma>
__global__ void __launch_bounds__(FR_PERSISTENT_THREADS) persistent_forward_kernel(ForwardLaunch<T> launch) {
  using A = Acc<T>;
  constexpr int G = kGates<kCell>;
  const ForwardArgs<T> p = launch.args();
  const Tiling tl = p.tl;
  const int U = tl.U, R = tl.R;
  const int64_t H = p.H;
  FR_DYNAMIC_SMEM(smem);
  const SmemLayout lay = smem_layout(tl, sizeof(T), sizeof(A));
  T* Ws = reinterpret_cast<T*>(smem);
  A* gs = reinterpret_cast<A*>(smem + lay.gs);
  float* Ps = reinterpret_cast<float*>(smem + lay.ps);
  const Exchange<T> hs(smem, lay, tl, launch);  // h_t, H wide
  const int64_t j0 = static_cast<int64_t>(launch.cta()) * U;

  // Row g*U + u of Ws is row g*H + j0 + u of W_hh (zeros past H).
  fill_weights(
      Ws, tl, [&](int r, int k) { return p.w_hh[(r / U * H + j0 + r % U) * H + k]; },
      [&](int r) { return j0 + r % U < H; });
  const Steps& S = p.steps;
  for (int64_t s = 0; s < S.T; ++s) {
    const Steps::Rows q = S.at(s);
    const int64_t off = q.off, prev_rows = q.prev_rows, prev_off = q.prev_off;
    const int64_t lo = launch.rows_lo(q.rows), hi = launch.rows_hi(q.rows);  // this group's rows
    // The state entering step t, row `row`, unit k: the previous step's output (from the
    // exchange buffer the previous step wrote, or from L2), or hx.
    auto h_prev = [&](int64_t row, int64_t k) -> A {
      if (row >= prev_rows) {
        return A(load_cg(p.hx + row * H + k));
      }
      return hs ? A(*hs.at(s - 1, row, k)) : A(load_cg(p.out + (prev_off + row) * H + k));
    };
    for (int64_t b0 = lo; b0 < hi; b0 += tl.bb) {
      const int nb = static_cast<int>(min(static_cast<int64_t>(tl.bb), hi - b0));
      // With flags, h_{t-1}'s columns [k0, k0 + kn) are waited for before they are staged (in the
      // first batch chunk; the later ones find every column written).
      products<kMma>(
          Ws, tl, smem + lay.xs, Ps, nb, gs, [&](int b, int k) { return h_prev(b0 + b, k); },
          [&](int k0, int kn) {
            if (launch.flags && s > 0 && b0 == lo) {
              launch.wait_units(k0, min(static_cast<int64_t>(k0 + kn), H) - 1, U, s);
            }
          });
      for (int e = threadIdx.x; e < nb * U; e += blockDim.x) {
        const int b = e / U, u = e % U;
        const int64_t j = j0 + u, row = b0 + b;
        if (j >= H) {
          continue;
        }
        const A* acc = gs + b * R + u;  // acc[g * U]: gate g of unit j
        T* g = p.gates + (off + row) * p.gates_ld;
        if constexpr (kCell == CellKind::kLstm) {
          A* c = p.c + row * H + j;
          const auto q = lstm_forward_point<A>(
              A(g[j]) + A(p.bias[j]) + acc[0], A(g[H + j]) + A(p.bias[H + j]) + acc[U],
              A(g[2 * H + j]) + A(p.bias[2 * H + j]) + acc[2 * U], A(g[3 * H + j]) + A(p.bias[3 * H + j]) + acc[3 * U],
              *c);
          g[j] = T(q.i);
          g[H + j] = T(q.f);
          g[2 * H + j] = T(q.g);
          g[3 * H + j] = T(q.o);
          *c = q.c;
          if (p.ws) {
            p.ws[(off + row) * p.ws_ld + 4 * H + j] = T(q.c);
          }
          p.h[row * H + j] = T(q.h);
          p.out[(off + row) * H + j] = T(q.h);
          hs.share(s, row, j, T(q.h));
        } else if constexpr (kCell == CellKind::kGru) {
          const auto q = gru_forward_point<A>(
              A(g[j]) + A(p.bias[j]), A(g[H + j]) + A(p.bias[H + j]), A(g[2 * H + j]) + A(p.bias[2 * H + j]),
              acc[0] + A(p.bias_hh[j]), acc[U] + A(p.bias_hh[H + j]), acc[2 * U] + A(p.bias_hh[2 * H + j]),
              h_prev(row, j));
          g[j] = T(q.r);
          g[H + j] = T(q.z);
          g[2 * H + j] = T(q.n);
          if (p.ws) {
            p.ws[(off + row) * p.ws_ld + 3 * H + j] = T(q.hn);
          }
          p.h[row * H + j] = T(q.h);
          p.out[(off + row) * H + j] = T(q.h);
          hs.share(s, row, j, T(q.h));
        } else {
          constexpr Activation kAct = kCell == CellKind::kRnnTanh ? Activation::kTanh : Activation::kRelu;
          const T v = T(rnn_forward_point<kAct, A>(A(g[j]) + A(p.bias[j]) + acc[0]));
          g[j] = v;  // the gate buffer is the output row
          p.h[row * H + j] = v;
          hs.share(s, row, j, v);
        }
      }
    }
    // The next step's projected inputs for this CTA's units (written by the GEMM before the
    // kernel, mostly out in HBM for long sequences) travel to L2 while the grid waits.
    if (s + 1 < S.T) {
      const Steps::Rows nq = S.at(s + 1);
      const int64_t un = min(static_cast<int64_t>(U), H - j0), nlo = launch.rows_lo(nq.rows);
      for (int64_t e = threadIdx.x; e < (launch.rows_hi(nq.rows) - nlo) * G; e += blockDim.x) {
        prefetch_l2(p.gates + (nq.off + nlo + e / G) * p.gates_ld + (e % G) * H + j0, un);
      }
    }
    // h_t of every unit written (to L2, or to every CTA's exchange buffer) before any CTA of the
    // group reads it; with exchange buffers also: every CTA has read buffer (s + 1) % 2 (h_{t-1})
    // before step s + 1 overwrites it, and no CTA exits while others may still store into its
    // shared memory (the last step's barrier follows its last stores). With flags: this CTA's
    // part of h_t published, s + 1 steps (the rows of step s stay in place: nothing a later step
    // writes is read by an earlier one, so readers need wait only for writers).
    launch.step_barrier(s + 1);
  }
  (void)G;
}

template <typename T>
struct BackwardArgs {
  Steps steps;
  Tiling tl;
  int64_t H = 0;
  const T* w_hh = nullptr;  // (G*H, H)
  const T* go = nullptr;    // (N, H) grad_output
  const T* gcs = nullptr;   // LSTM (N, H) gradient reaching each c_t from outside, or null
  const T* ws = nullptr;    // (N, ws_ld)
  int64_t ws_ld = 0;
  const T* out = nullptr;   // (N, H)
  const T* hx = nullptr;    // (B, H)
  const T* cx = nullptr;    // LSTM (B, H)
  T* dh = nullptr;          // (B, H): grad_h_n in, grad_hx out
  Acc<T>* dc = nullptr;     // LSTM (B, H): grad_c_n in, grad_cx out
  T* dg = nullptr;          // (N, G*H)
  T* dgh = nullptr;         // GRU (N, H)
};

template <typename T>
using BackwardLaunch = Launch<BackwardArgs<T>>;

template <typename T, CellKind kCell, bool kMma>
__global__ void __launch_bounds__(FR_PERSISTENT_THREADS) persistent_backward_kernel(BackwardLaunch<T> launch) {
  using A = Acc<T>;
  constexpr int G = kGates<kCell>;
  const BackwardArgs<T> p = launch.args();
  const Tiling tl = p.tl;
  const int U = tl.U, K = tl.K;  // K = G*H
  const int64_t H = p.H;
  FR_DYNAMIC_SMEM(smem);
  const SmemLayout lay = smem_layout(tl, sizeof(T), sizeof(A));
  T* Ws = reinterpret_cast<T*>(smem);
  A* gs = reinterpret_cast<A*>(smem + lay.gs);
  float* Ps = reinterpret_cast<float*>(smem + lay.ps);
  const Exchange<T> hs(smem, lay, tl, launch);  // dG_t, K = G*H wide (the GRU's n block: dGh_t)
  const int64_t j0 = static_cast<int64_t>(launch.cta()) * U;

  // Row u of Ws is column j0 + u of W_hh (zeros past H).
  fill_weights(
      Ws, tl, [&](int u, int k) { return p.w_hh[k * H + j0 + u]; }, [&](int u) { return j0 + u < H; });
  const Steps& S = p.steps;
  for (int64_t s = S.T - 1; s >= 0; --s) {
    const Steps::Rows q = S.at(s);
    const int64_t off = q.off, prev_rows = q.prev_rows, prev_off = q.prev_off;
    const int64_t lo = launch.rows_lo(q.rows), hi = launch.rows_hi(q.rows);  // this group's rows
    // The pointwise backward of this CTA's units: dG_t, dc_{t-1}, and the GRU's direct path.
    __syncthreads();  // this thread mapping differs from the product's epilogue
    for (int64_t e = threadIdx.x; e < (hi - lo) * U; e += blockDim.x) {
      const int64_t b = lo + e / U, j = j0 + e % U;
      if (j >= H) {
        continue;
      }
      const int64_t row = off + b;
      const A dh = A(p.dh[b * H + j]) + A(p.go[row * H + j]);
      if constexpr (kCell == CellKind::kLstm) {
        const T* w = p.ws + row * p.ws_ld;
        const A dc = p.dc[b * H + j] + (p.gcs ? A(p.gcs[row * H + j]) : A(0));
        const A c_prev = b < prev_rows ? A(p.ws[(prev_off + b) * p.ws_ld + 4 * H + j]) : A(p.cx[b * H + j]);
        const auto gr = lstm_backward_point<A>(A(w[j]), A(w[H + j]), A(w[2 * H + j]), A(w[3 * H + j]),
                                               A(w[4 * H + j]), c_prev, dh, dc);
        T* d = p.dg + row * 4 * H;
        d[j] = T(gr.di);
        d[H + j] = T(gr.df);
        d[2 * H + j] = T(gr.dg);
        d[3 * H + j] = T(gr.d_o);
        hs.share(s, b, j, T(gr.di));
        hs.share(s, b, H + j, T(gr.df));
        hs.share(s, b, 2 * H + j, T(gr.dg));
        hs.share(s, b, 3 * H + j, T(gr.d_o));
        p.dc[b * H + j] = gr.dc_prev;
        p.dh[b * H + j] = T(0);
      } else if constexpr (kCell == CellKind::kGru) {
        const T* w = p.ws + row * p.ws_ld;
        const A h_prev = b < prev_rows ? A(p.out[(prev_off + b) * H + j]) : A(p.hx[b * H + j]);
        const auto gr = gru_backward_point<A>(A(w[j]), A(w[H + j]), A(w[2 * H + j]), A(w[3 * H + j]), h_prev, dh);
        T* d = p.dg + row * 3 * H;
        d[j] = T(gr.dr);
        d[H + j] = T(gr.dz);
        d[2 * H + j] = T(gr.dn);
        p.dgh[row * H + j] = T(gr.dhn);
        hs.share(s, b, j, T(gr.dr));  // the product's input: dG's r and z blocks, then dGh
        hs.share(s, b, H + j, T(gr.dz));
        hs.share(s, b, 2 * H + j, T(gr.dhn));
        p.dh[b * H + j] = T(gr.dh_prev);
      } else {
        constexpr Activation kAct = kCell == CellKind::kRnnTanh ? Activation::kTanh : Activation::kRelu;
        const T v = T(rnn_backward_point<kAct, A>(A(p.out[row * H + j]), dh));
        p.dg[row * H + j] = v;
        hs.share(s, b, j, v);
        p.dh[b * H + j] = T(0);
      }
    }
    // What the next step's pointwise pass reads for this CTA's units (its rows of the
    // workspace, or of the output, and of grad_output) travels to L2 while the grid waits.
    if (s > 0) {
      const Steps::Rows nq = S.at(s - 1);
      const int64_t un = min(static_cast<int64_t>(U), H - j0), nlo = launch.rows_lo(nq.rows);
      const int segs = p.ws ? static_cast<int>(p.ws_ld / H) : 1;  // LSTM 5, GRU 4; RNN: the output row
      for (int64_t e = threadIdx.x; e < (launch.rows_hi(nq.rows) - nlo) * (segs + 1); e += blockDim.x) {
        const int64_t row = nq.off + nlo + e / (segs + 1), seg = e % (segs + 1);
        if (seg == segs) {
          prefetch_l2(p.go + row * H + j0, un);
        } else if (p.ws) {
          prefetch_l2(p.ws + row * p.ws_ld + seg * H + j0, un);
        } else {
          prefetch_l2(p.out + row * H + j0, un);
        }
      }
    }
    // dG_t of every unit written (to L2, or to every CTA's exchange buffer) before any CTA of the
    // group reads it. With exchange buffers, step s writes buffer s % 2, last read by the products of
    // step s + 2, which every CTA finished before arriving at step s + 1's barrier, and the last
    // step's stores come before its barrier, so no CTA exits while others may still store into
    // its shared memory. With flags: this CTA's part of dG_t published, T - s steps.
    launch.step_barrier(S.T - s);
    // dh_{t-1} += dG_t W_hh for this CTA's columns (the GRU's n rows meet dGh).
    for (int64_t b0 = lo; b0 < hi; b0 += tl.bb) {
      const int nb = static_cast<int>(min(static_cast<int64_t>(tl.bb), hi - b0));
      products<kMma>(Ws, tl, smem + lay.xs, Ps, nb, gs, [&](int b, int k) {
        if (hs) {
          return A(*hs.at(s, b0 + b, k));
        }
        const int64_t row = off + b0 + b;
        if (kCell == CellKind::kGru && k >= 2 * H) {
          return A(load_cg(p.dgh + row * H + (k - 2 * H)));
        }
        return A(load_cg(p.dg + row * K + k));
      }, [&](int k0, int kn) {  // with flags: dG_t's columns [k0, k0 + kn), of units k % H, as the forward's
        if (launch.flags && b0 == lo) {
          for (int64_t g = 0; g < G; ++g) {
            const int64_t c0 = max(static_cast<int64_t>(k0), g * H), c1 = min(static_cast<int64_t>(k0 + kn), g * H + H);
            launch.wait_units(c0 - g * H, c1 - 1 - g * H, U, S.T - s);
          }
        }
      });
      for (int e = threadIdx.x; e < nb * U; e += blockDim.x) {
        const int b = e / U, u = e % U;
        const int64_t j = j0 + u;
        if (j < H) {
          T* d = p.dh + (b0 + b) * H + j;
          *d = T(A(*d) + gs[b * U + u]);
        }
      }
    }
  }
  (void)G;
}

// The kernel of a cell, for the launcher (persistent.cu) and the emulator alike; mma
// selects the tensor-core products, which exist only where MmaElem<T>::ok.
template <typename T, bool kMma>
void (*forward_kernel_of(CellKind cell))(ForwardLaunch<T>) {
  switch (cell) {
    case CellKind::kLstm: return persistent_forward_kernel<T, CellKind::kLstm, kMma>;
    case CellKind::kGru: return persistent_forward_kernel<T, CellKind::kGru, kMma>;
    case CellKind::kRnnTanh: return persistent_forward_kernel<T, CellKind::kRnnTanh, kMma>;
    default: return persistent_forward_kernel<T, CellKind::kRnnRelu, kMma>;
  }
}

template <typename T, bool kMma>
void (*backward_kernel_of(CellKind cell))(BackwardLaunch<T>) {
  switch (cell) {
    case CellKind::kLstm: return persistent_backward_kernel<T, CellKind::kLstm, kMma>;
    case CellKind::kGru: return persistent_backward_kernel<T, CellKind::kGru, kMma>;
    case CellKind::kRnnTanh: return persistent_backward_kernel<T, CellKind::kRnnTanh, kMma>;
    default: return persistent_backward_kernel<T, CellKind::kRnnRelu, kMma>;
  }
}

template <typename T>
void (*forward_kernel(CellKind cell, bool mma = false))(ForwardLaunch<T>) {
  if constexpr (MmaElem<T>::ok) {
    if (mma) {
      return forward_kernel_of<T, true>(cell);
    }
  }
  return forward_kernel_of<T, false>(cell);
}

template <typename T>
void (*backward_kernel(CellKind cell, bool mma = false))(BackwardLaunch<T>) {
  if constexpr (MmaElem<T>::ok) {
    if (mma) {
      return backward_kernel_of<T, true>(cell);
    }
  }
  return backward_kernel_of<T, false>(cell);
}

}  // namespace fused_rnn::cuda::persistent
