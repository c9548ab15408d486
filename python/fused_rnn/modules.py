"""Drop-in replacements for ``torch.nn.LSTM``, ``torch.nn.GRU`` and ``torch.nn.RNN``.

They derive from ``torch.nn.RNNBase`` (not from the three torch.nn classes, which
TorchDynamo refuses to trace), so they have the very same constructor, parameters,
parameter names, initialisation, ``repr`` and input checks, and a ``state_dict``
moves between the two unchanged. ``forward`` runs the fused ops.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from .functional import rnn_stack

__all__ = ["LSTM", "GRU", "RNN"]

_HX = Union[Tensor, tuple[Tensor, Tensor]]


class _FusedRNNBase(nn.RNNBase):
    """The forward shared by the three layers; subclasses say how hidden states look."""

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

    def forward(self, input, hx: Optional[_HX] = None):
        self._update_flat_weights()
        packed = isinstance(input, PackedSequence)
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
        if hx is not None:
            self._check_hx_rank(hx, is_batched)
            if not is_batched:
                hx = self._unsqueeze_hx(hx)
            self.check_forward_args(data, hx, batch_sizes)
            # The states given are in the caller's order; packed data is sorted by length.
            hx = self.permute_hidden(hx, sorted_indices)
        else:
            self.check_input(data, batch_sizes)

        if not packed and self.batch_first:
            data = data.transpose(0, 1)
        output, h_n, c_n = rnn_stack(
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
        )
        hidden = (h_n, c_n) if self.mode == "LSTM" else h_n
        if packed:
            return PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices), self.permute_hidden(
                hidden, unsorted_indices
            )
        if self.batch_first:
            output = output.transpose(0, 1)
        if not is_batched:
            output = output.squeeze(batch_dim)
            hidden = self._squeeze_hx(hidden)
        return output, hidden


class LSTM(_FusedRNNBase):
    r"""Fused drop-in for :class:`torch.nn.LSTM`; same arguments, parameters and results.

    Args: ``input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None``.

    Inputs: ``input`` of shape ``(L, N, H_in)`` (``(N, L, H_in)`` with ``batch_first``),
    ``(L, H_in)`` unbatched, or a ``PackedSequence``; ``(h_0, c_0)`` optional, of shapes
    ``(D * num_layers, N, H_out)`` and ``(D * num_layers, N, H_cell)``.
    Outputs: ``output, (h_n, c_n)`` as torch.nn.LSTM.
    """

    _dim_error_name = "LSTM"

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)

    def get_expected_cell_size(self, input: Tensor, batch_sizes: Optional[Tensor]) -> tuple[int, int, int]:
        batch = int(batch_sizes[0]) if batch_sizes is not None else input.size(0 if self.batch_first else 1)
        return (self.num_layers * (2 if self.bidirectional else 1), batch, self.hidden_size)

    def check_forward_args(self, input, hidden, batch_sizes):  # type: ignore[override]
        self.check_input(input, batch_sizes)
        self.check_hidden_size(
            hidden[0], self.get_expected_hidden_size(input, batch_sizes), "Expected hidden[0] size {}, got {}"
        )
        self.check_hidden_size(
            hidden[1], self.get_expected_cell_size(input, batch_sizes), "Expected hidden[1] size {}, got {}"
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
