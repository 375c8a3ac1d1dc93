"""Normalisation: batch_norm (per channel, dim 1) and layer_norm (over the trailing dims), fused."""

from __future__ import annotations

import math

import numpy as np

from engine.autograd.function import Function
from engine.grad_mode import no_grad
from engine.tensor import Tensor


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A (C,) vector shaped (1, C, 1, ...) to broadcast along dim 1 of an ndim-dimensional input."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


class BatchNorm(Function):
    """y = (x - mean) * invstd * weight + bias per channel (dim 1).

    With `batch_stats`, mean and invstd are x's own (training), so backward also carries their
    dependence on x; otherwise they are constants (running statistics, evaluation).
    """

    def forward(self, x, weight, bias, mean, invstd, batch_stats):
        scale = invstd if weight is None else invstd * weight
        shift = -mean * scale if bias is None else bias - mean * scale
        # x * scale + shift, PyTorch's CPU form: two passes over x, and x is all backward needs.
        out = x * _per_channel(scale, x.ndim)
        out += _per_channel(shift, x.ndim)
        self.save(x, weight)
        self.mean, self.invstd, self.batch_stats = mean, invstd, batch_stats
        return out

    def backward(self, g):
        x, weight = self.saved_arrays()
        need_x, need_w, need_b = self.needs_input_grad[:3]
        axes = (0,) + tuple(range(2, x.ndim))
        invstd = self.invstd
        g_sum = g.sum(axis=axes)
        gx = gw = None
        if need_w or self.batch_stats:
            centred = x - _per_channel(self.mean, x.ndim)
            dot = (g * centred).sum(axis=axes)  # sum of g * (x - mean) per channel
            gw = dot * invstd if need_w else None
        if need_x:
            scale = invstd if weight is None else invstd * weight
            if self.batch_stats:
                n = x.size // x.shape[1]
                # d/dx through mean and variance: subtract g's mean and its projection on x - mean.
                centred *= _per_channel(dot * invstd * invstd / n, x.ndim)
                gx = g - _per_channel(g_sum / n, x.ndim)
                gx -= centred
                gx *= _per_channel(scale, x.ndim)
            else:
                gx = g * _per_channel(scale, x.ndim)
        return gx, gw, g_sum if need_b else None, None, None, None


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over the last `dims` dimensions."""

    def forward(self, x, weight, bias, dims, eps):
        axes = tuple(range(x.ndim - dims, x.ndim))
        xhat = x - x.mean(axis=axes, keepdims=True)
        rstd = 1 / np.sqrt(np.mean(xhat * xhat, axis=axes, keepdims=True) + x.dtype.type(eps))
        xhat *= rstd
        self.save(xhat, rstd, weight)
        self.axes = axes
        out = xhat * weight if weight is not None else xhat.copy()  # xhat itself is kept for backward
        if bias is not None:
            out += bias
        return out

    def backward(self, g):
        xhat, rstd, weight = self.saved_arrays()
        need_x, need_w, need_b = self.needs_input_grad[:3]
        lead = tuple(range(xhat.ndim - len(self.axes)))
        gx = None
        if need_x:
            gxhat = g * weight if weight is not None else g
            # Through the mean and the variance: remove gxhat's mean and its projection on xhat.
            projection = np.mean(gxhat * xhat, axis=self.axes, keepdims=True)
            gx = gxhat - np.mean(gxhat, axis=self.axes, keepdims=True)
            gx -= xhat * projection
            gx *= rstd
        gw = (g * xhat).sum(axis=lead) if need_w else None
        gb = g.sum(axis=lead) if need_b else None
        return gx, gw, gb, None, None


def _check_channels(name: str, t: Tensor | None, channels: int) -> None:
    if t is not None and t.numel() != channels:
        raise RuntimeError(f"{name} should contain {channels} elements not {t.numel()}")


def _batch_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and sum of squared deviations of x (two passes, for accuracy)."""
    axes = (0,) + tuple(range(2, x.ndim))
    mean = x.mean(axis=axes)
    centred = x - _per_channel(mean, x.ndim)
    return mean, np.sum(centred * centred, axis=axes)


def _blend_(buffer: Tensor, value: np.ndarray, momentum: float) -> None:
    """buffer = (1 - momentum) * buffer + momentum * value, in place, as a running statistic."""
    with no_grad():
        buffer.mul_(1 - momentum).add_(Tensor._make(value.astype(buffer._data.dtype)), alpha=momentum)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) by batch statistics (training, updating the running ones) or running ones."""
    if input.dim() < 2:
        raise ValueError(f"batch_norm expects an input of shape (N, C, ...), got {input.dim()}D input")
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        _check_channels(name, t, channels)
    if training:
        if input.numel() // max(channels, 1) == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {input.shape}")
        if eps <= 0:
            raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
        n = input.numel() // channels
        mean, squares = _batch_stats(input._data)
        var = squares / n  # normalise with the biased variance, track the unbiased one, as PyTorch
        if running_mean is not None:
            _blend_(running_mean, mean, momentum)
        if running_var is not None:
            _blend_(running_var, squares / (n - 1), momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("batch_norm in evaluation needs running_mean and running_var (or training=True)")
        if eps < 0:
            raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
        dtype = input._data.dtype
        mean, var = running_mean._data.astype(dtype, copy=False), running_var._data.astype(dtype, copy=False)
    invstd = 1 / np.sqrt(var + var.dtype.type(eps))
    return BatchNorm.apply(input, weight, bias, mean, invstd, training)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing dims given by normalized_shape, then scale and shift elementwise."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    dims = len(shape)
    if dims == 0 or input.dim() < dims or tuple(input.shape[input.dim() - dims:]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, shape))}], but got input of size{list(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, but got {name} of "
                               f"shape {list(t.shape)} and normalized_shape = {list(shape)}")
    if math.prod(shape) == 0:
        return input.clone()
    return LayerNorm.apply(input, weight, bias, dims, eps)


class GroupNorm(Function):
    """Normalisation over groups of channels (dim 1) of each sample, then a per-channel affine transform.

    Saves the input and the (N, G) statistics, as PyTorch does, and recomputes x-hat in backward.
    """

    def forward(self, x, weight, bias, groups, eps):
        n, c = x.shape[:2]
        xg = x.reshape(n, groups, -1)
        mean = xg.mean(axis=-1, keepdims=True)
        out = xg - mean
        rstd = 1 / np.sqrt(np.mean(out * out, axis=-1, keepdims=True) + x.dtype.type(eps))
        out *= rstd
        out = out.reshape(x.shape)
        if weight is not None:
            out *= _per_channel(weight, x.ndim)
        if bias is not None:
            out += _per_channel(bias, x.ndim)
        self.save(x, weight, mean, rstd)
        self.groups = groups
        return out

    def backward(self, g):
        x, weight, mean, rstd = self.saved_arrays()
        need_x, need_w, need_b = self.needs_input_grad[:3]
        n, c = x.shape[:2]
        axes = (0,) + tuple(range(2, x.ndim))
        xhat = ((x.reshape(n, self.groups, -1) - mean) * rstd).reshape(x.shape)
        gx = None
        if need_x:
            gxhat = (g * _per_channel(weight, x.ndim) if weight is not None else g).reshape(n, self.groups, -1)
            xhat_g = xhat.reshape(n, self.groups, -1)
            # Through the group mean and variance: remove gxhat's mean and its projection on xhat.
            gx = gxhat - gxhat.mean(axis=-1, keepdims=True)
            gx -= xhat_g * np.mean(gxhat * xhat_g, axis=-1, keepdims=True)
            gx *= rstd
            gx = gx.reshape(x.shape)
        gw = (g * xhat).sum(axis=axes) if need_w else None
        gb = g.sum(axis=axes) if need_b else None
        return gx, gw, gb, None, None


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise each sample over groups of num_groups channels, then scale and shift each channel."""
    if input.dim() < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.dim()}")
    channels = input.shape[1]
    if channels % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input of "
                           f"shape {list(input.shape)} and num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.dim() != 1 or t.numel() != channels):
            raise RuntimeError(f"Expected {name} to be a vector of size equal to the number of channels in input, "
                               f"but got {name} of shape {list(t.shape)} and input of shape {list(input.shape)}")
    return GroupNorm.apply(input, weight, bias, num_groups, eps)


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each (sample, channel) over its spatial positions, as PyTorch does: batch_norm over the
    input seen as one sample of N*C channels, the running statistics then averaged over the N samples."""
    if use_input_stats and input.numel() // max(input.shape[0] * input.shape[1], 1) <= 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size {input.shape}")
    n, c = input.shape[:2]
    flat = input.reshape(1, n * c, *input.shape[2:])

    def per_instance(t: Tensor | None) -> Tensor | None:
        return None if t is None else t.unsqueeze(0).expand(n, c).reshape(n * c)

    with no_grad():
        mean_n, var_n = per_instance(running_mean), per_instance(running_var)
        mean_n, var_n = (None if t is None else t.clone() for t in (mean_n, var_n))
    out = batch_norm(flat, mean_n, var_n, per_instance(weight), per_instance(bias), use_input_stats, momentum, eps)
    if use_input_stats:
        with no_grad():  # each buffer takes the mean over samples of its per-instance update
            for buffer, updated in ((running_mean, mean_n), (running_var, var_n)):
                if buffer is not None:
                    buffer.copy_(updated.reshape(n, c).mean(0))
    return out.reshape(input.shape)
