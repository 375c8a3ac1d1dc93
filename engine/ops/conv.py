"""Convolution ops: Conv2d and ConvTranspose2d (the arithmetic is in conv_kernels.py), argument checks with
PyTorch's messages, and the functional forms conv1d, conv2d, conv_transpose1d and conv_transpose2d.

1-D forms run the 2-D op on a height-1 image and unbatched inputs get a batch axis of one, both through
differentiable views, so one forward and one backward serve every case. ConvTranspose2d is the adjoint of
Conv2d: its forward is conv's input gradient and its input gradient is conv's forward.
"""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.ops.conv_kernels import Geometry, conv_forward, conv_input_grad, conv_weight_grad, output_hw
from engine.ops.shape import squeeze, unsqueeze
from engine.tensor import Tensor


class Conv2d(Function):
    """Cross-correlation of (N, C, H, W) with (O, C/groups, kh, kw) weights, plus an optional bias."""

    def forward(self, x, weight, bias, stride, pads, dilation, groups):
        self.geo = Geometry(stride, pads, dilation, groups, output_hw(x.shape[2:], weight.shape[2:], stride, pads,
                                                                      dilation))
        self.save(x, weight)  # PyTorch's convolution keeps both whichever gradient is asked for
        return conv_forward(x, weight, bias, self.geo)

    def backward(self, g):
        x, weight = self.saved_arrays()
        need_x, need_w, need_b = self.needs_input_grad
        gx = conv_input_grad(g, weight, self.geo, x.shape) if need_x else None
        gw = conv_weight_grad(x, g, self.geo, weight.shape) if need_w else None
        return gx, gw, g.sum(axis=(0, 2, 3)) if need_b else None


class ConvTranspose2d(Function):
    """The adjoint of Conv2d over an output of out_hw: (N, C_in, H, W) with (C_in, C_out/groups, kh, kw) weights."""

    def forward(self, x, weight, bias, stride, pads, dilation, groups, out_hw):
        self.geo = Geometry(stride, pads, dilation, groups, x.shape[2:])  # the conv whose input gradient this is
        self.out_shape = (x.shape[0], weight.shape[1] * groups, *out_hw)
        self.save(x, weight)
        out = conv_input_grad(x, weight, self.geo, self.out_shape)
        if bias is not None:
            out += bias.reshape(-1, 1, 1)
        return out

    def backward(self, g):
        x, weight = self.saved_arrays()
        need_x, need_w, need_b = self.needs_input_grad
        gx = conv_forward(g, weight, None, self.geo) if need_x else None
        gw = conv_weight_grad(g, x, self.geo, weight.shape) if need_w else None
        return gx, gw, g.sum(axis=(0, 2, 3)) if need_b else None


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


# -- transposed convolution -----------------------------------------------------------------------------------
def _check_transposed_weight(x: Tensor, weight: Tensor, bias: Tensor | None, groups: int, dims: int,
                             op: str) -> None:
    w_shape = list(weight.shape)
    if weight.ndim != dims + 2:
        raise RuntimeError(f"Expected {dims + 2}D weight for {op}, but got weight of size: {w_shape}")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if w_shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
                           f"but got weight of size [{w_shape}] instead")
    if x.shape[1] != w_shape[0]:
        raise RuntimeError(f"Given transposed=1, weight of size {w_shape}, expected input{list(x.shape)} to have "
                           f"{w_shape[0]} channels, but got {x.shape[1]} channels instead")
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != w_shape[1] * groups):
        raise RuntimeError(f"Given transposed=1, weight of size {w_shape}, expected bias to be 1-dimensional with "
                           f"{w_shape[1] * groups} elements, but got bias of size {list(bias.shape)} instead")
    for other, role in ((weight, "weight"), (bias, "bias")):
        if other is not None and other.dtype is not x.dtype:
            raise RuntimeError(f"Input type ({x.dtype}) and {role} type ({other.dtype}) should be the same")


def transposed_output_size(in_size, kernel, stride, padding, output_padding, dilation) -> tuple:
    """(n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1 per spatial axis."""
    return tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1
                 for n, k, s, p, op, d in zip(in_size, kernel, stride, padding, output_padding, dilation))


def _check_transposed_geometry(x: Tensor, out_size, stride, output_padding, dilation) -> None:
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"dilation should be greater than zero, but got {list(dilation)}")
    if any(op >= s and op >= d for op, s, d in zip(output_padding, stride, dilation)):
        names = ("height", "width") if len(stride) == 2 else ("width",)
        parts = [f"output_padding_{n}: {v}" for n, v in zip(names, output_padding)]
        parts += [f"stride_{n}: {v}" for n, v in zip(names, stride)]
        parts += [f"dilation_{n}: {v}" for n, v in zip(names, dilation)]
        raise RuntimeError(f"output padding must be smaller than either stride or dilation, but got {' '.join(parts)}")
    if any(o <= 0 for o in out_size):
        raise RuntimeError(f"Given input size per channel: ({' x '.join(map(str, x.shape[2:]))}). Calculated output "
                           f"size per channel: ({' x '.join(map(str, out_size))}). Output size is too small")


def _conv_transpose(x: Tensor, weight: Tensor, bias, stride, padding, output_padding, groups: int, dilation,
                    dims: int) -> Tensor:
    op = f"conv_transpose{dims}d"
    batched = _check_input(x, dims, op)
    if not batched:
        x = unsqueeze(x, 0)
    _check_transposed_weight(x, weight, bias, groups, dims, op)
    if isinstance(padding, str):
        raise TypeError(f"{op}(): argument 'padding' must be tuple of ints, not str")
    kernel = tuple(weight.shape[2:])
    stride, dilation = ints(stride, dims, "stride"), ints(dilation, dims, "dilation")
    padding, output_padding = ints(padding, dims, "padding"), ints(output_padding, dims, "output_padding")
    out_size = transposed_output_size(x.shape[2:], kernel, stride, padding, output_padding, dilation)
    _check_transposed_geometry(x, out_size, stride, output_padding, dilation)
    pads = tuple((p, p) for p in padding)
    if dims == 1:  # a length-L signal is a 1 x L image
        x, weight = unsqueeze(x, 2), unsqueeze(weight, 2)
        stride, pads, dilation, out_size = (1, *stride), ((0, 0), *pads), (1, *dilation), (1, *out_size)
    out = ConvTranspose2d.apply(x, weight, bias, stride=stride, pads=pads, dilation=dilation, groups=groups,
                                out_hw=out_size)
    if dims == 1:
        out = squeeze(out, 2)
    return out if batched else squeeze(out, 0)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """2-D transposed convolution of (N, C_in, H, W) or (C_in, H, W), as torch.nn.functional.conv_transpose2d."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, dims=2)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """1-D transposed convolution of (N, C_in, L) or (C_in, L), as torch.nn.functional.conv_transpose1d."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, dims=1)
