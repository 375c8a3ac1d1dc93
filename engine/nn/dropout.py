"""Dropout: zero each element with probability p in training, scaling the survivors by 1 / (1 - p)."""

from __future__ import annotations

import numpy as np

from engine.creation import generator
from engine.nn.module import Module
from engine.tensor import Tensor


def _check_probability(p: float) -> None:
    if p < 0 or p > 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout drawn from the engine's generator; the identity when not training or p = 0.

    `inplace` is accepted for ported code; the result is always a new tensor (same values, no aliasing).
    """
    _check_probability(p)
    if not training or p == 0:
        return input
    dtype = input._data.dtype
    if p == 1:
        mask = np.zeros(input.shape, dtype)
    else:
        draw_as = dtype if dtype in (np.float32, np.float64) else np.float64
        mask = (generator().random(input.shape, dtype=draw_as) >= p).astype(dtype)
        mask *= dtype.type(1 / (1 - p))
    return input * Tensor._make(mask)


class Dropout(Module):
    """Applies `dropout(input, p)` in training; the identity in evaluation."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        _check_probability(p)
        self.p, self.inplace = p, inplace

    def forward(self, input: Tensor) -> Tensor:
        return dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
