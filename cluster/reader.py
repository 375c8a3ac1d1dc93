"""Reading one shard as batches of model inputs, zero-copy wherever Arrow allows it, with bad rows set aside.

Each input column is decoded by its kind (cluster.decode). A row is bad when an input is null, of
the wrong length, not finite or an image that does not decode, or its label is null or not a class.
With --on-bad-rows fail (the default) the first one fails the shard, naming the file and the row
id; with skip, bad rows leave the batch and travel beside it with their reasons. The checks cost
one pass over the batch when every row is good.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from cluster import columns, decode, storage
from cluster.config import JobConfig
from cluster.decode import Problem
from cluster.errors import ShardDataError
from cluster.planner import Shard
from cluster.slices import SliceCodes, batch_codes


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
    """Rows of a shard: the model's inputs (each with a leading row axis), labels, int64 row ids, rows set aside,
    each --slice-by slicing's codes, and (with intervals) the rows' bootstrap weights."""

    inputs: list[np.ndarray]
    labels: np.ndarray | None
    row_ids: np.ndarray
    location: str  # the file the rows come from, redacted
    bad: BadRows = field(default_factory=BadRows)
    slices: list[SliceCodes] = field(default_factory=list)  # one per slicing, in config.slice_by's order
    weights: np.ndarray | None = None  # (rows, replicates), set by the evaluator's read-ahead (cluster.results)

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
        weights = None if self.weights is None else self.weights[keep]
        return Batch([x[keep] for x in self.inputs], labels, self.row_ids[keep], self.location, self.bad,
                     [codes.take(keep) for codes in self.slices], weights), keep


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
    """Convert Arrow columns to the model's inputs; bad rows are set aside (or fail) by the job's policy."""
    first = shard.first_row + offset
    location = storage.redact(shard.location)
    row_ids = _row_ids(records, config, first, location)
    transform = config.transform_function()
    try:
        inputs, problems = _transformed(records, config, transform, location) if transform else \
            _inputs(records, config)
    except decode.RowError as e:
        raise ShardDataError(f"{location} row id {row_ids[e.row]}: {e}") from None
    labels = None
    if config.label is not None:
        labels, label_problems = _labels(records.column(config.label), config)
        problems += label_problems
    slices = [batch_codes(records, slicing) for slicing in config.slice_by]  # nulls are a slice: never a bad row
    batch = Batch(inputs, labels, row_ids, location, slices=slices)
    batch, _ = batch.without(problems, config.on_bad_rows)
    return batch


def _inputs(records: pa.RecordBatch, config: JobConfig) -> tuple[list[np.ndarray], list[Problem]]:
    """Each model input decoded by its column's kind; several --features columns stacked as one row of numbers."""
    inputs, problems = [], []
    for names in columns.model_inputs(config):
        if len(names) > 1 or decode.kind_of(names[0], records.column(names[0]).type) == "scalar" and \
                config.inputs is None:
            decoded = [decode.decode(records.column(name), name, config) for name in names]
            array = np.stack([values for values, _ in decoded], axis=1).astype(np.float32, copy=False)
            found = [p for _, found in decoded for p in found]
        else:
            array, found = decode.decode(records.column(names[0]), names[0], config,
                                         config.input_shape if config.inputs is None else None)
        if config.inputs is None and config.input_shape is not None:
            array = array.reshape((len(array), *config.input_shape))
        inputs.append(array)
        problems += found
    return inputs, problems


def _transformed(records: pa.RecordBatch, config: JobConfig, transform, location: str):
    """The model's inputs as the user's --transform makes them from the raw columns (nulls set aside first)."""
    names = [name for names in columns.model_inputs(config) for name in names]
    problems = [p for name in names for p in decode.null_rows(records.column(name), name)]
    raw = {name: decode.raw(records.column(name)) for name in names}
    try:
        made = transform(raw)
    except Exception as e:  # the user's code: name it, the file and the rows (not retried)
        raise ShardDataError(f"{location} rows {records.num_rows}: --transform {config.transform} raised "
                             f"{type(e).__name__}: {e}") from None
    inputs = [np.asarray(a) for a in (made if isinstance(made, (tuple, list)) else (made,))]
    for array in inputs:
        if len(array) != records.num_rows:
            raise ShardDataError(f"{location}: --transform {config.transform} returned {len(array)} rows for a "
                                 f"batch of {records.num_rows}")
    return inputs, problems


def _row_ids(records: pa.RecordBatch, config: JobConfig, first: int, location: str) -> np.ndarray:
    if config.id is None:
        return np.arange(first, first + records.num_rows, dtype=np.int64)
    column = records.column(config.id)
    if column.null_count:  # a row without an id cannot be named, kept or set aside
        raise ShardDataError(f"{location} rows {first}-{first + records.num_rows - 1} of the job: id column "
                             f"{config.id!r} holds {column.null_count} nulls")
    return column.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


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
