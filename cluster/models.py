"""Naming a model and building it: a zoo name or 'module:factory', plus optional safetensors weights."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import engine
import engine.nn as nn
from cluster import storage
from cluster.errors import InputError


@dataclass(frozen=True)
class ModelSpec:
    """How a worker builds the model: factory (zoo name, 'pkg.module:function' or a callable), weights, kwargs."""

    factory: str | Callable
    weights: str | None = None
    kwargs: dict = field(default_factory=dict)

    def describe(self) -> str:
        name = self.factory if isinstance(self.factory, str) else getattr(self.factory, "__qualname__", "factory")
        return f"{name}" + (f" with weights {self.weights}" if self.weights else "")


def resolve_factory(factory: str | Callable) -> Callable:
    """The callable a factory name means; InputError naming it when it cannot be found."""
    if callable(factory):
        return factory
    if ":" in factory:
        module_name, _, attribute = factory.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise InputError(f"model {factory!r}: cannot import module {module_name!r} ({e})") from None
        try:
            return getattr(module, attribute)
        except AttributeError:
            raise InputError(f"model {factory!r}: module {module_name!r} has no {attribute!r}") from None
    import zoo
    if factory not in zoo.FACTORIES:
        raise InputError(f"unknown model {factory!r}: give a zoo name ({', '.join(sorted(zoo.FACTORIES))}) "
                         "or 'package.module:factory'")
    return zoo.FACTORIES[factory]


def load_weights(location: str) -> dict:
    """A state dict (safetensors or torch.save) from a local path or any URI pyarrow.fs resolves."""
    if not storage.is_uri(location):
        try:
            return engine.load(location)
        except (FileNotFoundError, ValueError) as e:
            raise InputError(f"weights: {e}") from None
    filesystem, path = storage.resolve(location)
    try:
        with filesystem.open_input_file(path) as source:
            data = source.read()
    except OSError as e:
        raise InputError(f"weights: cannot read {location}: {e}") from None
    try:
        return engine.serialization.load_bytes(data, name=location)
    except ValueError as e:
        raise InputError(f"weights: {e}") from None


def build_model(spec: ModelSpec) -> nn.Module:
    """The model, weights loaded, in eval mode."""
    factory = resolve_factory(spec.factory)
    model = factory(**spec.kwargs)
    if not isinstance(model, nn.Module):
        raise InputError(f"model factory {spec.describe()} returned {type(model).__name__}, "
                         "expected an engine.nn.Module")
    if spec.weights:
        try:
            model.load_state_dict(load_weights(spec.weights))
        except RuntimeError as e:
            raise InputError(f"weights {spec.weights} do not fit model {spec.describe()}: {e}") from None
    return model.eval()
