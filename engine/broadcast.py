"""Broadcasting: summing gradients back to an input's shape, and PyTorch's mismatch message."""

from __future__ import annotations

import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` back to `shape`, undoing broadcasting (the one place that does it)."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = np.asarray(grad.sum(axis=tuple(range(extra))))  # a 0-d shape needs an array, not a numpy scalar
    kept = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=kept, keepdims=True) if kept else grad


def broadcast_mismatch(a: tuple, b: tuple) -> str | None:
    """PyTorch's message for shapes a and b that do not broadcast, or None when they do."""
    ndim = max(len(a), len(b))
    for i in range(ndim - 1, -1, -1):  # from the last dimension, as PyTorch scans
        na = a[i - ndim + len(a)] if i - ndim + len(a) >= 0 else 1
        nb = b[i - ndim + len(b)] if i - ndim + len(b) >= 0 else 1
        if na != nb and na != 1 and nb != 1:
            return (f"The size of tensor a ({na}) must match the size of tensor b ({nb}) "
                    f"at non-singleton dimension {i}")
    return None


def raise_if_mismatched(*operands) -> None:
    """Raise PyTorch's RuntimeError when the operands' shapes do not broadcast together."""
    shapes = [np.shape(getattr(x, "_data", x)) for x in operands]
    shape = shapes[0] if shapes else ()
    for other in shapes[1:]:
        message = broadcast_mismatch(shape, other)
        if message:
            raise RuntimeError(message) from None
        shape = np.broadcast_shapes(shape, other)
