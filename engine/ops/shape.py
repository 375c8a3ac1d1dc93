"""Shape ops: views (view, permute, expand, basic indexing), copies (advanced indexing, cat)."""

from __future__ import annotations

import math

import numpy as np

from engine.autograd.function import Function
from engine.broadcast import unbroadcast
from engine.ops.arith import coerce
from engine.tensor import Tensor


class View(Function):
    view = True

    def forward(self, a, shape):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return (g.reshape(self.shape),)


class Permute(Function):
    view = True

    def forward(self, a, dims):
        self.inverse = tuple(np.argsort(dims))
        return a.transpose(dims)

    def backward(self, g):
        return (g.transpose(self.inverse),)


class Expand(Function):
    view = True

    def forward(self, a, shape):
        self.shape = a.shape
        return np.broadcast_to(a, shape)

    def backward(self, g):
        return (unbroadcast(g, self.shape),)


class Index(Function):
    view = True  # basic indexing gives a view; advanced indexing a copy

    def forward(self, a, key):
        self.shape, self.key = a.shape, key
        return a[key]

    def backward(self, g):
        grad = np.zeros(self.shape, g.dtype)
        if _has_integer_array(self.key):
            np.add.at(grad, self.key, g)  # repeated indices each add their share
        else:
            grad[self.key] = g
        return (grad,)


class IndexPut(Function):
    """a with a[key] = value, out of place (the in-place `a[key] = value` is built on it)."""

    def forward(self, a, value, key):
        self.key, self.value_shape = key, np.shape(value)
        out = a.copy()
        target_ndim = out[key].ndim
        # PyTorch drops a value's leading size-1 dims to fit the target (x[1] = tensor([5.])).
        self.fitted_shape = self.value_shape[max(0, len(self.value_shape) - target_ndim):]
        out[key] = np.reshape(value, self.fitted_shape) if np.ndim(value) > target_ndim else value
        return out

    def backward(self, g):
        ga = gv = None
        if self.needs_input_grad[0]:
            ga = g.copy()
            ga[self.key] = 0
        if self.needs_input_grad[1]:
            gv = unbroadcast(g[self.key], self.fitted_shape).reshape(self.value_shape)
        return ga, gv


class Fill(Function):
    """a's shape and dtype filled with `value` (a number or 0-d tensor): what fill_ writes. No gradient reaches a."""

    def forward(self, a, value):
        return np.full(a.shape, value, a.dtype)

    def backward(self, g):
        return (np.zeros_like(g) if self.needs(0) else None,
                np.asarray(g.sum(), dtype=g.dtype) if self.needs(1) else None)


class CopyInto(Function):
    """src broadcast to dst's shape and cast to its dtype: what copy_ writes. No gradient reaches dst."""

    def forward(self, dst, src):
        shape = np.broadcast_shapes(dst.shape, src.shape)  # a ValueError here is apply's mismatch message
        if shape != dst.shape:
            raise RuntimeError(f"output with shape {list(dst.shape)} doesn't match the broadcast shape {list(shape)}")
        self.src_shape, self.src_dtype = src.shape, src.dtype
        return np.broadcast_to(src, dst.shape).astype(dst.dtype)

    def backward(self, g):
        return (np.zeros_like(g) if self.needs(0) else None,
                unbroadcast(g, self.src_shape).astype(self.src_dtype, copy=False) if self.needs(1) else None)


class Cat(Function):
    def forward(self, *arrays, dim):
        self.dim = dim
        self.splits = np.cumsum([a.shape[dim] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=dim)

    def backward(self, g):
        return tuple(np.split(g, self.splits, axis=self.dim))


class Clone(Function):
    def forward(self, a):
        return a.copy()

    def backward(self, g):
        return (g,)


class Contiguous(Function):
    def forward(self, a):
        return np.ascontiguousarray(a)

    def backward(self, g):
        return (g,)


def _has_integer_array(key) -> bool:
    parts = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, np.ndarray) and k.dtype.kind in "iu" for k in parts)


def _index_part(k):
    if isinstance(k, Tensor):
        # A 0-d integer tensor indexes as a Python int does, in PyTorch.
        return int(k._data) if k._data.ndim == 0 and k._data.dtype.kind in "iu" else k._data
    if isinstance(k, (list, tuple)):
        return np.asarray([x._data if isinstance(x, Tensor) else x for x in k])
    return k


def index_key(key):
    """A Python/tensor index as numpy understands it."""
    if isinstance(key, tuple):
        return tuple(_index_part(k) for k in key)
    return _index_part(key)


def _is_int(k) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _selects_first(key):
    """(int selects, the rest) for a key that mixes ints with index arrays, else None.

    PyTorch applies integer indices first, as selects; numpy would treat them as index arrays
    too, which places the result's dimensions differently: x[1, :, [2, 2]] of a (2, 3, 4) tensor
    is (3, 2) in PyTorch and (2, 3) in numpy.
    """
    if not isinstance(key, tuple) or not any(_is_int(k) for k in key) or not any(
            isinstance(k, np.ndarray) and k.ndim for k in key):
        return None
    selects, rest = [], []
    for k in key:
        if _is_int(k):
            selects.append(k)
            continue
        rest.append(k)
        if k is Ellipsis:
            selects.append(k)
        elif k is not None:  # a slice, or an index array spanning one dim (a bool mask: all of its dims)
            selects.extend([slice(None)] * (k.ndim if isinstance(k, np.ndarray) and k.dtype == bool else 1))
    return tuple(selects), tuple(rest)


def sizes(args) -> tuple:
    """Shape arguments given as `f(2, 3)` or `f((2, 3))`."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    return tuple(int(n) for n in args)


def _dim(dim: int, ndim: int) -> int:
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})")
    return dim % ndim


def reshape(x: Tensor, *shape) -> Tensor:
    shape = sizes(shape)
    known = math.prod(n for n in shape if n != -1)
    size = x._data.size
    if shape.count(-1) > 1 or (-1 in shape and (known == 0 or size % known)) or (-1 not in shape and known != size):
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {size}")
    return View.apply(x, shape)


def view(x: Tensor, *shape) -> Tensor:
    out = reshape(x, *shape)
    if out._base is None and x._data.size:
        raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one "
                           "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
    return out


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x._data.ndim == 0:
        return reshape(x, 1)
    start, end = _dim(start_dim, x._data.ndim), _dim(end_dim, x._data.ndim)
    shape = x.shape
    return reshape(x, shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])


def unflatten(x: Tensor, dim: int, sizes_: tuple) -> Tensor:
    dim = _dim(dim, x._data.ndim)
    return reshape(x, x.shape[:dim] + tuple(sizes_) + x.shape[dim + 1:])


def squeeze(x: Tensor, dim=None) -> Tensor:
    shape = x.shape
    if dim is None:
        return reshape(x, tuple(n for n in shape if n != 1))
    dims = {_dim(d, max(x._data.ndim, 1)) for d in ((dim,) if isinstance(dim, int) else dim)}
    return reshape(x, tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1)))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    dim = _dim(dim, x._data.ndim + 1)
    shape = x.shape
    return reshape(x, shape[:dim] + (1,) + shape[dim:])


def permute(x: Tensor, *dims) -> Tensor:
    dims = sizes(dims)
    ndim = x._data.ndim
    if sorted(_dim(d, ndim) for d in dims) != list(range(ndim)):
        raise RuntimeError(f"permute: dims {list(dims)} are not a permutation of the {ndim} dimensions")
    return Permute.apply(x, tuple(_dim(d, ndim) for d in dims))


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    ndim = x._data.ndim
    if ndim == 0:
        return x
    order = list(range(ndim))
    a, b = _dim(dim0, ndim), _dim(dim1, ndim)
    order[a], order[b] = order[b], order[a]
    return Permute.apply(x, tuple(order))


def t(x: Tensor) -> Tensor:
    if x._data.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {x._data.ndim}D")
    return transpose(x, 0, 1) if x._data.ndim == 2 else x


def expand(x: Tensor, *shape) -> Tensor:
    shape = sizes(shape)
    lead = len(shape) - x._data.ndim
    if lead < 0:
        raise RuntimeError(f"expand: the number of sizes provided ({len(shape)}) must be greater or equal to "
                           f"the number of dimensions in the tensor ({x._data.ndim})")
    full = tuple(x.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
    try:
        np.broadcast_shapes(x.shape, full)
    except ValueError:
        raise RuntimeError(f"The expanded size of the tensor {list(full)} must match the existing size "
                           f"{list(x.shape)} at non-singleton dimensions") from None
    return Expand.apply(x, full)


def getitem(x: Tensor, key) -> Tensor:
    key = index_key(key)
    split = _selects_first(key)
    if split:
        return getitem(getitem(x, split[0]), split[1])
    try:
        return Index.apply(x, key)
    except IndexError as e:
        raise IndexError(f"index {key!r} is out of bounds for a tensor of shape {list(x.shape)}: {e}") from None


def index_put(x: Tensor, key, value) -> Tensor:
    """x with x[key] = value, out of place and differentiable in both."""
    _, value = coerce(x, value)
    if isinstance(value, Tensor) and value.dtype is not x.dtype:
        value = value.to(x.dtype)
    key = index_key(key)
    split = _selects_first(key)
    if split:
        return index_put(x, split[0], index_put(getitem(x, split[0]), split[1], value))
    return IndexPut.apply(x, value, key)


def cat(tensors, dim: int = 0) -> Tensor:
    tensors = [t for t in tensors if not (t._data.ndim == 1 and t._data.size == 0)] or list(tensors)[:1]
    if not tensors:
        raise RuntimeError("cat(): expected a non-empty list of Tensors")
    first = tensors[0]
    for t in tensors[1:]:
        first, _ = coerce(first, t)
    tensors = [t.to(first.dtype) for t in tensors]
    dim = _dim(dim, tensors[0]._data.ndim)
    for i, t in enumerate(tensors[1:], 1):
        if t._data.ndim != tensors[0]._data.ndim or any(
                a != b for k, (a, b) in enumerate(zip(t.shape, tensors[0].shape)) if k != dim):
            raise RuntimeError(f"cat(): sizes of tensors must match except in dimension {dim}; tensor 0 has "
                               f"shape {list(tensors[0].shape)} and tensor {i} has shape {list(t.shape)}")
    return Cat.apply(*tensors, dim=dim)


def stack(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(tensors[0].shape)} "
                               f"at entry 0 and {list(t.shape)} at entry {i}")
    dim = _dim(dim, tensors[0]._data.ndim + 1)
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    dim = _dim(dim, x._data.ndim)
    length = x.shape[dim]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        bounds = [(i, min(i + step, length)) for i in range(0, length, step)] or [(0, 0)]
    else:
        if sum(split_size_or_sections) != length:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {length} "
                               f"(input tensor's size at dimension {dim}), but got {list(split_size_or_sections)}")
        ends = np.cumsum(split_size_or_sections)
        bounds = [(int(e - n), int(e)) for n, e in zip(split_size_or_sections, ends)]
    lead = (slice(None),) * dim
    return tuple(getitem(x, lead + (slice(a, b),)) for a, b in bounds)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple:
    length = x.shape[_dim(dim, x._data.ndim)]
    return split(x, max(1, -(-length // chunks)), dim)


def filled(x: Tensor, value) -> Tensor:
    """x's shape and dtype filled with value, recorded in the graph (the source of fill_ and zero_)."""
    if isinstance(value, Tensor) and value._data.ndim:
        raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.dim()} "
                           "dimensions.")
    return Fill.apply(x, value)


def copied_into(dst: Tensor, src) -> Tensor:
    """src broadcast and cast to dst, recorded in the graph (the source of copy_)."""
    return CopyInto.apply(dst, src if isinstance(src, Tensor) else Tensor._from_array_like(src))


def clone(x: Tensor) -> Tensor:
    return Clone.apply(x)


def contiguous(x: Tensor) -> Tensor:
    return x if x._data.flags.c_contiguous else Contiguous.apply(x)
