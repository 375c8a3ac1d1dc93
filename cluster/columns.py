"""Which columns feed the model, and checking them against a file's schema from metadata alone."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa

from cluster.errors import InputError


@dataclass(frozen=True)
class ColumnSpec:
    """Features from one list column or several numeric scalar columns; optional label and id columns.

    `input_shape` is the per-row shape the model takes (e.g. (1, 8, 8)); the features of each row
    are reshaped to it. Without it, rows stay flat vectors.
    """

    features: tuple[str, ...]
    label: str | None = None
    id: str | None = None
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self):
        if isinstance(self.features, str):
            object.__setattr__(self, "features", tuple(c.strip() for c in self.features.split(",") if c.strip()))
        if not self.features:
            raise InputError("no feature columns given")
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(int(n) for n in self.input_shape))

    @property
    def columns(self) -> list[str]:
        """Every column a shard reads, each once, features first."""
        names = list(self.features)
        for extra in (self.label, self.id):
            if extra is not None and extra not in names:
                names.append(extra)
        return names

    @property
    def list_column(self) -> bool:
        return len(self.features) == 1

    def width(self, schema: pa.Schema) -> int | None:
        """Features per row as the schema declares it (None for variable-length lists)."""
        if not self.list_column:
            return len(self.features)
        kind = schema.field(self.features[0]).type
        return kind.list_size if pa.types.is_fixed_size_list(kind) else None


def _numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def check_schema(spec: ColumnSpec, schema: pa.Schema, location: str) -> None:
    """Raise InputError naming the file and column when the schema cannot feed the model."""
    missing = [c for c in spec.columns if schema.get_field_index(c) < 0]
    if missing:
        raise InputError(f"{location}: no column {', '.join(map(repr, missing))}; "
                         f"available: {', '.join(schema.names)}")
    if spec.list_column:
        kind = schema.field(spec.features[0]).type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
            if not _numeric(kind.value_type):
                raise InputError(f"{location}: feature column {spec.features[0]!r} holds {kind.value_type}, "
                                 "not numbers")
        elif not _numeric(kind):
            raise InputError(f"{location}: feature column {spec.features[0]!r} is {kind}, "
                             "expected a list of numbers or numeric columns")
    else:
        for name in spec.features:
            kind = schema.field(name).type
            if not _numeric(kind):
                raise InputError(f"{location}: feature column {name!r} is {kind}, expected a number")
    for role, name in (("label", spec.label), ("id", spec.id)):
        if name is not None and not _numeric(schema.field(name).type):
            raise InputError(f"{location}: {role} column {name!r} is {schema.field(name).type}, expected a number")
    if spec.id is not None and not pa.types.is_integer(schema.field(spec.id).type):
        raise InputError(f"{location}: id column {spec.id!r} is {schema.field(spec.id).type}, expected integers")


def check_width(spec: ColumnSpec, schema: pa.Schema, location: str, expected: int | None) -> None:
    """The declared feature width must fit the input shape and the model's expected width."""
    width = spec.width(schema)
    if width is None:
        return  # variable-length lists are checked batch by batch as they are read
    if spec.input_shape is not None and math.prod(spec.input_shape) != width:
        raise InputError(f"{location}: {width} features per row do not fit input shape "
                         f"{'x'.join(map(str, spec.input_shape))} ({math.prod(spec.input_shape)} values)")
    if expected is not None and width != expected:
        raise InputError(f"{location}: the model takes {expected} features per row, the data has {width}")


def used_types(spec: ColumnSpec, schema: pa.Schema) -> dict[str, pa.DataType]:
    """The types of the columns a job reads (what must agree across files)."""
    return {name: schema.field(name).type for name in spec.columns}
