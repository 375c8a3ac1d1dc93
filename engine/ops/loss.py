"""Loss kernels that need their own backward: class-index NLL (fused with log_softmax) and binary cross-entropy.

They return the unreduced, per-element loss; engine.nn.losses_functional checks arguments and reduces.
"""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.broadcast import unbroadcast
from engine.ops.reduce import LogSoftmax


class ClassNLL(Function):
    """Per-sample -log p[target] along dim 1, optionally label-smoothed, from log-probs or fused with log_softmax.

    Inputs: x (N, C, ...); target (N, ...) int, ignored entries replaced by any valid class; weight_at_target
    (N, ...) = class weight of the target, 0 where ignored; keep (N, ...) 1 or 0 (ignored), in x's dtype;
    class_weight (C,) or None. Label smoothing mixes in the mean over classes of -w_c log p_c:
        loss = (1 - s) * weight_at_target * -log p[target] + s / C * keep * sum_c w_c * -log p_c
    """

    def forward(self, x, target, weight_at_target, keep, class_weight, smoothing, from_logits):
        # log_softmax's own kernel, so the two paths cannot drift apart.
        logp = LogSoftmax().forward(x, 1) if from_logits else x
        index = np.expand_dims(target, 1)
        loss = np.take_along_axis(logp, index, 1).squeeze(1)
        loss *= -(1 - smoothing) * weight_at_target
        if smoothing:
            weighted = logp if class_weight is None else logp * _along_classes(class_weight, logp.ndim)
            loss -= (smoothing / logp.shape[1]) * keep * weighted.sum(axis=1)
        self.save(logp if from_logits else None)
        self.shape, self.index, self.weight_at_target, self.keep = x.shape, index, weight_at_target, keep
        self.class_weight, self.smoothing, self.from_logits = class_weight, smoothing, from_logits
        return loss

    def backward(self, g):
        (logp,) = self.saved_arrays()
        s, classes = self.smoothing, self.shape[1]
        at_target = (1 - s) * self.weight_at_target * g  # -dloss/dlogp[target]
        smooth = (s / classes) * self.keep * g if s else None  # -dloss/dlogp[c] / w_c
        if self.from_logits:
            # log_softmax's backward folded in: dx = dlogp + softmax * (-sum_c dlogp_c), one pass.
            total = at_target if smooth is None else at_target + smooth * self._weight_sum()
            grad = np.exp(logp)
            grad *= np.expand_dims(total, 1)
        else:
            grad = np.zeros(self.shape, g.dtype)
        picked = np.take_along_axis(grad, self.index, 1) - np.expand_dims(at_target, 1)
        np.put_along_axis(grad, self.index, picked, 1)
        if smooth is not None:
            w = 1 if self.class_weight is None else _along_classes(self.class_weight, grad.ndim)
            grad -= np.expand_dims(smooth, 1) * w
        return grad, None, None, None, None, None, None

    def _weight_sum(self):
        return self.shape[1] if self.class_weight is None else self.class_weight.sum()


def _along_classes(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _log_clamped(a: np.ndarray) -> np.ndarray:
    """log(a) floored at -100, PyTorch's guard that keeps BCE finite at probabilities 0 and 1."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(a), a.dtype.type(-100))


class BinaryCrossEntropy(Function):
    """-(t * log(p) + (1 - t) * log(1 - p)) elementwise, the logs floored at -100."""

    def forward(self, p, t):
        self.save(p, t)
        return -(t * _log_clamped(p) + (1 - t) * _log_clamped(1 - p))

    def backward(self, g):
        p, t = self.saved_arrays()
        gp = gt = None
        if self.needs_input_grad[0]:
            # PyTorch's form: (p - t) / (p (1 - p)), the denominator kept from 0 by 1e-12.
            gp = g * (p - t) / np.maximum(p * (1 - p), p.dtype.type(1e-12))
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore"):  # unclamped here, as in PyTorch: +-inf at p = 0 or 1
                gt = g * (np.log1p(-p) - np.log(p))
        return gp, gt


def _softplus_neg(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(-x)) without overflow: log1p(exp(-|x|)) + max(-x, 0)."""
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))  # the logistic function without exp's overflow


class BinaryCrossEntropyWithLogits(Function):
    """(1 - t) * x + (1 + (pos_weight - 1) * t) * log(1 + exp(-x)): BCE of sigmoid(x), stable for any x.

    pos_weight is a numpy array (or None), not differentiated, as in PyTorch.
    """

    def forward(self, x, t, pos_weight):
        soft = _softplus_neg(x)
        self.save(x, t, pos_weight)
        if pos_weight is None:
            return (1 - t) * x + soft
        return (1 - t) * x + (1 + (pos_weight - 1) * t) * soft

    def backward(self, g):
        x, t, pos_weight = self.saved_arrays()
        gx = gt = None
        if self.needs_input_grad[0]:
            weight = 1 if pos_weight is None else 1 + (pos_weight - 1) * t
            gx = unbroadcast(g * ((1 - t) - weight * _sigmoid(-x)), x.shape)
        if self.needs_input_grad[1]:
            d = -x if pos_weight is None else (pos_weight - 1) * _softplus_neg(x) - x
            gt = unbroadcast(g * d, t.shape)
        return gx, gt, None  # pos_weight is a constant, as in PyTorch
