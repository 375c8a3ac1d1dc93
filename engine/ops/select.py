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


def _order(data: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable sorting order along axis (equal values keep their order); NaN is the largest, as in PyTorch."""
    if not descending:
        return np.argsort(data, axis=axis, kind="stable")  # numpy, like PyTorch, puts NaN last
    # Sort the reversed values ascending and reverse back: stable, NaN first, and no negation (any dtype).
    flipped = np.argsort(np.flip(data, axis), axis=axis, kind="stable")
    return data.shape[axis] - 1 - np.flip(flipped, axis)


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:
    """Values along dim in order, with their indices (always stable)."""
    axis = _axis(x, dim)
    return _take(x, _order(x._data, axis, descending) if x._data.ndim else None, axis)


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
    if k == 0:
        return _take(x, np.zeros(x.shape[:axis] + (0,) + x.shape[axis + 1:], np.int64), axis)
    # Partition (linear time) so the k wanted values sit at one end, then order just those k.
    part = np.argpartition(x._data, length - k if largest else k - 1, axis=axis)
    part = np.take(part, np.arange(length - k, length) if largest else np.arange(k), axis=axis)
    within = _order(np.take_along_axis(x._data, part, axis), axis, descending=largest)
    return _take(x, np.take_along_axis(part, within, axis), axis)


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """out[i][j] = x[index[i][j]][j] for dim 0, and so on, as PyTorch's gather."""
    if index._data.dtype.kind not in "iu":
        raise RuntimeError(f"gather(): Expected dtype int64 for index, got {index.dtype!r}")
    if index._data.ndim != x._data.ndim:
        raise RuntimeError("gather(): Index tensor must have the same number of dimensions as input tensor")
    axis = _axis(x, dim)
    # PyTorch reads the leading index.shape block of the other dimensions, where numpy would broadcast.
    others = [d for d in range(x._data.ndim) if d != axis and index.shape[d] != x.shape[d]]
    for d in others:
        if index.shape[d] > x.shape[d]:
            raise RuntimeError(f"Size does not match at dimension {d} expected index {list(index.shape)} to be "
                               f"smaller than self {list(x.shape)} apart from dimension {axis}")
    if index._data.size and not 0 <= index._data.min() <= index._data.max() < x.shape[axis]:
        bad = index._data.min() if index._data.min() < 0 else index._data.max()
        raise RuntimeError(f"index {bad} is out of bounds for dimension {axis} with size {x.shape[axis]}")
    if others:
        x = x[tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(index.shape))]
    return Gather.apply(x, index._data, axis)


def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
    """x with `value` where mask is True (mask broadcasts; value is a number or a 0-d tensor)."""
    if mask._data.dtype != np.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {mask.dtype.name}")
    if isinstance(value, Tensor) and value._data.ndim:
        raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                           f"{value._data.ndim} dimension(s).")
    return where(mask, value, x) if isinstance(value, Tensor) else where(mask, x.new_full((), value), x)


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return Tensor._make(np.asarray(np.any(x._data, axis=_axes(dim, x._data.ndim), keepdims=keepdim)))


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return Tensor._make(np.asarray(np.all(x._data, axis=_axes(dim, x._data.ndim), keepdims=keepdim)))


def isnan(x: Tensor) -> Tensor:
    return Tensor._make(np.isnan(x._data))


def isfinite(x: Tensor) -> Tensor:
    return Tensor._make(np.asarray(np.isfinite(x._data)))
