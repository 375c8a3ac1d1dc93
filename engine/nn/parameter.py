"""Parameter: a tensor that a Module registers as learnable."""

from __future__ import annotations

import numpy as np

from engine.tensor import Tensor, _setup


class Parameter(Tensor):
    """A leaf tensor sharing `data`'s storage, requiring grad by default."""

    __slots__ = ()

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True):
        data = Tensor._make(np.empty(0, np.float32)) if data is None else data
        _setup(self, data._data, 0)
        self._owner = data  # keeps the storage's allocation counted while the parameter lives
        self._version = data._version
        self.requires_grad_(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __reduce__(self):
        return Parameter, (self.detach(), self._requires_grad)
