"""Resampling: F.interpolate (nearest, nearest-exact, linear, bilinear, bicubic, trilinear, area), pixel_shuffle
and pixel_unshuffle.

Interpolation is separable: along each resized axis every output position is a weighted sum of a few input
positions (1 for nearest, 2 for linear, 4 for cubic). Those source indices and weights follow ATen's
UpSample.h exactly, computed in the input's float type as ATen does (float32 for float32), so indices match
PyTorch's bit for bit. Forward gathers and weights along each axis (the last axis first, as ATen does);
backward adds each output's gradient back onto the positions it read.
"""

from __future__ import annotations

import math

import numpy as np

from engine.autograd.function import Function
from engine.ops.pooling import adaptive_avg_pool1d, adaptive_avg_pool2d
from engine.tensor import Tensor

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
_LINEAR_RANK = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}


# -- source indices and weights along one axis (ATen's UpSample.h) ------------------------------------------------
def _scale(n: int, o: int, align_corners: bool, scale: float | None, ftype) -> np.floating:
    """area_pixel_compute_scale: input/output ratio, from the user's scale factor when there is one."""
    if align_corners:
        return ftype(n - 1) / ftype(o - 1) if o > 1 else ftype(0)
    return ftype(1.0 / scale) if scale is not None and scale > 0 else ftype(n) / ftype(o)


def nearest_taps(n: int, o: int, scale: float | None, exact: bool) -> np.ndarray:
    """(o, 1) source indices of nearest (floor(i * scale), OpenCV's) or nearest-exact (floor((i + .5) * scale))."""
    i = np.arange(o)
    if not exact and o == n:
        return i[:, None]
    if not exact and o == 2 * n:
        return (i >> 1)[:, None]
    s = _scale(n, o, False, scale, np.float32)
    # ATen computes i * scale in float, (i + 0.5) * scale in double rounded to float: the same here.
    real = i.astype(np.float32) * s if not exact else ((i + 0.5) * np.float64(s)).astype(np.float32)
    return np.minimum(np.floor(real).astype(np.int64), n - 1)[:, None]


def linear_taps(n: int, o: int, align_corners: bool, scale: float | None, ftype) -> tuple[np.ndarray, np.ndarray]:
    """(o, 2) source indices and weights of linear interpolation (compute_source_index_and_lambda)."""
    i = np.arange(o)
    if o == n:
        return np.stack([i, i], 1), np.stack([np.ones(o, ftype), np.zeros(o, ftype)], 1)
    ratio = _scale(n, o, align_corners, scale, ftype)
    real = ratio * i.astype(ftype) if align_corners else ratio * (i.astype(ftype) + ftype(0.5)) - ftype(0.5)
    real = np.maximum(real, ftype(0))
    i0 = np.minimum(np.floor(real).astype(np.int64), n - 1)
    lambda1 = np.clip(real - i0.astype(ftype), 0, 1).astype(ftype)
    i1 = i0 + (i0 < n - 1)
    return np.stack([i0, i1], 1), np.stack([ftype(1) - lambda1, lambda1], 1)


def cubic_taps(n: int, o: int, align_corners: bool, scale: float | None, ftype) -> tuple[np.ndarray, np.ndarray]:
    """(o, 4) source indices (clamped to the input) and Keys cubic weights (A = -0.75) of bicubic interpolation."""
    i = np.arange(o)
    ratio = _scale(n, o, align_corners, scale, ftype)
    real = ratio * i.astype(ftype) if align_corners else ratio * (i.astype(ftype) + ftype(0.5)) - ftype(0.5)
    start = np.minimum(np.floor(real).astype(np.int64), n - 1)
    t = np.clip(real - start.astype(ftype), 0, 1).astype(ftype)
    a = ftype(-0.75)

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], 1).astype(ftype)
    indices = np.clip(start[:, None] + np.arange(-1, 3), 0, n - 1)
    return indices, weights


# -- the op ---------------------------------------------------------------------------------------------------
class Resample(Function):
    """Along each (axis, indices (o, taps), weights (o, taps) or None): out = sum over taps of weight * x[index]."""

    def forward(self, x, maps):
        self.maps, self.shape = maps, x.shape
        for axis, indices, weights in maps:
            x = _along(x, axis, indices, weights)
        return x

    def backward(self, g):
        shapes = [self.shape]
        for axis, indices, _ in self.maps[:-1]:
            shapes.append(shapes[-1][:axis] + (len(indices),) + shapes[-1][axis + 1:])
        for (axis, indices, weights), shape in zip(reversed(self.maps), reversed(shapes)):
            moved = np.moveaxis(g, axis, 0)
            summed = np.zeros((shape[axis],) + moved.shape[1:], g.dtype)
            for t in range(indices.shape[1]):
                share = moved if weights is None else moved * _column(weights[:, t], moved.ndim)
                np.add.at(summed, indices[:, t], share)  # positions read by several outputs gather every share
            g = np.moveaxis(summed, 0, axis)
        return (g,)


def _column(w: np.ndarray, ndim: int) -> np.ndarray:
    return w.reshape((-1,) + (1,) * (ndim - 1))


def _along(x: np.ndarray, axis: int, indices: np.ndarray, weights) -> np.ndarray:
    """The weighted gather along one axis."""
    if weights is None:
        return np.take(x, indices[:, 0], axis=axis)
    shape = (-1,) + (1,) * (x.ndim - axis - 1)
    out = np.take(x, indices[:, 0], axis=axis) * weights[:, 0].reshape(shape)
    for t in range(1, indices.shape[1]):
        out += np.take(x, indices[:, t], axis=axis) * weights[:, t].reshape(shape)
    return out


# -- F.interpolate ------------------------------------------------------------------------------------------------
def _output_size(x: Tensor, size, scale_factor, mode: str, recompute_scale_factor) -> tuple[list, list]:
    """(output sizes, scale factors passed on to the kernels or None each), as torch.nn.functional.interpolate."""
    dims = x.ndim - 2
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
        if isinstance(size, (list, tuple)):
            if len(size) != dims:
                raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input "
                                 f"with spatial dimensions of {list(x.shape[2:])} and output size of {size}. Please "
                                 f"provide input tensor in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, "
                                 f"...,oK) format.")
            return [int(s) for s in size], [None] * dims
        return [int(size)] * dims, [None] * dims
    if scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    if isinstance(scale_factor, (list, tuple)):
        if len(scale_factor) != dims:
            raise ValueError(f"Input and scale_factor must have the same number of spatial dimensions, but got input "
                             f"with spatial dimensions of {list(x.shape[2:])} and scale_factor of shape "
                             f"{scale_factor}. Please provide input tensor in (N, C, d1, d2, ...,dK) format and "
                             f"scale_factor in (s1, s2, ...,sK) format.")
        factors = [float(f) for f in scale_factor]
    else:
        factors = [float(scale_factor)] * dims
    sizes = [math.floor(n * f) for n, f in zip(x.shape[2:], factors)]
    # 'area' and recompute_scale_factor infer the scales from the sizes; otherwise the kernels use the factors.
    return sizes, [None] * dims if recompute_scale_factor or mode == "area" else factors


def _check(x: Tensor, mode: str, align_corners, antialias: bool) -> None:
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
    if antialias:
        raise NotImplementedError("interpolate(antialias=True) is not supported by the engine")
    if x.ndim not in (3, 4, 5) or mode not in _MODES or _LINEAR_RANK.get(mode, x.ndim) != x.ndim:
        if mode in _LINEAR_RANK and x.ndim in (3, 4, 5):
            need = _LINEAR_RANK[mode]
            raise NotImplementedError(f"Got {x.ndim}D input, but {mode} mode needs {need}D input")
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {x.ndim}D) for the "
                                  f"modes: nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact "
                                  f"(got {mode})")
    if not x.is_floating_point():
        raise NotImplementedError(f"interpolate ({mode}) needs a floating point input, but got {x.dtype}")


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resize the spatial dims of (N, C, ...) input to size or by scale_factor, as torch.nn.functional.interpolate."""
    _check(input, mode, align_corners, antialias)
    sizes, scales = _output_size(input, size, scale_factor, mode, recompute_scale_factor)
    if min(sizes) <= 0:
        names = ("D", "H", "W")[-len(sizes):]
        shown = ", ".join(f"{k}: {v}" for k, v in zip(names, input.shape[2:]))
        raise RuntimeError(f"Input and output sizes should be greater than 0, but got input ({shown}) output "
                           f"({', '.join(f'{k}: {v}' for k, v in zip(names, sizes))})")
    if mode == "area":
        return (adaptive_avg_pool1d if input.ndim == 3 else adaptive_avg_pool2d)(input, sizes)
    ftype = np.float64 if input._data.dtype == np.float64 else np.float32  # ATen's opmath type
    maps = []
    for axis in reversed(range(2, input.ndim)):  # the last axis first, as ATen's separable kernel
        n, o, scale = input.shape[axis], sizes[axis - 2], scales[axis - 2]
        if mode in ("nearest", "nearest-exact"):
            maps.append((axis, nearest_taps(n, o, scale, mode == "nearest-exact"), None))
        elif mode == "bicubic":
            maps.append((axis, *cubic_taps(n, o, bool(align_corners), scale, ftype)))
        else:
            maps.append((axis, *linear_taps(n, o, bool(align_corners), scale, ftype)))
    return Resample.apply(input, maps)


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None) -> Tensor:
    """The deprecated name of interpolate."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """interpolate with mode='nearest'."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """interpolate with mode='bilinear' and align_corners=True."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# -- pixel shuffle ------------------------------------------------------------------------------------------------
def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r): channel blocks become r x r pixel blocks."""
    r = upscale_factor
    if input.ndim < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
                           f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    k = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W): the inverse of pixel_shuffle."""
    r = downscale_factor
    if input.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    *lead, c, h, w = input.shape
    for name, size, axis in (("height", h, -2), ("width", w, -1)):
        if size % r:
            raise RuntimeError(f"pixel_unshuffle expects {name} to be divisible by downscale_factor, but "
                               f"input.size({axis})={size} is not divisible by {r}")
    k = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)
