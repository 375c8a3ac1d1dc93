"""Reading one shard as batches of numpy arrays, zero-copy wherever Arrow allows it, with bad rows set aside.

A row is bad when its features are null, of the wrong length or not finite, or its label is null or
not a class index. With --on-bad-rows fail (the default) the first one fails the shard, naming the
file and the row id; with skip, bad rows leave the batch and travel beside it with their reasons.
The checks cost one pass over the batch when every row is good.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from cluster import columns, storage
from cluster.config import JobConfig
from cluster.errors import ShardDataError
from cluster.planner import Shard

# A check's finding: which rows it finds bad, a short reason (metrics.json counts them by it), and a detail per row.
Problem = tuple[np.ndarray, str, Callable[[int], str]]


@dataclass
class BadRows:
    """Rows set aside: their ids, a reason each (a short category) and the details."""

    row_ids: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.row_ids)

    def extend(self, other: BadRows) -> None:
        self.row_ids += other.row_ids
        self.reasons += other.reasons
        self.details += other.details


@dataclass
class Batch:
    """Rows of a shard: model inputs (rows, *input_shape) float32, labels, int64 row ids, and the rows set aside."""

    features: np.ndarray
    labels: np.ndarray | None
    row_ids: np.ndarray
    location: str  # the file the rows come from, redacted
    bad: BadRows = field(default_factory=BadRows)

    def without(self, problems: list[Problem], policy: str) -> tuple[Batch, np.ndarray | None]:
        """This batch less the rows the problems name (the first problem found names a row's reason), and the
        mask of rows kept (None when all are). With policy 'fail', the first bad row raises ShardDataError
        naming the file and row id.
        """
        bad = np.zeros(len(self.row_ids), bool)
        found: list[tuple[int, str, str]] = []
        for mask, reason, detail in problems:
            found += [(int(i), reason, detail(int(i))) for i in np.flatnonzero(mask & ~bad)]
            bad |= mask
        if not found:
            return self, None
        found.sort()
        if policy == "fail":
            i, _, detail = found[0]
            raise ShardDataError(f"{self.location} row id {self.row_ids[i]}: {detail}")
        for i, reason, detail in found:
            self.bad.row_ids.append(int(self.row_ids[i]))
            self.bad.reasons.append(reason)
            self.bad.details.append(detail)
        keep = ~bad
        labels = None if self.labels is None else self.labels[keep]
        return Batch(self.features[keep], labels, self.row_ids[keep], self.location, self.bad), keep


def read_shard(shard: Shard, config: JobConfig):
    """Yield the shard's rows as Batches of at most the job's batch size, streaming from storage.

    A shard may stop short of its last unit's end (a row limit): reading stops at `shard.rows`.
    """
    offset, batch_size = 0, config.batch_size
    for record_batch in _record_batches(shard, config):
        for start in range(0, record_batch.num_rows, batch_size):
            take = min(batch_size, shard.rows - offset)
            if take <= 0:
                return
            part = record_batch.slice(start, take)
            yield to_batch(part, config, shard, offset)
            offset += part.num_rows
    if offset != shard.rows:
        raise ShardDataError(f"{shard.describe()}: read {offset} rows where the metadata promised {shard.rows}")


def _record_batches(shard: Shard, config: JobConfig):
    needed = columns.needed(config)
    try:
        if shard.format == "parquet":
            filesystem, path = storage.resolve(shard.location)
            with filesystem.open_input_file(path) as source:
                # Pages that carry a checksum are verified: a corrupt page under an intact footer is an error.
                parquet = pq.ParquetFile(source, page_checksum_verification=True)
                yield from parquet.iter_batches(batch_size=config.batch_size, use_threads=False, columns=needed,
                                                row_groups=range(shard.start, shard.stop))
            return
        with storage.open_ipc(shard.location) as source:
            reader = ipc.open_file(source)
            for i in range(shard.start, shard.stop):
                yield reader.get_batch(i).select(needed)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:  # bad encodings: not retried
        raise ShardDataError(f"{shard.describe()}: cannot be read: {e}") from None
    except OSError as e:  # a failed page checksum is the data, not the storage: not retried either
        if "checksum" not in str(e):
            raise
        raise ShardDataError(f"{shard.describe()}: cannot be read: {e}") from None


def to_batch(records: pa.RecordBatch, config: JobConfig, shard: Shard, offset: int) -> Batch:
    """Convert Arrow columns to model inputs; bad rows are set aside (or fail) by the job's policy."""
    first = shard.first_row + offset
    location = storage.redact(shard.location)
    features, problems = _features(records, config)
    labels = None
    if config.label is not None:
        labels, label_problems = _labels(records.column(config.label), config)
        problems += label_problems
    batch = Batch(features, labels, _row_ids(records, config, first, location), location)
    batch, _ = batch.without(problems, config.on_bad_rows)
    shape = config.input_shape if config.input_shape is not None else batch.features.shape[1:]
    batch.features = batch.features.reshape((len(batch.row_ids), *shape))
    return batch


def _row_ids(records: pa.RecordBatch, config: JobConfig, first: int, location: str) -> np.ndarray:
    if config.id is None:
        return np.arange(first, first + records.num_rows, dtype=np.int64)
    column = records.column(config.id)
    if column.null_count:  # a row without an id cannot be named, kept or set aside
        raise ShardDataError(f"{location} rows {first}-{first + records.num_rows - 1} of the job: id column "
                             f"{config.id!r} holds {column.null_count} nulls")
    return column.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _features(records: pa.RecordBatch, config: JobConfig) -> tuple[np.ndarray, list[Problem]]:
    """(rows, width) float32 (bad rows zero-filled), and the problems found."""
    if not columns.list_column(config):
        return _scalars([records.column(name) for name in config.features], config.features)
    column, name = records.column(config.features[0]), config.features[0]
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
            or pa.types.is_fixed_size_list(column.type)):
        return _scalars([column], (name,))
    lengths = pc.list_value_length(column).fill_null(-1).to_numpy(zero_copy_only=False)
    if config.input_shape is not None:
        width = math.prod(config.input_shape)
    elif pa.types.is_fixed_size_list(column.type):
        width = column.type.list_size
    else:
        width = int(lengths[0]) if len(lengths) else 0
    problems: list[Problem] = []
    nulls = _null_rows(column)
    if nulls is not None:
        problems.append((nulls, "null feature", lambda i: f"feature column {name!r} holds a null"))
    for reason, rows in (("empty list", lengths == 0), ("wrong length", lengths > 0)):
        wrong = rows & (lengths != width)
        if wrong.any():
            problems.append((wrong, reason,
                             lambda i: f"feature column {name!r} holds {lengths[i]} values where {width} are expected"))
    if not problems:  # every row whole: a view of the Arrow buffer (zero-copy for float32)
        flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        features = flat.reshape(len(column), width)
    else:
        keep = ~np.logical_or.reduce([mask for mask, _, _ in problems])
        good = pc.list_flatten(column.filter(pa.array(keep))).to_numpy(zero_copy_only=False)
        features = np.zeros((len(column), width), np.float32)
        features[keep] = good.astype(np.float32, copy=False).reshape(int(keep.sum()), width)
    return features, problems + _non_finite(features)


def _scalars(values: list[pa.Array], names) -> tuple[np.ndarray, list[Problem]]:
    """Several numeric columns stacked as one row each (one copy per batch)."""
    stacked = np.stack([c.fill_null(0).to_numpy(zero_copy_only=False) for c in values], axis=1)
    features = stacked.astype(np.float32, copy=False)
    problems: list[Problem] = []
    if any(c.null_count for c in values):
        nulls = np.logical_or.reduce([c.is_null().to_numpy(zero_copy_only=False) for c in values])
        problems.append((nulls, "null feature", lambda i: f"feature columns {', '.join(names)} hold a null"))
    return features, problems + _non_finite(features)


def _null_rows(column: pa.Array) -> np.ndarray | None:
    """Rows that are null, or hold a null value, in a list column (None when there are none)."""
    values = pc.list_flatten(column)
    if not column.null_count and not values.null_count:
        return None
    rows = column.is_null().to_numpy(zero_copy_only=False).copy()
    if values.null_count:
        parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
        rows[parents[values.is_null().to_numpy(zero_copy_only=False)]] = True
    return rows


def _non_finite(features: np.ndarray) -> list[Problem]:
    """NaN or infinity in a row's features (one check over the batch when there is none)."""
    if np.isfinite(features).all():
        return []
    bad = ~np.isfinite(features.reshape(len(features), -1)).all(axis=1)
    return [(bad, "non-finite feature", lambda i: "features hold NaN or infinity")]


def _labels(column: pa.Array, config: JobConfig) -> tuple[np.ndarray, list[Problem]]:
    """The label column as numbers, and its problems: nulls, and for classification, values that are no class."""
    labels = column.fill_null(0).to_numpy(zero_copy_only=False)
    problems: list[Problem] = []
    if column.null_count:
        problems.append((column.is_null().to_numpy(zero_copy_only=False), "null label",
                         lambda i: f"label column {config.label!r} is null"))
    if config.task != "classification":
        return labels, problems
    given = labels
    if labels.dtype.kind == "f":
        fractional = ~np.isfinite(labels) | (labels != np.round(labels))
        if fractional.any():
            problems.append((fractional, "label not a class",
                             lambda i: f"label {given[i]} is not a class index (a whole number)"))
        labels = np.where(fractional, 0, labels).astype(np.int64)
    negative = labels < 0
    if negative.any():
        problems.append((negative, "label out of range", lambda i: f"label {given[i]} is negative"))
    return labels, problems
