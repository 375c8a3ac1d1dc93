"""Convolution: im2col plus one batched GEMM forward, col2im over kernel offsets backward.

Conv2d is the one Function. conv1d runs it on a height-1 image and unbatched inputs get a batch
axis of one, both through differentiable views, so one forward and one backward serve every case.
The window helpers here (padding, the strided slice a kernel offset sees) are shared with pooling.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine.autograd.function import Function
from engine.ops.shape import squeeze, unsqueeze
from engine.tensor import Tensor


# -- windows over the last two axes, shared with pooling ------------------------------------------------
def pad_spatial(x: np.ndarray, pads, value=0) -> np.ndarray:
    """x with its last two axes padded by ((top, bottom), (left, right)) of `value`; x itself if none."""
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x
    *lead, h, w = x.shape
    out = np.empty((*lead, h + top + bottom, w + left + right), x.dtype)
    # Fill only the border: the interior is overwritten by x right after.
    out[..., :top, :] = value
    out[..., top + h:, :] = value
    out[..., top:top + h, :left] = value
    out[..., top:top + h, left + w:] = value
    out[..., top:top + h, left:left + w] = x
    return out


def unpad_spatial(xp: np.ndarray, pads, shape) -> np.ndarray:
    """The inverse of pad_spatial for a gradient: the interior of `xp`, as its own contiguous array."""
    (top, _), (left, _) = pads
    h, w = shape[-2:]
    if xp.shape[-2:] == (h, w):
        return xp
    return np.ascontiguousarray(xp[..., top:top + h, left:left + w])


def window_slice(i: int, j: int, stride, dilation, out_hw) -> tuple:
    """The index of the padded input that kernel offset (i, j) sees, one element per output position."""
    (sh, sw), (dh, dw), (ho, wo) = stride, dilation, out_hw
    return (..., slice(i * dh, i * dh + sh * (ho - 1) + 1, sh), slice(j * dw, j * dw + sw * (wo - 1) + 1, sw))


def padded_shape(shape, pads) -> tuple:
    (top, bottom), (left, right) = pads
    *lead, h, w = shape
    return (*lead, h + top + bottom, w + left + right)


def _columns(xp: np.ndarray, kernel, stride, dilation, out_hw) -> np.ndarray:
    """The im2col view (N, C, kh, kw, Ho, Wo) of a padded input; no copy is made."""
    (sh, sw), (dh, dw) = stride, dilation
    s_n, s_c, s_h, s_w = xp.strides
    return as_strided(xp, (*xp.shape[:2], *kernel, *out_hw), (s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw),
                      writeable=False)


# -- the op -------------------------------------------------------------------------------------------
class Conv2d(Function):
    """Cross-correlation of (N, C, H, W) with (O, C/groups, kh, kw) weights, plus an optional bias."""

    def forward(self, x, weight, bias, stride, pads, dilation, groups):
        self.geometry = stride, pads, dilation, groups
        n, (out_c, _, kh, kw) = x.shape[0], weight.shape
        self.out_hw = tuple((size - d * (k - 1) - 1) // s + 1
                            for size, k, s, d in zip(padded_shape(x.shape, pads)[2:], (kh, kw), stride, dilation))
        # One matmul batched over (sample, group): (G, O/G, K) @ (N, G, K, L) lands directly in NCHW order.
        out = np.matmul(self._grouped_weight(weight), self._cols(x, kh, kw))
        out = out.reshape(n, out_c, *self.out_hw)
        if bias is not None:
            out += bias.reshape(-1, 1, 1)
        self.save(x, weight)
        return out

    def backward(self, g):
        x, weight = self.saved_arrays()
        need_x, need_w, need_b = self.needs_input_grad
        groups, (_, _, kh, kw) = self.geometry[3], weight.shape
        n, out_c, ho, wo = g.shape
        g = g.reshape(n, groups, out_c // groups, ho * wo)
        gx = gw = gb = None
        if need_b:
            gb = g.sum(axis=(0, 3)).reshape(out_c)
        if need_w:
            gw = np.matmul(g, self._cols(x, kh, kw).swapaxes(-1, -2)).sum(axis=0).reshape(weight.shape)
        if need_x:
            cols = np.matmul(self._grouped_weight(weight).swapaxes(-1, -2), g)  # (N, G, K, L)
            gx = self._col2im(cols.reshape(x.shape[0], x.shape[1], kh, kw, *self.out_hw), x.shape)
        return gx, gw, gb

    def _grouped_weight(self, weight):
        return weight.reshape(self.geometry[3], weight.shape[0] // self.geometry[3], -1)

    def _cols(self, x, kh, kw):
        """The (N, G, C/G*kh*kw, Ho*Wo) column matrix: the one copy im2col makes."""
        stride, pads, dilation, groups = self.geometry
        view = _columns(pad_spatial(x, pads), (kh, kw), stride, dilation, self.out_hw)
        return view.reshape(x.shape[0], groups, x.shape[1] // groups * kh * kw, self.out_hw[0] * self.out_hw[1])

    def _col2im(self, cols, x_shape):
        """Sum each kernel offset's column block back onto the input positions it read."""
        stride, pads, dilation, _ = self.geometry
        gxp = np.zeros(padded_shape(x_shape, pads), cols.dtype)
        for i in range(cols.shape[2]):
            for j in range(cols.shape[3]):
                gxp[window_slice(i, j, stride, dilation, self.out_hw)] += cols[:, :, i, j]
        return unpad_spatial(gxp, pads, x_shape)


# -- argument checks (PyTorch's messages) ---------------------------------------------------------------
def ints(value, n: int, name: str) -> tuple:
    """An int or a sequence of n ints, as a tuple of n ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(value)
    if len(value) != n or not all(isinstance(v, (int, np.integer)) for v in value):
        raise RuntimeError(f"expected {name} to be a single integer value or a list of {n} values to match the "
                           f"convolution dimensions, but got {name}={list(value)}")
    return tuple(int(v) for v in value)


def _check_input(x: Tensor, dims: int, op: str) -> bool:
    """Whether x is batched; an error naming its shape if its rank fits neither form."""
    if x.ndim not in (dims + 1, dims + 2):
        raise RuntimeError(f"Expected {dims + 1}D (unbatched) or {dims + 2}D (batched) input to {op}, "
                           f"but got input of size: {list(x.shape)}")
    return x.ndim == dims + 2


def _check_weight(x: Tensor, weight: Tensor, bias: Tensor | None, groups: int, dims: int, op: str) -> None:
    w_shape = list(weight.shape)
    if weight.ndim != dims + 2:
        raise RuntimeError(f"Expected {dims + 2}D weight for {op}, but got weight of size: {w_shape}")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if w_shape[0] < groups or w_shape[0] % groups:
        what = f"divisible by {groups}" if w_shape[0] else "at least 1"
        raise RuntimeError(f"Given groups={groups}, expected weight to be {what} at dimension 0, "
                           f"but got weight of size {w_shape} instead")
    if x.shape[1] != w_shape[1] * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {w_shape}, expected input{list(x.shape)} to have "
                           f"{w_shape[1] * groups} channels, but got {x.shape[1]} channels instead")
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != w_shape[0]):
        raise RuntimeError(f"Given weight of size {w_shape}, expected bias to be 1-dimensional with {w_shape[0]} "
                           f"elements, but got bias of size {list(bias.shape)} instead")
    for other, role in ((weight, "weight"), (bias, "bias")):
        if other is not None and other.dtype is not x.dtype:
            raise RuntimeError(f"Input type ({x.dtype}) and {role} type ({other.dtype}) should be the same")


def _conv_pads(padding, kernel, stride, dilation) -> tuple:
    """((lo, hi), ...) per spatial axis; 'same' puts the odd extra on the high side, as PyTorch does."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * len(kernel)
        if padding != "same":
            raise RuntimeError(f"Invalid padding string: {padding!r}")
        if any(s != 1 for s in stride):
            raise RuntimeError("padding='same' is not supported for strided convolutions")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    padding = ints(padding, len(kernel), "padding")
    if any(p < 0 for p in padding):
        raise RuntimeError("negative padding is not supported")
    return tuple((p, p) for p in padding)


def _check_geometry(x: Tensor, kernel, stride, pads, dilation) -> None:
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"dilation should be greater than zero, but got {list(dilation)}")
    padded = [size + lo + hi for size, (lo, hi) in zip(x.shape[2:], pads)]
    dilated = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(p < k for p, k in zip(padded, dilated)):
        raise RuntimeError(f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
                           f"Kernel size: ({' x '.join(map(str, dilated))}). "
                           f"Kernel size can't be greater than actual input size")


# -- the functional forms -------------------------------------------------------------------------------
def _conv(x: Tensor, weight: Tensor, bias, stride, padding, dilation, groups: int, dims: int) -> Tensor:
    op = f"conv{dims}d"
    batched = _check_input(x, dims, op)
    if not batched:
        x = unsqueeze(x, 0)
    _check_weight(x, weight, bias, groups, dims, op)
    kernel = tuple(weight.shape[2:])
    stride, dilation = ints(stride, dims, "stride"), ints(dilation, dims, "dilation")
    pads = _conv_pads(padding, kernel, stride, dilation)
    _check_geometry(x, kernel, stride, pads, dilation)
    if dims == 1:  # a length-L signal is a 1 x L image
        x, weight = unsqueeze(x, 2), unsqueeze(weight, 2)
        stride, pads, dilation = (1, *stride), ((0, 0), *pads), (1, *dilation)
    out = Conv2d.apply(x, weight, bias, stride=stride, pads=pads, dilation=dilation, groups=groups)
    if dims == 1:
        out = squeeze(out, 2)
    return out if batched else squeeze(out, 0)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D convolution of (N, C, H, W) or unbatched (C, H, W) input, as torch.nn.functional.conv2d."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, dims=2)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D convolution of (N, C, L) or unbatched (C, L) input, as torch.nn.functional.conv1d."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, dims=1)
