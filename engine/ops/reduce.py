"""Reductions over dimensions, and softmax / log_softmax along one."""

from __future__ import annotations

import builtins
from typing import NamedTuple

import numpy as np

from engine import dtypes
from engine.autograd.function import Function
from engine.tensor import Tensor


def _axes(dim, ndim: int):
    """`dim` (None, an int or a sequence) as a sorted tuple of non-negative axes, or None for all."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims:
        return None  # PyTorch: an empty dim list reduces everything
    span = builtins.max(ndim, 1)
    for d in dims:
        if not -span <= d < span:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-span}, {span - 1}], but got {d})")
    axes = sorted(d % span for d in dims)
    for i in range(1, len(axes)):
        if axes[i] == axes[i - 1]:
            raise RuntimeError(f"dim {axes[i]} appears multiple times in the list of dims")
    return tuple(axes) if ndim else None


def _expand_back(g: np.ndarray, axes, keepdim: bool, shape: tuple) -> np.ndarray:
    """A reduced gradient broadcast back over the input's shape."""
    if not keepdim and axes is not None:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


class Sum(Function):
    def forward(self, a, axes, keepdim):
        self.shape, self.axes, self.keepdim = a.shape, axes, keepdim
        return a.sum(axis=axes, keepdims=keepdim)

    def backward(self, g):
        return (_expand_back(g, self.axes, self.keepdim, self.shape),)


class Mean(Function):
    def forward(self, a, axes, keepdim):
        self.shape, self.axes, self.keepdim = a.shape, axes, keepdim
        self.count = a.size if axes is None else int(np.prod([a.shape[i] for i in axes]))
        return a.mean(axis=axes, keepdims=keepdim)

    def backward(self, g):
        return (_expand_back(g / g.dtype.type(self.count), self.axes, self.keepdim, self.shape),)


class Extreme(Function):
    """max or min over `axes` (all when None); ties share the gradient evenly, as in PyTorch's amax."""

    def forward(self, a, axes, keepdim, largest):
        out = (a.max if largest else a.min)(axis=axes, keepdims=keepdim)
        self.save(a, out)
        self.axes, self.keepdim = axes, keepdim
        return out

    def backward(self, g):
        a, out = self.saved_arrays()
        hits = a == _expand_back(np.asarray(out), self.axes, self.keepdim, a.shape)
        count = hits.sum(axis=self.axes, keepdims=True).astype(g.dtype)
        return (hits * (_expand_back(g, self.axes, self.keepdim, a.shape) / count),)


class Gather(Function):
    """Values at `index` along `dim` (what max/min/sort with a dim pick), scattered back in backward."""

    def forward(self, a, index, dim):
        self.shape, self.index, self.dim = a.shape, index, dim
        return np.take_along_axis(a, index, axis=dim)

    def backward(self, g):
        grad = np.zeros(self.shape, g.dtype)
        where = list(np.indices(self.index.shape, sparse=True))
        where[self.dim] = self.index
        np.add.at(grad, tuple(where), g)  # an index repeated in gather's input adds each of its shares
        return grad, None


class Var(Function):
    def forward(self, a, axes, correction, keepdim):
        self.axes, self.keepdim = axes, keepdim
        count = a.size if axes is None else int(np.prod([a.shape[i] for i in axes]))
        self.divisor = builtins.max(count - correction, 0)
        centred = a - a.mean(axis=axes, keepdims=True)
        self.save(centred)
        with np.errstate(divide="ignore", invalid="ignore"):  # PyTorch gives nan/inf here too
            return (centred * centred).sum(axis=axes, keepdims=keepdim) / a.dtype.type(self.divisor)

    def backward(self, g):
        (centred,) = self.saved_arrays()
        g = _expand_back(g, self.axes, self.keepdim, centred.shape)
        with np.errstate(divide="ignore", invalid="ignore"):  # no degrees of freedom: nan, as PyTorch
            return (g * centred * (centred.dtype.type(2) / centred.dtype.type(self.divisor)),)


class Prod(Function):
    def forward(self, a, axes, keepdim):
        out = a.prod(axis=axes, keepdims=keepdim)
        self.save(a, out)
        self.axes, self.keepdim = axes, keepdim
        return out

    def backward(self, g):
        a, _ = self.saved_arrays()
        # Each element's gradient is the product of the others in its group: exclusive products
        # from the left and from the right, with no division, so zeros are handled exactly.
        axes = self.axes if self.axes is not None else tuple(range(a.ndim))
        last = tuple(range(a.ndim - len(axes), a.ndim))
        moved = np.moveaxis(a, axes, last)
        flat = moved.reshape(moved.shape[:a.ndim - len(axes)] + (-1,))
        ones = np.ones_like(flat[..., :1])
        left = np.cumprod(np.concatenate([ones, flat[..., :-1]], -1), -1)
        right = np.flip(np.cumprod(np.concatenate([ones, np.flip(flat, -1)[..., :-1]], -1), -1), -1)
        others = np.moveaxis((left * right).reshape(moved.shape), last, axes)
        return (_expand_back(g, self.axes, self.keepdim, a.shape) * others,)


class Softmax(Function):
    def forward(self, a, dim):
        shifted = a - a.max(axis=dim, keepdims=True)
        out = np.exp(shifted)
        out /= out.sum(axis=dim, keepdims=True)
        self.save(out)
        self.dim = dim
        return out

    def backward(self, g):
        (out,) = self.saved_arrays()
        return (out * (g - (g * out).sum(axis=self.dim, keepdims=True)),)


class LogSoftmax(Function):
    def forward(self, a, dim):
        with np.errstate(invalid="ignore", divide="ignore"):  # rows of -inf give nan, as in PyTorch
            shifted = a - a.max(axis=dim, keepdims=True)
            out = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
        self.save(out)
        self.dim = dim
        return out

    def backward(self, g):
        (out,) = self.saved_arrays()
        return (g - np.exp(out) * g.sum(axis=self.dim, keepdims=True),)


class MinMax(NamedTuple):
    """What max/min with a dim return: `values` and `indices`, as PyTorch's return types."""

    values: Tensor
    indices: Tensor


def _floating_only(x: Tensor, name: str) -> None:
    if x._data.dtype.kind != "f":
        raise RuntimeError(f"{name}(): could not infer output dtype. Input dtype must be a floating point "
                           f"dtype, but got {x.dtype!r}")


def sum(x: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A001
    if dtype is not None:
        x = x.to(dtype)
    elif x._data.dtype.kind in "biu":
        x = x.to(dtypes.int64)  # PyTorch sums integers and bools as int64
    return Sum.apply(x, _axes(dim, x._data.ndim), keepdim)


def mean(x: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    if dtype is not None:
        x = x.to(dtype)
    _floating_only(x, "mean")
    return Mean.apply(x, _axes(dim, x._data.ndim), keepdim)


def _extreme(x: Tensor, dim, keepdim: bool, largest: bool, name: str):
    if isinstance(dim, Tensor):  # max(a, b): the elementwise form
        from engine.ops.arith import maximum, minimum
        return (maximum if largest else minimum)(x, dim)
    if dim is None:
        return _extreme_over(x, None, False, largest, name)
    if not isinstance(dim, int):
        raise TypeError(f"{name}(): dim must be an int, got {type(dim).__name__} (amax/amin take several dims)")
    (axis,) = _axes(dim, x._data.ndim) or (0,)
    index = (np.argmax if largest else np.argmin)(x._data, axis=axis) if x._data.ndim else np.array(0)
    index = np.expand_dims(index, axis) if x._data.ndim else index
    values = Gather.apply(x, index, axis) if x._data.ndim else x.clone()
    indices = Tensor._make(index.astype(np.int64))
    if not keepdim and x._data.ndim:
        values, indices = values.squeeze(axis), indices.squeeze(axis)
    return MinMax(values, indices)


def _extreme_over(x: Tensor, dim, keepdim: bool, largest: bool, name: str) -> Tensor:
    axes = _axes(dim, x._data.ndim)
    if axes is None and x._data.size == 0:
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
    for i in axes or ():
        if x._data.shape[i] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {i} to have non-zero size.")
    return Extreme.apply(x, axes, keepdim, largest)


def max(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """max over all elements; with `dim`, (values, indices); with a tensor, the elementwise maximum."""
    return _extreme(x, dim, keepdim, True, "max")


def min(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """min over all elements; with `dim`, (values, indices); with a tensor, the elementwise minimum."""
    return _extreme(x, dim, keepdim, False, "min")


def amax(x: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """max over `dim` (an int or a tuple; all by default); ties share the gradient."""
    return _extreme_over(x, dim, keepdim, True, "amax")


def amin(x: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """min over `dim` (an int or a tuple; all by default); ties share the gradient."""
    return _extreme_over(x, dim, keepdim, False, "amin")


def argmax(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return _arg(np.argmax, x, dim, keepdim)


def argmin(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return _arg(np.argmin, x, dim, keepdim)


def _arg(np_arg, x: Tensor, dim, keepdim: bool) -> Tensor:
    if dim is None:
        index = np.asarray(np_arg(x._data))
        return Tensor._make(index.reshape((1,) * x._data.ndim) if keepdim else index.astype(np.int64))
    (axis,) = _axes(dim, x._data.ndim) or (0,)
    index = np_arg(x._data, axis=axis) if x._data.ndim else np.array(0)
    if keepdim and x._data.ndim:
        index = np.expand_dims(index, axis)
    return Tensor._make(np.asarray(index, np.int64))


def _correction(unbiased, correction) -> int:
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def var(x: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    if isinstance(dim, bool):  # var(unbiased) positional form
        dim, unbiased = None, dim
    _floating_only(x, "var")
    return Var.apply(x, _axes(dim, x._data.ndim), _correction(unbiased, correction), keepdim)


def std(x: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    return var(x, dim, unbiased, keepdim, correction=correction).sqrt()


def prod(x: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    if dtype is not None:
        x = x.to(dtype)
    elif x._data.dtype.kind in "biu":
        x = x.to(dtypes.int64)
    return Prod.apply(x, _axes(dim, x._data.ndim), keepdim)


def norm(x: Tensor, p=2, dim=None, keepdim: bool = False) -> Tensor:
    """The p-norm (p=2 by default; 'fro' is 2), composed of primitives."""
    _floating_only(x, "norm")
    if p in ("fro", 2):
        return (x * x).sum(dim, keepdim).sqrt()
    if p == float("inf"):
        return amax(x.abs(), dim, keepdim)
    if p == -float("inf"):
        return amin(x.abs(), dim, keepdim)
    if p == 0:  # the count of nonzero elements
        return (x != 0).sum(dim, keepdim).to(x.dtype)
    if p == 1:
        return x.abs().sum(dim, keepdim)
    return (x.abs() ** p).sum(dim, keepdim) ** (1.0 / p)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input / max(||input||_p along dim, eps): unit vectors along dim (PyTorch's F.normalize)."""
    if p == 2:
        # sqrt(max(sum x^2, eps^2)) is max(||x||, eps), with a finite gradient at the zero vector.
        return input / (input * input).sum(dim, keepdim=True).clamp(min=eps * eps).sqrt()
    return input / norm(input, p, dim, keepdim=True).clamp(min=eps)


def _dim(dim, ndim: int) -> int:
    if dim is None:
        # PyTorch's legacy implicit choice, kept for ported code: 0 for 0/1/3-d inputs, else 1.
        return 0 if ndim in (0, 1, 3) else 1
    return _axes(dim, ndim)[0] if ndim else 0


def softmax(x: Tensor, dim=None, dtype=None) -> Tensor:
    if dtype is not None:
        x = x.to(dtype)
    _floating_only(x, "softmax")
    return Softmax.apply(x, _dim(dim, x._data.ndim))


def log_softmax(x: Tensor, dim=None, dtype=None) -> Tensor:
    if dtype is not None:
        x = x.to(dtype)
    _floating_only(x, "log_softmax")
    return LogSoftmax.apply(x, _dim(dim, x._data.ndim))
