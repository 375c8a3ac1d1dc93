"""Reading one shard as batches of numpy arrays, zero-copy wherever Arrow allows it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from cluster import columns, storage
from cluster.config import JobConfig
from cluster.errors import ShardDataError
from cluster.planner import Shard


@dataclass
class Batch:
    """Rows of a shard: model inputs (rows, *input_shape) float32, labels and int64 row ids."""

    features: np.ndarray
    labels: np.ndarray | None
    row_ids: np.ndarray


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
    if shard.format == "parquet":
        filesystem, path = storage.resolve(shard.location)
        with filesystem.open_input_file(path) as source:
            parquet = pq.ParquetFile(source)
            yield from parquet.iter_batches(batch_size=config.batch_size, row_groups=range(shard.start, shard.stop),
                                            columns=needed, use_threads=False)
        return
    with storage.open_ipc(shard.location) as source:
        reader = ipc.open_file(source)
        for i in range(shard.start, shard.stop):
            yield reader.get_batch(i).select(needed)


def to_batch(records: pa.RecordBatch, config: JobConfig, shard: Shard, offset: int) -> Batch:
    """Convert Arrow columns to model inputs; errors name the file and the rows."""
    rows = records.num_rows
    first = shard.first_row + offset
    where = f"{storage.redact(shard.location)} rows {first}-{first + rows - 1} of the job"
    features = _features(records, config, where)
    shape = config.input_shape if config.input_shape is not None else features.shape[1:]
    try:
        features = features.reshape((rows, *shape))
    except ValueError:
        raise ShardDataError(f"{where}: {features.shape[1]} features per row do not fit input shape "
                             f"{'x'.join(map(str, shape))}") from None
    labels = _column(records, config.label, where) if config.label is not None else None
    if config.id is not None:
        row_ids = _column(records, config.id, where).astype(np.int64, copy=False)
    else:
        start = shard.first_row + offset
        row_ids = np.arange(start, start + rows, dtype=np.int64)
    return Batch(features, labels, row_ids)


def _column(records: pa.RecordBatch, name: str, where: str) -> np.ndarray:
    column = records.column(name)
    if column.null_count:
        raise ShardDataError(f"{where}: column {name!r} holds {column.null_count} nulls")
    return column.to_numpy(zero_copy_only=False)


def _features(records: pa.RecordBatch, config: JobConfig, where: str) -> np.ndarray:
    """(rows, width) float32: one list column viewed in place, or scalar columns stacked (one copy per batch)."""
    if not columns.list_column(config):
        scalars = [_column(records, name, where) for name in config.features]
        return np.stack(scalars, axis=1).astype(np.float32, copy=False)
    column = records.column(config.features[0])
    if column.null_count:
        raise ShardDataError(f"{where}: feature column {config.features[0]!r} holds {column.null_count} null rows")
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
            or pa.types.is_fixed_size_list(column.type)):
        return _column(records, config.features[0], where).astype(np.float32, copy=False).reshape(-1, 1)
    values = column.flatten()  # honours the slice offset; no copy
    if values.null_count:
        raise ShardDataError(f"{where}: feature column {config.features[0]!r} holds {values.null_count} null values")
    if pa.types.is_fixed_size_list(column.type):
        width = column.type.list_size
    else:
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        width = int(lengths[0]) if len(lengths) else 0
        if len(lengths) and (lengths != width).any():
            bad = int(np.flatnonzero(lengths != width)[0])
            raise ShardDataError(f"{where}: feature lists have different lengths "
                                 f"({width} in the first row, {int(lengths[bad])} in row {bad} of the batch)")
    flat = values.to_numpy(zero_copy_only=False)  # zero-copy for float32 without nulls
    return flat.astype(np.float32, copy=False).reshape(len(column), width)
