"""fused_rnn: fused LSTM, GRU and RNN layers for PyTorch, drop-in replacements for torch.nn.

Import this package to register the ``torch.ops.fused_rnn`` ops. The modules
``LSTM``, ``GRU`` and ``RNN`` take the arguments of their torch.nn namesakes and load
their state_dicts; :mod:`fused_rnn.functional` has the layer-level functions and
:mod:`fused_rnn.reference` the pure-PyTorch specification they are tested against.
"""

from __future__ import annotations

import warnings

import torch

from . import functional, ops, reference
from ._C import build_info as _build_info
from .modules import GRU, LSTM, RNN, GRUCell, LSTMCell, LSTMStates, RNNCell, convert, to_native

__version__ = "0.1.0"

# 2.6 is the oldest torch the test suite passes on, and pyproject.toml asks for it; an install
# that skips the dependency check can still meet an older one, whose known differences are silent.
if torch.__version__ < (2, 6):  # a TorchVersion, which compares with tuples
    warnings.warn(
        f"fused_rnn needs torch >= 2.6, this is torch {torch.__version__}: eager calls work, but under "
        "torch.compile torch 2.5 gives a stack of layers wrong gradients (its Dynamo tells a layer's backward "
        "that the layer's input needs none) and torch 2.4 cannot compile the modules in one graph",
        stacklevel=2)

__all__ = [
    "LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "LSTMStates",
    "convert", "to_native", "functional", "reference", "build_info", "__version__",
]


def build_info() -> dict:
    """What the installed binary contains: CPU and CUDA kernels, CUDA archs, the torch it was built with."""
    info = dict(_build_info())
    info["version"] = __version__
    info["torch_runtime"] = __import__("torch").__version__
    return info
