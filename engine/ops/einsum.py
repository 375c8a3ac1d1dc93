"""einsum: sums of products named by subscripts, as PyTorch's (and numpy's) einsum, differentiable."""

from __future__ import annotations

import string

import numpy as np

from engine.autograd.function import Function
from engine.broadcast import unbroadcast
from engine.ops.arith import coerce
from engine.tensor import Tensor


class Einsum(Function):
    """np.einsum on explicit subscripts (no '...'); each operand's gradient is another einsum."""

    def forward(self, *arrays, terms, output):
        self.terms, self.output = terms, output
        if any(self.needs_input_grad):
            self.save(*arrays)
        return np.einsum(f"{','.join(terms)}->{output}", *arrays, optimize=len(arrays) > 1)

    def backward(self, g):
        arrays = self.saved_arrays()
        return tuple(self._grad(i, g, arrays) if need else None for i, need in enumerate(self.needs_input_grad))

    def _grad(self, i: int, g: np.ndarray, arrays: tuple) -> np.ndarray:
        term, a = self.terms[i], arrays[i]
        if len(set(term)) != len(term):
            raise NotImplementedError(f"einsum: the gradient of an operand with a repeated subscript ({term!r}) is "
                                      "not supported by the engine")
        others = [t for j, t in enumerate(self.terms) if j != i]
        seen = set(self.output).union(*others)
        kept = "".join(c for c in term if c in seen)  # subscripts summed in this operand alone are broadcast back
        grad = np.einsum(f"{','.join([self.output, *others])}->{kept}", g,
                         *[x for j, x in enumerate(arrays) if j != i], optimize=len(arrays) > 1)
        grad = np.expand_dims(grad, tuple(k for k, c in enumerate(term) if c not in seen))
        grad = unbroadcast(grad, tuple(a.shape[k] if c in seen else 1 for k, c in enumerate(term)))
        return np.ascontiguousarray(np.broadcast_to(grad, a.shape))


def _parse(equation: str, ndims: list[int]) -> tuple[list[str], str]:
    """The equation's input terms and output with every '...' spelled out in unused letters."""
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(ndims):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation"
                           if len(ndims) > len(terms) else "einsum(): fewer operands were provided than specified "
                           "in the equation")
    spare = [c for c in string.ascii_letters if c not in equation]
    width = max((n - len(t.replace("...", "")) for t, n in zip(terms, ndims) if "..." in t), default=0)
    ellipsis = "".join(spare[:width])
    spelled = []
    for term, ndim in zip(terms, ndims):
        letters = len(term.replace("...", ""))
        if ("..." not in term and letters != ndim) or letters > ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({letters}) does not match the "
                               f"number of dimensions ({ndim}) for operand {len(spelled)}"
                               + ("" if "..." in term else " and no ellipsis was given"))
        spelled.append(term.replace("...", ellipsis[width - (ndim - letters):]))
    if arrow:
        return spelled, output.replace("...", ellipsis)
    counts = "".join(spelled)
    return spelled, ellipsis + "".join(sorted(c for c in set(counts) if counts.count(c) == 1 and c not in ellipsis))


def einsum(equation: str, *operands) -> Tensor:
    """Sum of products of the operands' elements as the subscripts say, e.g. einsum('bij,bjk->bik', a, b)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    first = operands[0]
    for other in operands[1:]:
        first, _ = coerce(first, other)
    operands = [t.to(first.dtype) for t in operands]
    terms, output = _parse(equation, [t._data.ndim for t in operands])
    return Einsum.apply(*operands, terms=tuple(terms), output=output)
