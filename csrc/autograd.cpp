// Eager calls from Python into the one-direction layer ops: C++ autograd nodes for training,
// the op itself for inference, and a cell's whole step (see autograd.h for why).
#include "autograd.h"

#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/graph_task.h>

#include <array>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace fused_rnn {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Opt = std::optional<Tensor>;

// ---------------------------------------------------------------- the ops, through the dispatcher

using LstmForward = std::tuple<Tensor, Tensor, Tensor, Tensor>(const Tensor&, const Opt&, const Opt&,
                                                               const Tensor&, const Tensor&, const Opt&,
                                                               const Opt&, const Opt&, const Opt&, bool, bool);
using LstmBackward = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>(
    const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Opt&, const Opt&, const Tensor&,
    const Tensor&, const Opt&, const Opt&, const Opt&, const Opt&, const Tensor&, const Tensor&, bool, const Opt&,
    bool, bool, bool);
using SimpleForward = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Opt&, const Tensor&, const Tensor&,
                                                         const Opt&, const Opt&, const Opt&, bool, bool);
using SimpleBackward = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>(
    const Tensor&, const Tensor&, const Tensor&, const Opt&, const Tensor&, const Tensor&, const Opt&, const Opt&,
    const Opt&, const Tensor&, const Tensor&, bool, bool, bool, bool);

template <typename Sig>
c10::TypedOperatorHandle<Sig> find_op(const std::string& name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(("fused_rnn::" + name).c_str(), "").typed<Sig>();
}

const c10::TypedOperatorHandle<LstmForward>& lstm_forward() {
  static const auto op = find_op<LstmForward>("lstm_forward");
  return op;
}

const c10::TypedOperatorHandle<LstmBackward>& lstm_backward() {
  static const auto op = find_op<LstmBackward>("lstm_backward");
  return op;
}

// The GRU's and the Elman RNN's ops by a small index (the simple cells' node serves all three).
constexpr std::array<const char*, 3> kSimpleCells = {"gru", "rnn_tanh", "rnn_relu"};

const c10::TypedOperatorHandle<SimpleForward>& simple_forward(int64_t cell) {
  static const std::array<c10::TypedOperatorHandle<SimpleForward>, 3> ops = {
      find_op<SimpleForward>("gru_forward"), find_op<SimpleForward>("rnn_tanh_forward"),
      find_op<SimpleForward>("rnn_relu_forward")};
  return ops.at(cell);
}

const c10::TypedOperatorHandle<SimpleBackward>& simple_backward(int64_t cell) {
  static const std::array<c10::TypedOperatorHandle<SimpleBackward>, 3> ops = {
      find_op<SimpleBackward>("gru_backward"), find_op<SimpleBackward>("rnn_tanh_backward"),
      find_op<SimpleBackward>("rnn_relu_backward")};
  return ops.at(cell);
}

// ---------------------------------------------------------------- shared pieces

Tensor or_undefined(const Opt& t) {
  return t.has_value() ? *t : Tensor();
}

Opt or_none(const Tensor& t) {
  return t.defined() ? Opt(t) : std::nullopt;
}

// The node's edges are its defined tensor arguments, in order: the edge of each tensor argument
// (-1 where absent), so that the backward can ask needs_input_grad of an argument.
std::vector<int64_t> edge_indices(std::initializer_list<bool> present) {
  std::vector<int64_t> edges;
  int64_t next = 0;
  for (bool p : present) {
    edges.push_back(p ? next++ : -1);
  }
  return edges;
}

struct Needs {
  const AutogradContext* ctx;
  std::vector<int64_t> edges;
  bool operator()(size_t arg) const {
    return edges[arg] >= 0 && ctx->needs_input_grad(static_cast<size_t>(edges[arg]));
  }
};

// The gradient autograd passed, or zeros where it passed none (the nodes set
// set_materialize_grads(false), and the ops take every output's gradient): one zero expanded
// to the shape, which the CPU backward reads as a single row (recurrence.h: repeats_one_row)
// rather than an N x P buffer of zeros.
Tensor or_zeros(const Tensor& grad, const Tensor& like, at::IntArrayRef shape) {
  return grad.defined() ? grad : at::zeros({1}, like.options()).expand(shape);
}

// The node's result: one entry per forward argument (`arguments` in all), where argument
// first + k receives given[k] if autograd asked for it; the rest (the cell index,
// batch_sizes, reverse) get none.
variable_list gradients_for(const Needs& need, const std::vector<Opt>& given, size_t first, size_t arguments) {
  TORCH_INTERNAL_ASSERT(first + given.size() <= arguments, "fused_rnn: more gradients than arguments");
  variable_list result(arguments);
  for (size_t k = 0; k < given.size(); ++k) {
    if (need(k) && given[k].has_value()) {
      result[first + k] = *given[k];
    }
  }
  return result;
}

// Whether this backward may write over its node's workspace (ops.cpp: consume_workspace): the
// engine's call with the graph not retained, after which the node's saved tensors are freed.
// Outside a graph task (a node applied by hand) this says keep.
bool workspace_consumed() {
  return !torch::autograd::get_current_graph_task_keep_graph();
}

// The Python function that differentiates a layer's backward (create_graph=True); leaked on
// purpose, so that nothing touches it after the interpreter is gone.
pybind11::object*& double_backward_fn() {
  static pybind11::object* fn = nullptr;
  return fn;
}

// grads of the differentiable inputs (input, hx, [cx,] w_ih, w_hh, b_ih, b_hh[, w_hr]) from the
// Python double backward, given the saved inputs (those and batch_sizes) and the output grads.
std::vector<Opt> differentiable_backward(const std::string& cell, bool reverse, const std::vector<Opt>& inputs,
                                         const std::vector<Tensor>& grads) {
  TORCH_CHECK(double_backward_fn() != nullptr, "fused_rnn: no double backward registered (import fused_rnn)");
  pybind11::gil_scoped_acquire gil;
  pybind11::object result = (*double_backward_fn())(cell, reverse, inputs, grads);
  return result.cast<std::vector<Opt>>();
}

}  // namespace

// ---------------------------------------------------------------- LSTM

// Arguments: input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes (tensors 0-8), reverse.
// grad_fn.name(): torch::autograd::CppNode<fused_rnn::LSTMLayerFunction>
struct LSTMLayerFunction : public torch::autograd::Function<LSTMLayerFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& input, const Opt& hx, const Opt& cx,
                               const Tensor& w_ih, const Tensor& w_hh, const Opt& b_ih, const Opt& b_hh,
                               const Opt& w_hr, const Opt& batch_sizes, bool reverse) {
    const at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [out, h_n, c_n, ws] =
        lstm_forward().call(input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes, reverse, true);
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({input, or_undefined(hx), or_undefined(cx), w_ih, w_hh, or_undefined(b_ih),
                            or_undefined(b_hh), or_undefined(w_hr), or_undefined(batch_sizes), out, ws});
    ctx->saved_data["reverse"] = reverse;
    ctx->saved_data["h_shape"] = h_n.sizes().vec();
    ctx->saved_data["c_shape"] = c_n.sizes().vec();
    ctx->saved_data["edges"] = edge_indices({true, hx.has_value(), cx.has_value(), true, true, b_ih.has_value(),
                                             b_hh.has_value(), w_hr.has_value(), batch_sizes.has_value()});
    return {out, h_n, c_n};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list s = ctx->get_saved_variables();
    const Tensor &input = s[0], &out = s[9], &ws = s[10];
    const bool reverse = ctx->saved_data["reverse"].toBool();
    const Tensor go = or_zeros(grads[0], out, out.sizes());
    const Tensor gh = or_zeros(grads[1], out, ctx->saved_data["h_shape"].toIntVector());
    const Tensor gc = or_zeros(grads[2], out, ctx->saved_data["c_shape"].toIntVector());
    const Needs need{ctx, ctx->saved_data["edges"].toIntVector()};
    std::vector<Opt> given(8);
    if (at::GradMode::is_enabled()) {  // create_graph=True
      given = differentiable_backward("lstm", reverse, {input, or_none(s[1]), or_none(s[2]), s[3], s[4], or_none(s[5]),
                                                        or_none(s[6]), or_none(s[7]), or_none(s[8])},
                                      {go, gh, gc});
    } else {
      const at::AutoDispatchBelowADInplaceOrView below_autograd;
      auto [gi, ghx, gcx, gw_ih, gw_hh, gb_ih, gb_hh, gw_hr] = lstm_backward().call(
          go, gh, gc, input, or_none(s[1]), or_none(s[2]), s[3], s[4], or_none(s[5]), or_none(s[6]), or_none(s[7]),
          or_none(s[8]), out, ws, reverse, std::nullopt, need(0), need(3) || need(4) || need(7),
          workspace_consumed());
      given = {gi, ghx, gcx, gw_ih, gw_hh, gb_ih, gb_hh, gw_hr};
    }
    return gradients_for(need, given, 0, 10);
  }
};

// ---------------------------------------------------------------- GRU and Elman RNN

// Arguments: cell (an index into kSimpleCells), input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes
// (tensors 0-6), reverse.
struct SimpleLayerFunction : public torch::autograd::Function<SimpleLayerFunction> {
  static variable_list forward(AutogradContext* ctx, int64_t cell, const Tensor& input, const Opt& hx,
                               const Tensor& w_ih, const Tensor& w_hh, const Opt& b_ih, const Opt& b_hh,
                               const Opt& batch_sizes, bool reverse) {
    const at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [out, h_n, ws] = simple_forward(cell).call(input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse, true);
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({input, or_undefined(hx), w_ih, w_hh, or_undefined(b_ih), or_undefined(b_hh),
                            or_undefined(batch_sizes), out, ws});
    ctx->saved_data["cell"] = cell;
    ctx->saved_data["reverse"] = reverse;
    ctx->saved_data["h_shape"] = h_n.sizes().vec();
    ctx->saved_data["edges"] = edge_indices({true, hx.has_value(), true, true, b_ih.has_value(), b_hh.has_value(),
                                             batch_sizes.has_value()});
    return {out, h_n};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list s = ctx->get_saved_variables();
    const Tensor &input = s[0], &out = s[7], &ws = s[8];
    const int64_t cell = ctx->saved_data["cell"].toInt();
    const bool reverse = ctx->saved_data["reverse"].toBool();
    const Tensor go = or_zeros(grads[0], out, out.sizes());
    const Tensor gh = or_zeros(grads[1], out, ctx->saved_data["h_shape"].toIntVector());
    const Needs need{ctx, ctx->saved_data["edges"].toIntVector()};
    std::vector<Opt> given(6);
    if (at::GradMode::is_enabled()) {  // create_graph=True
      given = differentiable_backward(kSimpleCells.at(cell), reverse,
                                      {input, or_none(s[1]), s[2], s[3], or_none(s[4]), or_none(s[5]), or_none(s[6])},
                                      {go, gh});
    } else {
      const at::AutoDispatchBelowADInplaceOrView below_autograd;
      auto [gi, ghx, gw_ih, gw_hh, gb_ih, gb_hh] =
          simple_backward(cell).call(go, gh, input, or_none(s[1]), s[2], s[3], or_none(s[4]), or_none(s[5]),
                                     or_none(s[6]), out, ws, reverse, need(0), need(2) || need(3),
                                     workspace_consumed());
      given = {gi, ghx, gw_ih, gw_hh, gb_ih, gb_hh};
    }
    return gradients_for(need, given, 1, 9);
  }
};

namespace {

// Inference: the op below the autograd keys (nothing to record), without its empty workspace.
std::tuple<Tensor, Tensor, Tensor> lstm_infer(const Tensor& input, const Opt& hx, const Opt& cx, const Tensor& w_ih,
                                              const Tensor& w_hh, const Opt& b_ih, const Opt& b_hh, const Opt& w_hr,
                                              const Opt& batch_sizes, bool reverse) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  auto [out, h_n, c_n, ws] = lstm_forward().call(input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes, reverse,
                                                 false);
  return {out, h_n, c_n};
}

std::tuple<Tensor, Tensor> simple_infer(int64_t cell, const Tensor& input, const Opt& hx, const Tensor& w_ih,
                                        const Tensor& w_hh, const Opt& b_ih, const Opt& b_hh, const Opt& batch_sizes,
                                        bool reverse) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  auto [out, h_n, ws] = simple_forward(cell).call(input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse, false);
  return {out, h_n};
}

// A cell's call (torch.nn.LSTMCell / GRUCell / RNNCell forward) where its input and states are
// well formed: both batched ((B, I), (B, H)) or both not ((I), (H)), of matching sizes. Anything
// else returns no result, and the module's Python path runs instead and raises torch.nn's error.
bool cell_shapes_fit(const Tensor& input, std::initializer_list<const Opt*> states, const Tensor& w_ih,
                     int64_t hidden_size) {
  const int64_t dim = input.dim();
  if ((dim != 1 && dim != 2) || w_ih.dim() != 2 || input.size(-1) != w_ih.size(1)) {
    return false;
  }
  for (const Opt* s : states) {
    if (s->has_value() && ((*s)->dim() != dim || (*s)->size(-1) != hidden_size ||
                           (dim == 2 && (*s)->size(0) != input.size(0)))) {
      return false;
    }
  }
  return true;
}

// The cell's input and states as a one-step layer's: (1, B, I) and (B, H).
Tensor as_step(const Tensor& input) {
  return input.dim() == 2 ? input.unsqueeze(0) : input.view({1, 1, input.size(0)});
}

Opt as_state(const Opt& s) {
  return s.has_value() && s->dim() == 1 ? Opt(s->unsqueeze(0)) : s;
}

bool any_requires_grad(std::initializer_list<const Tensor*> ts, std::initializer_list<const Opt*> opts) {
  if (!at::GradMode::is_enabled()) {
    return false;
  }
  for (const Tensor* t : ts) {
    if (t->requires_grad()) {
      return true;
    }
  }
  for (const Opt* t : opts) {
    if (t->has_value() && (*t)->requires_grad()) {
      return true;
    }
  }
  return false;
}

int64_t simple_cell_index(const std::string& cell) {
  for (size_t k = 0; k < kSimpleCells.size(); ++k) {
    if (cell == kSimpleCells[k]) {
      return static_cast<int64_t>(k);
    }
  }
  TORCH_CHECK(false, "fused_rnn: unknown cell '", cell, "' (gru, rnn_tanh or rnn_relu)");
  return -1;
}

}  // namespace

void register_autograd(pybind11::module& m) {
  namespace py = pybind11;
  m.def(
      "_lstm_train",
      [](const Tensor& input, const Opt& hx, const Opt& cx, const Tensor& w_ih, const Tensor& w_hh, const Opt& b_ih,
         const Opt& b_hh, const Opt& w_hr, const Opt& batch_sizes, bool reverse) {
        const variable_list r = LSTMLayerFunction::apply(input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes, reverse);
        return std::make_tuple(r[0], r[1], r[2]);
      },
      py::arg("input"), py::arg("hx"), py::arg("cx"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"),
      py::arg("b_hh"), py::arg("w_hr"), py::arg("batch_sizes"), py::arg("reverse"),
      py::call_guard<py::gil_scoped_release>(),
      "lstm_forward with train=True under a C++ autograd node: (output, h_n, c_n), differentiable");
  m.def(
      "_simple_train",
      [](const std::string& cell, const Tensor& input, const Opt& hx, const Tensor& w_ih, const Tensor& w_hh,
         const Opt& b_ih, const Opt& b_hh, const Opt& batch_sizes, bool reverse) {
        const variable_list r = SimpleLayerFunction::apply(simple_cell_index(cell), input, hx, w_ih, w_hh, b_ih, b_hh,
                                                      batch_sizes, reverse);
        return std::make_tuple(r[0], r[1]);
      },
      py::arg("cell"), py::arg("input"), py::arg("hx"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"),
      py::arg("b_hh"), py::arg("batch_sizes"), py::arg("reverse"), py::call_guard<py::gil_scoped_release>(),
      "<cell>_forward (gru, rnn_tanh, rnn_relu) with train=True under a C++ autograd node: (output, h_n), "
      "differentiable");
  m.def(
      "_lstm_infer",
      &lstm_infer,
      py::arg("input"), py::arg("hx"), py::arg("cx"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"),
      py::arg("b_hh"), py::arg("w_hr"), py::arg("batch_sizes"), py::arg("reverse"),
      py::call_guard<py::gil_scoped_release>(),
      "lstm_forward with train=False, for a call with nothing to differentiate: (output, h_n, c_n)");
  m.def(
      "_simple_infer",
      [](const std::string& cell, const Tensor& input, const Opt& hx, const Tensor& w_ih, const Tensor& w_hh,
         const Opt& b_ih, const Opt& b_hh, const Opt& batch_sizes, bool reverse) {
        return simple_infer(simple_cell_index(cell), input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse);
      },
      py::arg("cell"), py::arg("input"), py::arg("hx"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"),
      py::arg("b_hh"), py::arg("batch_sizes"), py::arg("reverse"), py::call_guard<py::gil_scoped_release>(),
      "<cell>_forward (gru, rnn_tanh, rnn_relu) with train=False, for a call with nothing to differentiate: "
      "(output, h_n)");
  m.def(
      "_lstm_cell",
      [](const Tensor& input, const Opt& hx, const Opt& cx, const Tensor& w_ih, const Tensor& w_hh, const Opt& b_ih,
         const Opt& b_hh, int64_t hidden_size) -> std::optional<std::tuple<Tensor, Tensor>> {
        if (!cell_shapes_fit(input, {&hx, &cx}, w_ih, hidden_size)) {
          return std::nullopt;
        }
        const Tensor x = as_step(input);
        const Opt h0 = as_state(hx), c0 = as_state(cx);
        Tensor h1, c1;
        if (any_requires_grad({&input, &w_ih, &w_hh}, {&hx, &cx, &b_ih, &b_hh})) {
          const variable_list r = LSTMLayerFunction::apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, Opt(), Opt(), false);
          h1 = r[1], c1 = r[2];
        } else {
          std::tie(std::ignore, h1, c1) = lstm_infer(x, h0, c0, w_ih, w_hh, b_ih, b_hh, Opt(), Opt(), false);
        }
        if (input.dim() == 1) {
          return std::make_tuple(h1.squeeze(0), c1.squeeze(0));
        }
        return std::make_tuple(h1, c1);
      },
      py::arg("input"), py::arg("hx"), py::arg("cx"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"),
      py::arg("b_hh"), py::arg("hidden_size"), py::call_guard<py::gil_scoped_release>(),
      "torch.nn.LSTMCell's step, (h_1, c_1), for well-formed input and states (batched or not); "
      "None otherwise (the caller's checks then raise torch.nn's error)");
  m.def(
      "_simple_cell",
      [](const std::string& cell, const Tensor& input, const Opt& hx, const Tensor& w_ih, const Tensor& w_hh,
         const Opt& b_ih, const Opt& b_hh, int64_t hidden_size) -> std::optional<Tensor> {
        if (!cell_shapes_fit(input, {&hx}, w_ih, hidden_size)) {
          return std::nullopt;
        }
        const int64_t k = simple_cell_index(cell);
        const Tensor x = as_step(input);
        const Opt h0 = as_state(hx);
        Tensor h1;
        if (any_requires_grad({&input, &w_ih, &w_hh}, {&hx, &b_ih, &b_hh})) {
          h1 = SimpleLayerFunction::apply(k, x, h0, w_ih, w_hh, b_ih, b_hh, Opt(), false)[1];
        } else {
          h1 = std::get<1>(simple_infer(k, x, h0, w_ih, w_hh, b_ih, b_hh, Opt(), false));
        }
        return input.dim() == 1 ? h1.squeeze(0) : h1;
      },
      py::arg("cell"), py::arg("input"), py::arg("hx"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"),
      py::arg("b_hh"), py::arg("hidden_size"), py::call_guard<py::gil_scoped_release>(),
      "torch.nn.GRUCell's or RNNCell's step (cell: gru, rnn_tanh, rnn_relu), h_1, for well-formed input and "
      "state (batched or not); None otherwise (the caller's checks then raise torch.nn's error)");
  m.def(
      "_set_double_backward",
      [](py::object fn) {
        delete double_backward_fn();
        double_backward_fn() = new py::object(std::move(fn));
      },
      "The Python function the C++ nodes call for a backward with create_graph=True: "
      "fn(cell, reverse, inputs, grads) -> grads of the differentiable inputs");
  // What ops.py's Python backward asks: torch's own Python binding of this came with torch 2.5.
  m.def("_workspace_consumed", &workspace_consumed,
        "Whether the backward running now frees its graph (a node's workspace may then be written over)");
}

}  // namespace fused_rnn
