"""Copies that rearrange or replicate values: repeat, repeat_interleave, roll, flip, triu/tril, unbind."""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.ops.shape import _dim, getitem, sizes
from engine.tensor import Tensor


class Repeat(Function):
    """np.tile: the tensor laid out `reps` times along each dim (leading dims added as needed)."""

    def forward(self, a, reps):
        self.shape, self.reps = a.shape, reps
        return np.tile(a, reps)

    def backward(self, g):
        # Split each dim into (copies, size) and sum the copies away.
        shape = (1,) * (len(self.reps) - len(self.shape)) + self.shape
        split = [n for pair in zip(self.reps, shape) for n in pair]
        summed = g.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return (summed.reshape(self.shape),)


class RepeatInterleave(Function):
    """Each slice along `axis` repeated by its count in `repeats` (an int array, one count per slice)."""

    def forward(self, a, repeats, axis):
        self.shape, self.repeats, self.axis = a.shape, repeats, axis
        return np.repeat(a, repeats, axis=axis)

    def backward(self, g):
        grad = np.zeros(self.shape, g.dtype)
        source = np.repeat(np.arange(self.shape[self.axis]), self.repeats)
        index = [slice(None)] * len(self.shape)
        index[self.axis] = source
        np.add.at(grad, tuple(index), g)  # every copy of a slice sends its gradient back to it
        return grad, None


class Roll(Function):
    def forward(self, a, shifts, axes):
        self.shifts, self.axes = shifts, axes
        return np.roll(a, shifts, axes)

    def backward(self, g):
        return (np.roll(g, tuple(-s for s in self.shifts), self.axes),)


class Flip(Function):
    def forward(self, a, axes):
        self.axes = axes
        return np.flip(a, axes).copy()  # PyTorch's flip copies

    def backward(self, g):
        return (np.flip(g, self.axes),)


class Triangle(Function):
    """The upper (triu) or lower (tril) triangle of the last two dims, the rest zero."""

    def forward(self, a, diagonal, upper):
        self.diagonal, self.upper = diagonal, upper
        return self._keep(a)

    def _keep(self, a):
        return np.triu(a, self.diagonal) if self.upper else np.tril(a, self.diagonal)

    def backward(self, g):
        return (self._keep(g),)


def repeat(x: Tensor, *reps) -> Tensor:
    """x tiled reps[i] times along dim i (PyTorch's repeat: numpy's tile)."""
    reps = sizes(reps)
    if len(reps) < x._data.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions "
                           "of tensor")
    return Repeat.apply(x, reps)


def repeat_interleave(x: Tensor, repeats=None, dim: int | None = None, *, output_size: int | None = None) -> Tensor:
    """Each element (or slice along dim) repeated; repeats is an int or a 1-D tensor of counts.

    With one tensor argument, `repeat_interleave(counts)` gives each index i repeated counts[i] times.
    """
    if repeats is None:
        counts = _counts(x, None)
        return Tensor._make(np.repeat(np.arange(len(counts), dtype=np.int64), counts))
    if dim is None:
        x, axis = x.reshape(-1), 0
    else:
        axis = _dim(dim, x._data.ndim)
    counts = _counts(repeats, x.shape[axis])
    if output_size is not None and output_size != int(counts.sum()):
        raise RuntimeError(f"repeat_interleave: output_size {output_size} does not match the {int(counts.sum())} "
                           "elements the repeats give")
    return RepeatInterleave.apply(x, counts, axis)


def _counts(repeats, length: int | None) -> np.ndarray:
    """repeats as an int64 array of per-slice counts, checked."""
    if isinstance(repeats, Tensor):
        if repeats._data.dtype.kind not in "iu" or repeats._data.ndim > 1:
            raise RuntimeError("repeats must be an int or a 0-d/1-d integer tensor")
        counts = repeats._data.astype(np.int64).reshape(-1)
    else:
        counts = np.asarray([int(repeats)], np.int64)
    if length is not None and counts.size == 1:
        counts = np.full(length, counts[0], np.int64)
    if length is not None and counts.size != length:
        raise RuntimeError(f"repeats must have the same size as input along dim, but got repeats.size(0) = "
                           f"{counts.size} and input.size({length})")
    if (counts < 0).any():
        raise RuntimeError("repeats can not be negative")
    return counts


def roll(x: Tensor, shifts, dims=None) -> Tensor:
    """Values shifted circularly along dims (over the flattened tensor when dims is None)."""
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts must be one int when dims is None, got {list(shifts)}")
        return Roll.apply(x.reshape(-1), shifts, (0,)).reshape(x.shape)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    return Roll.apply(x, shifts, tuple(_dim(d, x._data.ndim) for d in dims))


def flip(x: Tensor, *dims) -> Tensor:
    """A copy with the order of elements reversed along dims."""
    dims = sizes(dims)
    return Flip.apply(x, tuple(_dim(d, x._data.ndim) for d in dims))


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """Elements on and above the diagonal-th diagonal of the last two dims; zeros below."""
    _check_matrix(x, "triu")
    return Triangle.apply(x, diagonal, True)


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """Elements on and below the diagonal-th diagonal of the last two dims; zeros above."""
    _check_matrix(x, "tril")
    return Triangle.apply(x, diagonal, False)


def _check_matrix(x: Tensor, name: str) -> None:
    if x._data.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")


def unbind(x: Tensor, dim: int = 0) -> tuple:
    """The slices along dim, that dim removed (views)."""
    axis = _dim(dim, x._data.ndim)
    lead = (slice(None),) * axis
    return tuple(getitem(x, lead + (i,)) for i in range(x.shape[axis]))
