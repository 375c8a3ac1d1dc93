"""Building the job's models: each factory called once, its weights loaded, eval() set and checked."""

from __future__ import annotations

import engine
import engine.nn as nn
from cluster import storage
from cluster.errors import InputError
from cluster.model_specs import ModelSpec


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
        raise InputError(f"weights: cannot read {storage.redact(location)}: {e}") from None
    try:
        return engine.serialization.load_bytes(data, name=storage.redact(location))
    except ValueError as e:
        raise InputError(f"weights: {e}") from None


def build_model(spec: ModelSpec) -> nn.Module:
    """One of the job's models, weights loaded, in eval mode (every submodule checked)."""
    try:
        model = spec.factory()(**spec.kwargs)
    except InputError:
        raise
    except Exception as e:  # whatever a user's factory raises, the job cannot start: one line naming it
        raise InputError(f"model factory {spec.label()} raised {type(e).__name__}: {e}") from None
    if not isinstance(model, nn.Module):
        raise InputError(f"model factory {spec.describe()} returned {type(model).__name__}, "
                         "expected an engine.nn.Module")
    if spec.weights:
        try:
            model.load_state_dict(load_weights(spec.weights))
        except RuntimeError as e:
            raise InputError(f"weights {storage.redact(spec.weights)} do not fit model {spec.label()}: "
                             f"{e}") from None
    model.eval()
    for name, module in model.named_modules():
        if module.training:
            raise InputError(f"model submodule {name or '(root)'} ({type(module).__name__}) is still in training "
                             "mode after eval(): its train() does not propagate")
    return model
