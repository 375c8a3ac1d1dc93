"""F.pad: constant, reflect, replicate and circular padding of the trailing dims (negative pads crop).

Constant padding copies the input into a filled array. The other modes are a gather along each padded
axis by an index map (which input position each output position reads), so backward adds each output
position's gradient back onto the position it read.
"""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.tensor import Tensor

MODES = ("constant", "reflect", "replicate", "circular")


def _kept(n: int, lo: int, hi: int) -> tuple[slice, slice]:
    """(input slice, output slice) of the values constant padding keeps along an axis of size n."""
    start, stop = max(-lo, 0), n - max(-hi, 0)
    return slice(start, stop), slice(max(lo, 0), max(lo, 0) + stop - start)


class ConstantPad(Function):
    """The input inside a border of `value`; pads are ((lo, hi), ...) for the last len(pads) axes."""

    def forward(self, x, pads, value):
        lead = x.ndim - len(pads)
        self.shape = x.shape
        out_shape = x.shape[:lead] + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[lead:], pads))
        src, dst = zip(*(_kept(n, lo, hi) for n, (lo, hi) in zip(x.shape[lead:], pads)))
        self.src, self.dst = (..., *src), (..., *dst)
        out = np.empty(out_shape, x.dtype)
        out.fill(value)  # numpy casts the value as PyTorch does: 2.7 pads an int tensor with 2
        out[self.dst] = x[self.src]
        return out

    def backward(self, g):
        gx = np.zeros(self.shape, g.dtype)
        gx[self.src] = g[self.dst]
        return (gx,)


def index_map(n: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """The input position each output position reads, along an axis of size n padded by (lo, hi)."""
    if mode == "circular":  # crop first, then wrap around what is left, as PyTorch does
        kept = np.arange(max(-lo, 0), n - max(-hi, 0))
        return kept[np.arange(-max(lo, 0), len(kept) + max(hi, 0)) % len(kept)]
    positions = np.arange(-lo, n + hi)
    if mode == "replicate":
        return np.clip(positions, 0, n - 1)
    positions = np.abs(positions)  # reflect about 0, then about n - 1
    return np.where(positions > n - 1, 2 * (n - 1) - positions, positions)


class GatherPad(Function):
    """Reflect, replicate or circular padding: a gather by an index map along each padded axis."""

    def forward(self, x, pads, mode):
        lead = x.ndim - len(pads)
        self.maps = [(lead + i, index_map(x.shape[lead + i], lo, hi, mode)) for i, (lo, hi) in enumerate(pads)
                     if lo or hi]
        self.shape = x.shape
        for axis, index in self.maps:
            x = np.take(x, index, axis=axis)
        return x

    def backward(self, g):
        for axis, index in reversed(self.maps):
            moved = np.moveaxis(g, axis, 0)
            summed = np.zeros((self.shape[axis],) + moved.shape[1:], g.dtype)
            np.add.at(summed, index, moved)  # positions read more than once gather every gradient
            g = np.moveaxis(summed, 0, axis)
        return (g,)


def _pairs(pad) -> tuple[tuple[int, int], ...]:
    """PyTorch's flat pad list (last dim first) as ((lo, hi), ...) in axis order."""
    pad = tuple(pad)
    for i, p in enumerate(pad):
        if not isinstance(p, (int, np.integer)):
            raise TypeError(f"pad(): argument 'pad' (position 2) must be tuple of ints, but found element of type "
                            f"{type(p).__name__} at pos {i}")
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    return tuple((int(pad[i]), int(pad[i + 1])) for i in range(len(pad) - 2, -1, -2))


def _check_mode(x: Tensor, pads, mode: str, value) -> None:
    if mode not in MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if mode == "constant":
        return
    if value is not None and value != 0:
        raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
    if len(pads) not in (1, 2, 3) or x.ndim not in (len(pads) + 1, len(pads) + 2):
        raise NotImplementedError(f"Padding size {2 * len(pads)} is not supported for {x.ndim}D input tensor.")
    for i, (lo, hi) in enumerate(pads):
        axis = x.ndim - len(pads) + i
        n = x.shape[axis]
        if mode == "reflect" and (lo >= n or hi >= n):
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input dimension, "
                               f"but got: padding ({lo}, {hi}) at dimension {axis} of input {list(x.shape)}")
        if mode == "circular" and (lo > n or hi > n):
            raise RuntimeError("Padding value causes wrapping around more than once.")


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """input padded by `pad` = (last-dim left, last-dim right, next-dim left, ...), as torch.nn.functional.pad."""
    pads = _pairs(pad)
    if len(pads) > input.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {2 * len(pads)} and input of dimension {input.ndim}")
    _check_mode(input, pads, mode, value)
    lead = input.ndim - len(pads)
    if any(n + lo + hi < 0 for n, (lo, hi) in zip(input.shape[lead:], pads)):
        raise RuntimeError("narrow(): length must be non-negative.")
    if mode == "constant":
        return ConstantPad.apply(input, pads, 0 if value is None else value)
    return GatherPad.apply(input, pads, mode)
