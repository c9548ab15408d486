// A CUDA emulator just large enough to run the persistent kernels
// (csrc/cuda/persistent_kernels.cuh) as plain C++: every CUDA thread is an OS thread,
// __syncthreads a barrier of its block, grid.sync() a barrier of the grid, a thread-block
// cluster's sync() a barrier of its cluster (consecutive blocks, as a 1-D cluster dimension
// groups them; grid.sync() is then refused, as a cluster launch is not cooperative),
// __shfl_xor_sync an exchange through a barrier of its warp, and dynamic shared
// memory one buffer per block (128-byte aligned), which the blocks of a cluster reach in each
// other through map_shared_rank (distributed shared memory). Ordinary loads after a barrier see
// every store made before it, as on a GPU after a fence. Grid mode's step flags are C++
// release/acquire atomics on global memory, waited for by spinning with yields. It checks
// indexing, staging and barrier placement, not GPU timing or the GPU's weaker memory model;
// built with -fsanitize=thread (FUSED_RNN_EMU_SANITIZE=thread, test_persistent_emulated.py) it
// also checks that every read of what another thread wrote is ordered after the write by a
// barrier, a flag or a warp exchange (a data race is a missing one), and with
// -fsanitize=address (=address) that no access leaves its buffer.
//
// nvcuda::wmma (the 16x16x16 and TF32 16x16x8 tiles the kernels use) is emulated at the level of its
// documented contract, not its register layout: a fragment is opaque, so here every
// lane holds the whole tile; loads check WMMA's alignment rules (a 256-bit aligned
// pointer, ldm a multiple of 8 for 16-bit elements and of 4 for float), mma_sync sums
// in float, and store_matrix_sync is warp-collective (lane 0 writes between two
// barriers of the warp, so a warp that does not call it together hangs).
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace emu {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// Threads that arrive early yield until the last one flips the generation: with
// hundreds of OS threads on a few cores this is several times cheaper than waking
// them through a condition variable. The seq_cst atomics order every plain store
// before the barrier with every load after it.
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    const int gen = gen_.load();
    if (count_.fetch_add(1) + 1 == n_) {
      count_.store(0);
      gen_.store(gen + 1);
    } else {
      while (gen_.load() == gen) {
        std::this_thread::yield();
      }
    }
  }

 private:
  const int n_;
  std::atomic<int> count_{0}, gen_{0};
};

struct Warp {
  Barrier barrier{32};
  double slots[32];
};

struct Block {
  explicit Block(int threads, size_t smem) : barrier(threads), warps(threads / 32), smem(smem + 128) {}
  Barrier barrier;
  std::vector<Warp> warps;
  std::vector<unsigned char> smem;
};

inline thread_local Dim3 threadIdx, blockIdx;
inline Dim3 blockDim, gridDim;
inline thread_local Block* this_block = nullptr;
inline thread_local Barrier* this_cluster_barrier = nullptr;
inline thread_local std::vector<std::unique_ptr<Block>>* this_cluster_blocks = nullptr;  // by rank
inline Barrier* grid_barrier = nullptr;

inline void fail(const char* what) {
  std::fprintf(stderr, "emulated CUDA: %s\n", what);
  std::abort();
}

// Runs kernel(args) on `blocks` x `threads` OS threads (threads a multiple of 32): a cooperative
// launch (cluster 0), all blocks at once; or a launch with clusters of `cluster` consecutive
// blocks (blocks a multiple of it), one cluster at a time, the last first: a GPU may run the
// clusters of a launch in any order, or one after another where they do not all fit, so a
// cluster that waits for, or reads what is written by, a cluster of a lower index hangs or
// reads what is not yet written here.
template <class Kernel, class Args>
void launch(Kernel kernel, int blocks, int threads, size_t smem, const Args& args, int cluster = 0) {
  if (cluster > 0 && blocks % cluster != 0) {
    fail("the grid is not a whole number of clusters");
  }
  blockDim.x = threads;
  gridDim.x = blocks;
  const int span = cluster > 0 ? cluster : blocks;  // blocks that run together
  for (int first = blocks - span; first >= 0; first -= span) {
    Barrier together(span * threads);
    grid_barrier = cluster > 0 ? nullptr : &together;
    std::vector<std::unique_ptr<Block>> all;
    for (int b = 0; b < span; ++b) {
      all.push_back(std::make_unique<Block>(threads, smem));
    }
    std::vector<std::thread> pool;
    for (int b = 0; b < span; ++b) {
      for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, b, t] {
          blockIdx.x = first + b;
          threadIdx.x = t;
          this_block = all[b].get();
          this_cluster_barrier = cluster > 0 ? &together : nullptr;
          this_cluster_blocks = cluster > 0 ? &all : nullptr;
          kernel(args);
        });
      }
    }
    for (auto& th : pool) {
      th.join();
    }
  }
  grid_barrier = nullptr;
}

inline unsigned char* dynamic_smem(Block* block) {
  auto p = reinterpret_cast<uintptr_t>(block->smem.data());
  return reinterpret_cast<unsigned char*>((p + 127) / 128 * 128);
}

inline unsigned char* dynamic_smem() {
  return dynamic_smem(this_block);
}

// The address in the dynamic shared memory of block `rank` of this cluster that `p` has in this
// block's; p must lie in this block's dynamic shared memory (the kernels' only shared memory).
template <class T>
T* map_shared_rank(T* p, unsigned rank) {
  if (this_cluster_blocks == nullptr) {
    fail("map_shared_rank in a launch without clusters");
  }
  if (rank >= this_cluster_blocks->size()) {
    fail("map_shared_rank: no such block in the cluster");
  }
  unsigned char* base = dynamic_smem();
  const auto* q = reinterpret_cast<unsigned char*>(p);
  const size_t room = this_block->smem.size() - 128;  // the requested bytes
  if (q < base || q + sizeof(T) > base + room) {
    fail("map_shared_rank: address outside the block's dynamic shared memory");
  }
  return reinterpret_cast<T*>(dynamic_smem((*this_cluster_blocks)[rank].get()) + (q - base));
}

}  // namespace emu

using emu::blockDim;
using emu::blockIdx;
using emu::gridDim;
using emu::threadIdx;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define FR_DYNAMIC_SMEM(name) unsigned char* name = emu::dynamic_smem()

inline void __syncthreads() {
  emu::this_block->barrier.wait();
}

template <class T>
T __shfl_xor_sync(unsigned, T v, int mask) {
  emu::Warp& w = emu::this_block->warps[threadIdx.x / 32];
  const int lane = threadIdx.x % 32;
  w.slots[lane] = static_cast<double>(v);
  w.barrier.wait();
  const T r = static_cast<T>(w.slots[lane ^ mask]);
  w.barrier.wait();
  return r;
}

template <class T>
T __ldcg(const T* p) {
  return *p;
}

template <class T>
T min(T a, T b) {
  return b < a ? b : a;
}

template <class T>
T max(T a, T b) {
  return a < b ? b : a;
}

// A fence: in C++ terms a sequentially consistent one (the kernels' flags synchronise through
// their release stores and acquire loads, which is what ThreadSanitizer follows).
inline void __threadfence() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

namespace cooperative_groups {
struct grid_group {
  void sync() {
    if (emu::grid_barrier == nullptr) {
      emu::fail("grid.sync() in a launch that is not cooperative");
    }
    emu::grid_barrier->wait();
  }
};
inline grid_group this_grid() {
  return {};
}
struct cluster_group {
  void sync() {
    if (emu::this_cluster_barrier == nullptr) {
      emu::fail("cluster.sync() in a launch without clusters");
    }
    emu::this_cluster_barrier->wait();
  }
  template <class T>
  T* map_shared_rank(T* p, unsigned rank) const {
    return emu::map_shared_rank(p, rank);
  }
};
inline cluster_group this_cluster() {
  return {};
}
}  // namespace cooperative_groups

namespace nvcuda::wmma {

namespace precision {
struct tf32 {};  // fragments of float rounded to TF32 (10-bit mantissa)
}  // namespace precision

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static constexpr int rows = std::is_same_v<Use, matrix_b> ? K : M;
  static constexpr int cols = std::is_same_v<Use, matrix_a> ? K : N;
  static constexpr int num_elements = rows * cols;
  float x[rows * cols];  // row-major, whatever the memory layout it was loaded from
};

// cvt.rna.tf32.f32: the nearest float with a 10-bit mantissa, ties away from zero; NaN and
// infinities pass through.
inline float __float_to_tf32(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  if ((bits & 0x7f800000u) != 0x7f800000u) {
    bits = (bits + 0x1000u) & 0xffffe000u;
  }
  std::memcpy(&v, &bits, 4);
  return v;
}

inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "emulated wmma: %s\n", what);
    std::abort();
  }
}

template <class Use, int M, int N, int K, class T, class Layout>
void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, float v) {
  for (float& e : f.x) {
    e = v;
  }
}

template <class F, class E>
void load_tile(F& f, const E* p, unsigned ldm, bool row) {
  check(reinterpret_cast<uintptr_t>(p) % 32 == 0, "load_matrix_sync: pointer not 256-bit aligned");
  check(ldm % (16 / sizeof(E)) == 0, "load_matrix_sync: ldm not a multiple of 16 bytes");
  for (int r = 0; r < F::rows; ++r) {
    for (int c = 0; c < F::cols; ++c) {
      f.x[r * F::cols + c] = static_cast<float>(row ? p[r * ldm + c] : p[c * ldm + r]);
    }
  }
}

template <class Use, int M, int N, int K, class T, class Layout>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const T* p, unsigned ldm) {
  load_tile(f, p, ldm, std::is_same_v<Layout, row_major>);
}

// TF32 fragments load float (unrounded: the code rounds them with __float_to_tf32).
template <class Use, int M, int N, int K, class Layout>
void load_matrix_sync(fragment<Use, M, N, K, precision::tf32, Layout>& f, const float* p, unsigned ldm) {
  load_tile(f, p, ldm, std::is_same_v<Layout, row_major>);
}

template <int M, int N, int K, class T, class LA, class LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, T, LA>& a,
              const fragment<matrix_b, M, N, K, T, LB>& b, const fragment<accumulator, M, N, K, float>& c) {
  float out[M * N];
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) {
      float s = c.x[m * N + n];
      for (int k = 0; k < K; ++k) {
        s += a.x[m * K + k] * b.x[k * N + n];
      }
      out[m * N + n] = s;
    }
  }
  std::memcpy(d.x, out, sizeof(out));
}

template <int M, int N, int K>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm, layout_t layout) {
  check(reinterpret_cast<uintptr_t>(p) % 32 == 0, "store_matrix_sync: pointer not 256-bit aligned");
  check(ldm % 4 == 0, "store_matrix_sync: ldm not a multiple of 16 bytes");
  emu::Warp& w = emu::this_block->warps[threadIdx.x / 32];
  w.barrier.wait();
  if (threadIdx.x % 32 == 0) {
    for (int m = 0; m < M; ++m) {
      for (int n = 0; n < N; ++n) {
        p[layout == mem_row_major ? m * ldm + n : n * ldm + m] = f.x[m * N + n];
      }
    }
  }
  w.barrier.wait();
}

}  // namespace nvcuda::wmma
