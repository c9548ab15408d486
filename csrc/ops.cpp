// Every op schema of fused_rnn, defined once, and the Python module init.
//
// One op pair per cell: <cell>_forward and <cell>_backward, for one layer in one
// direction, and <cell>_bidir_forward / _bidir_backward for both directions of one.
// Layouts are described in layer_args.h. The forward returns the workspace (activations
// saved for the backward) as an ordinary tensor so that fake kernels can describe it; it is
// empty when train is false. The LSTM
// workspace holds c_t of every step; lstm_backward's grad_cell_states (rows, H),
// when given, is the gradient arriving at those c_t from outside the layer. A backward
// with input_grad false returns an empty grad_input, and with weight_grad false empty
// grad_w_ih, grad_w_hh (and grad_w_hr), skipping the GEMMs that form them: for a first
// layer over data that needs no gradient, and for frozen weights. consume_workspace is the
// caller's word that the workspace is read by nothing after this backward (autograd's own
// calls, the graph not retained: it is the node's saved tensor, freed when the node returns);
// the CPU backward then writes dG over the gates it has read, and needs no buffer for it
// (the workspace's values after such a call are unspecified). The schema does not mark the
// workspace mutable, for a traced graph's sake (functionalization would copy it before every
// call): only eager autograd passes true, never a trace (ops.py, autograd.cpp).
#include <torch/extension.h>

#include <string>

#include "autograd.h"
#include "cpu/panel_cache.h"
#include "cpu/pointwise.h"
#include "cpu/step_team.h"
#include "gemm.h"
#include "tier.h"

#ifndef FUSED_RNN_TORCH_VERSION
#define FUSED_RNN_TORCH_VERSION "unknown"
#endif
#ifndef FUSED_RNN_CUDA_ARCHS
#define FUSED_RNN_CUDA_ARCHS ""
#endif

TORCH_LIBRARY(fused_rnn, m) {
  m.def(
      "lstm_forward(Tensor input, Tensor? hx, Tensor? cx, Tensor w_ih, Tensor w_hh, Tensor? b_ih, "
      "Tensor? b_hh, Tensor? w_hr, Tensor? batch_sizes, bool reverse, bool train) "
      "-> (Tensor output, Tensor h_n, Tensor c_n, Tensor workspace)");
  m.def(
      "lstm_backward(Tensor grad_output, Tensor grad_h_n, Tensor grad_c_n, Tensor input, "
      "Tensor? hx, Tensor? cx, Tensor w_ih, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, Tensor? w_hr, "
      "Tensor? batch_sizes, Tensor output, Tensor workspace, bool reverse, Tensor? grad_cell_states=None, "
      "bool input_grad=True, bool weight_grad=True, bool consume_workspace=False) "
      "-> (Tensor grad_input, Tensor grad_hx, Tensor grad_cx, Tensor grad_w_ih, Tensor grad_w_hh, "
      "Tensor grad_b_ih, Tensor grad_b_hh, Tensor grad_w_hr)");
  for (const char* cell : {"gru", "rnn_tanh", "rnn_relu"}) {
    m.def((std::string(cell) +
        "_forward(Tensor input, Tensor? hx, Tensor w_ih, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, "
        "Tensor? batch_sizes, bool reverse, bool train) "
        "-> (Tensor output, Tensor h_n, Tensor workspace)").c_str());
    m.def((std::string(cell) +
        "_backward(Tensor grad_output, Tensor grad_h_n, Tensor input, Tensor? hx, Tensor w_ih, "
        "Tensor w_hh, Tensor? b_ih, Tensor? b_hh, Tensor? batch_sizes, Tensor output, "
        "Tensor workspace, bool reverse, bool input_grad=True, bool weight_grad=True, "
        "bool consume_workspace=False) "
        "-> (Tensor grad_input, Tensor grad_hx, Tensor grad_w_ih, Tensor grad_w_hh, "
        "Tensor grad_b_ih, Tensor grad_b_hh)").c_str());
  }
  // Both directions of a bidirectional layer in one call. `weights` holds w_ih, w_hh, b_ih,
  // b_hh (and w_hr for the LSTM) of the forward direction, then of the reverse one, None where
  // absent; hx and cx are (2, B, .). The output has both directions' features side by side,
  // (T, B, 2P) (or (N, 2P) packed), as torch.nn's; the workspace is (2, rows, cols). The
  // backward returns the input's gradient summed over the directions and the weights'
  // gradients in the order of `weights` (empty where absent or not asked for).
  m.def(
      "lstm_bidir_forward(Tensor input, Tensor? hx, Tensor? cx, Tensor?[] weights, Tensor? batch_sizes, "
      "bool train) -> (Tensor output, Tensor h_n, Tensor c_n, Tensor workspace)");
  m.def(
      "lstm_bidir_backward(Tensor grad_output, Tensor grad_h_n, Tensor grad_c_n, Tensor input, Tensor? hx, "
      "Tensor? cx, Tensor?[] weights, Tensor? batch_sizes, Tensor output, Tensor workspace, "
      "bool input_grad=True, bool weight_grad=True, bool consume_workspace=False) "
      "-> (Tensor grad_input, Tensor grad_hx, Tensor grad_cx, Tensor[] grad_weights)");
  for (const char* cell : {"gru", "rnn_tanh", "rnn_relu"}) {
    m.def((std::string(cell) +
        "_bidir_forward(Tensor input, Tensor? hx, Tensor?[] weights, Tensor? batch_sizes, bool train) "
        "-> (Tensor output, Tensor h_n, Tensor workspace)").c_str());
    m.def((std::string(cell) +
        "_bidir_backward(Tensor grad_output, Tensor grad_h_n, Tensor input, Tensor? hx, Tensor?[] weights, "
        "Tensor? batch_sizes, Tensor output, Tensor workspace, bool input_grad=True, bool weight_grad=True, "
        "bool consume_workspace=False) "
        "-> (Tensor grad_input, Tensor grad_hx, Tensor[] grad_weights)").c_str());
  }
}

namespace {

pybind11::dict build_info() {
  pybind11::dict d;
  d["cpu"] = true;
#ifdef FUSED_RNN_WITH_CUDA
  d["cuda"] = true;
  d["cuda_archs"] = std::string(FUSED_RNN_CUDA_ARCHS);
#ifdef CUDA_VERSION
  d["cuda_version"] = CUDA_VERSION;
#endif
#else
  d["cuda"] = false;
  d["cuda_archs"] = std::string();
#endif
  d["cuda_tier"] = fused_rnn::cuda_tier_setting();
  d["persistent_mma"] = fused_rnn::persistent_mma();
  d["persistent_cluster"] = fused_rnn::persistent_cluster();
  d["persistent_dsmem"] = fused_rnn::persistent_dsmem();
  d["persistent_flags"] = fused_rnn::persistent_flags();
  d["cpu_capability"] = fused_rnn::cpu::cpu_capability();
  d["cpu_fused_steps"] = fused_rnn::cpu::fused_steps();
  d["cpu_panel_cache"] = fused_rnn::cpu::panel_cache_enabled();
  d["cpu_dots"] = fused_rnn::cpu::cpu_dots();
  d["cpu_16bit_weights"] = fused_rnn::cpu::read_16bit_weights();
  d["cpu_bf16_dot"] = fused_rnn::cpu::bf16_dot_products();
  d["cpu_concurrent_directions"] = fused_rnn::cpu::concurrent_directions();
  d["cpu_blas_panel_bytes"] = fused_rnn::cpu::blas_panel_bytes();
  d["cpu_onednn_gemm"] = fused_rnn::cpu::onednn_gemm_on();
  d["cpu_weight_grad_tiles"] = fused_rnn::cpu::weight_grad_tiles();
  d["cpu_mkl_off_intel"] = fused_rnn::mkl_off_intel();
  d["cpu_backward_chunk_bytes"] = fused_rnn::cpu::backward_chunk_bytes();
  d["cpu_backward_chunk_min_rows"] = fused_rnn::cpu::backward_chunk_min_rows();
  d["cpu_l2_bytes"] = fused_rnn::cpu::l2_cache_bytes();
  d["cpu_team_min_flops"] = fused_rnn::cpu::team_min_flops().load();
  d["cpu_zigzag"] = fused_rnn::cpu::zigzag_flag().load();
  d["cpu_one_team"] = fused_rnn::cpu::one_team_flag().load();
  // Whether CPU GEMMs call torch's BLAS (sgemm_/dgemm_) directly or go through ATen.
  d["cpu_gemm"] = std::string(sgemm_ != nullptr && dgemm_ != nullptr ? "blas" : "aten");
  // Whether the per-step BLAS products may multiply a weight packed once (MKL's packed GEMM).
  d["cpu_packed_gemm"] = fused_rnn::packed_gemm_on<float>();
  d["built_with_torch"] = std::string(FUSED_RNN_TORCH_VERSION);
#if defined(__VERSION__)
  d["compiler"] = std::string(__VERSION__);
#endif
  return d;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "fused_rnn compiled kernels; the ops live under torch.ops.fused_rnn";
  fused_rnn::register_autograd(m);
  m.def("build_info", &build_info, "What this binary was built with");
  m.def(
      "_set_cpu_capability", &fused_rnn::cpu::set_cpu_capability,
      "Select the CPU kernels' instruction set (default, avx2, avx512); returns the previous one");
  m.def(
      "_set_cpu_fused", &fused_rnn::cpu::set_fused_steps,
      "Run CPU steps fused (True) or as a BLAS gemm plus a pointwise pass (False); returns the previous setting");
  // The two entry points that take the panel cache's lock release the GIL first, as the ops do:
  // a thread holding that lock may need the GIL (a tensor's Python object, when a cache entry's
  // weak reference is locked or an entry dropped), so no thread may wait for the lock holding it.
  m.def(
      "_set_cpu_panel_cache", &fused_rnn::cpu::set_panel_cache,
      "Keep packed CPU weight panels between calls while a weight is unchanged; returns the previous setting",
      pybind11::call_guard<pybind11::gil_scoped_release>());
  m.def(
      "_set_cpu_compare_chunk", &fused_rnn::cpu::set_compare_chunk,
      "Bytes each task compares when the panel cache checks a weight (weights over twice this are "
      "compared on all threads); returns the previous setting");
  m.def(
      "_set_cpu_dots", &fused_rnn::cpu::set_cpu_dots,
      "How the CPU forward reads the weights: auto, always (in place) or never (packed panels); "
      "returns the previous mode");
  m.def(
      "_set_cpu_16bit_weights", &fused_rnn::cpu::set_read_16bit_weights,
      "Whether the CPU forward reads bfloat16/float16 weights behind their kept float32 casts in their "
      "16-bit form; returns the previous setting");
  m.def(
      "_set_cpu_bf16_dot", &fused_rnn::cpu::set_bf16_dot_products,
      "Whether bfloat16 weights read in 16 bits are multiplied by AVX512-BF16 dot products where the CPU has "
      "them; returns the previous setting");
  m.def(
      "_set_cpu_bf16_round_once", &fused_rnn::cpu::set_bf16_round_once,
      "Whether the operand every tile of a bf16 dot-product layer multiplies is rounded to bf16 once by the "
      "team rather than by each tile (the same results); returns the previous setting");
  m.def(
      "_set_cpu_backward_chunk", &fused_rnn::cpu::set_backward_chunk_bytes,
      "The bytes of dG a CPU backward holds at once (0: the whole sequence's); returns the previous setting");
  m.def(
      "_set_cpu_backward_chunk_min_rows", &fused_rnn::cpu::set_backward_chunk_min_rows,
      "The fewest rows of dG a CPU backward's chunk holds, whatever its bytes; returns the previous setting");
  m.def(
      "_set_cpu_concurrent_directions", &fused_rnn::cpu::set_concurrent_directions,
      "Run a bidirectional layer's two directions at once, one a thread, where torch runs two threads "
      "(True, the default) or one after the other; returns the previous setting");
  m.def(
      "_set_cpu_onednn_gemm", &fused_rnn::cpu::set_onednn_gemm,
      "Send the CPU's large float32 weight-gradient products through oneDNN (True) or BLAS (False); "
      "returns the previous setting");
  m.def(
      "_set_cpu_weight_grad_tiles", &fused_rnn::cpu::set_weight_grad_tiles,
      "Form the CPU backward's float32 weight gradients with fused_rnn's own AVX-512 product (True) or "
      "through BLAS/oneDNN (False); returns the previous setting");
  m.def(
      "_cpu_weight_product",
      [](const at::Tensor& A, const at::Tensor& B, const at::Tensor& C, bool accumulate) {
        TORCH_CHECK(A.device().is_cpu() && A.scalar_type() == at::kFloat && B.scalar_type() == at::kFloat &&
                        C.scalar_type() == at::kFloat && A.dim() == 2 && B.dim() == 2 && C.dim() == 2 &&
                        A.stride(1) == 1 && B.stride(1) == 1 && C.stride(1) == 1 && A.size(0) == B.size(0) &&
                        C.size(0) == A.size(1) && C.size(1) == B.size(1),
                    "_cpu_weight_product: float32 CPU matrices A (K, M), B (K, N), C (M, N) with unit column strides");
        return fused_rnn::cpu::weight_product_run<float>(
            A.size(1), B.size(1), A.size(0), A.const_data_ptr<float>(), A.stride(0), B.const_data_ptr<float>(),
            B.stride(0), accumulate, C.data_ptr<float>(), C.stride(0));
      },
      "C (+)= A^T B by the CPU capability's own weight-gradient product; False where it has none (for tests)");
  m.def(
      "_set_cpu_blas_panel_bytes", &fused_rnn::cpu::set_blas_panel_bytes,
      "The bytes of a tile panel from which the CPU backward's products of >= 32 rows a step (dh from 8 with "
      "MKL's packed GEMM) run on BLAS "
      "(0: never); returns the previous setting");
  m.def(
      "_set_cpu_packed_gemm", [](bool on) { return fused_rnn::packed_gemm_flag().exchange(on); },
      "Whether a CPU backward's per-step products run by BLAS multiply a weight packed once for MKL's "
      "packed GEMM (where torch's MKL has it) rather than plain sgemm; returns the previous setting");
  m.def(
      "_set_cpu_team_min_flops",
      [](int64_t flops) {
        TORCH_CHECK(flops >= 0, "fused_rnn: the team's least work must be >= 0, got ", flops);
        return fused_rnn::cpu::team_min_flops().exchange(flops);
      },
      "The least work (flops) a CPU recurrence runs on a thread team for; smaller ones stay on the "
      "calling thread; returns the previous setting");
  m.def(
      "_set_cpu_one_team", [](bool on) { return fused_rnn::cpu::one_team_flag().exchange(on); },
      "Whether a CPU run that starts while another call's thread team runs goes on its own thread rather than "
      "forming a second team on the same cores; returns the previous setting");
  m.def(
      "_set_cpu_zigzag", [](bool on) { return fused_rnn::cpu::zigzag_flag().exchange(on); },
      "Whether a CPU thread team's threads run their items in reverse at every other step (step_team.h); "
      "returns the previous setting");
  m.def(
      "_kept_cast", &fused_rnn::cpu::kept_cast,
      "A weight cast to dtype, the same tensor from call to call while the weight is unchanged (CPU)",
      pybind11::call_guard<pybind11::gil_scoped_release>());  // takes the panel cache's lock (above)
  m.def(
      "_cpu_cache_calls",
      [] {
        using fused_rnn::cpu::CacheCall;
        pybind11::dict d;
        d["casts_kept"] = fused_rnn::cpu::cache_calls(CacheCall::kCastKept);
        d["casts_made"] = fused_rnn::cpu::cache_calls(CacheCall::kCastMade);
        d["panels_found"] = fused_rnn::cpu::cache_calls(CacheCall::kPanelsFound);
        d["panels_missed"] = fused_rnn::cpu::cache_calls(CacheCall::kPanelsMissed);
        return d;
      },
      "_kept_cast calls so far that found their cast kept or made it, and lookups of packed CPU panels "
      "(of trackable weights) that found them or not (for tests)");
  m.def(
      "_cpu_forward_calls",
      [] {
        pybind11::dict d;
        d["dots"] = fused_rnn::cpu::forward_calls(true);
        d["panels"] = fused_rnn::cpu::forward_calls(false);
        d["16bit_weights"] = fused_rnn::cpu::narrow_forward_calls();
        d["bf16_dot"] = fused_rnn::cpu::bf16_dot_forward_calls();
        d["bf16_backward"] = fused_rnn::cpu::bf16_backward_calls();
        d["bf16_rounded_forward"] = fused_rnn::cpu::bf16_rounded_once_calls(true);
        d["bf16_rounded_backward"] = fused_rnn::cpu::bf16_rounded_once_calls(false);
        d["bidir_at_once_forward"] = fused_rnn::cpu::directions_at_once_calls(true);
        d["bidir_at_once_backward"] = fused_rnn::cpu::directions_at_once_calls(false);
        d["input_grad_panels"] = fused_rnn::cpu::input_grad_panel_calls();
        d["blas_backward"] = fused_rnn::cpu::blas_backward_calls();
        d["packed_gemm"] = fused_rnn::packed_gemm_packs().load();
        d["onednn_gemm"] = fused_rnn::cpu::onednn_gemm_calls();
        d["weight_product"] = fused_rnn::cpu::weight_product_calls();
        d["runs_alone_beside_a_team"] = fused_rnn::cpu::runs_alone_beside_a_team().load();
        return d;
      },
      "Fused CPU forward calls so far, by how they read the weights, backward calls whose large "
      "products ran in bfloat16, bf16 dot-product forward/backward calls that rounded the operand every tile "
      "multiplies once, bidirectional forward/backward calls that ran their directions at once, "
      "backward calls whose grad_input ran on W_ih packed for the tiles, and backward reverse loops sent to "
      "BLAS for their panels' size, weights packed for MKL's packed GEMM, and products sent to oneDNN or to "
      "the own weight-gradient product, and team runs that went on their own thread because another call's team was "
      "running (for tests)");
  m.def(
      "_cuda_kernels_run_on", &fused_rnn::cuda_kernels_run_on, pybind11::arg("device"),
      "Whether this build's CUDA kernels can run on the CUDA device of that index (a kernel image for its "
      "compute capability; False in a build without CUDA kernels)");
  m.def(
      "_set_cuda_tier", &fused_rnn::set_cuda_tier,
      "Select the CUDA recurrent tier (alternating, persistent, auto); returns the previous one");
  m.def(
      "_persistent_launches",
      [] {
        pybind11::dict d;
        d["forward"] = fused_rnn::persistent_launches(true);
        d["backward"] = fused_rnn::persistent_launches(false);
        d["mma_forward"] = fused_rnn::persistent_mma_launches(true);
        d["mma_backward"] = fused_rnn::persistent_mma_launches(false);
        d["pair_forward"] = fused_rnn::persistent_pair_launches(true);
        d["pair_backward"] = fused_rnn::persistent_pair_launches(false);
        d["cluster_forward"] = fused_rnn::persistent_cluster_launches(true);
        d["cluster_backward"] = fused_rnn::persistent_cluster_launches(false);
        d["cluster_dsmem_forward"] = fused_rnn::persistent_dsmem_launches(true);
        d["cluster_dsmem_backward"] = fused_rnn::persistent_dsmem_launches(false);
        d["grid_flags_forward"] = fused_rnn::persistent_flags_launches(true);
        d["grid_flags_backward"] = fused_rnn::persistent_flags_launches(false);
        return d;
      },
      "How many persistent-tier kernels (forward, backward; and of those, with tensor-core products; "
      "those that ran both directions of a bidirectional layer; those in cluster mode; of those, the ones "
      "that exchanged h_t or dG_t through distributed shared memory; those in grid mode with per-step "
      "flags) this process has launched");
  m.def(
      "_set_persistent_mma", &fused_rnn::set_persistent_mma,
      "Let the persistent kernels use tensor cores (float16/bfloat16; float32 as TF32 where "
      "torch.backends.cudnn.allow_tf32 allows it) (True, the default) or not; "
      "returns the previous setting");
  m.def(
      "_set_persistent_cluster", &fused_rnn::set_persistent_cluster,
      "Let the persistent tier run layers whose W_hh fits one thread-block cluster in cluster mode "
      "(True, the default; sm_90 and newer) or keep every layer on the grid-wide kernel (False); "
      "returns the previous setting");
  m.def(
      "_set_persistent_dsmem", &fused_rnn::set_persistent_dsmem,
      "Let the persistent kernels in cluster mode exchange h_t (dG_t) through distributed shared memory "
      "(True, the default) or through L2 (False); returns the previous setting");
  m.def(
      "_set_persistent_flags", &fused_rnn::set_persistent_flags,
      "Let the persistent kernels in grid mode synchronise each step with per-step flags (True; "
      "unverified on a GPU) instead of the grid barrier (False, the default); returns the previous "
      "setting");
}
