"""The models a job evaluates: each one's name, factory, weights and keyword arguments, paired from the options.

--model, --weights and --name are repeatable and paired by order. Zoo models need no weights: when
fewer weights than models are given, they pair in order with the models that are not zoo names. A
model's name (the prefix of its prediction columns, its key in metrics.json) defaults to its
factory's name, made unique with -2, -3 ...
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import zoo
from cluster import storage
from cluster.errors import InputError


@dataclass(frozen=True)
class ModelSpec:
    """One model of a job: its name, factory (a zoo name, 'package.module:factory' or a callable), weights, kwargs."""

    name: str
    model: str | Callable
    weights: str | None
    kwargs: dict
    input_shape: tuple[int, ...] | None = None  # a zoo model's own row shape, when the job gives none

    def factory(self) -> Callable:
        """The callable that builds the model; InputError naming the model when it cannot be found."""
        if callable(self.model):
            return self.model
        if ":" not in self.model:
            if self.model not in zoo.FACTORIES:
                raise InputError(f"unknown model {self.model!r}: give a zoo name "
                                 f"({', '.join(sorted(zoo.FACTORIES))}) or 'package.module:factory'")
            return zoo.FACTORIES[self.model]
        return imported(self.model, "model")

    def reference(self) -> str:
        """The model as a person reads it: its zoo or factory reference, or a callable's qualified name."""
        return reference(self.model)

    def label(self) -> str:
        """The model as messages name it: its reference, and its name when that is not the default."""
        return self.reference() if self.name == default_name(self.model) else f"{self.name} ({self.reference()})"

    def describe(self) -> str:
        """The model and its weights, as messages name them."""
        return self.label() + (f" with weights {storage.redact(self.weights)}" if self.weights else "")


def reference(model: str | Callable) -> str:
    return model if isinstance(model, str) else getattr(model, "__qualname__", "factory")


def default_name(model: str | Callable) -> str:
    """A model's name unless --name gives one: the zoo name, or the factory function's name."""
    if isinstance(model, str):
        return model.rpartition(":")[2] or model
    return getattr(model, "__name__", type(model).__name__)


def is_zoo(model) -> bool:
    return isinstance(model, str) and model in zoo.FACTORIES


def listed(value) -> tuple:
    """One value or several (a list or tuple) as a tuple; None as ()."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def paired_weights(models: tuple, weights: tuple) -> tuple:
    """Each model's weights: one per model, or one per non-zoo model in order, or none; zoo models' shipped ones."""
    free = [i for i, m in enumerate(models) if not is_zoo(m)]
    if len(weights) == len(models):
        given = dict(enumerate(weights))
    elif len(weights) == len(free) or not weights:
        given = dict(zip(free, weights))
    else:
        raise InputError(f"{len(weights)} --weights for {len(models)} --model ({len(free)} of them not zoo models): "
                         f"give one per model, one per non-zoo model in order, or none")
    paired = []
    for i, model in enumerate(models):
        location = given.get(i)
        if location:
            paired.append(storage.absolute(str(location)))
        else:
            paired.append(str(zoo.WEIGHTS[model]) if is_zoo(model) else None)
    return tuple(paired)


def unique_names(models: tuple, names: tuple) -> tuple[str, ...]:
    """The given names (one per model, distinct), or each factory's name made unique with -2, -3 ..."""
    if names:
        if len(names) != len(models):
            raise InputError(f"{len(names)} --name for {len(models)} --model: give one name per model, or none")
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise InputError(f"--name: expected a non-empty name, got {name!r}")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InputError(f"--name {repeated[0]!r} is given to several models: each model needs its own name")
        return tuple(names)
    chosen: list[str] = []
    for model in models:
        base, suffix = default_name(model), 1
        name = base
        while name in chosen:
            suffix += 1
            name = f"{base}-{suffix}"
        chosen.append(name)
    return tuple(chosen)


def per_model_kwargs(kwargs, count: int) -> tuple[dict, ...]:
    """model_kwargs as one dict per model: a dict for all, or a list of dicts one per model."""
    if isinstance(kwargs, dict):
        return tuple(dict(kwargs) for _ in range(count))
    kwargs = tuple(kwargs)
    if len(kwargs) != count or not all(isinstance(k, dict) for k in kwargs):
        raise InputError(f"model_kwargs: expected a dict for every model or a list of {count} dicts (one per "
                         f"model), got {len(kwargs)} entries")
    return tuple(dict(k) for k in kwargs)


def imported(ref: str, option: str) -> Callable:
    """The attribute a 'package.module:name' reference names; InputError naming it when it cannot be found."""
    module_name, _, attribute = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise InputError(f"{option} {ref!r}: cannot import module {module_name!r} ({e})") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise InputError(f"{option} {ref!r}: module {module_name!r} has no {attribute!r}") from None
