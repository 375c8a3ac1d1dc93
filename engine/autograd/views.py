"""In-place writes through views, as in PyTorch: the base's history is rebased, and views follow their base.

Writing in place through a view `v` of a base `b` (when either takes part in a graph) gives `b` the history
CopySlices(b's old history, the write): the view's region takes its gradient from the write, the rest from
the old history. `v` then becomes AsStrided(b): a view of the base's new history. Any other view of `b`
whose storage was written since its history was set is refreshed the same way when next used (its
version differs), so siblings and views of a base written directly see the write too.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.array_utils import byte_bounds

from engine.autograd.function import Function


def positions(base: np.ndarray, view: np.ndarray) -> np.ndarray:
    """For each element of `view`, a strided view into `base`'s memory, its index in `base` flattened (C order)."""
    item = base.itemsize
    low, high = byte_bounds(base)
    view_low, view_high = byte_bounds(view)
    if view.dtype != base.dtype or view_low < low or view_high > high or any(s % item for s in view.strides):
        raise RuntimeError("an in-place write through this view cannot be traced back to its base")
    start = (view.__array_interface__["data"][0] - low) // item
    if base.flags.c_contiguous:  # memory order is index order: the view's offset and strides give indices
        index = np.full(view.shape, start, np.intp)
        for axis, (n, stride) in enumerate(zip(view.shape, view.strides)):
            index += (np.arange(n) * (stride // item)).reshape((n,) + (1,) * (view.ndim - axis - 1))
        return index
    # Any other layout: lay base indices out in the memory the base spans, then read them with the view's layout.
    memory = np.full((high - low) // item, -1, np.intp)
    _strided_like(memory, base, low)[...] = np.arange(base.size).reshape(base.shape)
    index = _strided_like(memory, view, low).copy()
    if (index < 0).any():
        raise RuntimeError("an in-place write through this view cannot be traced back to its base")
    return index


def _strided_like(memory: np.ndarray, array: np.ndarray, low: int) -> np.ndarray:
    """`memory` (one entry per element-sized slot from address `low`) seen with `array`'s shape and strides."""
    item = array.itemsize
    start = (array.__array_interface__["data"][0] - low) // item
    strides = tuple(s // item * memory.itemsize for s in array.strides)
    return np.lib.stride_tricks.as_strided(memory[start:], array.shape, strides)


def overlaps_itself(array: np.ndarray) -> bool:
    """Whether some memory location holds more than one element (an expanded dimension)."""
    return any(stride == 0 and n > 1 for n, stride in zip(array.shape, array.strides))


class AsStrided(Function):
    """A view's history: the elements at `index` of its base's history."""

    def __init__(self, index: np.ndarray, base_shape: tuple, overlapping: bool):
        self.index, self.base_shape, self.overlapping = index, base_shape, overlapping

    def backward(self, g):
        grad = np.zeros(int(np.prod(self.base_shape)), g.dtype)
        if self.overlapping:
            np.add.at(grad, self.index, g)  # an expanded view: every element sends its share
        else:
            grad[self.index] = g
        return (grad.reshape(self.base_shape),)

    @classmethod
    def name(cls) -> str:
        return "AsStridedBackward0"


class CopySlices(Function):
    """A base's history after a write through a view: its region comes from the write, the rest as before."""

    def __init__(self, index: np.ndarray):
        self.index = index

    def backward(self, g):
        flat = np.array(g).reshape(-1)  # a copy: g may be shared with other nodes
        region = flat[self.index] if self.needs(1) else None
        if self.needs(0):
            flat[self.index] = 0
        return (flat.reshape(g.shape) if self.needs(0) else None, region)

    @classmethod
    def name(cls) -> str:
        return "CopySlices"


def view_history(view, base) -> AsStrided:
    """A fresh AsStrided node making `view` a view of `base`'s current history."""
    node = AsStrided(positions(base._data, view._data), base._data.shape, overlaps_itself(view._data))
    node.needs_input_grad = (base._requires_grad,)
    node.next_functions_ = ((base.grad_fn or base) if base._requires_grad else None,)
    return node


def rebase(view, result) -> None:
    """Give `view`'s base the history of this in-place write of `result` through `view`, and `view` its region."""
    base = view._base
    node = CopySlices(positions(base._data, view._data))
    node.needs_input_grad = (base._requires_grad, result._requires_grad)
    node.next_functions_ = ((base.grad_fn or base) if base._requires_grad else None,
                            (result.grad_fn or result) if result._requires_grad else None)
    base.grad_fn, base._requires_grad = node, True
    view.grad_fn, view._requires_grad = view_history(view, base), True
