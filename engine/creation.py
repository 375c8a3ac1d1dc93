"""Making tensors: from data, from numpy, and the factories (zeros, ones, arange, random, ...)."""

from __future__ import annotations

import math

import numpy as np

from engine import dtypes
from engine.device import check_device
from engine.ops.shape import sizes
from engine.tensor import Tensor


def _leaf(data: np.ndarray, requires_grad: bool, device=None, owns: bool = True) -> Tensor:
    if device is not None:
        check_device(device)
    t = Tensor._make(data, owns=owns)
    return t.requires_grad_() if requires_grad else t


def _float_or(dtype) -> np.dtype:
    return (dtype or dtypes.get_default_dtype()).np


def _infer(data) -> np.ndarray:
    """Python data as numpy with PyTorch's inference: floats -> default float, ints -> int64."""
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, (np.ndarray, np.generic)):
        dtypes.from_numpy_dtype(data.dtype)  # a clear error for dtypes the engine lacks
        return np.asarray(data)
    array = np.array(data)
    if array.dtype.kind == "f":
        return array.astype(dtypes.get_default_dtype().np)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "b":
        return array
    raise TypeError(f"can't make a tensor from {type(data).__name__} holding {array.dtype} values")


def tensor(data, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (nested lists, numbers, numpy arrays or tensors)."""
    array = _infer(data)
    array = np.array(array, dtype=dtype.np if dtype is not None else array.dtype, copy=True)
    return _leaf(array, requires_grad, device)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """`data` as a tensor, sharing memory with a numpy array or tensor of the same dtype."""
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or dtype.np == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing `array`'s memory: writes through either are seen by both."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    dtypes.from_numpy_dtype(array.dtype)
    return _leaf(array, False, owns=False)  # the buffer is numpy's, not the engine's


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.zeros(sizes(size), _float_or(dtype)), requires_grad, device)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.ones(sizes(size), _float_or(dtype)), requires_grad, device)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.empty(sizes(size), _float_or(dtype)), requires_grad, device)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of `fill_value`; its dtype follows the value (bool, int64 or the default float)."""
    dtype = dtype or dtypes.scalar_dtype(fill_value)
    return _leaf(np.full(sizes((size,)), fill_value, dtype.np), requires_grad, device)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.zeros(t._data.shape, (dtype or t.dtype).np), requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.ones(t._data.shape, (dtype or t.dtype).np), requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.full(t._data.shape, fill_value, (dtype or t.dtype).np), requires_grad)


def empty_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.empty(t._data.shape, (dtype or t.dtype).np), requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from start (0) up to end, exclusive; int64 for int arguments, else the default float."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        integral = all(isinstance(v, int) for v in (start, end, step))
        dtype = dtypes.int64 if integral else dtypes.get_default_dtype()
    count = max(0, math.ceil((end - start) / step))
    values = start + np.arange(count, dtype=np.float64 if dtype.is_floating_point else np.int64) * step
    return _leaf(values.astype(dtype.np), requires_grad, device)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.linspace(start, end, steps, dtype=np.float64).astype(_float_or(dtype)), requires_grad, device)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.eye(n, m, dtype=_float_or(dtype)), requires_grad, device)


# -- random -----------------------------------------------------------------------------------
_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the engine's random generator (random draws differ from PyTorch's for the same seed)."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The engine's random generator (what nn.init and Dropout draw from)."""
    return _generator


def randn(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    target = _float_or(dtype)
    draw_as = target if target in (np.float32, np.float64) else np.float64
    return _leaf(_generator.standard_normal(sizes(size), dtype=draw_as).astype(target, copy=False),
                 requires_grad, device)


def rand(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    target = _float_or(dtype)
    draw_as = target if target in (np.float32, np.float64) else np.float64
    return _leaf(_generator.random(sizes(size), dtype=draw_as).astype(target, copy=False), requires_grad, device)


def randint(low, high=None, size=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Integers in [low, high); randint(high, size) starts at 0."""
    if size is None:
        low, high, size = 0, low, high
    data = _generator.integers(low, high, sizes((size,)), dtype=np.int64)
    return _leaf(data.astype((dtype or dtypes.int64).np), requires_grad, device)


def randperm(n: int, dtype=None, device=None) -> Tensor:
    return _leaf(_generator.permutation(n).astype((dtype or dtypes.int64).np), False, device)


def randn_like(t: Tensor, dtype=None) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype)


def rand_like(t: Tensor, dtype=None) -> Tensor:
    return rand(t.shape, dtype=dtype or t.dtype)
