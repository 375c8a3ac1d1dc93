"""Binary arithmetic with broadcasting and PyTorch's type promotion, and comparisons."""

from __future__ import annotations

import numpy as np

from engine import dtypes
from engine.autograd.function import Function
from engine.broadcast import raise_if_mismatched, unbroadcast
from engine.tensor import Tensor


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.number, np.bool_)) and not isinstance(x, np.ndarray)


def _dtype_and_priority(x):
    if isinstance(x, Tensor):
        return x.dtype, dtypes.ZERO_DIM if x._data.ndim == 0 else dtypes.TENSOR
    return dtypes.scalar_dtype(x), dtypes.NUMBER


def coerce(a, b, floating: bool = False):
    """Both operands at their promoted dtype: tensors cast, Python numbers left weak for numpy.

    With `floating`, an integer result dtype becomes the default float (true division).
    """
    if isinstance(a, Tensor) and (not floating or a._data.dtype.kind == "f"):  # the common cases, fast
        if isinstance(b, Tensor) and a._data.dtype is b._data.dtype:
            return a, b
        if isinstance(b, (int, float)) and a._data.dtype.kind == "f" and a._data.ndim:
            return a, a._data.dtype.type(b)
    if not isinstance(a, Tensor) and not _is_number(a):
        a = Tensor._from_array_like(a)
    if not isinstance(b, Tensor) and not _is_number(b):
        b = Tensor._from_array_like(b)
    (da, pa), (db, pb) = _dtype_and_priority(a), _dtype_and_priority(b)
    target = dtypes.promote(da, db, pa, pb)
    if floating and not target.is_floating_point:
        target = dtypes.get_default_dtype()
    return _at(a, target), _at(b, target)


def _at(x, target):
    if isinstance(x, Tensor):
        return x if x._data.dtype is target.np else x.to(target)
    return target.np.type(x)


class Add(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)  # arrays or numpy scalars: both have .shape
        return a + b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(g, self.shapes[0]) if need_a else None,
                unbroadcast(g, self.shapes[1]) if need_b else None)


class Sub(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)  # arrays or numpy scalars: both have .shape
        return a - b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(g, self.shapes[0]) if need_a else None,
                unbroadcast(-g, self.shapes[1]) if need_b else None)


class Mul(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        self.save(a if self.needs(1) else None, b if self.needs(0) else None)  # each gradient needs the other
        return a * b

    def backward(self, g):
        a, b = self.saved_arrays()
        ga = unbroadcast(g * b, self.shapes[0]) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * a, self.shapes[1]) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        self.save(a, b)
        with np.errstate(divide="ignore", invalid="ignore"):  # x/0 is inf or nan, silently, as in PyTorch
            return a / b

    def backward(self, g):
        a, b = self.saved_arrays()
        ga = unbroadcast(g / b, np.shape(a)) if self.needs_input_grad[0] else None
        gb = unbroadcast(-g * a / (b * b), np.shape(b)) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    def forward(self, a, b):
        out = a ** b
        self.save(a, b, out)
        return out

    def backward(self, g):
        a, b, out = self.saved_arrays()
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):  # inf and nan are the right answers here
            if self.needs_input_grad[0]:
                # PyTorch's convention: 0 where b == 0, even at a == 0 (where b * a**(b-1) is 0 * inf).
                ga = unbroadcast(g * np.where(b == 0, 0, b * a ** (b - 1)), np.shape(a))
            if self.needs_input_grad[1]:
                # PyTorch's convention: 0 at a == 0 when b >= 0; nan (the log) for a < 0.
                gb = unbroadcast(g * np.where((a == 0) & (b >= 0), 0, out * np.log(a)), np.shape(b))
        return ga, gb


class Maximum(Function):
    def forward(self, a, b):
        self.save(a, b)
        return np.maximum(a, b)

    def backward(self, g):
        a, b = self.saved_arrays()
        # Ties split the gradient evenly, as PyTorch does.
        share = np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0)).astype(g.dtype)
        return unbroadcast(g * share, np.shape(a)), unbroadcast(g * (1 - share), np.shape(b))


class Minimum(Function):
    def forward(self, a, b):
        self.save(a, b)
        return np.minimum(a, b)

    def backward(self, g):
        a, b = self.saved_arrays()
        share = np.where(a < b, 1.0, np.where(a == b, 0.5, 0.0)).astype(g.dtype)
        return unbroadcast(g * share, np.shape(a)), unbroadcast(g * (1 - share), np.shape(b))


class Where(Function):
    def forward(self, condition, a, b):
        self.save(condition)
        self.shapes = (a.shape, b.shape)  # arrays or numpy scalars: both have .shape
        return np.where(condition, a, b)

    def backward(self, g):
        (condition,) = self.saved_arrays()
        zero = np.zeros((), g.dtype)
        return (None, unbroadcast(np.where(condition, g, zero), self.shapes[0]),
                unbroadcast(np.where(condition, zero, g), self.shapes[1]))


def add(a, b, alpha=1) -> Tensor:
    """a + alpha * b."""
    if alpha != 1:
        b = mul(b, alpha)
    return Add.apply(*coerce(a, b))


def sub(a, b, alpha=1) -> Tensor:
    """a - alpha * b."""
    if alpha != 1:
        b = mul(b, alpha)
    return Sub.apply(*coerce(a, b))


def mul(a, b) -> Tensor:
    return Mul.apply(*coerce(a, b))


def div(a, b, rounding_mode=None) -> Tensor:
    """a / b; with rounding_mode 'floor' or 'trunc', rounded (and not differentiable)."""
    if rounding_mode not in (None, "floor", "trunc"):
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                           f"{rounding_mode!r}")
    if rounding_mode is not None:
        return _integer_division(np.floor_divide if rounding_mode == "floor" else _trunc_divide, a, b)
    return Div.apply(*coerce(a, b, floating=True))


def pow(a, b) -> Tensor:  # noqa: A001 (PyTorch's name)
    return Pow.apply(*coerce(a, b))


def maximum(a, b) -> Tensor:
    return Maximum.apply(*coerce(a, b))


def minimum(a, b) -> Tensor:
    return Minimum.apply(*coerce(a, b))


def where(condition, a=None, b=None):
    """Elements of a where condition holds, else of b; with one argument, `condition.nonzero(as_tuple=True)`."""
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if a is None and b is None:
        return tuple(Tensor._make(i.astype(np.int64)) for i in np.nonzero(cond))
    if cond.dtype != np.bool_:
        raise TypeError(f"where expected a bool condition, got {dtypes.from_numpy_dtype(cond.dtype)!r}")
    a, b = coerce(a, b)
    return Where.apply(cond, a, b)


def _trunc_divide(a, b):
    return np.trunc(a / b).astype(np.result_type(a, b))


def _without_grad(np_op, a, b, floating=False) -> Tensor:
    """An op PyTorch does not differentiate (comparisons, floor division): no graph, ever."""
    a, b = coerce(a, b, floating)
    try:
        out = np_op(a._data if isinstance(a, Tensor) else a, b._data if isinstance(b, Tensor) else b)
    except ValueError:
        raise_if_mismatched(a, b)
        raise
    return Tensor._make(np.asarray(out))


def _integer_division(np_op, a, b) -> Tensor:
    """Rounded division or remainder: PyTorch refuses an integer zero divisor (numpy would give 0)."""
    a, b = coerce(a, b)
    divisor = b._data if isinstance(b, Tensor) else b
    if divisor.dtype.kind in "iu" and not np.all(divisor):
        raise RuntimeError("ZeroDivisionError")
    return _without_grad(np_op, a, b)


def floor_divide(a, b) -> Tensor:
    return _integer_division(np.floor_divide, a, b)


def remainder(a, b) -> Tensor:
    return _integer_division(np.remainder, a, b)


def eq(a, b) -> Tensor:
    return _without_grad(np.equal, a, b)


def ne(a, b) -> Tensor:
    return _without_grad(np.not_equal, a, b)


def lt(a, b) -> Tensor:
    return _without_grad(np.less, a, b)


def le(a, b) -> Tensor:
    return _without_grad(np.less_equal, a, b)


def gt(a, b) -> Tensor:
    return _without_grad(np.greater, a, b)


def ge(a, b) -> Tensor:
    return _without_grad(np.greater_equal, a, b)


def logical_and(a, b) -> Tensor:
    return _without_grad(np.logical_and, a, b)


def logical_or(a, b) -> Tensor:
    return _without_grad(np.logical_or, a, b)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    """True when every element of a is within atol + rtol * |b| of b."""
    return bool(np.allclose(_array(a), _array(b), rtol=rtol, atol=atol, equal_nan=equal_nan))


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False) -> Tensor:
    return Tensor._make(np.isclose(_array(a), _array(b), rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(a, b) -> bool:
    """True when a and b have the same shape and elements."""
    return a.shape == b.shape and bool(np.array_equal(_array(a), _array(b)))


def _array(x):
    return x._data if isinstance(x, Tensor) else np.asarray(x)


def logical_xor(a, b) -> Tensor:
    return _without_grad(np.logical_xor, a, b)


def logical_not(a: Tensor) -> Tensor:
    return Tensor._make(np.logical_not(a._data))


def bitwise_not(a: Tensor) -> Tensor:
    """~a: logical not of bools, bitwise not of integers (floats have none, as in PyTorch)."""
    if a._data.dtype.kind not in "biu":
        raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type tensors")
    return Tensor._make(np.invert(a._data))
