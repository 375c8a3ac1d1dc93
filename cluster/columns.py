"""Which columns feed the model, checked against a file's schema from metadata alone."""

from __future__ import annotations

import math

import pyarrow as pa

from cluster.config import JobConfig
from cluster.errors import InputError


def needed(config: JobConfig) -> list[str]:
    """Every column a shard reads, each once, features first."""
    names = list(config.features)
    for extra in (config.label, config.id):
        if extra is not None and extra not in names:
            names.append(extra)
    return names


def list_column(config: JobConfig) -> bool:
    """True when the features come from one (list) column rather than several scalar columns."""
    return len(config.features) == 1


def width(config: JobConfig, schema: pa.Schema) -> int | None:
    """Features per row as the schema declares it (None for variable-length lists)."""
    if not list_column(config):
        return len(config.features)
    kind = schema.field(config.features[0]).type
    return kind.list_size if pa.types.is_fixed_size_list(kind) else None


def _numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def check_schema(config: JobConfig, schema: pa.Schema, location: str) -> None:
    """Raise InputError naming the file and column when the schema cannot feed the model."""
    missing = [c for c in needed(config) if schema.get_field_index(c) < 0]
    if missing:
        raise InputError(f"{location}: no column {', '.join(map(repr, missing))}; "
                         f"available: {', '.join(schema.names)}")
    if list_column(config):
        kind = schema.field(config.features[0]).type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
            if not _numeric(kind.value_type):
                raise InputError(f"{location}: feature column {config.features[0]!r} holds {kind.value_type}, "
                                 "not numbers")
        elif not _numeric(kind):
            raise InputError(f"{location}: feature column {config.features[0]!r} is {kind}, "
                             "expected a list of numbers or numeric columns")
    else:
        for name in config.features:
            kind = schema.field(name).type
            if not _numeric(kind):
                raise InputError(f"{location}: feature column {name!r} is {kind}, expected a number")
    for role, name in (("label", config.label), ("id", config.id)):
        if name is not None and not _numeric(schema.field(name).type):
            raise InputError(f"{location}: {role} column {name!r} is {schema.field(name).type}, expected a number")
    if config.id is not None and not pa.types.is_integer(schema.field(config.id).type):
        raise InputError(f"{location}: id column {config.id!r} is {schema.field(config.id).type}, expected integers")


def check_width(config: JobConfig, schema: pa.Schema, location: str) -> None:
    """The declared feature width must fit the input shape."""
    declared = width(config, schema)
    if declared is None:
        return  # variable-length lists are checked batch by batch as they are read
    if config.input_shape is not None and math.prod(config.input_shape) != declared:
        raise InputError(f"{location}: {declared} features per row do not fit input shape "
                         f"{'x'.join(map(str, config.input_shape))} ({math.prod(config.input_shape)} values)")


def used_types(config: JobConfig, schema: pa.Schema) -> dict[str, pa.DataType]:
    """The types of the columns a job reads (what must agree across files)."""
    return {name: schema.field(name).type for name in needed(config)}
