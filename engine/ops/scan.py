"""Cumulative ops along one dim: cumsum."""

from __future__ import annotations

import numpy as np

from engine import dtypes
from engine.autograd.function import Function
from engine.ops.shape import _dim
from engine.tensor import Tensor


class Cumsum(Function):
    def forward(self, a, axis):
        self.axis = axis
        return np.cumsum(a, axis=axis)

    def backward(self, g):
        # Each input feeds every later output: the gradient is a cumulative sum from the end.
        return (np.flip(np.cumsum(np.flip(g, self.axis), axis=self.axis), self.axis),)


def cumsum(x: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running sums along dim; integers and bools sum as int64, as in PyTorch."""
    if dtype is not None:
        x = x.to(dtype)
    elif x._data.dtype.kind in "biu":
        x = x.to(dtypes.int64)
    if x._data.ndim == 0:
        return Cumsum.apply(x.reshape(1), 0).reshape(())
    return Cumsum.apply(x, _dim(dim, x._data.ndim))
