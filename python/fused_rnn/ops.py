"""Fake (meta) kernels and autograd wrappers over the registered ``torch.ops.fused_rnn`` ops.

Each cell has a forward and a backward op (see ``csrc/ops.cpp`` for the schemas and
``csrc/layer_args.h`` for the layouts). The fake kernels describe their outputs'
shapes so that ``torch.compile`` and ``torch.library.opcheck`` can trace them; the
``autograd.Function`` classes call the forward op, keep its workspace, and call the
backward op.
"""

from __future__ import annotations

import inspect

import torch

from . import _C  # loading the extension registers the ops
from . import reference

_ops = torch.ops.fused_rnn

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
SEQ_LEN_ERROR = "Expected sequence length to be larger than 0 in RNN"


def workspace_cols(cell: str, hidden_size: int, has_proj: bool) -> int:
    """Columns per row of the saved workspace; mirrors ``workspace_cols`` in layer_args.cpp."""
    if cell == "lstm":
        return 5 * hidden_size + (hidden_size if has_proj else 0)
    if cell == "gru":
        return 4 * hidden_size
    return 0


def _layout(input, hx, batch_sizes):
    """(rows, batch) of a layer call, as the C++ side computes them."""
    if batch_sizes is None:
        torch._check(input.shape[0] > 0, lambda: SEQ_LEN_ERROR)
        return input.shape[0] * input.shape[1], input.shape[1]
    torch._check(batch_sizes.shape[0] > 0, lambda: SEQ_LEN_ERROR)
    if hx is not None:
        return input.shape[0], hx.shape[0]
    # The batch is batch_sizes[0], a value rather than a shape: describe it as a dynamic size.
    return input.shape[0], torch.library.get_ctx().new_dynamic_size()


def _fake_forward(cell, input, hx, w_hh, w_hr, batch_sizes, train):
    hidden = w_hh.shape[0] // GATES[cell]
    out_width = w_hr.shape[0] if w_hr is not None else hidden
    rows, batch = _layout(input, hx, batch_sizes)
    out_shape = (rows, out_width) if batch_sizes is not None else (input.shape[0], batch, out_width)
    ws_shape = (rows, workspace_cols(cell, hidden, w_hr is not None)) if train else (0,)
    return (
        input.new_empty(out_shape),
        input.new_empty((batch, out_width)),
        input.new_empty((batch, hidden)),
        input.new_empty(ws_shape),
    )


def _like_or_empty(ref, t, wanted=True):
    """A fake tensor shaped like t, or an empty one where t is absent or (a gradient the backward
    forms only when asked) not wanted."""
    return ref.new_empty(t.shape) if wanted and t is not None else ref.new_empty((0,))


@torch.library.register_fake("fused_rnn::lstm_forward")
def _lstm_forward_fake(input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes, reverse, train):
    return _fake_forward("lstm", input, hx, w_hh, w_hr, batch_sizes, train)


@torch.library.register_fake("fused_rnn::lstm_backward")
def _lstm_backward_fake(
    grad_output, grad_h_n, grad_c_n, input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes, output,
    workspace, reverse, grad_cell_states=None, input_grad=True, weight_grad=True, consume_workspace=False,
):
    g = input
    return (
        _like_or_empty(g, input, input_grad),
        g.new_empty(grad_h_n.shape),
        g.new_empty(grad_c_n.shape),
        _like_or_empty(g, w_ih, weight_grad),
        _like_or_empty(g, w_hh, weight_grad),
        _like_or_empty(g, b_ih),
        _like_or_empty(g, b_hh),
        _like_or_empty(g, w_hr, weight_grad),
    )


def _register_simple_fakes(cell):
    @torch.library.register_fake(f"fused_rnn::{cell}_forward")
    def _forward_fake(input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse, train):
        output, h_n, _, ws = _fake_forward(cell, input, hx, w_hh, None, batch_sizes, train)
        return output, h_n, ws

    @torch.library.register_fake(f"fused_rnn::{cell}_backward")
    def _backward_fake(grad_output, grad_h_n, input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes, output, workspace,
                       reverse, input_grad=True, weight_grad=True, consume_workspace=False):
        g = input
        return (
            _like_or_empty(g, input, input_grad),
            g.new_empty(grad_h_n.shape),
            _like_or_empty(g, w_ih, weight_grad),
            _like_or_empty(g, w_hh, weight_grad),
            _like_or_empty(g, b_ih),
            _like_or_empty(g, b_hh),
        )


for _cell in ("gru", "rnn_tanh", "rnn_relu"):
    _register_simple_fakes(_cell)

# Weights a direction in a bidirectional op's list: w_ih, w_hh, b_ih, b_hh (and w_hr for the LSTM).
BIDIR_WEIGHTS = {"lstm": 5, "gru": 4, "rnn_tanh": 4, "rnn_relu": 4}
# Which of them are weight matrices, whose gradients a backward forms only with weight_grad.
_MATRICES = (True, True, False, False, True)


def _fake_bidir_forward(cell, input, hx, weights, batch_sizes, train):
    w_hh, w_hr = weights[1], weights[4] if cell == "lstm" else None
    hidden = w_hh.shape[0] // GATES[cell]
    width = w_hr.shape[0] if w_hr is not None else hidden
    rows, batch = _layout(input, None if hx is None else hx[0], batch_sizes)
    out_shape = (rows, 2 * width) if batch_sizes is not None else (input.shape[0], batch, 2 * width)
    ws_shape = (2, rows, workspace_cols(cell, hidden, w_hr is not None)) if train else (0,)
    return (
        input.new_empty(out_shape),
        input.new_empty((2, batch, width)),
        input.new_empty((2, batch, hidden)),
        input.new_empty(ws_shape),
    )


def _fake_bidir_weight_grads(cell, g, weights, weight_grad):
    per = BIDIR_WEIGHTS[cell]
    return [_like_or_empty(g, w, weight_grad or not _MATRICES[k % per]) for k, w in enumerate(weights)]


@torch.library.register_fake("fused_rnn::lstm_bidir_forward")
def _lstm_bidir_forward_fake(input, hx, cx, weights, batch_sizes, train):
    return _fake_bidir_forward("lstm", input, hx, weights, batch_sizes, train)


@torch.library.register_fake("fused_rnn::lstm_bidir_backward")
def _lstm_bidir_backward_fake(grad_output, grad_h_n, grad_c_n, input, hx, cx, weights, batch_sizes, output,
                              workspace, input_grad=True, weight_grad=True, consume_workspace=False):
    g = input
    return (_like_or_empty(g, input, input_grad), g.new_empty(grad_h_n.shape), g.new_empty(grad_c_n.shape),
            _fake_bidir_weight_grads("lstm", g, weights, weight_grad))


def _register_simple_bidir_fakes(cell):
    @torch.library.register_fake(f"fused_rnn::{cell}_bidir_forward")
    def _forward_fake(input, hx, weights, batch_sizes, train):
        output, h_n, _, ws = _fake_bidir_forward(cell, input, hx, weights, batch_sizes, train)
        return output, h_n, ws

    @torch.library.register_fake(f"fused_rnn::{cell}_bidir_backward")
    def _backward_fake(grad_output, grad_h_n, input, hx, weights, batch_sizes, output, workspace, input_grad=True,
                       weight_grad=True, consume_workspace=False):
        g = input
        return (_like_or_empty(g, input, input_grad), g.new_empty(grad_h_n.shape),
                _fake_bidir_weight_grads(cell, g, weights, weight_grad))


for _cell in ("gru", "rnn_tanh", "rnn_relu"):
    _register_simple_bidir_fakes(_cell)


def _differentiable_grads(recompute, inputs, grad_outputs):
    """The backward as a differentiable graph, for ``create_graph=True`` (double backward).

    The fused backward op is not itself differentiable, so this path recomputes the layer
    with the pure-PyTorch reference (a Python loop over time) and differentiates that,
    which gives second derivatives at the cost of a slow, unfused layer.
    """
    wanted = [t for t in inputs if t is not None and t.requires_grad]
    with torch.enable_grad():
        outputs = recompute()
        grads = iter(torch.autograd.grad(outputs, wanted, grad_outputs, create_graph=True, allow_unused=True))
    return tuple(next(grads) if t is not None and t.requires_grad else None for t in inputs)


def _recompute_simple(cell):
    """The reference layer of a GRU or Elman RNN cell name, with the simple ops' argument order."""
    if cell == "gru":
        return reference.gru_layer
    act = cell[len("rnn_"):]

    def recompute_layer(*args):
        return reference.rnn_layer(*args, nonlinearity=act)
    return recompute_layer


def _double_backward(cell, reverse, inputs, grads):
    """A backward with ``create_graph=True`` for the C++ autograd nodes (``csrc/autograd.cpp``),
    as the Python Functions below form it: ``inputs`` are the layer's saved inputs (input, hx,
    [cx,] w_ih, w_hh, b_ih, b_hh, [w_hr,] batch_sizes; None where absent), ``grads`` the output
    gradients (zeros where none arrived); returns the gradients of all but batch_sizes."""
    given, batch_sizes = tuple(inputs[:-1]), inputs[-1]
    if cell == "lstm":
        input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr = given
        recompute = lambda: reference.lstm_layer(  # noqa: E731
            input, w_ih, w_hh, b_ih, b_hh, hx, cx, w_hr, batch_sizes, reverse)
    else:
        input, hx, w_ih, w_hh, b_ih, b_hh = given
        recompute = lambda: _recompute_simple(cell)(  # noqa: E731
            input, w_ih, w_hh, b_ih, b_hh, hx, batch_sizes, reverse)
    return list(_differentiable_grads(recompute, given, tuple(grads)))


_C._set_double_backward(_double_backward)


try:
    from torch._functorch.utils import unwrap_dead_wrappers as _unwrap_dead_wrappers
except ImportError:  # a torch without it: every call takes Function.apply
    _unwrap_dead_wrappers = None

_base_apply = {}  # Function class -> (number of forward's arguments, _FunctionBase.apply bound to it)
# Whether Function.apply is the Python classmethod that binds the arguments (torch <= 2.13);
# later versions moved it into _FunctionBase.apply in C++, where there is nothing to go around.
_PYTHON_APPLY = isinstance(torch.autograd.Function.__dict__.get("apply"), classmethod)


def apply_function(fn, *args):
    """``fn.apply(*args)``, where every argument of ``fn.forward`` is given positionally,
    without what ``Function.apply`` adds around the autograd call for a Function with a
    ``setup_context`` up to torch 2.13: it binds the arguments to ``forward``'s signature
    through ``inspect`` on every call (about 35 us here, more than a small layer's kernels),
    only to fill in defaults that a call giving every argument does not have. (From torch 2.14
    the binding happens inside ``_FunctionBase.apply`` and this is ``fn.apply``;
    ``keep_signature`` makes that binding cheaper.) Under ``torch.compile`` and inside
    functorch transforms (vmap, grad, ...) it is ``fn.apply`` itself."""
    if (not _PYTHON_APPLY or torch.compiler.is_compiling() or _unwrap_dead_wrappers is None
            or torch._C._are_functorch_transforms_active()):
        return fn.apply(*args)
    entry = _base_apply.get(fn)
    if entry is None:
        params = inspect.signature(fn.forward).parameters.values()
        # Positional parameters, and whether forward takes *args (a call then gives at least those).
        fixed = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
        entry = (fixed, varargs, super(torch.autograd.Function, fn).apply)
        _base_apply[fn] = entry
    if len(args) < entry[0] or (len(args) > entry[0] and not entry[1]):
        return fn.apply(*args)
    return entry[2](*_unwrap_dead_wrappers(args))


def _workspace_consumed() -> bool:
    """Whether the backward running now may write over its node's workspace: autograd's own eager
    call with the graph not retained (the node's saved tensors go when it returns), never a
    trace (the op's schema does not mark the workspace mutable) nor a retained graph (a second
    backward reads it again)."""
    return not torch.compiler.is_compiling() and _C._workspace_consumed()


def _or_zeros(grad, like: torch.Tensor, shape) -> torch.Tensor:
    """The gradient autograd passed, or zeros where it passed None (grads are not materialized:
    the workspace's would be a zero tensor as large as the workspace, for nothing). The zeros
    are one zero expanded to the shape: the CPU backward reads a gradient that repeats one row
    as that row, so an unused output costs no T x B x P buffer of zeros."""
    return like.new_zeros(1).expand(shape) if grad is None else grad


def needs_workspace(*tensors) -> bool:
    """Whether a forward must keep its workspace: grad mode is on and something requires grad."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


class LSTMFunction(torch.autograd.Function):
    """One LSTM layer in one direction through ``fused_rnn::lstm_forward`` / ``lstm_backward``.

    ``apply(input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes, reverse, train, cell_states)``
    returns ``(output, h_n, c_n, workspace, c_all)``. The workspace is not differentiable;
    ``c_all`` is the cell state of every step, laid out as the output (rows, H), and is
    empty unless ``cell_states`` is true (which keeps the workspace even in inference).
    """

    @staticmethod
    def forward(input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes, reverse, train, cell_states):
        out, h_n, c_n, workspace = _ops.lstm_forward(
            input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes, reverse, train or cell_states
        )
        if cell_states:
            H = w_hh.shape[0] // 4
            c_all = workspace[:, 4 * H:5 * H].clone()
        else:
            c_all = input.new_empty((0,))
        return out, h_n, c_n, workspace, c_all

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes, reverse, _train, cell_states = inputs
        out, h_n, c_n, workspace, c_all = output
        ctx.mark_non_differentiable(workspace)
        if not cell_states:
            ctx.mark_non_differentiable(c_all)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes, out, workspace)
        ctx.reverse = reverse
        ctx.cell_states = cell_states
        ctx.shapes = (h_n.shape, c_n.shape, c_all.shape)

    @staticmethod
    def backward(ctx, grad_output, grad_h_n, grad_c_n, _grad_workspace, grad_c_all):
        input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes, out, workspace = ctx.saved_tensors
        grad_output = _or_zeros(grad_output, out, out.shape)
        grad_h_n = _or_zeros(grad_h_n, out, ctx.shapes[0])
        grad_c_n = _or_zeros(grad_c_n, out, ctx.shapes[1])
        if ctx.cell_states:
            grad_c_all = _or_zeros(grad_c_all, out, ctx.shapes[2])
        given = (input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr)
        tail = (None, None, None, None)
        if torch.is_grad_enabled():  # create_graph=True
            if not ctx.cell_states:
                grads = _double_backward("lstm", ctx.reverse, [*given, batch_sizes], [grad_output, grad_h_n, grad_c_n])
                return tuple(grads) + tail
            recompute = lambda: reference.lstm_layer(  # noqa: E731
                input, w_ih, w_hh, b_ih, b_hh, hx, cx, w_hr, batch_sizes, ctx.reverse, return_cell_states=True
            )
            grads_out = (grad_output, grad_h_n, grad_c_n, grad_c_all.reshape(out.shape[:-1] + (-1,)))
            return _differentiable_grads(recompute, given, grads_out) + tail
        need = ctx.needs_input_grad
        grads = _ops.lstm_backward(
            grad_output, grad_h_n, grad_c_n, input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes, out,
            workspace, ctx.reverse, grad_c_all if ctx.cell_states else None,
            input_grad=need[0], weight_grad=need[3] or need[4] or need[7],
        )
        return tuple(g if t is not None and n else None for g, t, n in zip(grads, given, need)) + tail


def _function_class(name, doc, forward, setup_context, backward):
    """An autograd.Function subclass from its three static methods."""
    return type(name, (torch.autograd.Function,), {
        "__doc__": doc,
        "forward": staticmethod(forward),
        "setup_context": staticmethod(setup_context),
        "backward": staticmethod(backward),
    })


def _make_simple_function(cell: str, name: str):
    """The autograd.Function of a GRU or Elman RNN layer in one direction.

    ``apply(input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse, train)`` returns
    ``(output, h_n, workspace)``; the workspace is not differentiable.
    """
    forward_op = getattr(_ops, f"{cell}_forward").default
    backward_op = getattr(_ops, f"{cell}_backward")

    def forward(input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse, train):
        return forward_op(input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse, train)

    def setup_context(ctx, inputs, output):
        input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse, _train = inputs
        out, h_n, workspace = output
        ctx.mark_non_differentiable(workspace)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes, out, workspace)
        ctx.reverse = reverse
        ctx.h_shape = h_n.shape

    def backward(ctx, grad_output, grad_h_n, _grad_workspace):
        input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes, out, workspace = ctx.saved_tensors
        grad_output = _or_zeros(grad_output, out, out.shape)
        grad_h_n = _or_zeros(grad_h_n, out, ctx.h_shape)
        if torch.is_grad_enabled():  # create_graph=True
            grads = _double_backward(cell, ctx.reverse, [input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes],
                                     [grad_output, grad_h_n])
            return tuple(grads) + (None, None, None)
        need = ctx.needs_input_grad
        grads = backward_op(
            grad_output, grad_h_n, input, hx, w_ih, w_hh, b_ih, b_hh, batch_sizes, out, workspace, ctx.reverse,
            input_grad=need[0], weight_grad=need[2] or need[3],
        )
        given = (input, hx, w_ih, w_hh, b_ih, b_hh)
        return tuple(g if t is not None and n else None for g, t, n in zip(grads, given, need)) + (None, None, None)

    return _function_class(name, _make_simple_function.__doc__.replace("The", f"{cell}:", 1), forward,
                           setup_context, backward)


GRUFunction = _make_simple_function("gru", "GRUFunction")
RNNTanhFunction = _make_simple_function("rnn_tanh", "RNNTanhFunction")
RNNReluFunction = _make_simple_function("rnn_relu", "RNNReluFunction")


def keep_signature(fn):
    """Stores ``fn.forward``'s signature on it as ``__signature__``, which ``inspect.signature``
    returns as is: ``Function.apply`` looks the signature up on every call (in Python up to
    torch 2.13, from C++ in later versions), and computing it costs ~20 us a call."""
    fn.forward.__signature__ = inspect.signature(fn.forward)
    return fn


def _bidir_reference(cell, input, hx, cx, weights, batch_sizes):
    """Both directions of a layer through the reference: ``(output, h_n[, c_n])`` as the
    bidirectional ops return them."""
    per = BIDIR_WEIGHTS[cell]
    outs, hs, cs = [], [], []
    for d in range(2):
        w = weights[d * per:(d + 1) * per]
        h0 = hx[d] if hx is not None else None
        if cell == "lstm":
            out, h, c = reference.lstm_layer(input, *w[:4], h0, cx[d] if cx is not None else None, w[4], batch_sizes,
                                             d == 1)
            cs.append(c)
        elif cell == "gru":
            out, h = reference.gru_layer(input, *w, h0, batch_sizes, d == 1)
        else:
            out, h = reference.rnn_layer(input, *w, h0, batch_sizes, d == 1, nonlinearity=cell[len("rnn_"):])
        outs.append(out)
        hs.append(h)
    result = (torch.cat(outs, -1), torch.stack(hs))
    return result + (torch.stack(cs),) if cell == "lstm" else result


def _make_bidir_function(cell: str, name: str):
    """The autograd.Function of both directions of a layer (``fused_rnn::<cell>_bidir_*``).

    ``apply(input, hx, cx, batch_sizes, train, *weights)`` for the LSTM and ``apply(input, hx,
    batch_sizes, train, *weights)`` otherwise, ``weights`` as the op's list (None where absent),
    returns ``(output, h_n, c_n, workspace)`` or ``(output, h_n, workspace)``; hx and cx are
    ``(2, B, .)``; the workspace is not differentiable.
    """
    lstm = cell == "lstm"
    n_states = 2 if lstm else 1
    forward_op = getattr(_ops, f"{cell}_bidir_forward")
    backward_op = getattr(_ops, f"{cell}_bidir_backward")
    per = BIDIR_WEIGHTS[cell]

    def split(args):  # (input, states, batch_sizes, train, weights)
        return args[0], args[1:1 + n_states], args[1 + n_states], args[2 + n_states], args[3 + n_states:]

    def forward(*args):
        input, states, batch_sizes, train, weights = split(args)
        return forward_op(input, *states, list(weights), batch_sizes, train)

    def setup_context(ctx, inputs, output):
        input, states, batch_sizes, _train, weights = split(inputs)
        ctx.mark_non_differentiable(output[-1])
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(input, *states, batch_sizes, output[0], output[-1], *weights)
        ctx.shapes = [t.shape for t in output[1:-1]]

    def backward(ctx, grad_output, *grads):
        saved = ctx.saved_tensors
        input, states, batch_sizes = saved[0], saved[1:1 + n_states], saved[1 + n_states]
        out, workspace, weights = saved[2 + n_states], saved[3 + n_states], saved[4 + n_states:]
        grad_output = _or_zeros(grad_output, out, out.shape)
        grad_states = [_or_zeros(g, out, shape) for g, shape in zip(grads[:n_states], ctx.shapes)]
        given = (input, *states, *weights)
        need = ctx.needs_input_grad
        need_given = need[:1 + n_states] + need[3 + n_states:]
        if torch.is_grad_enabled():  # create_graph=True
            grads = _differentiable_grads(
                lambda: _bidir_reference(cell, input, states[0], states[1] if lstm else None, weights, batch_sizes),
                given, (grad_output, *grad_states))
        else:
            weight_grad = any(n for k, n in enumerate(need[3 + n_states:]) if _MATRICES[k % per])
            grad_input, *grad_st, grad_weights = backward_op(
                grad_output, *grad_states, input, *states, list(weights), batch_sizes, out, workspace,
                input_grad=need[0], weight_grad=weight_grad, consume_workspace=_workspace_consumed())
            grads = (grad_input, *grad_st, *grad_weights)
            grads = tuple(g if t is not None and n else None for g, t, n in zip(grads, given, need_given))
        return grads[:1 + n_states] + (None, None) + grads[1 + n_states:]

    return _function_class(name, _make_bidir_function.__doc__.replace("The", f"{cell}:", 1), forward,
                           setup_context, backward)


LSTMBidirFunction = _make_bidir_function("lstm", "LSTMBidirFunction")
GRUBidirFunction = _make_bidir_function("gru", "GRUBidirFunction")
RNNTanhBidirFunction = _make_bidir_function("rnn_tanh", "RNNTanhBidirFunction")
RNNReluBidirFunction = _make_bidir_function("rnn_relu", "RNNReluBidirFunction")

for _fn in (LSTMFunction, GRUFunction, RNNTanhFunction, RNNReluFunction, LSTMBidirFunction, GRUBidirFunction,
            RNNTanhBidirFunction, RNNReluBidirFunction):
    keep_signature(_fn)
