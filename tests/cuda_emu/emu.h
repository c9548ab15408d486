// A CUDA emulator just large enough to run the persistent kernels
// (csrc/cuda/persistent_kernels.cuh) as plain C++: every CUDA thread is an OS thread,
// __syncthreads a barrier of its block, grid.sync() a barrier of the grid,
// __shfl_xor_sync an exchange through a barrier of its warp, and dynamic shared
// memory one buffer per block. Ordinary loads after a barrier see every store made
// before it, as on a GPU after a fence. It checks indexing, staging and barrier
// placement, not GPU timing or the GPU's weaker memory model.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
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
  explicit Block(int threads, size_t smem) : barrier(threads), warps(threads / 32), smem(smem + 16) {}
  Barrier barrier;
  std::vector<Warp> warps;
  std::vector<unsigned char> smem;
};

inline thread_local Dim3 threadIdx, blockIdx;
inline Dim3 blockDim, gridDim;
inline thread_local Block* this_block = nullptr;
inline Barrier* grid_barrier = nullptr;

// Runs kernel(args) on `blocks` x `threads` OS threads (threads a multiple of 32).
template <class Kernel, class Args>
void launch(Kernel kernel, int blocks, int threads, size_t smem, const Args& args) {
  blockDim.x = threads;
  gridDim.x = blocks;
  Barrier grid(blocks * threads);
  grid_barrier = &grid;
  std::vector<std::unique_ptr<Block>> all;
  for (int b = 0; b < blocks; ++b) {
    all.push_back(std::make_unique<Block>(threads, smem));
  }
  std::vector<std::thread> pool;
  for (int b = 0; b < blocks; ++b) {
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, b, t] {
        blockIdx.x = b;
        threadIdx.x = t;
        this_block = all[b].get();
        kernel(args);
      });
    }
  }
  for (auto& th : pool) {
    th.join();
  }
  grid_barrier = nullptr;
}

inline unsigned char* dynamic_smem() {
  auto p = reinterpret_cast<uintptr_t>(this_block->smem.data());
  return reinterpret_cast<unsigned char*>((p + 15) / 16 * 16);
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

namespace cooperative_groups {
struct grid_group {
  void sync() { emu::grid_barrier->wait(); }
};
inline grid_group this_grid() {
  return {};
}
}  // namespace cooperative_groups
