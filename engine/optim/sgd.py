"""SGD with momentum, dampening, Nesterov, weight decay and maximize: PyTorch's update, step for step."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from engine.optim.optimizer import (
    Optimizer,
    check_lr,
    check_weight_decay,
    gradient_as_used,
    params_with_grad,
    scalar,
)
from engine.tensor import Tensor


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        check_lr(lr)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        check_weight_decay(weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _after_load(self) -> None:
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)

    def _update_group(self, group: dict) -> None:
        for p in params_with_grad(group):
            state = self.state[p] if group["momentum"] != 0 else None
            sgd_update(p, state, lr=group["lr"], momentum=group["momentum"], dampening=group["dampening"],
                       weight_decay=group["weight_decay"], nesterov=group["nesterov"], maximize=group["maximize"])


def sgd_update(p: Tensor, state: dict | None, *, lr: float, momentum: float, dampening: float,
               weight_decay: float, nesterov: bool, maximize: bool) -> None:
    """One SGD step on p in place, keeping the momentum buffer in `state` (torch's _single_tensor_sgd)."""
    x, g = p._data, p._grad._data
    d = gradient_as_used(g, x, weight_decay, maximize)  # p.grad itself, or a new array
    scratch = np.empty_like(x)
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = Tensor._make(d.copy() if d is g else d)
        else:
            b = buf._data
            np.multiply(b, scalar(momentum, b), out=b)
            b += np.multiply(d, scalar(1 - dampening, b), out=scratch)  # buf.add_(grad, alpha=1 - dampening)
            buf._mark_written()
        if nesterov:
            np.multiply(buf._data, scalar(momentum, x), out=scratch)
            d = np.add(d, scratch, out=scratch)  # grad.add(buf, alpha=momentum)
        else:
            d = buf._data
    x -= np.multiply(d, scalar(lr, x), out=scratch)  # param.add_(grad, alpha=-lr)
    p._mark_written()
