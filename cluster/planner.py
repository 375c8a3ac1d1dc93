"""Shard planning: inputs -> shards of about a target number of rows, from file metadata alone.

A shard is a file plus a range of its row groups (Parquet) or record batches (Arrow IPC), so a
worker can read it without touching the rest of the file. The plan is deterministic: the same
inputs and settings give the same shards, and every row a stable global number (file order, then
row order), which is its id when the data has no id column.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from cluster import columns, storage
from cluster.config import JobConfig
from cluster.errors import InputError


@dataclass(frozen=True)
class Shard:
    """Rows [first_row, first_row + rows) of the job: units [start, stop) of one file."""

    index: int
    location: str
    format: str
    start: int
    stop: int
    first_row: int
    rows: int

    def describe(self) -> str:
        unit = "row groups" if self.format == "parquet" else "record batches"
        return (f"{storage.redact(self.location)} ({unit} {self.start}-{self.stop - 1}, "
                f"rows {self.first_row}-{self.first_row + self.rows - 1} of the job)")


@dataclass(frozen=True)
class FileLayout:
    """What a file's metadata says: its schema and the rows in each row group / record batch."""

    file: storage.DataFile
    schema: pa.Schema
    unit_rows: tuple[int, ...]
    null_features: bool  # the metadata proves some feature value is null


def read_layout(file: storage.DataFile, config: JobConfig) -> FileLayout:
    """The file's layout, from its footer (Parquet) or record batch headers (Arrow IPC)."""
    filesystem, path = storage.resolve(file.location)
    try:
        if file.format == "parquet":
            with filesystem.open_input_file(path) as source:
                metadata = pq.ParquetFile(source).metadata
                schema = metadata.schema.to_arrow_schema()
                rows = tuple(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))
                nulls = _parquet_nulls(metadata, schema, config)
        else:
            with storage.open_ipc(file.location) as source:
                reader = ipc.open_file(source)
                schema = reader.schema
                rows = tuple(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
                nulls = False
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as e:
        kind = "Parquet" if file.format == "parquet" else "Arrow IPC"
        raise InputError(f"cannot read {storage.redact(file.location)} as {kind}: {e}") from None
    return FileLayout(file, schema, rows, nulls)


def _parquet_nulls(metadata: pq.FileMetaData, schema: pa.Schema, config: JobConfig) -> bool:
    """True when column statistics show a null in a feature column (leaf columns: lists count their values).

    Variable-length lists are left to the reader (their leaf statistics count an empty list as a null), and so are
    images, whose errors the reader words for the row (a struct with a path but no bytes is not a plain null).
    """
    inputs = [name for names in columns.model_inputs(config) for name in names]
    wanted = {name for name in inputs
              if schema.get_field_index(name) < 0 or not _read_for_nulls(schema.field(name).type)}
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            if column.path_in_schema.split(".")[0] in wanted and column.statistics is not None:
                if column.statistics.has_null_count and column.statistics.null_count > 0:
                    return True
    return False


def _read_for_nulls(kind: pa.DataType) -> bool:
    return (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind) or pa.types.is_struct(kind))


def plan(config: JobConfig) -> tuple[list[Shard], list[FileLayout]]:
    """Check every input file against the job's columns and split them into shards of about `shard_rows`.

    With a row limit, only the shards covering the first `limit` rows, the last one cut short.
    """
    layouts = [read_layout(f, config) for f in storage.list_inputs(config.data)]
    reference = None
    for layout in layouts:
        name = storage.redact(layout.file.location)
        columns.check_schema(config, layout.schema, name)
        if layout.null_features and config.on_bad_rows == "fail":
            raise InputError(f"{name}: an input column holds nulls (--on-bad-rows skip evaluates the other rows)")
        types = columns.used_types(config, layout.schema)
        if reference is None:
            reference = (name, types)
        elif types != reference[1]:
            differing = [c for c in types if types[c] != reference[1][c]]
            raise InputError(
                f"schemas disagree: column {differing[0]!r} is {reference[1][differing[0]]} in {reference[0]} "
                f"but {types[differing[0]]} in {name}")
    shards = _cut(layouts, config.shard_rows)
    return (shards if config.limit is None else _limit_rows(shards, config.limit)), layouts


def _limit_rows(shards: list[Shard], limit: int) -> list[Shard]:
    kept = []
    for shard in shards:
        if shard.first_row >= limit:
            break
        kept.append(replace(shard, rows=min(shard.rows, limit - shard.first_row)))
    return kept


def _cut(layouts: list[FileLayout], shard_rows: int) -> list[Shard]:
    """Group each file's consecutive units greedily into shards of at most `shard_rows` (a bigger unit stands alone)."""
    shards: list[Shard] = []
    first_row = 0
    for layout in layouts:
        start, rows = 0, 0
        for unit, unit_rows in enumerate(layout.unit_rows):
            if rows and rows + unit_rows > shard_rows:
                shards.append(Shard(len(shards), layout.file.location, layout.file.format, start, unit,
                                    first_row, rows))
                first_row += rows
                start, rows = unit, 0
            rows += unit_rows
        if rows:
            shards.append(Shard(len(shards), layout.file.location, layout.file.format, start,
                                len(layout.unit_rows), first_row, rows))
            first_row += rows
    return shards


def first_row_width(layouts: list[FileLayout], column: str) -> int | None:
    """The length of the first row of a list column (for variable-length lists with no declared shape)."""
    for layout in layouts:
        if not sum(layout.unit_rows):
            continue
        filesystem, path = storage.resolve(layout.file.location)
        if layout.file.format == "parquet":
            with filesystem.open_input_file(path) as source:
                first = next(pq.ParquetFile(source).iter_batches(batch_size=1, columns=[column]))
        else:
            with storage.open_ipc(layout.file.location) as source:
                reader = ipc.open_file(source)
                unit = next(i for i, rows in enumerate(layout.unit_rows) if rows)
                first = reader.get_batch(unit).select([column])
        value = first.column(0)[0]
        return len(value) if value.is_valid else None
    return None
