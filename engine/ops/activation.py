"""Activations as torch.nn.functional has them: ReLU6, Hardtanh, Hardsigmoid, Hardswish, ELU, Softplus, Mish,
PReLU, and the `inplace=True` forms (of these and of relu, leaky_relu, silu).

Each activation's arithmetic is one numpy kernel `kernel(a, out, ...)` that may write into `a` itself: the
Function runs it into a fresh array, and the in-place form runs it straight into the input's storage when
there is no graph to record (see `_in_place`). Backward keeps PyTorch's conventions at the kinks (strict
inequalities), which the parity tests pin down.
"""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.grad_mode import state as _mode
from engine.ops.pointwise import _floating as _as_float
from engine.ops.pointwise import leaky_relu as _leaky_relu
from engine.ops.pointwise import relu as _relu
from engine.tensor import Tensor


# -- kernels: kernel(a, out, ...) -> out; out may be a itself, or None for a fresh array ------------------------
# np.clip with two bounds is the fast one here: numpy's maximum and minimum take slower NaN-propagating loops.
def _hardtanh(a, out, low, high):
    return np.clip(a, low, high, out=out)  # propagates NaN, as PyTorch's clamp does


def _hardsigmoid(a, out):
    out = np.add(a, 3, out=out)
    np.clip(out, 0, 6, out=out)
    out /= 6
    return out


def _hardswish(a, out):
    gate = np.add(a, 3)
    np.clip(gate, 0, 6, out=gate)
    out = np.multiply(a, gate, out=gate if out is None else out)  # (x * clamp(x + 3, 0, 6)) / 6, PyTorch's order
    out /= 6
    return out


def _elu(a, out, alpha):
    negative = a <= 0
    branch = np.expm1(np.minimum(a, 0))
    branch *= alpha
    out = a.copy() if out is None else out  # where x > 0 the result is x itself
    np.copyto(out, branch, where=negative)
    return out


def _softplus(a, out, beta, threshold):
    scaled = a * beta
    linear = scaled > threshold  # where PyTorch returns x itself (exp would overflow)
    value = np.log1p(np.exp(np.minimum(scaled, threshold)))
    value /= beta
    np.copyto(value, a, where=linear)
    if out is None:
        return value
    np.copyto(out, value)
    return out


def _mish(a, out):
    gate = np.tanh(np.logaddexp(0, a))  # tanh(softplus(x)), softplus without overflow
    return np.multiply(a, gate, out=gate if out is None else out)


def _silu_gate(a):
    gate = np.tanh(a * 0.5)  # sigmoid as engine.ops.sigmoid computes it: (1 + tanh(x / 2)) / 2
    gate += 1
    gate *= 0.5
    return gate


def _silu(a, out):
    gate = _silu_gate(a)
    return np.multiply(a, gate, out=gate if out is None else out)


def _relu_kernel(a, out):
    if a.dtype.kind == "f":  # clip between finite-or-not bounds is numpy's fast loop; NaN stays NaN, as in PyTorch
        return np.clip(a, 0, np.inf, out=out)
    return np.maximum(a, 0, out=out)


def _leaky_relu_kernel(a, out, negative_slope):
    return np.multiply(a, np.where(a > 0, 1, a.dtype.type(negative_slope)), out=out)


# -- the ops ------------------------------------------------------------------------------------------------
class Hardtanh(Function):
    """clamp(x, min_val, max_val); the gradient passes strictly inside the bounds (of the input or, the same
    positions, of the result, which the in-place form keeps instead)."""

    def forward(self, a, low, high, save_result=False):
        self.bounds = low, high
        out = _hardtanh(a, None, low, high)
        self.save(out if save_result else a)
        return out

    def backward(self, g):
        (a,) = self.saved_arrays()
        low, high = self.bounds
        return (g * ((a > low) & (a < high)),)


class Hardsigmoid(Function):
    """relu6(x + 3) / 6; the gradient is 1/6 strictly inside (-3, 3)."""

    def forward(self, a):
        self.save(a)
        return _hardsigmoid(a, None)

    def backward(self, g):
        (a,) = self.saved_arrays()
        return (g * ((a > -3) & (a < 3)) / 6,)


class Hardswish(Function):
    """x * relu6(x + 3) / 6; the gradient is 0 up to -3, x/3 + 1/2 inside, 1 from 3 on."""

    def forward(self, a):
        self.save(a)
        return _hardswish(a, None)

    def backward(self, g):
        (a,) = self.saved_arrays()
        slope = np.where(a < 3, a / 3 + 0.5, 1).astype(g.dtype)
        slope[a <= -3] = 0
        return (g * slope,)


class Elu(Function):
    """x for x > 0, alpha * (exp(x) - 1) otherwise; backward from the input, or from the result (in place)."""

    def forward(self, a, alpha, save_result=False):
        self.alpha, self.from_result = alpha, save_result
        out = _elu(a, None, alpha)
        self.save(out if save_result else a)
        return out

    def backward(self, g):
        (saved,) = self.saved_arrays()
        if self.from_result:  # alpha * exp(x) is result + alpha where the result is not x itself
            return (np.where(saved > 0, g, g * (saved + self.alpha)).astype(g.dtype),)
        return (np.where(saved > 0, g, g * (np.exp(np.minimum(saved, 0)) * self.alpha)).astype(g.dtype),)


class Softplus(Function):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold."""

    def forward(self, a, beta, threshold):
        self.save(a)
        self.beta, self.threshold = beta, threshold
        return _softplus(a, None, beta, threshold)

    def backward(self, g):
        (a,) = self.saved_arrays()
        scaled = a * self.beta
        z = np.exp(np.minimum(scaled, self.threshold))
        return (np.where(scaled > self.threshold, g, g * z / (z + 1)).astype(g.dtype),)


class Mish(Function):
    """x * tanh(softplus(x))."""

    def forward(self, a):
        self.save(a)
        return _mish(a, None)

    def backward(self, g):
        (a,) = self.saved_arrays()
        gate = np.tanh(np.logaddexp(0, a))
        sig = 0.5 * (1 + np.tanh(0.5 * a))
        return ((g * (gate + a * sig * (1 - gate * gate))).astype(g.dtype),)


class Silu(Function):
    """x * sigmoid(x), keeping only x for backward (as PyTorch's one op does)."""

    def forward(self, a):
        self.save(a)
        return _silu(a, None)

    def backward(self, g):
        (a,) = self.saved_arrays()
        s = _silu_gate(a)
        return ((g * s * (1 + a * (1 - s))).astype(g.dtype),)


class PreluKernel(Function):  # PyTorch's grad_fn name: PreluKernelBackward0
    """x for x > 0, weight * x otherwise; weight has one value, or one per channel (dim 1)."""

    def forward(self, a, weight):
        self.save(a, weight)
        return np.where(a > 0, a, a * self._per_channel(weight, a.ndim))

    def _per_channel(self, weight, ndim):
        return weight.reshape((1, -1) + (1,) * (ndim - 2)) if weight.size > 1 else weight.reshape(())

    def backward(self, g):
        a, weight = self.saved_arrays()
        positive = a > 0
        gx = gw = None
        if self.needs(0):
            gx = np.where(positive, g, g * self._per_channel(weight, a.ndim))
        if self.needs(1):
            contribution = np.where(positive, 0, a * g)
            axes = tuple(i for i in range(a.ndim) if i != 1 or weight.size == 1)
            gw = contribution.sum(axis=axes).reshape(weight.shape)
        return gx, gw


# -- in place -----------------------------------------------------------------------------------------------
def _in_place(x: Tensor, out_of_place, kernel, *params) -> Tensor:
    """x overwritten with its activation and returned, as PyTorch's in-place activations do.

    When there is a graph to record (x requires grad, or is a view of a tensor that does) or a check
    to make (an inference tensor outside inference mode, a read-only or expanded storage), Tensor._write_
    does it, with PyTorch's checks and recording. Otherwise the kernel writes straight into x's storage.
    """
    if (x.requires_grad or (x._base is not None and x._base.requires_grad) or not x._data.flags.writeable
            or (x._inference and not _mode.inference)):
        result = out_of_place(x, *params)
        x._write_(result)
        if result.grad_fn is not None:  # a node that saved its result keeps x itself, as PyTorch's in-place forms
            result.grad_fn.adopt_saved(result._data, x)
        return x
    kernel(x._data, x._data, *params)
    x._mark_written()
    return x


def _hardtanh_keeping_result(x: Tensor, low: float, high: float) -> Tensor:
    return Hardtanh.apply(x, low, high, True)


def _elu_keeping_result(x: Tensor, alpha: float) -> Tensor:
    return Elu.apply(x, alpha, True)


def _floating(x: Tensor, op: str) -> None:
    if not x.is_floating_point():
        raise RuntimeError(f"{op} needs a floating point input, but got {x.dtype}; convert it with .float()")


# -- the functional forms -------------------------------------------------------------------------------------
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); with inplace, written into input and returned."""
    return _in_place(input, _relu, _relu_kernel) if inplace else _relu(input)


def relu_(input: Tensor) -> Tensor:
    """relu written into input."""
    return relu(input, inplace=True)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope * x otherwise; with inplace, written into input."""
    if inplace:
        return _in_place(input, _leaky_relu, _leaky_relu_kernel, negative_slope)
    return _leaky_relu(input, negative_slope)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """leaky_relu written into input."""
    return leaky_relu(input, negative_slope, inplace=True)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x); with inplace, written into input."""
    input = _as_float(input)
    return _in_place(input, Silu.apply, _silu) if inplace else Silu.apply(input)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """clamp(x, min_val, max_val); with inplace, written into input."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    if inplace:
        return _in_place(input, _hardtanh_keeping_result, _hardtanh, min_val, max_val)
    return Hardtanh.apply(input, min_val, max_val)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """hardtanh written into input."""
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6): hardtanh(x, 0, 6)."""
    return hardtanh(input, 0.0, 6.0, inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6."""
    _floating(input, "hardsigmoid")
    return _in_place(input, Hardsigmoid.apply, _hardsigmoid) if inplace else Hardsigmoid.apply(input)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6."""
    _floating(input, "hardswish")
    return _in_place(input, Hardswish.apply, _hardswish) if inplace else Hardswish.apply(input)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    _floating(input, "elu")
    return _in_place(input, _elu_keeping_result, _elu, alpha) if inplace else Elu.apply(input, alpha)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """elu written into input."""
    return elu(input, alpha, inplace=True)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, reverting to x where beta * x > threshold."""
    _floating(input, "softplus")
    return Softplus.apply(input, beta, threshold)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    _floating(input, "mish")
    return _in_place(input, Mish.apply, _mish) if inplace else Mish.apply(input)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x for x > 0, weight * x otherwise, with weight one value or one per channel (dim 1)."""
    if weight.ndim > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {weight.ndim}")
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() != 1 and weight.numel() != channels:
        raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                           f"{weight.numel()} and channel size = {channels}.")
    return PreluKernel.apply(input, weight)
