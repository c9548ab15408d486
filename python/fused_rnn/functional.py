"""Layer-level functions over the fused ops.

Layouts follow torch.nn's time-major convention: ``input`` is ``(T, B, I)``, or the
data of a PackedSequence ``(N, I)`` together with its ``batch_sizes``. States have
one row per sequence: ``hx`` is ``(B, P)`` and ``cx`` ``(B, H)`` for one layer in one
direction, and ``(num_layers * num_directions, B, ·)`` for a stack.

On the CPU, float16 and bfloat16 run through the float32 kernels (inputs cast up,
results cast back), so the result is what fp32 accumulation gives. The weights' float32
copies are kept from call to call while the weights are unchanged, under the CPU panel
cache's rules (same live tensor, data pointer, version and contents;
FUSED_RNN_CPU_PANEL_CACHE=0 turns both off), differentiably in training (_KeptCast), and
the forward reads the 16-bit weights behind them as stored. On CPUs with AVX512-BF16,
bfloat16 products are then bf16 dot products with fp32 accumulation, h and x rounded to
bfloat16 for them as torch.nn's bf16 h is, and a training backward forms the input and
weight gradients in bf16 GEMMs (FUSED_RNN_CPU_BF16_DOT=0: all fp32).

Under ``torch.autocast`` for the input's device, every layer runs in the autocast
dtype: input, states and weights are cast to it (the weights stay float32 as
parameters and receive float32 gradients) and the results come back in it, so there
is no dtype mismatch between an autocast input and float32 weights.

Tensors on a device the binary has no kernels for (``meta``; ``mps``, ``xla`` and the like; ``cuda``
in a build without CUDA kernels) run torch's own computation with the same weights: a stack
torch.nn's (``torch._VF``), so the same numbers as torch.nn on that device, a single layer or
direction (and ``return_all_states``) the pure-PyTorch reference. Other than on ``meta`` this
warns once per device type. ``torch.onnx.export`` takes the same path (ONNX has no fused_rnn ops).
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, _VF

from . import _C
from . import reference as _reference
from .ops import (BIDIR_WEIGHTS, GRUBidirFunction, GRUFunction, LSTMBidirFunction, LSTMFunction,
                  RNNReluBidirFunction, RNNReluFunction, RNNTanhBidirFunction, RNNTanhFunction, _ops, apply_function,
                  keep_signature, needs_workspace)

__all__ = ["lstm_layer", "gru_layer", "rnn_layer", "rnn_stack"]

_LSTM_FORWARD = _ops.lstm_forward.default

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _compute_dtype(x: Tensor) -> Optional[torch.dtype]:
    """The dtype the kernels run in, where it differs from ``x.dtype``."""
    if x.device.type == "cpu" and x.dtype in _LOW_PRECISION:
        return torch.float32
    return None


def _cast(ts, dtype):
    return [t.to(dtype) if t is not None else None for t in ts]


class _KeptCast(torch.autograd.Function):
    """``w`` cast to ``dtype`` from ``_C._kept_cast``, differentiable: the gradient is cast back
    to ``w``'s dtype, as ``w.to(dtype)``'s would be. The result is a fresh alias of the kept
    cast (which stays free of any one graph's history); the CPU kernels recognise it as the
    cast of ``w``, so a training call reads the 16-bit weight too."""

    @staticmethod
    def forward(w, dtype):
        return _C._kept_cast(w, dtype).detach()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.w_dtype = inputs[0].dtype

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.w_dtype), None


keep_signature(_KeptCast)


def _cast_weights(ws, dtype):
    """``_cast`` for CPU weights, from ``_C._kept_cast`` (a fresh cast of a large weight costs
    more than the kernels at a small batch, its new buffer's pages faulting in on every call),
    through ``_KeptCast`` where the weight is differentiated through. Under torch.compile,
    plain casts in the graph."""
    if torch.compiler.is_compiling():
        return _cast(ws, dtype)
    grad = torch.is_grad_enabled()
    return [None if w is None
            else apply_function(_KeptCast, w, dtype) if w.requires_grad and grad else _C._kept_cast(w, dtype)
            for w in ws]


_KERNEL_DTYPES = (torch.float32, torch.float64)

# Whether eager calls of one-direction layers (and so of the cells) go through _C's entry points
# (csrc/autograd.cpp): in training a C++ autograd node instead of ops.py's Python Function, in
# inference the op called from C++ instead of through torch.ops (the same ops either way; at a
# cell's size the Python around them costs more than the kernels).
# FUSED_RNN_CPP_AUTOGRAD=0 starts with it off; _set_cpp_autograd switches it.
_cpp_autograd = os.environ.get("FUSED_RNN_CPP_AUTOGRAD", "1") != "0"


def _set_cpp_autograd(on: bool) -> bool:
    """Turns the C++ entry points on or off; returns the previous setting."""
    global _cpp_autograd
    old, _cpp_autograd = _cpp_autograd, bool(on)
    return old


def _eager_cpp() -> bool:
    """Whether a call takes the C++ entry points: switched on, and neither under torch.compile
    (which traces the registered ops and their Python Functions) nor inside a functorch transform
    (vmap, grad, ...), which runs only Python autograd Functions."""
    return (_cpp_autograd and not torch.compiler.is_compiling()
            and not torch._C._are_functorch_transforms_active())


def _exporting_onnx() -> bool:
    """Whether torch.onnx.export is recording the call (either exporter: TorchScript's traces with
    torch.jit, the dynamo one compiles). The export flag, slow to read, is read only while tracing
    or compiling."""
    return ((torch._C._get_tracing_state() is not None or torch.compiler.is_compiling())
            and torch.onnx.is_in_onnx_export())


# Whether the binary has kernels for CPU and for CUDA tensors (the CPU flag is False only where a
# test stands the CPU in for a device without kernels).
_CPU_KERNELS, _CUDA_KERNELS = True, bool(_C.build_info()["cuda"])
_warned_devices: set = set()
# Per CUDA device index: whether the kernels can run there (a kernel image for its compute
# capability), asked of the CUDA runtime once per device.
_cuda_devices: dict = {}


def _cuda_kernels_run_on(index: int) -> bool:
    runs = _cuda_devices.get(index)
    if runs is None:
        runs = _cuda_devices[index] = bool(_C._cuda_kernels_run_on(index))
        if not runs:
            major, minor = torch.cuda.get_device_capability(index)
            warnings.warn(
                f"this fused_rnn holds no CUDA kernels for cuda:{index} ({torch.cuda.get_device_name(index)}, "
                f"compute capability {major}.{minor}; built for {_C.build_info()['cuda_archs'] or 'torch default'}; "
                f"rebuild with TORCH_CUDA_ARCH_LIST=\"{major}.{minor}\" to run them there): its tensors run "
                "torch's own RNN computation, with the same weights", stacklevel=4)
    return runs


def _kernels_for(input: Tensor) -> bool:
    """Whether the binary has kernels that run on ``input``'s device."""
    if input.is_cpu:
        return _CPU_KERNELS
    return input.is_cuda and _CUDA_KERNELS and _cuda_kernels_run_on(input.get_device())


def _torch_path(input: Tensor) -> bool:
    """Whether a call runs torch's own computation: on a device the binary has no kernels for
    (warning once per device type, except on ``meta``), or under torch.onnx.export (ONNX has no
    fused_rnn ops, and the exporters translate torch's, a stack into ONNX's LSTM, GRU and RNN
    operators). Checked once a call, by the public entry points (the modules, cells, layer
    functions and rnn_stack), which then call the unchecked _lstm_layer, _simple_layer,
    _kernel_rnn_layer and _rnn_stack."""
    if _kernels_for(input):
        return _exporting_onnx()
    device = input.device.type
    if device != "meta" and device not in _warned_devices and not (device == "cuda" and _CUDA_KERNELS):
        _warned_devices.add(device)
        why = ("this fused_rnn was built without CUDA kernels (rebuild with FUSED_RNN_CUDA=1 where nvcc is found)"
               if device == "cuda" else f"fused_rnn has no kernels for {device}")
        warnings.warn(f"{why}: {device} tensors run torch's own RNN computation, with the same weights",
                      stacklevel=3)
    return True


def _plain(input: Tensor) -> bool:
    """Whether a layer call needs no cast: no autocast on any device, and the kernels run in the
    input's dtype on the input's device. The common case, checked first and cheaply (at a cell's
    size the Python around the op costs more than the op)."""
    return (_kernels_for(input) and (input.dtype in _KERNEL_DTYPES or not input.is_cpu)
            and not torch._C._is_any_autocast_enabled())


def _autocast_dtype(x: Tensor) -> Optional[torch.dtype]:
    """The autocast dtype for ``x``'s device where autocast is on and ``x`` is floating point."""
    device_type = x.device.type
    if not x.is_floating_point() or not torch.is_autocast_enabled(device_type):
        return None
    dtype = torch.get_autocast_dtype(device_type)
    return dtype


def lstm_layer(
    input: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor] = None,
    b_hh: Optional[Tensor] = None,
    hx: Optional[Tensor] = None,
    cx: Optional[Tensor] = None,
    w_hr: Optional[Tensor] = None,
    batch_sizes: Optional[Tensor] = None,
    reverse: bool = False,
    return_cell_states: bool = False,
) -> tuple[Tensor, ...]:
    """One LSTM layer in one direction. Returns ``(output, h_n, c_n)``.

    Shapes: ``w_ih (4H, I)``, ``w_hh (4H, P)``, biases ``(4H,)``, ``w_hr (P, H)`` where
    ``P`` is the projection size (``H`` without projection); ``output`` is ``(T, B, P)``
    (or ``(N, P)`` packed), ``h_n (B, P)``, ``c_n (B, H)``. ``reverse=True`` runs the
    sequence backwards (the second direction of a bidirectional layer).
    ``return_cell_states=True`` appends the cell state of every step, ``(T, B, H)`` (or
    ``(N, H)`` packed), differentiable like the other outputs.
    """
    if _torch_path(input):
        return _reference.lstm_layer(input, w_ih, w_hh, b_ih, b_hh, hx, cx, w_hr, batch_sizes, reverse,
                                     return_cell_states)
    return _lstm_layer(input, w_ih, w_hh, b_ih, b_hh, hx, cx, w_hr, batch_sizes, reverse, return_cell_states)


def _lstm_layer(input, w_ih, w_hh, b_ih, b_hh, hx, cx, w_hr, batch_sizes, reverse, return_cell_states=False):
    """lstm_layer on the kernels (the caller has ruled out _torch_path)."""
    tensors = [input, hx, cx, w_ih, w_hh, b_ih, b_hh, w_hr]
    if not _plain(input):
        cast_to = _autocast_dtype(input)
        if cast_to is not None:
            with torch.autocast(input.device.type, enabled=False):
                return _lstm_layer(*_cast([input, w_ih, w_hh, b_ih, b_hh, hx, cx, w_hr], cast_to), batch_sizes,
                                   reverse, return_cell_states)
        compute = _compute_dtype(input)
        if compute is not None:
            input_c, hx_c, cx_c = _cast([input, hx, cx], compute)
            w_ih_c, w_hh_c, b_ih_c, b_hh_c, w_hr_c = _cast_weights([w_ih, w_hh, b_ih, b_hh, w_hr], compute)
            outs = _lstm_layer(input_c, w_ih_c, w_hh_c, b_ih_c, b_hh_c, hx_c, cx_c, w_hr_c, batch_sizes, reverse,
                               return_cell_states)
            return tuple(t.to(input.dtype) for t in outs)
    train = needs_workspace(*tensors)
    if not train and not return_cell_states:
        # Nothing to differentiate: the op alone, without autograd.Function's per-call cost.
        if _eager_cpp():
            return _C._lstm_infer(*tensors, batch_sizes, reverse)
        output, h_n, c_n, _ = _LSTM_FORWARD(*tensors, batch_sizes, reverse, False)
        return output, h_n, c_n
    if not return_cell_states and _eager_cpp():
        return _C._lstm_train(*tensors, batch_sizes, reverse)
    output, h_n, c_n, _, c_all = apply_function(LSTMFunction, *tensors, batch_sizes, reverse, train, return_cell_states)
    if return_cell_states:
        return output, h_n, c_n, c_all.reshape(output.shape[:-1] + (c_n.shape[-1],))
    return output, h_n, c_n


def _simple_layer(fn, input, w_ih, w_hh, b_ih, b_hh, hx, batch_sizes, reverse):
    """gru_layer and rnn_layer on the kernels (the caller has ruled out _torch_path)."""
    tensors = [input, hx, w_ih, w_hh, b_ih, b_hh]
    if not _plain(input):
        amp = _autocast_dtype(input)
        if amp is not None:
            input_a, hx_a, w_ih_a, w_hh_a, b_ih_a, b_hh_a = _cast(tensors, amp)
            with torch.autocast(input.device.type, enabled=False):
                return _simple_layer(fn, input_a, w_ih_a, w_hh_a, b_ih_a, b_hh_a, hx_a, batch_sizes, reverse)
        dtype = _compute_dtype(input)
        if dtype is not None:
            input32, hx32 = _cast([input, hx], dtype)
            w_ih32, w_hh32, b_ih32, b_hh32 = _cast_weights([w_ih, w_hh, b_ih, b_hh], dtype)
            out, h = _simple_layer(fn, input32, w_ih32, w_hh32, b_ih32, b_hh32, hx32, batch_sizes, reverse)
            return out.to(input.dtype), h.to(input.dtype)
    if not needs_workspace(*tensors):
        # Nothing to differentiate: the op alone, without autograd.Function's per-call cost.
        if _eager_cpp():
            return _C._simple_infer(_SIMPLE_CELLS[fn], *tensors, batch_sizes, reverse)
        output, h_n, _ = fn.forward(*tensors, batch_sizes, reverse, False)
        return output, h_n
    if _eager_cpp():
        return _C._simple_train(_SIMPLE_CELLS[fn], *tensors, batch_sizes, reverse)
    output, h_n, _ = apply_function(fn, *tensors, batch_sizes, reverse, True)
    return output, h_n


_SIMPLE_CELLS = {GRUFunction: "gru", RNNTanhFunction: "rnn_tanh", RNNReluFunction: "rnn_relu"}


def gru_layer(
    input: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor] = None,
    b_hh: Optional[Tensor] = None,
    hx: Optional[Tensor] = None,
    batch_sizes: Optional[Tensor] = None,
    reverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """One GRU layer in one direction (torch.nn's formulation). Returns ``(output, h_n)``.

    Shapes: ``w_ih (3H, I)``, ``w_hh (3H, H)``, biases ``(3H,)``; ``output (T, B, H)``
    (or ``(N, H)`` packed), ``h_n (B, H)``.
    """
    if _torch_path(input):
        return _reference.gru_layer(input, w_ih, w_hh, b_ih, b_hh, hx, batch_sizes, reverse)
    return _simple_layer(GRUFunction, input, w_ih, w_hh, b_ih, b_hh, hx, batch_sizes, reverse)


def rnn_layer(
    input: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor] = None,
    b_hh: Optional[Tensor] = None,
    hx: Optional[Tensor] = None,
    batch_sizes: Optional[Tensor] = None,
    reverse: bool = False,
    nonlinearity: str = "tanh",
) -> tuple[Tensor, Tensor]:
    """One Elman RNN layer in one direction, ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``.

    ``nonlinearity`` is ``"tanh"`` or ``"relu"``. Returns ``(output, h_n)``.
    """
    if nonlinearity not in _RNN_FUNCTIONS:
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    if _torch_path(input):
        return _reference.rnn_layer(input, w_ih, w_hh, b_ih, b_hh, hx, batch_sizes, reverse, nonlinearity)
    return _kernel_rnn_layer(input, w_ih, w_hh, b_ih, b_hh, hx, batch_sizes, reverse, nonlinearity)


_RNN_FUNCTIONS = {"tanh": RNNTanhFunction, "relu": RNNReluFunction}


def _kernel_rnn_layer(input, w_ih, w_hh, b_ih, b_hh, hx, batch_sizes, reverse, nonlinearity):
    """rnn_layer on the kernels (the caller has checked the nonlinearity and ruled out _torch_path)."""
    return _simple_layer(_RNN_FUNCTIONS[nonlinearity], input, w_ih, w_hh, b_ih, b_hh, hx, batch_sizes, reverse)


_BIDIR = {"LSTM": ("lstm", LSTMBidirFunction), "GRU": ("gru", GRUBidirFunction),
          "RNN_TANH": ("rnn_tanh", RNNTanhBidirFunction), "RNN_RELU": ("rnn_relu", RNNReluBidirFunction)}


def _bidir_layer(mode, input, weights, hx, cx, batch_sizes):
    """Both directions of one layer in one op (``fused_rnn::<cell>_bidir_forward``), which runs
    them at once where the device can. ``weights`` is each direction's list in torch.nn's
    order; ``hx``, ``cx`` are ``(2, B, .)`` or None. Returns ``(output, h_n, c_n)``: the output
    with both directions' features side by side, the states ``(2, B, .)``, ``c_n`` None except
    for the LSTM. For float32/float64 (and any dtype on CUDA) outside autocast; rnn_stack
    takes the per-direction path otherwise."""
    cell, fn = _BIDIR[mode]
    per, lstm = BIDIR_WEIGHTS[cell], mode == "LSTM"
    flat = []
    for w in weights:
        w = list(w)
        if lstm and len(w) == 3:  # w_ih, w_hh, w_hr: a projected LSTM without biases
            w = [w[0], w[1], None, None, w[2]]
        flat += w + [None] * (per - len(w))
    states = (hx, cx) if lstm else (hx,)
    if not needs_workspace(input, *states, *flat):
        outs = getattr(_ops, f"{cell}_bidir_forward")(input, *states, flat, batch_sizes, False)
    else:
        outs = apply_function(fn, input, *states, batch_sizes, True, *flat)
    return (outs[0], outs[1], outs[2] if lstm else None)


def _lead(t: Tensor) -> tuple[Tensor, bool]:
    """A direction's final state ``(B, .)`` as a ``(1, B, .)`` piece of the stack's states, and
    whether the piece is a view. Outside autograd, tracing and functorch's transforms, a tensor of
    its own (the ops return fresh states) takes the leading dimension in place: for a one-layer
    stack that piece is then the state itself, with no view and no copy (with the weight check of
    ``_FusedRNNBase._update_flat_weights``, a one-layer LSTM call at H=8 went from 40 to 26 us:
    bench/results/2026-11-30_cpu_intel-xeon-icelake-2c_probes-session22/call_overhead.txt)."""
    if (not t.requires_grad and t._base is None and not torch.compiler.is_compiling()
            and not torch._C._are_functorch_transforms_active()):
        return t.unsqueeze_(0), False
    return t.unsqueeze(0), True


def _cat_states(states: list[Tensor], views: bool) -> Tensor:
    """The final states of a stack, ``(L*D, B, .)``, from each layer direction's ``(1 or 2, B, .)``
    piece (``views``: some piece is a view, a direction's state unsqueezed): their concatenation,
    or the only piece where it is a tensor of its own (a bidirectional layer's ``(2, B, .)`` state,
    a direction's given its leading dimension in place by ``_lead``). Never a view:
    torch.nn's states are tensors of their own, and code that detaches them in place
    (``h_n.detach_()``) fails on a view."""
    return states[0] if len(states) == 1 and not views else torch.cat(states, 0)


_VF_STACKS = {"LSTM": _VF.lstm, "GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}


def _torch_stack(mode, input, hx, weights, has_biases, num_layers, dropout, training, bidirectional,
                 batch_sizes):
    """``rnn_stack`` by torch.nn's own computation (``torch._VF``, as torch.nn's forward calls it),
    for devices the binary has no kernels for."""
    is_lstm = mode == "LSTM"
    if hx is None:
        rows = int(batch_sizes[0]) if batch_sizes is not None else input.size(1)
        gates = {"LSTM": 4, "GRU": 3}.get(mode, 1)
        hidden, out = weights[1].size(0) // gates, weights[1].size(1)
        zeros = [torch.zeros(num_layers * (2 if bidirectional else 1), rows, n, dtype=input.dtype, device=input.device)
                 for n in ((out, hidden) if is_lstm else (out,))]
        hx = tuple(zeros) if is_lstm else zeros[0]
    fn = _VF_STACKS[mode]
    if batch_sizes is None:
        result = fn(input, hx, weights, has_biases, num_layers, dropout, training, bidirectional, False)
    else:
        result = fn(input, batch_sizes, hx, weights, has_biases, num_layers, dropout, training, bidirectional)
    return (result[0], result[1], result[2] if is_lstm else None)


def rnn_stack(
    mode: str,
    input: Tensor,
    hx: Optional[Tensor | tuple[Tensor, Tensor]],
    weights: Sequence[Tensor],
    *,
    has_biases: bool,
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
    proj_size: int = 0,
    batch_sizes: Optional[Tensor] = None,
    return_all_states: bool = False,
) -> tuple:
    """A stack of recurrent layers, the computation behind ``fused_rnn.LSTM/GRU/RNN``.

    ``mode`` is ``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"``; ``weights`` is the
    flat list in torch.nn's order (``_flat_weights``); ``hx`` is ``None``, ``h0`` of shape
    ``(L*D, B, P)``, or for LSTM ``(h0, c0)``. Dropout is applied to each layer's output
    except the last, in training only. Returns ``(output, h_n, c_n)`` with ``c_n`` None
    except for LSTM. ``return_all_states=True`` (LSTM) appends ``(all_h, all_c)``: every
    layer's output sequence ``(L, T, B, D*P)`` and every layer's cell states
    ``(L, T, B, D*H)`` (``(L, N, ·)`` for packed input), both differentiable.
    """
    torch_path = _torch_path(input)
    if torch_path and not return_all_states:
        return _torch_stack(mode, input, hx, weights, has_biases, num_layers, dropout, training, bidirectional,
                            batch_sizes)
    return _rnn_stack(mode, input, hx, weights, has_biases=has_biases, num_layers=num_layers, dropout=dropout,
                      training=training, bidirectional=bidirectional, proj_size=proj_size, batch_sizes=batch_sizes,
                      return_all_states=return_all_states, torch_path=torch_path)


def _rnn_stack(mode, input, hx, weights, *, has_biases, num_layers, dropout, training, bidirectional, proj_size,
               batch_sizes, return_all_states, torch_path):
    """rnn_stack layer by layer: on the kernels, or (torch_path) on the reference's layers."""
    is_lstm = mode == "LSTM"
    if torch_path:
        lstm_fn, gru_fn, rnn_fn = _reference.lstm_layer, _reference.gru_layer, _reference.rnn_layer
    else:
        lstm_fn, gru_fn = _lstm_layer, functools.partial(_simple_layer, GRUFunction)
        rnn_fn = _kernel_rnn_layer
    num_directions = 2 if bidirectional else 1
    per_layer = 2 + (2 if has_biases else 0) + (1 if proj_size > 0 else 0)
    h0, c0 = (hx if is_lstm else (hx, None)) if hx is not None else (None, None)
    h_list, c_list = [], []
    views = False  # whether a piece of h_list / c_list is a view
    all_h, all_c = [], []
    layer_input = input
    for layer in range(num_layers):
        if (bidirectional and not return_all_states and not torch_path and _autocast_dtype(layer_input) is None
                and _compute_dtype(layer_input) is None):
            k = 2 * layer
            pair = [weights[d * per_layer:(d + 1) * per_layer] for d in (k, k + 1)]
            layer_output, h, c = _bidir_layer(mode, layer_input, pair, h0[k:k + 2] if h0 is not None else None,
                                              c0[k:k + 2] if c0 is not None else None, batch_sizes)
            h_list.append(h)
            if is_lstm:
                c_list.append(c)
        else:
            outputs, cells = [], []
            for direction in range(num_directions):
                k = layer * num_directions + direction
                w = list(weights[k * per_layer:(k + 1) * per_layer])
                w_ih, w_hh = w[0], w[1]
                b_ih, b_hh = (w[2], w[3]) if has_biases else (None, None)
                w_hr = w[-1] if proj_size > 0 else None
                h_init = h0[k] if h0 is not None else None
                reverse = direction == 1
                if is_lstm:
                    c_init = c0[k] if c0 is not None else None
                    out, h, c, *c_seq = lstm_fn(layer_input, w_ih, w_hh, b_ih, b_hh, h_init, c_init, w_hr,
                                                batch_sizes, reverse, return_all_states)
                    c, c_view = _lead(c)
                    c_list.append(c)
                    views = views or c_view
                    cells += c_seq
                elif mode == "GRU":
                    out, h = gru_fn(layer_input, w_ih, w_hh, b_ih, b_hh, h_init, batch_sizes, reverse)
                else:
                    act = "tanh" if mode == "RNN_TANH" else "relu"
                    out, h = rnn_fn(layer_input, w_ih, w_hh, b_ih, b_hh, h_init, batch_sizes, reverse, act)
                outputs.append(out)
                h, h_view = _lead(h)
                h_list.append(h)
                views = views or h_view
            layer_output = outputs[0] if num_directions == 1 else torch.cat(outputs, dim=-1)
            if return_all_states:
                all_h.append(layer_output)
                all_c.append(cells[0] if num_directions == 1 else torch.cat(cells, dim=-1))
        if training and dropout > 0 and layer < num_layers - 1:
            layer_output = F.dropout(layer_output, p=dropout, training=True)
        layer_input = layer_output
    h_n = _cat_states(h_list, views)
    c_n = _cat_states(c_list, views) if is_lstm else None
    if return_all_states:
        if not is_lstm:
            raise ValueError("return_all_states is only supported for LSTM")
        return layer_input, h_n, c_n, (torch.stack(all_h, 0), torch.stack(all_c, 0))
    return layer_input, h_n, c_n
