"""2-D pooling: max and average over strided windows (a loop over kernel offsets, never over pixels),
and adaptive average pooling as two small averaging matrices applied to the last two axes.
"""

from __future__ import annotations

import math

import numpy as np

from engine.autograd.function import Function
from engine.ops.conv_kernels import pad_spatial, padded_shape, unpad_spatial, window_slice
from engine.ops.shape import squeeze, unsqueeze
from engine.tensor import Tensor


class Geometry:
    """A 2-D pooling window's numbers: kernel, stride, dilation, ((lo, hi), (lo, hi)) pads and output size.

    The high pads also cover ceil_mode's last window, which may hang over the padded input; `padding`
    keeps the symmetric pads the caller asked for, which average pooling's divisor needs.
    """

    def __init__(self, shape, kernel, stride, padding, dilation, ceil_mode: bool):
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        self.in_hw = tuple(shape[-2:])
        self.out_hw = tuple(_out_size(*args, ceil_mode) for args in zip(self.in_hw, kernel, stride, padding, dilation))
        self.pads = tuple((p, max((o - 1) * s + d * (k - 1) + 1 - n - p, 0))
                          for n, k, s, p, d, o in zip(self.in_hw, kernel, stride, padding, dilation, self.out_hw))

    def offsets(self):
        """(offset number, row, column) of each kernel position, row-major: PyTorch's scan order."""
        kh, kw = self.kernel
        return ((i * kw + j, i, j) for i in range(kh) for j in range(kw))

    def window(self, i: int, j: int) -> tuple:
        return window_slice(i, j, self.stride, self.dilation, self.out_hw)


def _out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling_output_shape: a ceil_mode window must start inside the input or left padding."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _lowest(dtype: np.dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


# -- max pooling ----------------------------------------------------------------------------------------
def _window_max(xp: np.ndarray, geo: Geometry) -> np.ndarray:
    out = None
    for _, i, j in geo.offsets():
        v = xp[geo.window(i, j)]
        out = v.copy() if out is None else np.maximum(out, v, out=out)  # propagates NaN, as PyTorch does
    return out


def _argmax(x: np.ndarray, geo: Geometry) -> np.ndarray:
    """Each window's kernel offset of its max, as PyTorch picks it: the first max (or the last NaN)."""
    xp = pad_spatial(x, geo.pads, _lowest(x.dtype))
    best = _window_max(xp, geo)
    if (best == _lowest(x.dtype)).any() or (x.dtype.kind == "f" and np.isnan(best).any()):
        return _argmax_scan(xp, geo)
    arg = np.zeros(best.shape, np.int64)
    for offset, i, j in reversed(tuple(geo.offsets())):  # earlier offsets overwrite later ones: first max wins
        np.copyto(arg, offset, where=xp[geo.window(i, j)] == best)
    return arg


def _argmax_scan(xp: np.ndarray, geo: Geometry) -> np.ndarray:
    """PyTorch's own scan, for windows whose max is NaN or the lowest value (where padding ties it).

    It starts from the lowest value at the window's first in-bounds tap, so padding is never chosen,
    and takes a value that is greater or NaN, so the last NaN wins.
    """
    first = [np.maximum(-(-(p - np.arange(o) * s) // d), 0)  # ceil((p - o*s) / d): the first in-bounds tap
             for o, s, p, d in zip(geo.out_hw, geo.stride, geo.padding, geo.dilation)]
    arg = np.broadcast_to(first[0][:, None] * geo.kernel[1] + first[1], (*xp.shape[:-2], *geo.out_hw)).copy()
    best = np.full(arg.shape, _lowest(xp.dtype), xp.dtype)
    for offset, i, j in geo.offsets():
        v = xp[geo.window(i, j)]
        take = v > best
        if xp.dtype.kind == "f":
            take |= np.isnan(v)
        np.copyto(best, v, where=take)
        np.copyto(arg, offset, where=take)
    return arg


def _flat_indices(arg: np.ndarray, geo: Geometry) -> np.ndarray:
    """Kernel offsets of the maxima as PyTorch's return_indices: row * W + col in the unpadded input."""
    rows, cols = (np.arange(o) * s - p for o, s, p in zip(geo.out_hw, geo.stride, geo.padding))
    row = rows[:, None] + (arg // geo.kernel[1]) * geo.dilation[0]
    col = cols + (arg % geo.kernel[1]) * geo.dilation[1]
    return (row * geo.in_hw[1] + col).astype(np.int64)


class MaxPool2d(Function):
    """The max of each window; its gradient goes to the position PyTorch's argmax picks."""

    def forward(self, x, geo):
        self.geo = geo
        self.save(x)
        return _window_max(pad_spatial(x, geo.pads, _lowest(x.dtype)), geo)

    def backward(self, g):
        (x,) = self.saved_arrays()
        arg = _argmax(x, self.geo)  # found here, not in forward, so that inference never pays for it
        gxp = np.zeros(padded_shape(x.shape, self.geo.pads), g.dtype)
        for offset, i, j in self.geo.offsets():
            gxp[self.geo.window(i, j)] += np.where(arg == offset, g, 0)
        return (unpad_spatial(gxp, self.geo.pads, x.shape),)


# -- average pooling ------------------------------------------------------------------------------------
def _divisor(geo: Geometry, count_include_pad: bool) -> np.ndarray:
    """Each window's divisor (Ho, Wo), by PyTorch's rule: padding counts, the ceil_mode overhang never does."""
    counts = []
    for n, k, s, p, o in zip(geo.in_hw, geo.kernel, geo.stride, geo.padding, geo.out_hw):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        counts.append(end - start)
    return counts[0][:, None] * counts[1]


class AvgPool2d(Function):
    """The sum of each window over its divisor (window size, or divisor_override)."""

    def forward(self, x, geo, divisor):
        self.geo, self.divisor = geo, divisor
        xp = pad_spatial(x, geo.pads)
        out = None
        for _, i, j in geo.offsets():  # summed in PyTorch's order: row-major over the window
            v = xp[geo.window(i, j)]
            out = v.copy() if out is None else np.add(out, v, out=out)
        out /= divisor
        self.shape = x.shape
        return out

    def backward(self, g):
        share = g / self.divisor
        gxp = np.zeros(padded_shape(self.shape, self.geo.pads), g.dtype)
        for _, i, j in self.geo.offsets():
            gxp[self.geo.window(i, j)] += share
        return (unpad_spatial(gxp, self.geo.pads, self.shape),)


# -- adaptive average pooling ---------------------------------------------------------------------------
def _window_matrix(size: int, out: int, dtype) -> np.ndarray:
    """(out, size) indicator of PyTorch's adaptive windows: [floor(i*size/out), ceil((i+1)*size/out))."""
    i = np.arange(out)
    start, end = (i * size) // out, -(-((i + 1) * size) // out)
    pos = np.arange(size)
    return ((pos >= start[:, None]) & (pos < end[:, None])).astype(dtype)


class AdaptiveAvgPool2d(Function):
    """Averages over windows that tile the input into out_hw cells: rows @ x @ cols.T / counts."""

    def forward(self, x, out_hw):
        self.shape, self.out_hw = x.shape, out_hw
        if out_hw == (1, 1):  # global average pooling: each plane's sum as one GEMV (numpy's mean over short rows
            positions = x.shape[-2] * x.shape[-1]  # is several times slower), then the mean
            sums = x.reshape(-1, positions) @ np.ones(positions, x.dtype)
            return (sums / x.dtype.type(positions)).reshape(*x.shape[:-2], 1, 1)
        self.rows, self.cols = (_window_matrix(n, o, x.dtype) for n, o in zip(x.shape[-2:], out_hw))
        self.counts = self.rows.sum(1)[:, None] * self.cols.sum(1)
        return _apply_rows_cols(x, self.rows, self.cols) / self.counts

    def backward(self, g):
        if self.out_hw == (1, 1):
            return (np.broadcast_to(g / (self.shape[-2] * self.shape[-1]), self.shape).copy(),)
        return (_apply_rows_cols(g / self.counts, self.rows.T, self.cols.T),)


def _apply_rows_cols(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """rows @ x @ cols.T over the last two axes, as two plain 2-D GEMMs over all leading axes at once."""
    *lead, h, w = x.shape
    m, ho, wo = math.prod(lead), rows.shape[0], cols.shape[0]
    y = x.reshape(m * h, w) @ cols.T  # (lead*H, Wo)
    y = np.ascontiguousarray(y.reshape(m, h, wo).swapaxes(1, 2)).reshape(m * wo, h) @ rows.T  # (lead*Wo, Ho)
    return np.ascontiguousarray(y.reshape(m, wo, ho).swapaxes(1, 2)).reshape(*lead, ho, wo)


# -- argument checks (PyTorch's messages) ---------------------------------------------------------------
def _batched(x: Tensor, op: str) -> tuple[Tensor, bool]:
    """x as a 4-D batch, and whether it was one; an error naming the shape otherwise."""
    if x.ndim not in (3, 4):
        raise RuntimeError(f"Expected 3D (unbatched) or 4D (batched) input to {op}, but got input of size: "
                           f"{list(x.shape)}")
    if 0 in x.shape[-3:]:
        raise RuntimeError(f"Expected input to {op} to have non-zero size for non-batch dimensions, but got input "
                           f"of size: {list(x.shape)}")
    return (x, True) if x.ndim == 4 else (unsqueeze(x, 0), False)


def _pair(value, name: str, op: str) -> tuple:
    value = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(value) not in (1, 2) or not all(isinstance(v, (int, np.integer)) for v in value):
        raise RuntimeError(f"{op}: {name} must either be a single int, or a tuple of two ints, but got {value}")
    value = value * 2 if len(value) == 1 else value
    return tuple(int(v) for v in value)


def _geometry(x: Tensor, op: str, kernel_size, stride, padding, dilation, ceil_mode: bool) -> Geometry:
    kernel = _pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None or stride == () or stride == [] else _pair(stride, "stride", op)
    padding, dilation = _pair(padding, "padding", op), _pair(dilation, "dilation", op)
    for values, what, h, w in ((kernel, "kernel size", "kH", "kW"), (stride, "stride", "dH", "dW"),
                               (dilation, "dilation", "dilationH", "dilationW")):
        if min(values) <= 0:
            raise RuntimeError(f"{what} should be greater than zero, but got {h}: {values[0]} {w}: {values[1]}")
    for k, p, d in zip(kernel, padding, dilation):
        if p < 0:
            raise RuntimeError(f"pad must be non-negative, but got pad: {p}")
        if p > (d * (k - 1) + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={p}, "
                               f"kernel_size={k} and dilation={d}")
    geo = Geometry(x.shape, kernel, stride, padding, dilation, ceil_mode)
    if min(geo.out_hw) < 1:
        c, h, w = x.shape[1:]
        raise RuntimeError(f"Given input size: ({c}x{h}x{w}). Calculated output size: "
                           f"({c}x{geo.out_hw[0]}x{geo.out_hw[1]}). Output size is too small")
    return geo


def _floating(x: Tensor, op: str) -> None:
    if not x.is_floating_point():
        raise RuntimeError(f"{op} needs a floating point input, but got {x.dtype}; convert it with .float()")


# -- the functional forms -------------------------------------------------------------------------------
def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """The max over each window (and with return_indices, where it is: row * W + col), as in PyTorch."""
    x, batched = _batched(input, "max_pool2d")
    geo = _geometry(x, "max_pool2d", kernel_size, stride, padding, dilation, ceil_mode)
    out = MaxPool2d.apply(x, geo=geo)
    out = out if batched else squeeze(out, 0)
    if not return_indices:
        return out
    indices = Tensor._make(_flat_indices(_argmax(x._data, geo), geo))
    return out, indices if batched else squeeze(indices, 0)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """The mean over each window, with PyTorch's divisor rules for padding and ceil_mode."""
    x, batched = _batched(input, "avg_pool2d")
    _floating(x, "avg_pool2d")
    geo = _geometry(x, "avg_pool2d", kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    divisor = _divisor(geo, count_include_pad) if divisor_override is None else divisor_override
    out = AvgPool2d.apply(x, geo=geo, divisor=np.asarray(divisor, x._data.dtype))
    return out if batched else squeeze(out, 0)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Averages over output_size windows that tile the input (None keeps that input size), as in PyTorch."""
    if input.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got {list(input.shape)}")
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if len(size) != 2:
        raise RuntimeError(f"adaptive_avg_pool2d: output_size must be 2, but got {output_size}")
    size = tuple(n if o is None else o for o, n in zip(size, input.shape[-2:]))
    if min(size) < 0:
        raise RuntimeError(f"adaptive_avg_pool2d: elements of output_size must be greater than or equal to 0 "
                           f"but received {size}")
    x, batched = _batched(input, "adaptive_avg_pool2d")
    _floating(x, "adaptive_avg_pool2d")
    out = AdaptiveAvgPool2d.apply(x, out_hw=size)
    return out if batched else squeeze(out, 0)


# -- adaptive max pooling -------------------------------------------------------------------------------
def _adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive windows [floor(i*size/out), ceil((i+1)*size/out)) along one axis."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def _adaptive_argmax(x: np.ndarray, rows, cols) -> np.ndarray:
    """Flat index (row * W + col) of each window's max: the first in row-major order, as PyTorch's scan."""
    width = x.shape[-1]
    out = np.empty((*x.shape[:-2], len(rows), len(cols)), np.int64)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            window = x[..., r0:r1, c0:c1].reshape(*x.shape[:-2], -1)
            arg = np.argmax(window, axis=-1)
            out[..., i, j] = (r0 + arg // (c1 - c0)) * width + c0 + arg % (c1 - c0)
    return out


class AdaptiveMaxPool2d(Function):
    """The max over windows that tile the input into out_hw cells: a max over row windows, then column windows."""

    def forward(self, x, out_hw):
        self.rows, self.cols = (_adaptive_windows(n, o) for n, o in zip(x.shape[-2:], out_hw))
        by_rows = np.stack([x[..., r0:r1, :].max(axis=-2) for r0, r1 in self.rows], axis=-2)
        self.save(x)
        return np.stack([by_rows[..., c0:c1].max(axis=-1) for c0, c1 in self.cols], axis=-1)

    def backward(self, g):
        (x,) = self.saved_arrays()
        arg = _adaptive_argmax(x, self.rows, self.cols)
        gx = np.zeros((*x.shape[:-2], x.shape[-2] * x.shape[-1]), g.dtype)
        for i in range(arg.shape[-2]):
            for j in range(arg.shape[-1]):  # one cell at a time: windows may overlap and share a max
                index = arg[..., i, j, None]
                np.put_along_axis(gx, index, np.take_along_axis(gx, index, -1) + g[..., i, j, None], -1)
        return (gx.reshape(x.shape),)


def _adaptive_size(output_size, in_hw, op: str) -> tuple:
    size = (output_size, output_size) if isinstance(output_size, int) or output_size is None else tuple(output_size)
    if len(size) != 2:
        raise RuntimeError(f"{op}: output_size must be 2, but got {output_size}")
    return tuple(n if o is None else int(o) for o, n in zip(size, in_hw))


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """The max over output_size windows that tile the input (None keeps that input size), as in PyTorch."""
    if input.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_max_pool2d(): Expected 3D or 4D tensor, but got: {list(input.shape)}")
    for axis in range(1, input.ndim):
        if input.shape[axis] == 0:
            raise RuntimeError(f"adaptive_max_pool2d(): Expected input to have non-zero size for non-batch "
                               f"dimensions, but input has sizes {list(input.shape)} with dimension {axis} being empty")
    size = _adaptive_size(output_size, input.shape[-2:], "adaptive_max_pool2d")
    out = AdaptiveMaxPool2d.apply(input, out_hw=size)
    if not return_indices:
        return out
    rows, cols = (_adaptive_windows(n, o) for n, o in zip(input.shape[-2:], size))
    return out, Tensor._make(_adaptive_argmax(input._data, rows, cols))


# -- 1-D pooling: the 2-D ops over a height-1 image -------------------------------------------------------
def _signal(x: Tensor, op: str) -> Tensor:
    """A (C, L) or (N, C, L) input as a height-1 image; an error naming the shape otherwise."""
    if x.ndim not in (2, 3):
        raise RuntimeError(f"Expected 2 to 3 dimensions, but got {x.ndim}-dimensional tensor for argument #1 'self' "
                           f"(while checking arguments for {op})")
    return unsqueeze(x, -2)


def _single(value, name: str, op: str) -> int:
    value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(value) != 1 or not isinstance(value[0], (int, np.integer)):
        raise RuntimeError(f"{op}() argument '{name}' should contain one int (got {len(value)})")
    return int(value[0])


def _unsqueezed(result, return_indices: bool):
    if return_indices:
        return tuple(squeeze(t, -2) for t in result)
    return squeeze(result, -2)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """The max over each window of a (N, C, L) or (C, L) signal (with return_indices, its position), as in PyTorch."""
    k = _single(kernel_size, "kernel_size", "max_pool1d")
    s = k if stride is None or stride == () or stride == [] else _single(stride, "stride", "max_pool1d")
    p, d = _single(padding, "padding", "max_pool1d"), _single(dilation, "dilation", "max_pool1d")
    if p > k // 2:
        raise RuntimeError(f"max_pool1d() padding should be at most half of kernel size, but got padding={p} and "
                           f"kernel_size={k}")
    result = max_pool2d(_signal(input, "max_pool1d"), (1, k), (1, s), (0, p), (1, d), ceil_mode, return_indices)
    return _unsqueezed(result, return_indices)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """The mean over each window of a (N, C, L) or (C, L) signal, with PyTorch's divisor rules."""
    k = _single(kernel_size, "kernel_size", "avg_pool1d")
    s = k if stride is None or stride == () or stride == [] else _single(stride, "stride", "avg_pool1d")
    p = _single(padding, "padding", "avg_pool1d")
    out = avg_pool2d(_signal(input, "avg_pool1d"), (1, k), (1, s), (0, p), ceil_mode, count_include_pad)
    return squeeze(out, -2)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Averages over output_size windows that tile a (N, C, L) or (C, L) signal."""
    if output_size is None:
        raise TypeError("adaptive_avg_pool1d(): argument 'output_size' (position 2) must be tuple of ints, not "
                        "NoneType")
    size = _single(output_size, "output_size", "adaptive_avg_pool1d")
    return squeeze(adaptive_avg_pool2d(_signal(input, "adaptive_avg_pool1d"), (1, size)), -2)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """The max over output_size windows that tile a (N, C, L) or (C, L) signal."""
    size = _single(output_size, "output_size", "adaptive_max_pool1d")
    result = adaptive_max_pool2d(_signal(input, "adaptive_max_pool1d"), (1, size), return_indices)
    return _unsqueezed(result, return_indices)
