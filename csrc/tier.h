// Which tier runs the recurrent loop of a CUDA layer, and how often each ran.
//
// Compiled into every build (a CPU-only build reports and accepts the setting,
// it just never launches anything), so that Python code and tests can set and
// read it without knowing how fused_rnn was built.
//
//   FUSED_RNN_TIER=alternating  one cuBLAS GEMM and one pointwise kernel per step (the default)
//   FUSED_RNN_TIER=persistent   one cooperative kernel for the whole sequence where the layer
//                               fits on chip, the alternating tier where it does not
//   FUSED_RNN_TIER=auto         the dispatcher's choice; the alternating tier until a recorded
//                               GPU run has shown the persistent kernels correct
#pragma once

#include <cstdint>
#include <string>

namespace fused_rnn {

// A run-time switch read once from the environment variable `name`: off where it is "0", on where
// it is set to anything else, `fallback` where it is unset (every on/off switch of fused_rnn, CPU
// and CUDA alike, reads its variable so).
bool env_switch(const char* name, bool fallback = true);

// Whether this build's CUDA kernels can run on CUDA device `device`: the CUDA runtime is asked
// for one kernel's attributes there, which fails where the binary holds no kernel image for the
// device's compute capability (built for other architectures: TORCH_CUDA_ARCH_LIST). False in a
// build without CUDA kernels. The Python layer asks once per device and runs torch's own
// computation, with a warning, where this is false, rather than fail at the first launch.
// UNVERIFIED ON A GPU.
bool cuda_kernels_run_on(int device);

enum class CudaTier { kAlternating = 0, kPersistent = 1, kAuto = 2 };

// The tier in force; raises if FUSED_RNN_TIER holds an unknown value.
CudaTier cuda_tier();
const char* cuda_tier_name(CudaTier tier);
// The setting's name, "invalid" for an unknown FUSED_RNN_TIER (never raises).
std::string cuda_tier_setting();
// Sets the tier by name ("alternating", "persistent", "auto"); returns the previous name.
std::string set_cuda_tier(const std::string& name);

// Whether the persistent kernels form their products on the tensor cores (WMMA, fp32
// accumulation; devices of compute capability 8.0 and newer): float16/bfloat16, and
// float32 as TF32 where torch.backends.cudnn.allow_tf32 allows it, rather than on the
// CUDA cores. On by default; FUSED_RNN_PERSISTENT_MMA=0 turns it off.
// UNVERIFIED ON A GPU like the rest of the persistent tier.
bool persistent_mma();
bool set_persistent_mma(bool on);  // returns the previous setting

// Whether the persistent tier runs a layer whose W_hh fits in the shared memory of one
// thread-block cluster (8 or 16 CTAs; devices of compute capability 9.0 and newer) in cluster
// mode: each cluster holds all of W_hh, runs a slice of the batch and meets at the cluster's
// barrier, no grid barrier at all. On by default; FUSED_RNN_PERSISTENT_CLUSTER=0 keeps every
// layer on the grid-wide kernel. UNVERIFIED ON A GPU like the rest of the persistent tier.
bool persistent_cluster();
bool set_persistent_cluster(bool on);  // returns the previous setting

// Whether the kernels in cluster mode hand their products' input (the forward's h_t, the
// backward's dG_t) to the cluster's CTAs through distributed shared memory (each CTA stores its
// units' part into every CTA's exchange buffer, then the cluster's barrier) rather than through
// L2, where the two exchange buffers fit next to the weight slice. On by default;
// FUSED_RNN_PERSISTENT_DSMEM=0 keeps L2. UNVERIFIED ON A GPU like the rest of the persistent tier.
bool persistent_dsmem();
bool set_persistent_dsmem(bool on);  // returns the previous setting

// Whether the kernels in grid mode replace the grid barrier of each step by per-step flags: each
// CTA publishes how many steps of the products' input it has written (a release store), and the
// products wait, K chunk by K chunk, only for the CTAs that wrote that chunk (acquire loads), so
// no CTA waits at a grid-wide barrier and the two directions of a bidirectional layer never wait
// for each other. OFF by default (FUSED_RNN_PERSISTENT_FLAGS=1 turns it on) until a GPU run shows
// it correct: UNVERIFIED ON A GPU; checked on the CPU emulator, with ThreadSanitizer.
bool persistent_flags();
bool set_persistent_flags(bool on);  // returns the previous setting

// Launch counters of the persistent kernels, so tests can tell which tier ran (and
// which of those launches took the tensor-core products).
void count_persistent_launch(bool forward, bool mma);
int64_t persistent_launches(bool forward);
int64_t persistent_mma_launches(bool forward);
// Of the launches, those that ran both directions of a bidirectional layer.
void count_persistent_pair_launch(bool forward);
int64_t persistent_pair_launches(bool forward);
// Of the launches, those in cluster mode.
void count_persistent_cluster_launch(bool forward);
int64_t persistent_cluster_launches(bool forward);
// Of those, the launches that exchanged h_t (dG_t) through distributed shared memory.
void count_persistent_dsmem_launch(bool forward);
int64_t persistent_dsmem_launches(bool forward);
// Of the launches, those in grid mode with per-step flags.
void count_persistent_flags_launch(bool forward);
int64_t persistent_flags_launches(bool forward);

}  // namespace fused_rnn
