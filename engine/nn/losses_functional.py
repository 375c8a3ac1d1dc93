"""The functional losses (engine.nn.functional.cross_entropy, ...): argument checks, targets, reduction."""

from __future__ import annotations

import warnings

import numpy as np

from engine import ops
from engine.ops.loss import BinaryCrossEntropy, BinaryCrossEntropyWithLogits, ClassNLL
from engine.tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")


def reduction_name(size_average, reduce, reduction: str) -> str:
    """The reduction name, honouring PyTorch's legacy size_average / reduce flags."""
    if size_average is None and reduce is None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{reduction} is not a valid value for reduction")
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    name = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{name}' instead.",
                  stacklevel=3)
    return name


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


# -- class-index targets ------------------------------------------------------------------------
def _class_targets(input: Tensor, target: Tensor) -> tuple[Tensor, np.ndarray]:
    """input as (N, C, ...) and target as (N, ...) numpy, checked against each other (unbatched (C,) gets N=1)."""
    if target._data.dtype not in (np.int64, np.uint8):
        raise RuntimeError(f"expected target dtype to be Long or Byte (int64 or uint8), but got {target.dtype!r}")
    if input.dim() == 0:
        raise ValueError("Expected 1 or more dimensions (got 0)")
    if input.dim() == 1:
        if target.dim() != 0:
            raise RuntimeError(f"0D target tensor expected for an input of shape {list(input.shape)}, "
                               f"got target of shape {list(target.shape)}")
        return input.reshape(1, -1), target._data.reshape(1)
    if target.dim() == 0 or input.shape[0] != target.shape[0]:
        batch = target.shape[0] if target.dim() else "none, a 0D target"
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size ({batch}).")
    if input.dim() == 2 and target.dim() != 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise RuntimeError(f"Expected target size {list(expected)}, got {list(target.shape)}")
    return input, target._data


def _class_nll(input: Tensor, target: Tensor, weight, ignore_index: int, reduction: str,
               smoothing: float, from_logits: bool) -> Tensor:
    """The shared body of nll_loss (from log-probabilities) and cross_entropy with class indices (from logits)."""
    x, t = _class_targets(input, target)
    classes, dtype = x.shape[1], x._data.dtype
    if weight is not None and weight.numel() != classes:
        raise RuntimeError(f"weight tensor should be defined either for all {classes} classes or no classes but "
                           f"got weight tensor of shape: {list(weight.shape)}")
    keep = t != ignore_index
    bad = keep & ((t < 0) | (t >= classes))
    if bad.any():
        raise IndexError(f"Target {t[bad][0]} is out of bounds.")
    safe = np.where(keep, t, 0)  # ignored entries point at class 0; their weight of 0 removes them
    class_weight = None if weight is None else weight._data.astype(dtype, copy=False)
    kept = keep.astype(dtype)
    at_target = kept if class_weight is None else class_weight[safe] * kept
    loss = ClassNLL.apply(x, safe, at_target, kept, class_weight, smoothing, from_logits)
    if reduction == "none":
        return loss.reshape(()) if input.dim() == 1 else loss
    if reduction == "sum":
        return loss.sum()
    with np.errstate(divide="ignore", invalid="ignore"):  # every target ignored: 0/0 is nan, as in PyTorch
        return loss.sum() / float(at_target.sum(dtype=np.float64))  # the mean over the targets' total weight


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None, ignore_index: int = -100,
             reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices, from log-probabilities along dim 1."""
    return _class_nll(input, target, weight, ignore_index, reduction_name(size_average, reduce, reduction), 0.0, False)


def _probability_cross_entropy(input: Tensor, target: Tensor, weight, ignore_index: int, reduction: str,
                               smoothing: float) -> Tensor:
    if not target.is_floating_point():
        raise RuntimeError(f"Expected floating point type for target with class probabilities, got {target.dtype!r}")
    if ignore_index >= 0:
        raise RuntimeError("ignore_index is not supported for floating point target")
    class_dim = 0 if input.dim() == 1 else 1
    classes = input.shape[class_dim]
    if smoothing:
        target = target * (1 - smoothing) + smoothing / classes
    terms = ops.log_softmax(input, class_dim) * target
    if weight is not None:
        terms = terms * weight.reshape((-1,) + (1,) * (input.dim() - class_dim - 1))
    if reduction == "none":
        return -terms.sum(class_dim)
    total = -terms.sum()
    return total / (input.numel() // classes) if reduction == "mean" else total


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits (N, C, ...) against class indices (N, ...) or class probabilities (N, C, ...)."""
    reduction = reduction_name(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if input.shape == target.shape:  # PyTorch's rule: same shape means class probabilities
        return _probability_cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)
    return _class_nll(input, target, weight, ignore_index, reduction, float(label_smoothing), True)


# -- elementwise losses -------------------------------------------------------------------------
def _warn_if_broadcast(input: Tensor, target: Tensor) -> None:
    if input.shape != target.shape:
        try:
            np.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            raise RuntimeError(f"The size of input {list(input.shape)} must broadcast with the size of target "
                               f"{list(target.shape)}") from None
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. Please ensure they have "
                      "the same size.", stacklevel=3)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """(input - target)^2, reduced."""
    reduction = reduction_name(size_average, reduce, reduction)
    _warn_if_broadcast(input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """|input - target|, reduced."""
    reduction = reduction_name(size_average, reduce, reduction)
    _warn_if_broadcast(input, target)
    return _reduce((input - target).abs(), reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """BCE of probabilities in [0, 1], each log floored at -100 as in PyTorch."""
    reduction = reduction_name(size_average, reduce, reduction)
    if target.shape != input.shape:
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}) "
                         "is deprecated. Please ensure they have the same size.")
    if target.dtype is not input.dtype:
        raise RuntimeError(f"Found dtype {target.dtype!r} but expected {input.dtype!r} (target must match input)")
    if input.numel() and not ((input._data >= 0) & (input._data <= 1)).all():
        raise RuntimeError("all elements of input should be between 0 and 1")
    loss = BinaryCrossEntropy.apply(input, target)
    return _reduce(loss if weight is None else loss * weight, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """BCE of sigmoid(input), computed stably from the logits; pos_weight scales the positive term."""
    reduction = reduction_name(size_average, reduce, reduction)
    if target.shape != input.shape:
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    if target.dtype is not input.dtype:
        target = target.to(input.dtype)
    pos = None if pos_weight is None else pos_weight._data.astype(input._data.dtype, copy=False)
    loss = BinaryCrossEntropyWithLogits.apply(input, target, pos)
    return _reduce(loss if weight is None else loss * weight, reduction)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding along a new last dim; num_classes=-1 means max + 1."""
    if tensor._data.dtype != np.int64:
        raise RuntimeError(f"one_hot is only applicable to index tensor of type LongTensor, got {tensor.dtype!r}.")
    values = tensor._data
    if num_classes == -1:
        if values.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(values.max()) + 1
    if values.size and values.min() < 0:
        raise RuntimeError(f"Class values must be non-negative, got {int(values.min())}.")
    if values.size and values.max() >= num_classes:
        raise RuntimeError(f"Class values must be smaller than num_classes ({num_classes}), got {int(values.max())}.")
    return Tensor._make((values[..., None] == np.arange(num_classes)).astype(np.int64))
