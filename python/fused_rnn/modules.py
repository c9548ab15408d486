"""Drop-in replacements for ``torch.nn.LSTM``, ``GRU``, ``RNN`` and their cells, and ``convert()``.

The layers derive from ``torch.nn.RNNBase`` (not from the three torch.nn classes, which
TorchDynamo refuses to trace) and the cells from ``torch.nn.RNNCellBase``, so they
have the very same constructor, parameters, parameter names, initialisation, ``repr``
and input checks, and a ``state_dict`` moves between the two unchanged. ``forward``
runs the fused ops.
"""

from __future__ import annotations

import copy
from typing import NamedTuple, Optional, Union

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from . import _C
from .functional import (_eager_cpp, _exporting_onnx, _kernel_rnn_layer, _lstm_layer, _plain, _rnn_stack,
                         _simple_layer, _torch_path)
from .ops import GRUFunction

__all__ = ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "LSTMStates", "convert", "to_native"]

_HX = Union[Tensor, tuple[Tensor, Tensor]]


class LSTMStates(NamedTuple):
    """Every per-step state of a ``fused_rnn.LSTM(..., return_all_states=True)``.

    ``h``: the output sequence of every layer, ``(num_layers, T, N, D * H_out)``;
    ``c``: the cell state of every step of every layer, ``(num_layers, T, N, D * H_cell)``.
    With ``batch_first`` the T and N dimensions swap, as in the output; unbatched input
    drops N; packed input gives ``(num_layers, rows, ·)`` in the packed order.
    """

    h: Tensor
    c: Tensor


class _NativeMixin:
    """``to_native()``: the torch.nn module of the same configuration over the very same parameters."""

    def to_native(self) -> nn.Module:
        """Returns the equivalent torch.nn module sharing this module's parameters (for ONNX,
        TorchScript or anything else that wants torch.nn's own classes). This module is unchanged."""
        native = _NATIVE_OF[type(self)].__new__(_NATIVE_OF[type(self)])
        state = {k: copy.copy(v) if isinstance(v, (dict, list)) else v for k, v in self.__dict__.items()}
        state.pop("return_all_states", None)
        native.__dict__.update(state)
        return native

    def __prepare_scriptable__(self) -> nn.Module:
        """``torch.jit.script`` compiles torch.nn's module over the same parameters (``to_native()``):
        TorchScript cannot compile the fused modules' Python. (torch.jit.script puts what this
        returns in place of the module in its parent's submodules, so a scripted model's eager
        original then holds the torch.nn module, with the same parameters and numbers.)"""
        if getattr(self, "return_all_states", False):
            name = type(self).__name__
            raise RuntimeError(f"fused_rnn.{name} with return_all_states=True cannot be scripted: "
                               f"torch.nn.{name}, which TorchScript compiles instead, has no such output")
        return self.to_native()


class _FusedRNNBase(_NativeMixin, nn.RNNBase):
    """The forward shared by the three layers; subclasses say how hidden states look."""

    return_all_states = False

    # The name torch.nn uses in its "Expected input to be 2D or 3D" message, and its tail.
    _dim_error_name = ""
    _dim_error_tail = "D instead"

    def _check_hx_rank(self, hx, is_batched: bool) -> None:
        want = 3 if is_batched else 2
        if hx.dim() != want:
            kind = "batched 3-D" if is_batched else "unbatched 2-D"
            raise RuntimeError(f"For {kind} input, hx should also be {want}-D but got {hx.dim()}-D tensor")

    def _unsqueeze_hx(self, hx):
        return hx.unsqueeze(1)

    def _squeeze_hx(self, hx):
        return hx.squeeze(1)

    def _check_devices(self, input: Tensor, hx) -> None:
        """ATen's check_attributes, with its messages: states first, then parameters."""
        states = () if hx is None else (hx if isinstance(hx, tuple) else (hx,))
        for name, tensors in (("hidden", states), ("parameter", self._flat_weights)):
            for t in tensors:
                if t is not None and t.device != input.device:
                    raise RuntimeError(
                        f"Input and {name} tensors are not at the same device, found input tensor at "
                        f"{input.device} and {name} tensor at {t.device}"
                    )

    def check_forward_args(self, input, hidden, batch_sizes):  # type: ignore[override]
        """torch.nn's (which calls its methods through self), its methods called through the class
        as in forward."""
        cls = type(self)
        cls.check_input(self, input, batch_sizes)
        cls.check_hidden_size(self, hidden, cls.get_expected_hidden_size(self, input, batch_sizes))

    def _update_flat_weights(self) -> None:
        """torch.nn's check that the flat weights are still the module's attributes (they are not
        after ``torch.func.functional_call`` or a parametrization), answered first from the
        parameter dict: while every flat weight is the parameter registered under its name, as it
        is call after call, nothing has changed. Anything else takes torch.nn's own check, which
        reads each name through ``getattr`` and ``hasattr`` (``Module.__getattr__``'s slow path)."""
        params = self._parameters
        for w, name in zip(self._flat_weights, self._flat_weights_names):
            if w is None or params.get(name) is not w:
                super()._update_flat_weights()
                return

    def forward(self, input, hx: Optional[_HX] = None):
        self._update_flat_weights()
        packed = isinstance(input, PackedSequence)
        torch_path = _torch_path(input.data if packed else input)
        if torch_path and not self.return_all_states:
            # A device without kernels, or an ONNX export: torch.nn's own forward, the same code
            # and so the same results and the same exported graph (functional.py).
            return self.to_native().forward(input, hx)
        if packed:
            data, batch_sizes, sorted_indices, unsorted_indices = input
            is_batched = True
        else:
            if input.dim() not in (2, 3):
                raise ValueError(
                    f"{self._dim_error_name}: Expected input to be 2D or 3D, got {input.dim()}{self._dim_error_tail}"
                )
            batch_sizes = sorted_indices = unsorted_indices = None
            is_batched = input.dim() == 3
            batch_dim = 0 if self.batch_first else 1
            data = input if is_batched else input.unsqueeze(batch_dim)
        # torch.nn's own methods are called through the class: torch 2.6's Dynamo, in a strict
        # torch.export, does not call a torch.nn method through a module's self.
        cls = type(self)
        if hx is not None:
            self._check_hx_rank(hx, is_batched)
            if not is_batched:
                hx = self._unsqueeze_hx(hx)
            self.check_forward_args(data, hx, batch_sizes)
            # The states given are in the caller's order; packed data is sorted by length.
            hx = cls.permute_hidden(self, hx, sorted_indices)
        else:
            cls.check_input(self, data, batch_sizes)
        self._check_devices(data, hx)

        if not packed and self.batch_first:
            data = data.transpose(0, 1)
        result = _rnn_stack(
            self.mode,
            data,
            hx,
            self._flat_weights,
            has_biases=self.bias,
            num_layers=self.num_layers,
            dropout=self.dropout,
            training=self.training,
            bidirectional=self.bidirectional,
            proj_size=self.proj_size,
            batch_sizes=batch_sizes,
            return_all_states=self.return_all_states,
            torch_path=torch_path,
        )
        output, h_n, c_n = result[:3]
        hidden = (h_n, c_n) if self.mode == "LSTM" else h_n
        if packed:
            output = PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices)
            hidden = cls.permute_hidden(self, hidden, unsorted_indices)
        else:
            if self.batch_first:
                output = output.transpose(0, 1)
            if not is_batched:
                output = output.squeeze(batch_dim)
                hidden = self._squeeze_hx(hidden)
        if not self.return_all_states:
            return output, hidden
        all_states = LSTMStates(*result[3])
        if not packed:
            if self.batch_first:
                all_states = LSTMStates(*(t.transpose(1, 2) for t in all_states))
            if not is_batched:
                all_states = LSTMStates(*(t.squeeze(2 if not self.batch_first else 1) for t in all_states))
        return output, hidden, all_states


class LSTM(_FusedRNNBase):
    r"""Fused drop-in for :class:`torch.nn.LSTM`; same arguments, parameters and results.

    Args: ``input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None``.

    Inputs: ``input`` of shape ``(L, N, H_in)`` (``(N, L, H_in)`` with ``batch_first``),
    ``(L, H_in)`` unbatched, or a ``PackedSequence``; ``(h_0, c_0)`` optional, of shapes
    ``(D * num_layers, N, H_out)`` and ``(D * num_layers, N, H_cell)``.
    Outputs: ``output, (h_n, c_n)`` as torch.nn.LSTM.

    ``return_all_states=True`` (not in torch.nn) makes ``forward`` return a third value,
    an :class:`LSTMStates` with the output of every layer and the cell state of every step
    of every layer, differentiable like the rest; the default path keeps nothing extra.
    """

    _dim_error_name = "LSTM"

    def __init__(self, *args, return_all_states: bool = False, **kwargs):
        super().__init__("LSTM", *args, **kwargs)
        self.return_all_states = bool(return_all_states)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + ", return_all_states=True" if self.return_all_states else s

    def get_expected_cell_size(self, input: Tensor, batch_sizes: Optional[Tensor]) -> tuple[int, int, int]:
        batch = int(batch_sizes[0]) if batch_sizes is not None else input.size(0 if self.batch_first else 1)
        return (self.num_layers * (2 if self.bidirectional else 1), batch, self.hidden_size)

    def check_forward_args(self, input, hidden, batch_sizes):  # type: ignore[override]
        cls = type(self)  # as in forward: torch.nn's methods through the class
        cls.check_input(self, input, batch_sizes)
        cls.check_hidden_size(
            self, hidden[0], cls.get_expected_hidden_size(self, input, batch_sizes), "Expected hidden[0] size {}, got {}"
        )
        cls.check_hidden_size(
            self, hidden[1], self.get_expected_cell_size(input, batch_sizes), "Expected hidden[1] size {}, got {}"
        )

    def permute_hidden(self, hx, permutation):  # type: ignore[override]
        if permutation is None:
            return hx
        return hx[0].index_select(1, permutation), hx[1].index_select(1, permutation)

    def _check_hx_rank(self, hx, is_batched: bool) -> None:
        want = 3 if is_batched else 2
        if hx[0].dim() != want or hx[1].dim() != want:
            kind = "batched 3-D" if is_batched else "unbatched 2-D"
            raise RuntimeError(
                f"For {kind} input, hx and cx should also be {want}-D but got "
                f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors"
            )

    def _unsqueeze_hx(self, hx):
        return hx[0].unsqueeze(1), hx[1].unsqueeze(1)

    def _squeeze_hx(self, hx):
        return hx[0].squeeze(1), hx[1].squeeze(1)


class GRU(_FusedRNNBase):
    r"""Fused drop-in for :class:`torch.nn.GRU`; same arguments, parameters and results.

    Args: ``input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, device=None, dtype=None``.
    """

    _dim_error_name = "GRU"

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


class RNN(_FusedRNNBase):
    r"""Fused drop-in for :class:`torch.nn.RNN`; same arguments, parameters and results.

    Args: ``input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None``.
    """

    _dim_error_name = "RNN"
    _dim_error_tail = "D tensor instead"

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        # nonlinearity is the fourth positional argument of torch.nn.RNN, but not of RNNBase.
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        modes = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}
        if self.nonlinearity not in modes:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(modes[self.nonlinearity], *args, **kwargs)


# ---------------------------------------------------------------- cells


def _check_cell_sizes(input: Tensor, states, weight_ih: Tensor, hidden_size: int) -> None:
    """torch.nn's cell checks (ATen's check_rnn_cell_forward_*), with its messages."""
    if input.size(1) != weight_ih.size(1):
        raise RuntimeError(f"input has inconsistent input_size: got {input.size(1)} expected {weight_ih.size(1)}")
    for label, h in enumerate(states):
        if input.size(0) != h.size(0):
            raise RuntimeError(
                f"Input batch size {input.size(0)} doesn't match hidden{label} batch size {h.size(0)}"
            )
        if h.size(1) != hidden_size:
            raise RuntimeError(f"hidden{label} has inconsistent hidden_size: got {h.size(1)}, expected {hidden_size}")


def _check_cell_rank(name: str, input: Tensor, hx: Optional[Tensor]) -> bool:
    if input.dim() not in (1, 2):
        raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
    if hx is not None and hx.dim() not in (1, 2):
        raise ValueError(f"{name}: Expected hidden to be 1D or 2D, got {hx.dim()}D instead")
    return input.dim() == 2


# The cells' eager calls: one call into _C for well-formed input and states (the common case),
# which returns None for anything else, so that the checks below raise torch.nn's errors.
_RNN_CELL_OPS = {"tanh": "rnn_tanh", "relu": "rnn_relu"}


class LSTMCell(_NativeMixin, nn.RNNCellBase):
    r"""Fused drop-in for :class:`torch.nn.LSTMCell`: one step, one fused op forward and backward.

    Args: ``input_size, hidden_size, bias=True, device=None, dtype=None``.
    Inputs: ``input`` ``(N, H_in)`` or ``(H_in)``; ``(h_0, c_0)`` optional, ``(N, H)`` or ``(H)``.
    Outputs: ``(h_1, c_1)``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Optional[tuple[Tensor, Tensor]] = None) -> tuple[Tensor, Tensor]:
        if (_plain(input) and _eager_cpp() and not _exporting_onnx()
                and (hx is None or (isinstance(hx, (tuple, list)) and len(hx) == 2))):
            h0, c0 = (None, None) if hx is None else hx
            out = _C._lstm_cell(input, h0, c0, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                                self.hidden_size)
            if out is not None:
                return out
        if _torch_path(input):  # as in _FusedRNNBase.forward
            return self.to_native().forward(input, hx)
        if input.dim() not in (1, 2):
            raise ValueError(f"LSTMCell: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None:
            for idx, value in enumerate(hx):
                if value.dim() not in (1, 2):
                    raise ValueError(f"LSTMCell: Expected hx[{idx}] to be 1D or 2D, got {value.dim()}D instead")
        is_batched = input.dim() == 2
        x = input if is_batched else input.unsqueeze(0)
        h0 = c0 = None
        w_ih = self.weight_ih
        if hx is not None:
            if is_batched and len(hx) != 2:  # ATen's lstm_cell (unbatched, torch.nn indexes hx[0] and hx[1])
                raise RuntimeError("lstm_cell expects two hidden states")
            h0, c0 = (hx[0], hx[1]) if is_batched else (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
            _check_cell_sizes(x, (h0, c0), w_ih, self.hidden_size)
        else:
            _check_cell_sizes(x, (), w_ih, self.hidden_size)
        _, h1, c1 = _lstm_layer(x.unsqueeze(0), w_ih, self.weight_hh, self.bias_ih, self.bias_hh, h0, c0, None, None,
                                False)
        if not is_batched:
            return h1.squeeze(0), c1.squeeze(0)
        return h1, c1


class GRUCell(_NativeMixin, nn.RNNCellBase):
    r"""Fused drop-in for :class:`torch.nn.GRUCell`: one step, one fused op forward and backward.

    Args: ``input_size, hidden_size, bias=True, device=None, dtype=None``.
    Inputs: ``input`` ``(N, H_in)`` or ``(H_in)``; ``hx`` optional, ``(N, H)`` or ``(H)``. Output: ``h_1``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        if _plain(input) and _eager_cpp() and not _exporting_onnx():
            h1 = _C._simple_cell("gru", input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                                 self.hidden_size)
            if h1 is not None:
                return h1
        if _torch_path(input):  # as in _FusedRNNBase.forward
            return self.to_native().forward(input, hx)
        is_batched = _check_cell_rank("GRUCell", input, hx)
        x = input if is_batched else input.unsqueeze(0)
        h0 = hx if hx is None or is_batched else hx.unsqueeze(0)
        w_ih = self.weight_ih
        _check_cell_sizes(x, () if h0 is None else (h0,), w_ih, self.hidden_size)
        _, h1 = _simple_layer(GRUFunction, x.unsqueeze(0), w_ih, self.weight_hh, self.bias_ih, self.bias_hh, h0, None,
                              False)
        return h1 if is_batched else h1.squeeze(0)


class RNNCell(_NativeMixin, nn.RNNCellBase):
    r"""Fused drop-in for :class:`torch.nn.RNNCell`: one step, one fused op forward and backward.

    Args: ``input_size, hidden_size, bias=True, nonlinearity='tanh', device=None, dtype=None``.
    Inputs: ``input`` ``(N, H_in)`` or ``(H_in)``; ``hx`` optional, ``(N, H)`` or ``(H)``. Output: ``h_1``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        cell = _RNN_CELL_OPS.get(self.nonlinearity)
        if cell is not None and _plain(input) and _eager_cpp() and not _exporting_onnx():
            h1 = _C._simple_cell(cell, input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                                 self.hidden_size)
            if h1 is not None:
                return h1
        if _torch_path(input):  # as in _FusedRNNBase.forward
            return self.to_native().forward(input, hx)
        is_batched = _check_cell_rank("RNNCell", input, hx)
        x = input if is_batched else input.unsqueeze(0)
        h0 = hx if hx is None or is_batched else hx.unsqueeze(0)
        w_ih = self.weight_ih
        _check_cell_sizes(x, () if h0 is None else (h0,), w_ih, self.hidden_size)
        if self.nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        _, h1 = _kernel_rnn_layer(x.unsqueeze(0), w_ih, self.weight_hh, self.bias_ih, self.bias_hh, h0, None, False,
                                  self.nonlinearity)
        return h1 if is_batched else h1.squeeze(0)


# ---------------------------------------------------------------- convert

_FUSED_OF = {
    nn.LSTM: LSTM,
    nn.GRU: GRU,
    nn.RNN: RNN,
    nn.LSTMCell: LSTMCell,
    nn.GRUCell: GRUCell,
    nn.RNNCell: RNNCell,
}


_NATIVE_OF = {fused: native for native, fused in _FUSED_OF.items()}


def convert(model: nn.Module) -> nn.Module:
    """Make every ``torch.nn`` LSTM, GRU, RNN and cell inside ``model`` (``model`` included) fused.

    Each module is switched to its fused class in place: it stays the same object, with the
    very same parameters (same names, same tensors), buffers, hooks and training mode, so
    optimizers and anything else holding references keep working. Only exact torch.nn
    classes are converted; a user subclass that overrides ``forward`` is left alone.
    Returns ``model``.
    """
    for module in model.modules():
        fused = _FUSED_OF.get(type(module))
        if fused is not None:
            module.__class__ = fused
    return model


def to_native(model: nn.Module) -> nn.Module:
    """The inverse of :func:`convert`: every fused_rnn module inside ``model`` (``model``
    included) becomes its torch.nn class again, in place, with the very same parameters.
    Returns ``model``. (``module.to_native()`` instead returns a new torch.nn module.)"""
    for module in model.modules():
        native = _NATIVE_OF.get(type(module))
        if native is not None:
            if "return_all_states" in module.__dict__:
                del module.return_all_states
            module.__class__ = native
    return model
