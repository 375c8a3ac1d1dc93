"""Convolution layers: Conv1d, Conv2d, ConvTranspose1d and ConvTranspose2d, with PyTorch's arguments,
padding modes, initialisation and repr."""

from __future__ import annotations

from engine.creation import empty
from engine.nn import init
from engine.nn.module import Module
from engine.nn.parameter import Parameter
from engine.ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d, transposed_output_size
from engine.ops.padding import pad
from engine.tensor import Size, Tensor

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(value, n: int) -> tuple:
    """PyTorch's _single/_pair: a sequence as a tuple, anything else repeated n times."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


class _ConvNd(Module):
    """What the convolution layers share; a subclass sets the number of spatial dims and whether it is transposed."""

    dims = 0
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None,
                 output_padding=0):
        super().__init__()
        _check_arguments(in_channels, out_channels, groups, padding, stride, padding_mode, self.dims)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _ntuple(kernel_size, self.dims)
        self.stride = _ntuple(stride, self.dims)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, self.dims)
        self.dilation = _ntuple(dilation, self.dims)
        self.output_padding = _ntuple(output_padding, self.dims)
        self.padding_mode = padding_mode
        self._reversed_padding_repeated_twice = _reversed_padding(self.padding, self.kernel_size, self.dilation)
        shape = (in_channels, out_channels // groups) if self.transposed else (out_channels, in_channels // groups)
        self.weight = Parameter(empty(*shape, *self.kernel_size, dtype=dtype, device=device))
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
        if self.padding_mode != "zeros":  # the mode's padding first, then a convolution without padding
            x = pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        """PyTorch's text: channels, kernel_size and stride always; the rest only when not the default."""
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self.dims:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.dims:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self.dims:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


def _reversed_padding(padding, kernel_size: tuple, dilation: tuple) -> list:
    """F.pad's list (last dim first, each side) for a padding mode: 'same' puts the odd extra on the high side."""
    if padding == "valid":
        return [0, 0] * len(kernel_size)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        return [p for total in reversed(totals) for p in (total // 2, total - total // 2)]
    return [p for p in reversed(padding) for _ in range(2)]


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


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) or (C, L) input; weight (out_channels, in_channels/groups, k)."""

    dims = 1


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) or (C, H, W) input; weight (out_channels, in_channels/groups, kh, kw)."""

    dims = 2


class _ConvTransposeNd(_ConvNd):
    """What the transposed convolution layers share: weight (in_channels, out_channels/groups, *kernel_size)."""

    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {self.__class__.__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device, dtype, output_padding)

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        conv = conv_transpose1d if self.dims == 1 else conv_transpose2d
        return conv(x, self.weight, self.bias, self.stride, self.padding, self._output_padding(x, output_size),
                    self.groups, self.dilation)

    def _output_padding(self, x: Tensor, output_size) -> tuple:
        """output_padding, or what gives exactly output_size (checked to be reachable), as PyTorch computes it."""
        if output_size is None:
            return self.output_padding
        batch_dims = 2 if x.dim() == self.dims + 2 else 1
        output_size = tuple(output_size)
        if len(output_size) == batch_dims + self.dims:
            output_size = output_size[batch_dims:]
        if len(output_size) != self.dims:
            raise ValueError(f"ConvTranspose{self.dims}D: for {x.dim()}D input, output_size must have {self.dims} or "
                             f"{batch_dims + self.dims} elements (got {len(output_size)})")
        smallest = transposed_output_size(x.shape[batch_dims:], self.kernel_size, self.stride, self.padding,
                                          (0,) * self.dims, self.dilation)
        largest = [n + s - 1 for n, s in zip(smallest, self.stride)]
        if any(not lo <= size <= hi for size, lo, hi in zip(output_size, smallest, largest)):
            raise ValueError(f"requested an output size of {list(output_size)}, but valid sizes range from "
                             f"{list(smallest)} to {largest} (for an input of {Size(x.shape[batch_dims:])})")
        return tuple(size - lo for size, lo in zip(output_size, smallest))


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over (N, C_in, L) or (C_in, L) input."""

    dims = 1


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution over (N, C_in, H, W) or (C_in, H, W) input."""

    dims = 2
