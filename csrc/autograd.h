// The eager training path's autograd: one C++ autograd node per one-direction layer call.
//
// A training call from Python through torch.autograd.Function pays, at a cell's size, more in
// Python than in the kernels (the Function's apply and setup_context, the engine taking the GIL
// to run a Python backward, the zero gradients formed in Python): some 100 us a step against
// torch.nn's cells, whose few ATen ops carry C++ autograd nodes. The functions registered here
// run the same forward and backward ops (through the dispatcher, so on any device) under a
// torch::autograd::Function instead. ops.py's Python Functions stay the path under
// torch.compile and functorch transforms, which do not trace C++ autograd Functions.
//
// Double backward (create_graph=True): the fused backward op is not differentiable, so the
// node hands the call to a Python function set with _set_double_backward (ops.py's, which
// recomputes the layer with the reference and differentiates it), as the Python Function does.
#pragma once

#include <torch/extension.h>

namespace fused_rnn {

void register_autograd(pybind11::module& m);

}  // namespace fused_rnn
