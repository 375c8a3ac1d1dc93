"""Which columns feed the model, and as what: checked against a file's schema from metadata alone."""

from __future__ import annotations

import math

import pyarrow as pa

from cluster import decode, slices
from cluster.config import JobConfig
from cluster.errors import InputError


def model_inputs(config: JobConfig) -> list[tuple[str, ...]]:
    """The model's positional inputs, each as the column(s) it is made of.

    --inputs gives one column per input; --features gives the one input, from one column or
    stacked from several numeric columns.
    """
    if config.inputs is not None:
        return [(name,) for name in config.inputs]
    return [config.features]


def needed(config: JobConfig) -> list[str]:
    """Every column a shard reads, each once, inputs first, then the label, the id and the slice columns."""
    names: list[str] = []
    inputs = [c for columns in model_inputs(config) for c in columns]
    for name in [*inputs, config.label, config.id, *(c for slicing in config.slice_by for c in slicing)]:
        if name is not None and name not in names:
            names.append(name)
    return names


def declared_shape(config: JobConfig, schema: pa.Schema) -> tuple[int, ...] | None:
    """The per-row shape of a single input as the schema declares it (None when rows vary, or several inputs)."""
    if config.inputs is not None:
        return None
    if len(config.features) > 1:
        return (len(config.features),)
    kind = schema.field(config.features[0]).type
    if decode.kind_of(config.features[0], kind) == "scalar":
        return (1,)
    return decode.declared_shape(kind)


def _numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def check_schema(config: JobConfig, schema: pa.Schema, location: str) -> None:
    """Raise InputError naming the file and column when the schema cannot feed the model."""
    missing = [c for c in needed(config) if schema.get_field_index(c) < 0]
    sliced = [c for c in missing if any(c in slicing for slicing in config.slice_by)]
    if missing:
        option = "--slice-by: " if sliced == missing else ""
        raise InputError(f"{option}{location}: no column {', '.join(map(repr, missing))}; "
                         f"available: {', '.join(schema.names)}")
    for slicing in config.slice_by:
        for name in slicing:
            slices.check_type(name, schema.field(name).type, location)
    for columns in model_inputs(config):
        for name in columns:
            kind = schema.field(name).type
            try:
                found = decode.kind_of(name, kind)
            except InputError as e:
                raise InputError(f"{location}: {e}") from None
            if len(columns) > 1 and found != "scalar":
                raise InputError(f"{location}: feature column {name!r} is {kind}, expected a number "
                                 "(several --features columns are stacked as one row of numbers)")
    for role, name in (("label", config.label), ("id", config.id)):
        if name is not None and not _numeric(schema.field(name).type):
            raise InputError(f"{location}: {role} column {name!r} is {schema.field(name).type}, expected a number")
    if config.id is not None and not pa.types.is_integer(schema.field(config.id).type):
        raise InputError(f"{location}: id column {config.id!r} is {schema.field(config.id).type}, expected integers")
    _check_shape(config, schema, location)


def _check_shape(config: JobConfig, schema: pa.Schema, location: str) -> None:
    """A given --input-shape must fit what the column's type declares."""
    if config.input_shape is None:
        return
    if config.inputs is not None:
        raise InputError("--input-shape shapes the one input of --features; with --inputs each column's type "
                         "gives its shape")
    declared = declared_shape(config, schema)
    if declared is None:
        return  # variable-length lists are checked batch by batch as they are read
    name = config.features[0]
    shown = "x".join(map(str, config.input_shape))
    if decode.kind_of(name, schema.field(name).type) == "tensor":
        if tuple(declared) != config.input_shape:
            raise InputError(f"{location}: column {name!r} holds {'x'.join(map(str, declared))} tensors, but "
                             f"--input-shape says {shown}")
    elif math.prod(config.input_shape) != math.prod(declared):
        raise InputError(f"{location}: {math.prod(declared)} features per row do not fit input shape {shown} "
                         f"({math.prod(config.input_shape)} values)")


def used_types(config: JobConfig, schema: pa.Schema) -> dict[str, pa.DataType]:
    """The types of the columns a job reads (what must agree across files)."""
    return {name: schema.field(name).type for name in needed(config)}
