"""Recurrent modules: RNN, LSTM, GRU and their cells, with PyTorch's parameters, key names, shapes and checks.

Each layer runs as one fused op (engine/ops/recurrent.py) covering both directions; layers are chained
here, with dropout between them in training. Parameter keys are PyTorch's: weight_ih_l0, weight_hh_l0,
bias_ih_l0, bias_hh_l0, and the `_reverse` twins for the second direction.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from engine.creation import empty, generator, zeros
from engine.nn import init
from engine.nn.module import Module
from engine.nn.parameter import Parameter
from engine.ops.recurrent import GATES, recurrent
from engine.tensor import Tensor


class RNNBase(Module):
    """What RNN, LSTM and GRU share: the stacked, optionally bidirectional layers and their parameters."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None):
        super().__init__()
        _check_config(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size)
        if proj_size:
            raise NotImplementedError("LSTM with proj_size > 0 is not supported by the engine")
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and "
                          f"num_layers={num_layers}", stacklevel=2)
        gate_size = GATES[mode] * hidden_size
        self._flat_weights_names, self._all_weights = [], []
        for layer in range(num_layers):
            for direction in range(self.num_directions):
                layer_input = input_size if layer == 0 else hidden_size * self.num_directions
                names = self._names(layer, direction)
                shapes = [(gate_size, layer_input), (gate_size, hidden_size), (gate_size,), (gate_size,)]
                for name, shape in zip(names, shapes):
                    setattr(self, name, Parameter(empty(*shape, dtype=dtype, device=device)))
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _names(self, layer: int, direction: int) -> list:
        suffix = "_reverse" if direction == 1 else ""
        names = ["weight_ih_l{}{}", "weight_hh_l{}{}"] + (["bias_ih_l{}{}", "bias_hh_l{}{}"] if self.bias else [])
        return [name.format(layer, suffix) for name in names]

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list:
        """The parameters per layer and direction: [[w_ih, w_hh, b_ih, b_hh], ...]."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """A no-op (PyTorch packs weights for cuDNN here)."""

    def reset_parameters(self) -> None:
        """PyTorch's: every parameter uniform in +-1/sqrt(hidden_size)."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _layer_weights(self, layer: int) -> list:
        """(w_ih, w_hh, b_ih, b_hh) per direction of one layer (biases None without bias)."""
        weights = []
        for direction in range(self.num_directions):
            params = [getattr(self, name) for name in self._names(layer, direction)]
            weights.append(tuple(params) if self.bias else (*params, None, None))
        return weights

    def _run_layers(self, input: Tensor, h0: Tensor, c0: Tensor | None) -> tuple:
        """(output, h_n, c_n or None) of the stacked layers on a batched input, as one fused op."""
        weights = [w for layer in range(self.num_layers) for w in self._layer_weights(layer)]
        masks = None
        if self.dropout and self.training and self.num_layers > 1:
            steps, n = (input.shape[1], input.shape[0]) if self.batch_first else (input.shape[0], input.shape[1])
            shape = ((n, steps) if self.batch_first else (steps, n)) + (self.num_directions * self.hidden_size,)
            masks = [_dropout_mask(shape, input._data.dtype, self.dropout) for _ in range(self.num_layers - 1)]
        return recurrent(self.mode, input, h0, c0, weights, self.num_layers, self.batch_first, masks)

    def _prepare(self, input: Tensor, hx, is_lstm: bool) -> tuple:
        """(batched input, h0, c0 or None, whether the input was batched), hx checked or zeros."""
        name = type(self).__name__
        if input.dim() not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D tensor instead")
        batched = input.dim() == 3
        batch_dim = 0 if self.batch_first else 1
        states = list(hx) if is_lstm and hx is not None else ([hx] if hx is not None else [])
        for state in states:
            if state.dim() != (3 if batched else 2):
                raise RuntimeError(f"For {'batched 3-D' if batched else 'unbatched 2-D'} input, hx should also be "
                                   f"{3 if batched else 2}-D but got {state.dim()}-D tensor")
        if not batched:
            input = input.unsqueeze(batch_dim)
            states = [s.unsqueeze(1) for s in states]
        self._check_input(input)
        expected = (self.num_layers * self.num_directions, input.shape[batch_dim], self.hidden_size)
        if not states:
            states = [zeros(*expected, dtype=input.dtype) for _ in range(2 if is_lstm else 1)]
        for k, state in enumerate(states):
            if tuple(state.shape) != expected:
                which = f"hidden[{k}]" if is_lstm else "hidden"
                raise RuntimeError(f"Expected {which} size {expected}, got {list(state.shape)}")
        return input, states[0], states[1] if is_lstm else None, batched

    def _check_input(self, input: Tensor) -> None:
        weight = self.weight_ih_l0
        if input.dtype is not weight.dtype:
            raise ValueError(f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight.dtype}). Convert "
                             f"input: input.to({weight.dtype}), or convert model: model.to({input.dtype})")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got "
                               f"{input.shape[-1]}")

    def _finish(self, output: Tensor, states: list, batched: bool) -> tuple:
        if batched:
            return output, states
        return output.squeeze(0 if self.batch_first else 1), [s.squeeze(1) for s in states]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


def _check_config(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size) -> None:
    """PyTorch's constructor checks, with its messages."""
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError("dropout should be a number in range [0, 1] representing the probability of an element "
                         "being zeroed")
    if not isinstance(bias, bool):
        raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
    if not isinstance(batch_first, bool):
        raise TypeError(f"batch_first should be of type bool, got: {type(batch_first).__name__}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero")
    if num_layers <= 0:
        raise ValueError("num_layers must be greater than zero")
    if proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections")
    if proj_size >= hidden_size:
        raise ValueError("proj_size has to be smaller than hidden_size")


def _dropout_mask(shape: tuple, dtype: np.dtype, p: float) -> np.ndarray:
    """Inverted dropout multipliers (as engine.nn.functional.dropout draws them): 0 with probability p, else 1/(1-p)."""
    if p == 1:
        return np.zeros(shape, dtype)
    mask = (generator().random(shape, dtype=dtype if dtype in (np.float32, np.float64) else np.float64) >= p)
    return mask.astype(dtype) * dtype.type(1 / (1 - p))


class RNN(RNNBase):
    """An Elman RNN: h_t = tanh (or relu)(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self_nonlinearity, args = args[3], args[:3] + args[4:]
        else:
            self_nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self_nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{self_nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__("RNN_TANH" if self_nonlinearity == "tanh" else "RNN_RELU", *args, **kwargs)
        self.nonlinearity = self_nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple:
        """(output, h_n): output (L, N, D*H) (batch first: (N, L, D*H)), h_n (num_layers*D, N, H)."""
        input, h0, _, batched = self._prepare(input, hx, is_lstm=False)
        output, h_n, _ = self._run_layers(input, h0, None)
        output, (h_n,) = self._finish(output, [h_n], batched)
        return output, h_n


class LSTM(RNNBase):
    """Long short-term memory: gates i, f, g, o (PyTorch's row order), cell c_t = f c_{t-1} + i g, h_t = o tanh(c_t)."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:
        """(output, (h_n, c_n)); hx is (h_0, c_0), each (num_layers*D, N, H), zeros when None."""
        input, h0, c0, batched = self._prepare(input, hx, is_lstm=True)
        output, h_n, c_n = self._run_layers(input, h0, c0)
        output, (h_n, c_n) = self._finish(output, [h_n, c_n], batched)
        return output, (h_n, c_n)


class GRU(RNNBase):
    """Gated recurrent unit: gates r, z, n, with b_hn inside r * (W_hn h + b_hn), h_t = (1 - z) n + z h_{t-1}."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple:
        """(output, h_n), shapes as RNN's."""
        input, h0, _, batched = self._prepare(input, hx, is_lstm=False)
        output, h_n, _ = self._run_layers(input, h0, None)
        output, (h_n,) = self._finish(output, [h_n], batched)
        return output, h_n


class RNNCellBase(Module):
    """One step of a recurrent layer: weight_ih, weight_hh (and bias_ih, bias_hh) of num_chunks gates."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        factory = {"dtype": dtype, "device": device}
        self.weight_ih = Parameter(empty(num_chunks * hidden_size, input_size, **factory))
        self.weight_hh = Parameter(empty(num_chunks * hidden_size, hidden_size, **factory))
        if bias:
            self.bias_ih = Parameter(empty(num_chunks * hidden_size, **factory))
            self.bias_hh = Parameter(empty(num_chunks * hidden_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _step(self, mode: str, input: Tensor, states: list) -> tuple:
        """(h', c' or None) for one step; input (N, I) or (I,), states (N, H) or (H,) each, or empty for zeros."""
        name = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        for k, state in enumerate(states):
            if state.dim() not in (1, 2):
                raise ValueError(f"{name}: Expected hidden{f'[{k}]' if len(states) > 1 else ''} to be 1D or 2D, "
                                 f"got {state.dim()}D instead")
        batched = input.dim() == 2
        if not batched:
            input, states = input.unsqueeze(0), [s.unsqueeze(0) for s in states]
        if input.shape[1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.shape[1]} expected {self.input_size}")
        if not states:
            states = [zeros(input.shape[0], self.hidden_size, dtype=input.dtype)] * (2 if mode == "LSTM" else 1)
        h0 = states[0].unsqueeze(0)
        c0 = states[1].unsqueeze(0) if mode == "LSTM" else None
        _, h_n, c_n = recurrent(mode, input.unsqueeze(0), h0, c0,
                                [(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)], 1, False)
        h, c = h_n[0], c_n[0] if c_n is not None else None
        if not batched:
            h, c = h.squeeze(0), c.squeeze(0) if c is not None else None
        return h, c


class RNNCell(RNNCellBase):
    """h' = tanh (or relu)(x W_ih^T + b_ih + h W_hh^T + b_hh)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        if self.nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        return self._step(mode, input, [] if hx is None else [hx])[0]


class LSTMCell(RNNCellBase):
    """One LSTM step: returns (h', c')."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:
        return self._step("LSTM", input, [] if hx is None else list(hx))


class GRUCell(RNNCellBase):
    """One GRU step: returns h'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step("GRU", input, [] if hx is None else [hx])[0]
