"""Optimizer: PyTorch's base class: parameter groups, per-parameter state, zero_grad, state dicts."""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

import numpy as np

from engine.grad_mode import enable_grad, no_grad
from engine.tensor import Tensor


class Optimizer:
    """Holds parameter groups (dicts of params + options) and per-parameter state; subclasses update."""

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {type(params).__name__}")
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append a group: its 'params' plus options, any option left out taking the optimizer's default."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            _check_param(p)
        group = {**param_group, "params": params}
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        if len({id(p) for p in params}) != len(params):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error", stacklevel=3)
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (set_to_none) or fill it with zeros in place."""
        for p in self._params():
            grad = p._grad
            if grad is None:
                continue
            if set_to_none:
                p._grad = None
            else:
                grad.grad_fn = None
                grad._requires_grad = False
                grad._data.fill(0)
                grad._mark_written()

    def step(self, closure: Callable[[], Any] | None = None):
        """One update of every parameter that has a gradient; returns closure()'s loss if given one."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._update_group(group)
        return loss

    def _update_group(self, group: dict[str, Any]) -> None:
        """Update the parameters of one group (the optimizer's algorithm)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """{'state': {index: per-param state}, 'param_groups': [options + 'params' as index lists]}."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": [index[id(p)] for p in group["params"]]})
        state = {index[id(k)] if isinstance(k, Tensor) else k: v for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore options and state saved by `state_dict()`, matching params by position in the groups."""
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(self.param_groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             "optimizer's group")
        by_index = dict(zip(chain.from_iterable(s["params"] for s in saved_groups),
                            chain.from_iterable(g["params"] for g in self.param_groups)))
        state: defaultdict[Tensor, dict] = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key in by_index:
                param = by_index[key]
                state[param] = {name: _cast_state(param, name, v) for name, v in value.items()}
            else:
                state[key] = value
        for group, saved in zip(self.param_groups, saved_groups):
            saved["params"] = group["params"]
        self.state = state
        self.param_groups = saved_groups
        self._after_load()

    def _after_load(self) -> None:
        """Bring loaded groups and state up to this optimizer's layout (as PyTorch's __setstate__ does)."""

    def _params(self):
        return (p for group in self.param_groups for p in group["params"])

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {key}: {group[key]}" for key in sorted(group) if key != "params")
        return "\n".join(lines) + "\n)"


def params_with_grad(group: dict[str, Any]) -> list[Tensor]:
    """The group's parameters that have a gradient: the ones a step updates."""
    return [p for p in group["params"] if p._grad is not None]


def gradient_as_used(g: np.ndarray, x: np.ndarray, weight_decay: float, maximize: bool) -> np.ndarray:
    """g itself, or a new array holding -g (maximize) plus weight_decay * x: grad.add(param, alpha=wd)."""
    if weight_decay == 0:
        return np.negative(g) if maximize else g
    d = np.multiply(x, scalar(weight_decay, x))
    if maximize:
        d -= g  # weight_decay * x + (-g): negation is exact and the sum commutes, so this rounds the same
    else:
        d += g
    return d


def scalar(value: float, like: np.ndarray):
    """A Python number as a scalar of the array's dtype, as PyTorch casts a kernel's scalar arguments."""
    return like.dtype.type(value)


def check_lr(lr: float) -> None:
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")


def check_weight_decay(weight_decay: float) -> None:
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def _check_param(p) -> None:
    if not isinstance(p, Tensor):
        raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
    if not (p.is_leaf or p.retains_grad):
        raise ValueError("can't optimize a non-leaf Tensor")
    if not p.is_floating_point():
        raise ValueError(f"optimizer can only optimize floating point Tensors, but one of the params has "
                         f"dtype {p.dtype}")


def _cast_state(param: Tensor, name: str, value):
    """A loaded state entry, copied (so the source optimizer may keep running) in the param's dtype."""
    if isinstance(value, Tensor):
        data = value._data if name == "step" else value._data.astype(param._data.dtype, copy=False)
        return Tensor._make(np.array(data, copy=True))
    return copy.deepcopy(value)
