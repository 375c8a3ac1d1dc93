"""Selecting elements: topk, sort, gather, masked_fill, and the boolean tests any/all/isnan."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.ops.arith import where
from engine.ops.reduce import Gather, _axes
from engine.tensor import Tensor


class ValuesIndices(NamedTuple):
    """What topk and sort return: `values` and `indices`."""

    values: Tensor
    indices: Tensor


def _axis(x: Tensor, dim: int) -> int:
    return (_axes(dim, x._data.ndim) or (0,))[0]


def _take(x: Tensor, order: np.ndarray, axis: int) -> ValuesIndices:
    """Values of x along `axis` at `order` (differentiable), and the order as int64 indices."""
    if x._data.ndim == 0:
        return ValuesIndices(x.clone(), Tensor._make(np.zeros((), np.int64)))
    return ValuesIndices(Gather.apply(x, order, axis), Tensor._make(order.astype(np.int64, copy=False)))


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:
    axis = _axis(x, dim)
    keys = -x._data if descending and x._data.dtype.kind != "b" else x._data
    order = np.argsort(keys, axis=axis, kind="stable") if x._data.ndim else None
    if descending and x._data.dtype.kind == "b":
        order = np.flip(np.argsort(x._data, axis=axis, kind="stable"), axis)
    return _take(x, order, axis)


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    return sort(x, dim, descending, stable).indices


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:  # noqa: A002
    """The k largest (or smallest) elements along dim, in order, with their indices."""
    axis = _axis(x, dim)
    length = x.shape[axis] if x._data.ndim else 1
    if not 0 <= k <= length:
        raise RuntimeError(f"selected index k out of range: k={k} for dimension {axis} of size {length}")
    if x._data.ndim == 0:
        return _take(x, None, 0)
    keys = -x._data if largest else x._data
    part = np.argpartition(keys, k - 1, axis=axis) if 0 < k < length else np.argsort(keys, axis=axis)
    part = np.take(part, np.arange(k), axis=axis)
    order = np.take_along_axis(part, np.argsort(np.take_along_axis(keys, part, axis), axis=axis, kind="stable"), axis)
    return _take(x, order, axis)


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """out[i][j] = x[index[i][j]][j] for dim 0, and so on, as PyTorch's gather."""
    if index._data.dtype.kind not in "iu":
        raise RuntimeError(f"gather(): Expected dtype int64 for index, got {index.dtype!r}")
    return Gather.apply(x, index._data, _axis(x, dim))


def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
    """x with `value` where mask is True."""
    return where(mask, value, x) if isinstance(value, Tensor) else where(mask, x.new_full((), value), x)


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return Tensor._make(np.asarray(np.any(x._data, axis=_axes(dim, x._data.ndim), keepdims=keepdim)))


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return Tensor._make(np.asarray(np.all(x._data, axis=_axes(dim, x._data.ndim), keepdims=keepdim)))


def isnan(x: Tensor) -> Tensor:
    return Tensor._make(np.isnan(x._data))


def isfinite(x: Tensor) -> Tensor:
    return Tensor._make(np.asarray(np.isfinite(x._data)))
