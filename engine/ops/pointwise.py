"""Elementwise unary ops and activations."""

from __future__ import annotations

import math

import numpy as np

from engine import dtypes
from engine.autograd.function import Function
from engine.broadcast import unbroadcast
from engine.ops.arith import coerce
from engine.tensor import Tensor


def _floating(x: Tensor) -> Tensor:
    """Integer inputs of float-valued ops (exp, log, ...) become the default float, as in PyTorch."""
    return x if x._data.dtype.kind == "f" else x.to(dtypes.get_default_dtype())


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Exp(Function):
    def forward(self, a):
        out = np.exp(a)
        self.save(out)
        return out

    def backward(self, g):
        (out,) = self.saved_arrays()
        return (g * out,)


class Log(Function):
    def forward(self, a):
        self.save(a)
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, log(-1) = nan, silently
            return np.log(a)

    def backward(self, g):
        (a,) = self.saved_arrays()
        return (g / a,)


class Sqrt(Function):
    def forward(self, a):
        with np.errstate(invalid="ignore"):  # sqrt(-1) = nan, silently
            out = np.sqrt(a)
        self.save(out)
        return out

    def backward(self, g):
        (out,) = self.saved_arrays()
        return (g / (2 * out),)


class Abs(Function):
    def forward(self, a):
        self.save(a)
        return np.abs(a)

    def backward(self, g):
        (a,) = self.saved_arrays()
        return (g * np.sign(a),)


class Tanh(Function):
    def forward(self, a):
        out = np.tanh(a)
        self.save(out)
        return out

    def backward(self, g):
        (out,) = self.saved_arrays()
        return (g * (1 - out * out),)


class Sigmoid(Function):
    def forward(self, a):
        # 0.5 * (1 + tanh(a / 2)) is the logistic function without exp's overflow for large |a|.
        out = np.tanh(a * 0.5)
        out += 1
        out *= 0.5
        self.save(out)
        return out

    def backward(self, g):
        (out,) = self.saved_arrays()
        return (g * out * (1 - out),)


class Relu(Function):
    def forward(self, a):
        out = np.maximum(a, 0)
        self.save(out)
        return out

    def backward(self, g):
        (out,) = self.saved_arrays()
        return (g * (out > 0),)


class LeakyRelu(Function):
    def forward(self, a, negative_slope):
        self.save(a)
        self.slope = negative_slope
        return np.where(a > 0, a, a * a.dtype.type(negative_slope))

    def backward(self, g):
        (a,) = self.saved_arrays()
        return (np.where(a > 0, g, g * g.dtype.type(self.slope)),)


class Gelu(Function):
    """x * Phi(x), exactly (PyTorch's default) or with the tanh approximation."""

    def forward(self, a, approximate):
        self.save(a)
        self.approximate = approximate
        return a * self._cdf(a)

    def _cdf(self, a):
        if self.approximate == "tanh":
            inner = math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)
            return (0.5 * (1 + np.tanh(inner))).astype(a.dtype)
        return (0.5 * (1 + _erf(a / math.sqrt(2)))).astype(a.dtype)

    def backward(self, g):
        (a,) = self.saved_arrays()
        if self.approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            t = np.tanh(k * (a + 0.044715 * a ** 3))
            grad = 0.5 * (1 + t) + 0.5 * a * (1 - t * t) * k * (1 + 3 * 0.044715 * a * a)
        else:
            grad = self._cdf(a) + a * np.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
        return ((g * grad).astype(g.dtype),)


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function, vectorised (numpy has none, and math.erf per element is a Python loop).

    Numerical Recipes' Chebyshev fit of erfc, computed in float64: relative error below 1.2e-7
    everywhere, under float32's resolution.
    """
    z = np.abs(np.asarray(x, np.float64))
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1 - erfc, erfc - 1)


class Clamp(Function):
    """x limited to [low, high]; tensor bounds get the gradient where they bind, as in PyTorch."""

    def forward(self, a, low, high):
        self.save(a, low, high)
        self.shapes = tuple(np.shape(v) if v is not None else None for v in (a, low, high))
        return np.clip(a, low, high)

    def backward(self, g):
        a, low, high = self.saved_arrays()
        need_a, need_low, need_high = self.needs_input_grad
        zero = np.zeros((), g.dtype)
        ga = glow = ghigh = None
        if need_a:
            inside = True
            if low is not None:
                inside = inside & (a >= low)
            if high is not None:
                inside = inside & (a <= high)
            ga = unbroadcast(np.where(inside, g, zero), self.shapes[0])
        if need_low:  # low binds where a is below it, unless high (below low) wins
            binds = (a < low) & (low < high) if high is not None else a < low
            glow = unbroadcast(np.where(binds, g, zero), self.shapes[1])
        if need_high:
            binds = (a > high) | (high < low) if low is not None else a > high
            ghigh = unbroadcast(np.where(binds, g, zero), self.shapes[2])
        return ga, glow, ghigh


class Cast(Function):
    def forward(self, a, target):
        self.source = a.dtype
        return a.astype(target)

    def backward(self, g):
        return (g.astype(self.source),)


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(_floating(x))


def log(x: Tensor) -> Tensor:
    return Log.apply(_floating(x))


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(_floating(x))


def abs(x: Tensor) -> Tensor:  # noqa: A001 (PyTorch's name)
    return Abs.apply(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(_floating(x))


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(_floating(x))


def relu(x: Tensor) -> Tensor:
    return Relu.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyRelu.apply(x, negative_slope)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(_floating(x), approximate)


def clamp(x: Tensor, min=None, max=None) -> Tensor:  # noqa: A002 (PyTorch's keywords)
    """x limited to [min, max] (either may be None, a number or a tensor; tensor bounds get gradients)."""
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    bounds = []
    for bound in (min, max):
        if bound is not None:
            x, bound = coerce(x, bound)  # an int tensor clamped to 2.5 is float, as in PyTorch
        bounds.append(bound)
    low, high = bounds
    if isinstance(low, Tensor) and isinstance(high, Tensor) and low._data.dtype is not high._data.dtype:
        low, high = coerce(low, high)
    return Clamp.apply(x, low, high)


def cast(x: Tensor, target: dtypes.dtype) -> Tensor:
    """x converted to `target`; only float-to-float casts carry gradients."""
    if target.is_floating_point and x._data.dtype.kind == "f":
        return Cast.apply(x, target.np)
    return Tensor._make(x._data.astype(target.np))
