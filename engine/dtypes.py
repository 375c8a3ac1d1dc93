"""The engine's dtypes and its one type-promotion rule."""

from __future__ import annotations

import builtins

import numpy as np


class dtype:  # noqa: N801 (PyTorch's spelling: engine.dtype)
    """A tensor element type, wrapping the numpy dtype that stores it."""

    __slots__ = ("name", "np", "itemsize", "is_floating_point", "_kind")

    def __init__(self, name: str, np_dtype, kind: int):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.itemsize = self.np.itemsize
        self.is_floating_point = kind == _FLOAT
        self._kind = kind

    def __repr__(self) -> str:
        return f"engine.{self.name}"

    def __reduce__(self):
        return (from_numpy_dtype, (self.np,))


# Promotion categories: a result takes the dtype of the operand in the highest category.
_BOOL, _INT, _FLOAT = 0, 1, 2

float32 = dtype("float32", np.float32, _FLOAT)
float64 = dtype("float64", np.float64, _FLOAT)
float16 = dtype("float16", np.float16, _FLOAT)
int64 = dtype("int64", np.int64, _INT)
int32 = dtype("int32", np.int32, _INT)
int16 = dtype("int16", np.int16, _INT)
int8 = dtype("int8", np.int8, _INT)
uint8 = dtype("uint8", np.uint8, _INT)
bool = dtype("bool", np.bool_, _BOOL)  # noqa: A001 (PyTorch's name)

_BY_NUMPY = {d.np: d for d in (float32, float64, float16, int64, int32, int16, int8, uint8, bool)}
_default_float = float32


def from_numpy_dtype(np_dtype) -> dtype:
    """The engine dtype stored as `np_dtype`; a clear TypeError for types the engine lacks."""
    try:
        return _BY_NUMPY[np.dtype(np_dtype)]
    except KeyError:
        raise TypeError(f"the engine has no dtype for numpy {np.dtype(np_dtype)}; "
                        f"supported: {', '.join(d.name for d in _BY_NUMPY.values())}") from None


def widen_bfloat16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 values, given as their uint16 bit patterns, as float32: exact (bf16 is float32's top half)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def get_default_dtype() -> dtype:
    """The float dtype that Python floats and float factories produce (float32 unless changed)."""
    return _default_float


def set_default_dtype(d: dtype) -> None:
    """Change the default float dtype (float32 or float64)."""
    global _default_float
    if not isinstance(d, dtype) or not d.is_floating_point:
        raise TypeError(f"set_default_dtype expects a floating dtype, got {d!r}")
    _default_float = d


def scalar_dtype(value) -> dtype:
    """The dtype a Python scalar becomes on its own: bool, int64, or the default float."""
    if isinstance(value, (np.generic, np.ndarray)):
        return from_numpy_dtype(value.dtype)
    if isinstance(value, builtins.bool):
        return bool
    if isinstance(value, int):
        return int64
    if isinstance(value, float):
        return _default_float
    raise TypeError(f"expected a number, got {type(value).__name__}")


# Operand priorities in promotion, PyTorch's: a dimensioned tensor outranks a 0-d tensor,
# which outranks a Python number.
TENSOR, ZERO_DIM, NUMBER = 0, 1, 2


def promote(a: dtype, b: dtype, a_priority: int = TENSOR, b_priority: int = TENSOR) -> dtype:
    """PyTorch's result dtype for a binary op.

    The higher category wins (bool < int < float); within the winning category the operands of
    the best priority decide, the wider type winning. A Python number that decides gives the
    default dtype of its category, so float32 + 2.0 stays float32, int32 + 5 stays int32 and
    an int64 tensor * 0.5 is float32.
    """
    if a is b:
        return a
    if a._kind != b._kind:
        winner, priority = (a, a_priority) if a._kind > b._kind else (b, b_priority)
    elif a_priority != b_priority:
        winner, priority = (a, a_priority) if a_priority < b_priority else (b, b_priority)
    else:
        return _BY_NUMPY[np.promote_types(a.np, b.np)]
    if priority == NUMBER:
        return _default_float if winner.is_floating_point else (int64 if winner._kind == _INT else bool)
    return winner
