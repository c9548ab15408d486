// The persistent tier (persistent.h): one cooperative kernel for all T steps. The
// kernels themselves are in persistent_kernels.cuh; this file plans, checks and
// launches them.
//
// UNVERIFIED ON A GPU: compiled for sm_90 but never run on one. The kernels' logic
// runs in CI on a CPU emulator (tests/test_persistent_emulated.py). The tier is
// reached only when forced to "persistent" (tier.h).
//
// Layout of the work. CTA k owns hidden units [k*U, k*U + U) (U = ceil(H / SMs)),
// every gate of them, for the whole sequence, so the cell update is local to the CTA:
//   forward   shared memory holds W_hh's rows of those units, gate by gate (G*U rows
//             of length H); a step stages h_{t-1} (the previous step's output rows, or
//             hx) into shared memory batch chunk by batch chunk, forms h_{t-1} W^T for
//             its rows in registers, and runs the cell's pointwise maths (cell_math.h)
//             on the sums, writing the activations, the state and the output row.
//   backward  shared memory holds W_hh's columns of those units (U rows of length
//             G*H, transposed); a step runs the pointwise backward of its units
//             (writing dG), waits at the grid barrier until every CTA has written its
//             part of dG_t, then forms dh_{t-1} = dG_t W_hh for its own columns.
// While the grid waits at a step's barrier, each CTA prefetches into L2 what its units
// read from memory at the next step (forward: the projected inputs; backward: the
// workspace or output rows and grad_output).
// h_{t-1} (forward) and dG_t (backward) travel through L2: written with plain stores,
// read after cg::this_grid().sync() with ld.global.cg, which skips the (incoherent)
// L1. One grid barrier a step in each direction. float32 and float64 products run on
// the CUDA cores in Acc<T>: a warp takes a 4x4 register block of (batch rows) x
// (weight rows), its lanes split K, and a butterfly of shuffles sums the lanes.
// float16 and bfloat16 products run on the tensor cores on sm_80+ (WMMA 16x16x16, fp32
// accumulation), and float32 ones too as TF32 (16x16x8) where torch.backends.cudnn.allow_tf32
// lets torch.nn's RNNs use TF32 (FUSED_RNN_PERSISTENT_MMA=0 keeps all on the CUDA cores): batch
// chunks of 16 rows, Ws zero-padded to 16-multiples, K split across the warps that
// share a weight tile, partial tiles summed through shared memory. Reductions have a
// fixed order: results do not depend on timing.
//
// Both directions of a bidirectional layer run in one launch, forward and backward
// (persistent_forward_pair / persistent_backward_pair: Launch with dirs 2, half the SMs a
// direction, all CTAs meeting at the same grid barriers), where the pair fits; else one
// direction at a time.
//
// Cluster mode (sm_90 and newer; FUSED_RNN_PERSISTENT_CLUSTER=0 turns it off): where W_hh fits
// the shared memory of one thread-block cluster of 8 (or, opted into, 16) CTAs, which is small H
// (about H <= 400-460 for an LSTM in bf16, 320 in fp32 with 8 CTAs; 16 CTAs double the bytes),
// the CTAs of a cluster hold all of W_hh between them, the batch is split between as many
// clusters as fit on the device at once, and a step's barrier is the cluster's
// (barrier.cluster.arrive.release / wait.acquire) instead of the grid's: the model of
// ../shared/reference/performance-model.md puts a cluster barrier at 0.1-0.3 us against 0.7-1.5
// us for grid.sync() on 132 CTAs, and the step of a small layer is little more than its barrier.
// The kernels are the same (Launch's groups), and the launch is an ordinary one with a cluster
// dimension: clusters never wait for each other, so no co-residency is needed beyond a
// cluster's own, which the hardware guarantees. The products' input (the forward's h_t, the
// backward's dG_t) goes to the cluster's CTAs through distributed shared memory where two
// exchange buffers of a cluster's rows fit beside the weight slice (each CTA stores its units'
// part into every CTA's buffer for the step, the buffers alternating by step, then the
// cluster's barrier; the products read their own CTA's copy: no L2 round trip on the step's
// critical path); elsewhere, and with FUSED_RNN_PERSISTENT_DSMEM=0, through L2 (ordinary
// stores, ld.global.cg after the barrier), as in grid mode.
//
// Grid mode with per-step flags (FUSED_RNN_PERSISTENT_FLAGS=1; off by default until a GPU run
// shows it correct): instead of grid.sync(), each CTA publishes a count of the steps whose
// products' input it has written (after a block barrier, thread 0: __threadfence, then
// st.release.gpu of its word), and a product waits before each K chunk of its input for the
// CTAs that own that chunk's units (ld.acquire.gpu until their words reach the step, then
// __threadfence and the block barrier the staging already has): no grid-wide arrival on one
// counter, a CTA may start on the chunks already written, and the directions of a bidirectional
// launch never wait for each other. Every step's input rows stay where they were written (the
// output, dG), so a reader need wait only for writers, never writers for readers. The launch
// stays cooperative (the waits need every CTA resident). A wait that lasts 20 s traps.
#include <ATen/Context.h>
#include <ATen/cuda/CUDAContext.h>
#include <torch/version.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "../gemm.h"
#include "../tier.h"
#include "persistent.h"
#include "persistent_kernels.cuh"

namespace fused_rnn::cuda {
namespace {

using namespace persistent;

// Whether torch lets cuDNN's RNNs use TF32 for float32 (torch.backends.cudnn.allow_tf32,
// true by default): torch.nn's LSTM/GRU/RNN then run float32 on TF32 tensor cores, and so
// does this tier.
bool tf32_allowed() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 10)
  return at::globalContext().allowTF32CuDNN(at::Float32Op::RNN);
#else
  return at::globalContext().allowTF32CuDNN();
#endif
}

// Whether this layer's products go to the tensor cores: on sm_80 and newer, the 16-bit
// types, and float32 as TF32 where torch allows it, unless FUSED_RNN_PERSISTENT_MMA=0
// (tier.h).
template <typename T>
bool use_mma() {
  if (!MmaElem<T>::ok || !persistent_mma() || at::cuda::getCurrentDeviceProperties()->major < 8) {
    return false;
  }
  return !MmaElem<T>::tf32 || tf32_allowed();
}

// Lets `kernel` launch with `bytes` of dynamic shared memory on the current device: raises its
// limit where it is lower, never lowers it (another thread may be about to launch the same kernel
// with a larger plan: a limit set lower between its planning and its launch would fail that
// launch). A limit above a launch's need changes nothing for that launch.
void allow_dynamic_smem(const void* kernel, size_t bytes) {
  static std::mutex mutex;
  static std::map<std::pair<int, const void*>, size_t> allowed;
  const std::lock_guard<std::mutex> guard(mutex);
  size_t& limit = allowed[{at::cuda::current_device(), kernel}];
  if (bytes > limit) {
    C10_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    limit = bytes;
  }
}

// plan_tiling for this device, with the kernel's co-residency checked (ok false otherwise):
// for `dirs` directions in one launch (1, or 2 for both directions of a layer), each direction
// planned on its share of the SMs, all dirs * ctas CTAs co-resident.
template <typename T>
TilePlan make_plan(int64_t H, int64_t G, int64_t B, bool forward, bool mma, const void* kernel, int dirs) {
  const cudaDeviceProp* prop = at::cuda::getCurrentDeviceProperties();
  const int64_t sms = prop->multiProcessorCount / dirs;
  if (!prop->cooperativeLaunch || sms < 1) {
    return TilePlan{};
  }
  TilePlan plan = plan_tiling(H, G, B, forward, sms, prop->sharedMemPerBlockOptin, sizeof(T), sizeof(Acc<T>), mma);
  if (!plan.ok) {
    return plan;
  }
  allow_dynamic_smem(kernel, plan.smem);
  int per_sm = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, plan.smem));
  plan.ok = static_cast<int64_t>(per_sm) * prop->multiProcessorCount >= static_cast<int64_t>(dirs) * plan.ctas;
  return plan;
}

// The launch configuration of a cluster-mode plan for `dirs` directions: plan.groups clusters of
// plan.ctas CTAs a direction; attr (which config points to) holds the cluster size.
inline cudaLaunchConfig_t cluster_config(const TilePlan& plan, int dirs, cudaLaunchAttribute& attr) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(dirs * plan.groups * plan.ctas));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = plan.smem;
  config.stream = at::cuda::getCurrentCUDAStream();
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = static_cast<unsigned>(plan.ctas);
  attr.val.clusterDim.y = 1;
  attr.val.clusterDim.z = 1;
  config.attrs = &attr;
  config.numAttrs = 1;
  return config;
}

// Cluster mode (plan_cluster) on devices of compute capability 9.0 and newer, unless
// FUSED_RNN_PERSISTENT_CLUSTER=0: the first cluster size of 8 and 16 CTAs (16 is beyond the
// portable limit and opted into) at which the slice fits a CTA and the device can schedule such a
// cluster, with as many clusters a direction as can be resident at once (at most one a batch
// row); ok false where none. Clusters never wait for each other, so a launch with more clusters
// than fit at once is still correct, only slower.
template <typename T>
TilePlan make_cluster_plan(int64_t H, int64_t G, int64_t B, bool forward, bool mma, const void* kernel, int dirs) {
  const cudaDeviceProp* prop = at::cuda::getCurrentDeviceProperties();
  if (!persistent_cluster() || prop->major < 9) {
    return TilePlan{};
  }
  for (int size : {8, 16}) {
    int64_t max_groups = std::max<int64_t>(1, prop->multiProcessorCount / (size * dirs));
    for (int attempt = 0; attempt < 2; ++attempt) {
      const TilePlan plan = plan_cluster(H, G, B, forward, size, max_groups, prop->sharedMemPerBlockOptin, sizeof(T),
                                         sizeof(Acc<T>), mma, persistent_dsmem());
      if (!plan.ok) {
        break;
      }
      allow_dynamic_smem(kernel, plan.smem);
      if (size > 8) {
        C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
      }
      cudaLaunchAttribute attr{};
      cudaLaunchConfig_t config = cluster_config(plan, dirs, attr);
      int active = 0;
      if (cudaOccupancyMaxActiveClusters(&active, kernel, &config) != cudaSuccess) {
        (void)cudaGetLastError();  // this cluster size is refused here
        break;
      }
      if (active >= dirs * plan.groups || (attempt == 1 && active >= 1)) {
        return plan;
      }
      if (active < 1) {
        break;
      }
      max_groups = std::max<int64_t>(1, active / dirs);  // fewer, larger groups, all resident
    }
  }
  return TilePlan{};
}

// The plan of a layer and the kernel it runs (kernel_of(mma)): with the tensor cores where
// use_mma says so and the padded layout fits (plan.tl.mma then), else on the CUDA cores; for
// each, in cluster mode where make_cluster_plan finds one (plan.cluster), else on the whole grid;
// ok false where nothing fits.
template <typename T, class KernelOf>
TilePlan plan_layer(const LayerArgs& a, bool forward, const KernelOf& kernel_of, const void*& kernel, int dirs = 1) {
  const bool mma = use_mma<T>();
  for (int i = 0; i < (mma ? 2 : 1); ++i) {
    const bool m = mma && i == 0;
    kernel = reinterpret_cast<const void*>(kernel_of(m));
    TilePlan plan = make_cluster_plan<T>(a.H, a.G, a.B, forward, m, kernel, dirs);
    if (!plan.ok) {
      plan = make_plan<T>(a.H, a.G, a.B, forward, m, kernel, dirs);
    }
    if (plan.ok) {
      return plan;
    }
  }
  return TilePlan{};
}

// The step tables of a packed sequence on the device (none for a dense one).
Steps make_steps(const LayerArgs& a, bool reverse, at::Tensor& holder) {
  Steps S;
  S.T = a.T;
  S.B = a.B;
  S.reverse = reverse;
  if (a.packed) {
    std::vector<int64_t> v(a.sizes);
    v.insert(v.end(), a.offsets.begin(), a.offsets.end());
    holder = at::tensor(v, at::kLong).pin_memory().to(a.input.device(), /*non_blocking=*/true);
    S.sizes = holder.const_data_ptr<int64_t>();
    S.offsets = S.sizes + a.T;
  }
  return S;
}

// Launches kernel as `plan` says, its group fields copied into `launch`: in cluster mode
// plan.groups clusters of plan.ctas CTAs for each of launch.dirs directions, otherwise
// cooperatively, plan.ctas CTAs a direction; false (error cleared) when the device refuses the
// grid or the clusters.
// In grid mode with per-step flags (persistent_flags), the flags are zeroed here and live in
// `flags` until the kernel has run (the stream orders their reuse).
template <class Launch>
bool launch_plan(const void* kernel, const TilePlan& plan, Launch& launch, at::Tensor& flags) {
  launch.take(plan);
  if (!plan.cluster && persistent_flags()) {
    flags = at::zeros({launch.dirs * plan.ctas},
                      at::TensorOptions().dtype(at::kInt).device(at::kCUDA, at::cuda::current_device()));
    launch.flags = reinterpret_cast<unsigned*>(flags.data_ptr<int>());
  }
  void* params[] = {&launch};
  cudaError_t err;
  if (plan.cluster) {
    cudaLaunchAttribute attr{};
    const cudaLaunchConfig_t config = cluster_config(plan, launch.dirs, attr);
    err = cudaLaunchKernelExC(&config, kernel, params);
  } else {
    err = cudaLaunchCooperativeKernel(kernel, dim3(launch.dirs * plan.ctas), dim3(kThreads), params, plan.smem,
                                      at::cuda::getCurrentCUDAStream());
  }
  if (err == cudaErrorCooperativeLaunchTooLarge ||
      (plan.cluster && (err == cudaErrorInvalidClusterSize || err == cudaErrorLaunchOutOfResources))) {
    (void)cudaGetLastError();
    return false;
  }
  C10_CUDA_CHECK(err);
  return true;
}

// One direction's kernel arguments, after its input projection (cuBLAS) into `gates`, or
// into `scratch` where gates is null (inference LSTM and GRU: a gate buffer of our own).
template <typename T>
ForwardArgs<T> forward_args(const LayerArgs& a, bool reverse, const TilePlan& plan, const ForwardStep<T>& st,
                            T* gates, T* out, T* ws, at::Tensor& scratch, at::Tensor& tables) {
  const int64_t GH = a.G * a.H;
  int64_t gates_ld = st.gates_ld;
  if (gates == nullptr) {
    scratch = at::empty({a.N, GH}, a.input.options());
    gates = scratch.data_ptr<T>();
    gates_ld = GH;
  }
  gemm<T>(a.input.device(), false, true, a.N, GH, a.I, a.input.const_data_ptr<T>(), a.I,
          a.w_ih.const_data_ptr<T>(), a.I, false, gates, gates_ld);
  ForwardArgs<T> args;
  args.steps = make_steps(a, reverse, tables);
  args.tl = plan.tl;
  args.H = a.H;
  args.w_hh = a.w_hh.const_data_ptr<T>();
  args.bias = st.bias;
  args.bias_hh = st.bias_hh;
  args.gates = gates;
  args.gates_ld = gates_ld;
  args.out = out;
  args.h = st.h;
  args.hx = a.hx.const_data_ptr<T>();
  args.c = st.c;
  args.ws = ws;
  args.ws_ld = st.ws_ld;
  return args;
}

// One direction's backward kernel arguments.
template <typename T>
BackwardArgs<T> backward_args(CellKind cell, const LayerArgs& a, bool reverse, const TilePlan& plan,
                              const BackwardStep<T>& base, const T* grad_output, const T* grad_cell_states,
                              const T* w_hh, at::Tensor& tables) {
  BackwardArgs<T> args;
  args.steps = make_steps(a, reverse, tables);
  args.tl = plan.tl;
  args.H = a.H;
  args.w_hh = w_hh;
  args.go = grad_output;
  args.gcs = grad_cell_states;
  args.ws = base.ws;
  args.ws_ld = base.ws_ld;
  args.out = base.out;
  args.hx = a.hx.const_data_ptr<T>();
  args.cx = cell == CellKind::kLstm ? a.cx.const_data_ptr<T>() : nullptr;
  args.dh = base.dh;
  args.dc = base.dc;
  args.dg = base.dg;
  args.dgh = base.dgh;
  return args;
}

// A launch of `plan` for `dirs` directions in the counters (tier.h), by what it ran (flags:
// grid mode's per-step flags).
void count_launch(const TilePlan& plan, int dirs, bool forward, bool flags) {
  count_persistent_launch(forward, plan.tl.mma);
  if (dirs == 2) {
    count_persistent_pair_launch(forward);
  }
  if (plan.cluster) {
    count_persistent_cluster_launch(forward);
  }
  if (plan.tl.hrows > 0) {
    count_persistent_dsmem_launch(forward);
  }
  if (flags) {
    count_persistent_flags_launch(forward);
  }
}

// The forward of `dirs` directions in one launch (1; or 2, a bidirectional layer: a[0]
// forward, a[1] reverse), each direction's fields at index d; false, having launched
// nothing, where they do not fit.
template <typename T>
bool launch_forward(CellKind cell, int dirs, const LayerArgs* a, const bool* reverse,
                    const ForwardStep<T>* const* st, T* const* gates, T* const* out, T* const* ws) {
  if (a[0].T == 0 || a[0].N == 0) {
    return false;
  }
  const void* kernel = nullptr;
  const TilePlan plan = plan_layer<T>(a[0], true, [&](bool m) { return forward_kernel<T>(cell, m); }, kernel, dirs);
  if (!plan.ok) {
    return false;
  }
  at::Tensor scratch[2], tables[2], flags;
  ForwardLaunch<T> launch;
  launch.dirs = dirs;
  for (int d = 0; d < dirs; ++d) {
    launch.dir[d] = forward_args(a[d], reverse[d], plan, *st[d], gates[d], out[d], ws[d], scratch[d], tables[d]);
  }
  if (!launch_plan(kernel, plan, launch, flags)) {
    return false;
  }
  count_launch(plan, dirs, true, flags.defined());
  return true;
}

// The backward's reverse loops of `dirs` directions in one launch, as launch_forward.
template <typename T>
bool launch_backward(CellKind cell, int dirs, const LayerArgs* a, const bool* reverse,
                     const BackwardStep<T>* const* base, const T* const* grad_output,
                     const T* const* grad_cell_states, const T* const* w_hh) {
  if (a[0].T == 0 || a[0].N == 0) {
    return false;
  }
  const void* kernel = nullptr;
  const TilePlan plan = plan_layer<T>(a[0], false, [&](bool m) { return backward_kernel<T>(cell, m); }, kernel, dirs);
  if (!plan.ok) {
    return false;
  }
  at::Tensor tables[2], flags;
  BackwardLaunch<T> launch;
  launch.dirs = dirs;
  for (int d = 0; d < dirs; ++d) {
    launch.dir[d] = backward_args(cell, a[d], reverse[d], plan, *base[d], grad_output[d], grad_cell_states[d],
                                  w_hh[d], tables[d]);
  }
  if (!launch_plan(kernel, plan, launch, flags)) {
    return false;
  }
  count_launch(plan, dirs, false, flags.defined());
  return true;
}

constexpr bool kPairReverse[2] = {false, true};

}  // namespace

template <typename T>
bool persistent_forward(CellKind cell, const LayerArgs& a, bool reverse, const ForwardStep<T>& st, T* gates,
                        T* out, T* ws) {
  const ForwardStep<T>* s = &st;
  return launch_forward<T>(cell, 1, &a, &reverse, &s, &gates, &out, &ws);
}

template <typename T>
bool persistent_forward_pair(CellKind cell, const LayerArgs (&a)[2], std::array<const ForwardStep<T>*, 2> st,
                             std::array<T*, 2> gates, std::array<T*, 2> out, std::array<T*, 2> ws) {
  return launch_forward<T>(cell, 2, a, kPairReverse, st.data(), gates.data(), out.data(), ws.data());
}

template <typename T>
bool persistent_backward(CellKind cell, const LayerArgs& a, bool reverse, const BackwardStep<T>& base,
                         const T* grad_output, const T* grad_cell_states, const T* w_hh) {
  const BackwardStep<T>* b = &base;
  return launch_backward<T>(cell, 1, &a, &reverse, &b, &grad_output, &grad_cell_states, &w_hh);
}

template <typename T>
bool persistent_backward_pair(CellKind cell, const LayerArgs (&a)[2], std::array<const BackwardStep<T>*, 2> base,
                              std::array<const T*, 2> grad_output, std::array<const T*, 2> grad_cell_states,
                              std::array<const T*, 2> w_hh) {
  return launch_backward<T>(cell, 2, a, kPairReverse, base.data(), grad_output.data(), grad_cell_states.data(),
                            w_hh.data());
}

#define FR_INSTANTIATE(T)                                                                                     \
  template bool persistent_forward<T>(CellKind, const LayerArgs&, bool, const ForwardStep<T>&, T*, T*, T*); \
  template bool persistent_forward_pair<T>(CellKind, const LayerArgs(&)[2], std::array<const ForwardStep<T>*, 2>, \
                                           std::array<T*, 2>, std::array<T*, 2>, std::array<T*, 2>);          \
  template bool persistent_backward<T>(CellKind, const LayerArgs&, bool, const BackwardStep<T>&, const T*,  \
                                       const T*, const T*);                                                 \
  template bool persistent_backward_pair<T>(CellKind, const LayerArgs(&)[2], std::array<const BackwardStep<T>*, 2>, \
                                            std::array<const T*, 2>, std::array<const T*, 2>,                  \
                                            std::array<const T*, 2>);
FR_INSTANTIATE(float)
FR_INSTANTIATE(double)
FR_INSTANTIATE(c10::Half)
FR_INSTANTIATE(c10::BFloat16)
#undef FR_INSTANTIATE

}  // namespace fused_rnn::cuda
