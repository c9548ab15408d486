// A team of torch's intra-op threads that stays together for a whole sequence:
// the CPU form of a persistent RNN kernel.
//
// run_steps(nsteps, nitems, fn, flops) calls fn(s, i) for every step s and work item i,
// every item of step s after every item of step s - 1 has finished. Each thread
// owns the same contiguous block of items at every step, so the slice of W_hh those
// items read stays in that thread's cache, and the threads meet at one spinning
// barrier per step instead of a fork and join.
//
// Where the caller asks (zigzag), a thread runs its items in order at even steps and in
// reverse at odd ones: where its slice of W_hh is larger than its L2, the items it ran last,
// whose weights are the ones still in that cache, are then the first it runs again, so fewer
// of the weights stream from L3 each step than a sweep in one direction (which an LRU-like
// cache misses throughout) reads. Items of a step are independent, so the order changes no
// result. The recurrences ask for it at small batches (kZigzagMaxRows).
// FUSED_RNN_CPU_ZIGZAG=0 or _C._set_cpu_zigzag(False) turn it off.
//
// Items are claimed with a compare-and-swap, and a thread that has waited long
// for a step to finish claims the items nobody has started. So the result never
// depends on all threads running at once (a thread pool that runs the tasks one
// after another, a descheduled thread): it only gets slower. Which thread runs an
// item never changes what the item computes, so results do not depend on the
// number of threads either.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <thread>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "../tier.h"  // env_switch

namespace fused_rnn::cpu {

inline void spin_pause() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#else
  std::this_thread::yield();
#endif
}

// How long a thread waits on a step before it takes over items nobody has started.
constexpr std::chrono::microseconds kStealAfter{200};

// A run of less work than this (flops, in all its steps) stays on the calling thread: at a
// cell's size the team's fork, barriers and join cost more than a second thread saves
// (measured 2026-11-30, one forward step, microseconds on 1 / 2 threads: LSTM H=128 B=1
// (0.26 MFLOP) 28-29 / 34-39, H=64 B=1 17 / 21-31; RNN H=128 B=16 (1 MFLOP) 61 / 46).
// FUSED_RNN_CPU_TEAM_MIN_FLOPS sets it at start, _C._set_cpu_team_min_flops later (the tests
// set 0, so that their small shapes run on the team as larger ones do).
constexpr int64_t kTeamMinFlops = int64_t{1} << 19;

inline std::atomic<int64_t>& team_min_flops() {
  static std::atomic<int64_t> flops{[] {
    const char* env = std::getenv("FUSED_RNN_CPU_TEAM_MIN_FLOPS");
    return env != nullptr && *env != '\0' ? std::max<int64_t>(0, std::atoll(env)) : kTeamMinFlops;
  }()};
  return flops;
}

// The most rows a step for which the recurrences run zigzag. A step of a few rows reads each
// weight for a few multiply-adds, so it runs at the rate the weights arrive, and what stays
// in L2 is time saved; from about 16 rows a step the tiles' arithmetic, not the weights'
// traffic, sets the pace on a core whose L3 delivers ~20 GB/s against ~110 GFLOP/s of
// products (a weight of 4 bytes serves 2 flops a row). Measured 2026-12-01 (Ice Lake, 2
// threads, L2 1.25 MB a core, same-process A/B of the order): inference at B = 1 1.31-1.39x
// faster for an LSTM at H = 512 (W_hh 4 MB), 1.46x for a GRU at H = 512, 1.36-1.43x for an
// Elman RNN at H = 1024 (4 MB), 1.07-1.11x for an LSTM or GRU at H = 1024, 1.03-1.09x for an
// LSTM at B = 8, H = 512-1024; training at B = 1 1.26x (LSTM H = 512), 1.28x (RNN H = 1024);
// at B = 16-32 0.91-1.07x across two runs, and at B = 64 0.97-1.03x (training 0.97-0.99x in
// three cases of three), so larger batches keep one order
// (bench/results/2026-12-01_cpu_intel-xeon-icelake-2c_probes-session25/zigzag_*.txt).
constexpr int64_t kZigzagMaxRows = 16;

inline std::atomic<bool>& zigzag_flag() {
  static std::atomic<bool> on{env_switch("FUSED_RNN_CPU_ZIGZAG")};
  return on;
}

// One team at a time: a run that starts while another call's team holds the threads (calls from
// several Python threads at once, a server's workers) runs on its own thread instead of forming a
// second team. Two teams on the same cores each spin at their barriers for threads the other one
// holds; one team and the other calls alone share the cores without waiting for each other.
// FUSED_RNN_CPU_ONE_TEAM=0 or _C._set_cpu_one_team(False) let every run form its team.
inline std::atomic<bool>& one_team_flag() {
  static std::atomic<bool> on{env_switch("FUSED_RNN_CPU_ONE_TEAM")};
  return on;
}

// Whether a team is running, and how many runs went alone because one was (for tests).
inline std::atomic<bool>& team_running() {
  static std::atomic<bool> running{false};
  return running;
}

inline std::atomic<int64_t>& runs_alone_beside_a_team() {
  static std::atomic<int64_t> count{0};
  return count;
}

// The item a thread with items [i0, i1) runs n-th (from 0) at step s.
inline int64_t item_at(int64_t s, int64_t n, int64_t i0, int64_t i1, bool zigzag) {
  return zigzag && s % 2 == 1 ? i1 - 1 - n : i0 + n;
}

// flops: about the work of the whole run, which decides whether it runs on a team at all;
// zigzag: whether a thread runs its items in reverse at odd steps (with the switch on).
template <class F>
void run_steps(int64_t nsteps, int64_t nitems, const F& fn, int64_t flops, bool zigzag_steps = false) {
  if (nsteps <= 0 || nitems <= 0) {
    return;
  }
  const bool team = flops >= team_min_flops().load(std::memory_order_relaxed);
  int64_t nw = team ? std::min<int64_t>(at::get_num_threads(), nitems) : 1;
  const bool zigzag = zigzag_steps && zigzag_flag().load(std::memory_order_relaxed);
  // Holds the team (one_team_flag) for this run, released however the run ends.
  struct Hold {
    bool held = false;
    ~Hold() {
      if (held) {
        team_running().store(false, std::memory_order_release);
      }
    }
  } hold;
  if (nw > 1 && !at::in_parallel_region() && one_team_flag().load(std::memory_order_relaxed)) {
    bool expected = false;
    hold.held = team_running().compare_exchange_strong(expected, true, std::memory_order_acq_rel);
    if (!hold.held) {
      runs_alone_beside_a_team().fetch_add(1, std::memory_order_relaxed);
      nw = 1;
    }
  }
  if (nw <= 1 || at::in_parallel_region()) {
    for (int64_t s = 0; s < nsteps; ++s) {
      for (int64_t n = 0; n < nitems; ++n) {
        fn(s, item_at(s, n, 0, nitems, zigzag));
      }
    }
    return;
  }
  struct alignas(64) Slot {
    std::atomic<int64_t> step;  // the last step this item was claimed for
  };
  std::unique_ptr<Slot[]> claimed(new Slot[nitems]);
  for (int64_t i = 0; i < nitems; ++i) {
    claimed[i].step.store(-1, std::memory_order_relaxed);
  }
  Slot done;  // items finished, over all steps
  done.step.store(0, std::memory_order_relaxed);

  // Runs item i of step s unless another thread has claimed it; whether this call ran it.
  auto try_run = [&](int64_t s, int64_t i) {
    int64_t expected = s - 1;
    if (claimed[i].step.load(std::memory_order_relaxed) == expected &&
        claimed[i].step.compare_exchange_strong(expected, s, std::memory_order_acq_rel)) {
      fn(s, i);
      return true;
    }
    return false;
  };

  at::parallel_for(0, nw, 1, [&](int64_t w0, int64_t w1) {
    const int64_t i0 = w0 * nitems / nw, i1 = w1 * nitems / nw;
    for (int64_t s = 0; s < nsteps; ++s) {
      // One update of the shared count per thread and step, not one per item: the
      // threads waiting on it pull its cache line away after every write.
      int64_t ran = 0;
      for (int64_t n = 0; n < i1 - i0; ++n) {
        ran += try_run(s, item_at(s, n, i0, i1, zigzag)) ? 1 : 0;
      }
      if (ran > 0) {
        done.step.fetch_add(ran, std::memory_order_release);
      }
      const int64_t target = (s + 1) * nitems;
      if (done.step.load(std::memory_order_acquire) >= target) {
        continue;
      }
      const auto start = std::chrono::steady_clock::now();
      for (uint32_t spins = 1; done.step.load(std::memory_order_acquire) < target; ++spins) {
        spin_pause();
        if (spins % 256 == 0 && std::chrono::steady_clock::now() - start > kStealAfter) {
          for (int64_t i = 0; i < nitems; ++i) {
            if (try_run(s, i)) {
              done.step.fetch_add(1, std::memory_order_release);
            }
          }
        }
      }
    }
  });
}

}  // namespace fused_rnn::cpu
