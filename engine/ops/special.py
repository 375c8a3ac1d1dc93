"""Elementwise special and trigonometric functions: erf, rsqrt, sin, cos."""

from __future__ import annotations

import math

import numpy as np

from engine.autograd.function import Function
from engine.ops.pointwise import _erf, _floating
from engine.tensor import Tensor


class Erf(Function):
    def forward(self, a):
        self.save(a)
        if a.dtype == np.float64:  # exact, elementwise in Python: float64 asks for more than the fast fit gives
            return _exact_erf(a).astype(np.float64)
        return _erf(a).astype(a.dtype, copy=False)

    def backward(self, g):
        (a,) = self.saved_arrays()
        return (g * (2 / math.sqrt(math.pi)) * np.exp(-a * a),)


_exact_erf = np.frompyfunc(math.erf, 1, 1)


class Rsqrt(Function):
    def forward(self, a):
        with np.errstate(divide="ignore", invalid="ignore"):  # rsqrt(0) = inf, rsqrt(-1) = nan, as in PyTorch
            out = 1 / np.sqrt(a)
        self.save(out)
        return out

    def backward(self, g):
        (out,) = self.saved_arrays()
        return (g * -0.5 * out * out * out,)


class Sin(Function):
    def forward(self, a):
        self.save(a)
        return np.sin(a)

    def backward(self, g):
        (a,) = self.saved_arrays()
        return (g * np.cos(a),)


class Cos(Function):
    def forward(self, a):
        self.save(a)
        return np.cos(a)

    def backward(self, g):
        (a,) = self.saved_arrays()
        return (g * -np.sin(a),)


def erf(x: Tensor) -> Tensor:
    """The error function, 2/sqrt(pi) * integral of exp(-t^2) from 0 to x."""
    return Erf.apply(_floating(x))


def rsqrt(x: Tensor) -> Tensor:
    """1 / sqrt(x)."""
    return Rsqrt.apply(_floating(x))


def sin(x: Tensor) -> Tensor:
    return Sin.apply(_floating(x))


def cos(x: Tensor) -> Tensor:
    return Cos.apply(_floating(x))
