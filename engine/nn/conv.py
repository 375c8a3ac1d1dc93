"""Convolution layers: Conv1d and Conv2d, with PyTorch's arguments, initialisation and repr."""

from __future__ import annotations

from engine.creation import empty
from engine.nn import init
from engine.nn.module import Module
from engine.nn.parameter import Parameter
from engine.ops.conv import conv1d, conv2d
from engine.tensor import Tensor

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(value, n: int) -> tuple:
    """PyTorch's _single/_pair: a sequence as a tuple, anything else repeated n times."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


class _ConvNd(Module):
    """What Conv1d and Conv2d share; a subclass sets the number of spatial dims and its functional op."""

    dims = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__()
        _check_arguments(in_channels, out_channels, groups, padding, stride, padding_mode, self.dims)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _ntuple(kernel_size, self.dims)
        self.stride = _ntuple(stride, self.dims)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, self.dims)
        self.dilation = _ntuple(dilation, self.dims)
        self.padding_mode = padding_mode
        self.weight = Parameter(empty(out_channels, in_channels // groups, *self.kernel_size, dtype=dtype,
                                      device=device))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) weights, bias uniform in +-1/sqrt(fan_in)."""
        init.layer_default_(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        conv = conv1d if self.dims == 1 else conv2d
        return conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        """PyTorch's text: channels, kernel_size and stride always; the rest only when not the default."""
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self.dims:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.dims:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


def _check_arguments(in_channels, out_channels, groups, padding, stride, padding_mode, dims) -> None:
    """PyTorch's constructor checks, plus a clear refusal of the padding modes the engine lacks."""
    if groups <= 0:
        raise ValueError("groups must be a positive integer")
    if in_channels % groups != 0:
        raise ValueError("in_channels must be divisible by groups")
    if out_channels % groups != 0:
        raise ValueError("out_channels must be divisible by groups")
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'same', 'valid'}}")
        if padding == "same" and any(s != 1 for s in _ntuple(stride, dims)):
            raise ValueError("padding='same' is not supported for strided convolutions")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {set(_PADDING_MODES)}, but got padding_mode='{padding_mode}'")
    if padding_mode != "zeros":
        raise NotImplementedError(f"padding_mode='{padding_mode}' is not supported by the engine; "
                                  f"only padding_mode='zeros' is")


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) or (C, L) input; weight (out_channels, in_channels/groups, k)."""

    dims = 1


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) or (C, H, W) input; weight (out_channels, in_channels/groups, kh, kw)."""

    dims = 2
