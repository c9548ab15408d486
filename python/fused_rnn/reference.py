"""Slow, obviously correct pure-PyTorch recurrences: the specification the kernels are tested against.

Every function loops over time in Python with plain tensor maths and no in-place
updates, so autograd differentiates it directly. The arguments and layouts are those
of the functions in :mod:`fused_rnn.functional`.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

__all__ = ["lstm_layer", "gru_layer", "rnn_layer", "lstm_cell", "gru_cell", "rnn_cell"]


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None):
    """One LSTM step: returns ``(h', c')`` (``h'`` projected by ``w_hr`` when given)."""
    gates = x @ w_ih.t() + h @ w_hh.t()
    if b_ih is not None:
        gates = gates + b_ih
    if b_hh is not None:
        gates = gates + b_hh
    i, f, g, o = gates.chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_new = torch.sigmoid(o) * torch.tanh(c_new)
    if w_hr is not None:
        h_new = h_new @ w_hr.t()
    return h_new, c_new


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step in torch.nn's formulation: ``n = tanh(x_n + r * (W_hn h + b_hn))``."""
    gx = x @ w_ih.t()
    gh = h @ w_hh.t()
    if b_ih is not None:
        gx = gx + b_ih
    if b_hh is not None:
        gh = gh + b_hh
    x_r, x_z, x_n = gx.chunk(3, dim=1)
    h_r, h_z, h_n = gh.chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One Elman RNN step: ``act(W_ih x + b_ih + W_hh h + b_hh)``."""
    pre = x @ w_ih.t() + h @ w_hh.t()
    if b_ih is not None:
        pre = pre + b_ih
    if b_hh is not None:
        pre = pre + b_hh
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def _run(step: Callable, input: Tensor, states: list, batch_sizes: Optional[Tensor], reverse: bool):
    """Drive ``step(x_t, *states_t) -> new states`` over time with a shrinking active batch.

    ``states[0]`` is the hidden state whose new value is the step's output. Rows that
    are not active at a step keep their state, so each sequence ends with the state of
    its own last step. Returns the per-step values of every state, each laid out as the
    output (``(T, B, ·)``, or ``(N, ·)`` packed), and the final states.
    """
    if batch_sizes is None:
        T, B = input.shape[0], input.shape[1]
        sizes = [B] * T
        rows = input.reshape(T * B, input.shape[2])
    else:
        sizes = [int(s) for s in batch_sizes]
        T = len(sizes)
        rows = input
    if T == 0:
        raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
    offsets = [0]
    for s in sizes[:-1]:
        offsets.append(offsets[-1] + s)
    per_step = [[None] * T for _ in states]
    order = range(T - 1, -1, -1) if reverse else range(T)
    for t in order:
        n = sizes[t]
        x_t = rows[offsets[t]:offsets[t] + n]
        new = step(x_t, *[s[:n] for s in states])
        new = new if isinstance(new, tuple) else (new,)
        states = [torch.cat([a, s[n:]], 0) for a, s in zip(new, states)]
        for k, a in enumerate(new):
            per_step[k][t] = a
    sequences = [torch.cat(steps, 0) for steps in per_step]
    if batch_sizes is None:
        sequences = [seq.reshape(T, input.shape[1], -1) for seq in sequences]
    return sequences, states


def lstm_layer(input, w_ih, w_hh, b_ih=None, b_hh=None, hx=None, cx=None, w_hr=None, batch_sizes=None,
               reverse=False, return_cell_states=False):
    """Reference for :func:`fused_rnn.functional.lstm_layer`; returns ``(output, h_n, c_n)``,
    and the cell state of every step (laid out as the output) last when ``return_cell_states``."""
    B = input.shape[1] if batch_sizes is None else int(batch_sizes[0])
    H = w_hh.shape[0] // 4
    P = w_hr.shape[0] if w_hr is not None else H
    h = hx if hx is not None else input.new_zeros(B, P)
    c = cx if cx is not None else input.new_zeros(B, H)
    (out, c_all), (h_n, c_n) = _run(
        lambda x, h_, c_: lstm_cell(x, h_, c_, w_ih, w_hh, b_ih, b_hh, w_hr), input, [h, c], batch_sizes, reverse
    )
    return (out, h_n, c_n, c_all) if return_cell_states else (out, h_n, c_n)


def gru_layer(input, w_ih, w_hh, b_ih=None, b_hh=None, hx=None, batch_sizes=None, reverse=False):
    """Reference for :func:`fused_rnn.functional.gru_layer`; returns ``(output, h_n)``."""
    B = input.shape[1] if batch_sizes is None else int(batch_sizes[0])
    h = hx if hx is not None else input.new_zeros(B, w_hh.shape[1])
    (out,), (h_n,) = _run(lambda x, h_: gru_cell(x, h_, w_ih, w_hh, b_ih, b_hh), input, [h], batch_sizes, reverse)
    return out, h_n


def rnn_layer(input, w_ih, w_hh, b_ih=None, b_hh=None, hx=None, batch_sizes=None, reverse=False,
              nonlinearity="tanh"):
    """Reference for :func:`fused_rnn.functional.rnn_layer`; returns ``(output, h_n)``."""
    B = input.shape[1] if batch_sizes is None else int(batch_sizes[0])
    h = hx if hx is not None else input.new_zeros(B, w_hh.shape[1])
    (out,), (h_n,) = _run(
        lambda x, h_: rnn_cell(x, h_, w_ih, w_hh, b_ih, b_hh, nonlinearity), input, [h], batch_sizes, reverse
    )
    return out, h_n
