"""Adam and AdamW (decoupled weight decay), with amsgrad and maximize: PyTorch's update, step for step."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from engine import dtypes
from engine.optim.optimizer import (
    Optimizer,
    check_lr,
    check_weight_decay,
    gradient_as_used,
    params_with_grad,
    scalar,
)
from engine.tensor import Tensor


class Adam(Optimizer):
    """Adam; with decoupled_weight_decay=True it is AdamW."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        check_lr(lr)
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        check_weight_decay(weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _after_load(self) -> None:
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("decoupled_weight_decay", False)
            for p in group["params"]:
                state = self.state.get(p)
                if state and not isinstance(state["step"], Tensor):  # a plain count, from an older checkpoint
                    state["step"] = _step_counter(float(state["step"]))

    def _update_group(self, group: dict) -> None:
        for p in params_with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = _step_counter(0.0)
                state["exp_avg"] = Tensor._make(np.zeros_like(p._data))
                state["exp_avg_sq"] = Tensor._make(np.zeros_like(p._data))
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = Tensor._make(np.zeros_like(p._data))
            adam_update(p, state, lr=group["lr"], betas=group["betas"], eps=group["eps"],
                        weight_decay=group["weight_decay"], amsgrad=group["amsgrad"], maximize=group["maximize"],
                        decoupled_weight_decay=group["decoupled_weight_decay"])


class AdamW(Adam):
    """Adam with weight decay applied to the parameters directly, not through the gradient."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def _after_load(self) -> None:
        super()._after_load()
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


def _step_counter(value: float) -> Tensor:
    """state['step'] as PyTorch keeps it: a 0-d tensor, float64 only when that is the default dtype."""
    dtype = np.float64 if dtypes.get_default_dtype() is dtypes.float64 else np.float32
    return Tensor._make(np.array(value, dtype))


def adam_update(p: Tensor, state: dict, *, lr: float, betas: tuple[float, float], eps: float,
                weight_decay: float, amsgrad: bool, maximize: bool, decoupled_weight_decay: bool) -> None:
    """One Adam step on p in place, updating the moments in `state` (torch's _single_tensor_adam)."""
    beta1, beta2 = betas
    x, g = p._data, p._grad._data
    m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
    step_t = state["step"]
    step_t._data += 1
    step = step_t.item()
    d = gradient_as_used(g, x, 0 if decoupled_weight_decay else weight_decay, maximize)  # p.grad, or a new array
    scratch = np.empty_like(x)  # every temporary but the last goes here, computed in PyTorch's order of rounding
    if weight_decay != 0 and decoupled_weight_decay:
        np.multiply(x, scalar(1 - lr * weight_decay, x), out=x)

    _lerp_(m, d, scalar(1 - beta1, m), scratch)
    np.multiply(v, scalar(beta2, v), out=v)
    np.multiply(d, scalar(1 - beta2, v), out=scratch)
    scratch *= d
    v += scratch  # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2): (value * t1) * t2

    if amsgrad:
        v_max = state["max_exp_avg_sq"]._data
        np.maximum(v_max, v, out=v_max)
        v = v_max
    denom = np.sqrt(v, out=scratch)
    np.divide(denom, scalar((1 - beta2**step) ** 0.5, denom), out=denom)
    denom += scalar(eps, denom)
    update = np.multiply(m, scalar(-lr / (1 - beta1**step), m), out=None if d is g else d)  # d is spent
    update /= denom  # param.addcdiv_(exp_avg, denom, value=-step_size): (value * t1) / t2
    x += update
    for t in (p, step_t, *(state[k] for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if k in state)):
        t._mark_written()


def _lerp_(start: np.ndarray, end: np.ndarray, weight, scratch: np.ndarray) -> None:
    """start += weight * (end - start) in place, in the form PyTorch's lerp uses for this weight."""
    diff = np.subtract(end, start, out=scratch)
    if abs(weight) < 0.5:
        diff *= weight
        start += diff
    else:
        diff *= weight - 1  # end + (weight - 1) * (end - start)
        np.add(end, diff, out=start)
