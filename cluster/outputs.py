"""The output location of a run: what it holds, how a shard's part is committed, and what may be deleted.

Layout: predictions/part-NNNNNN.parquet (one per shard), _bad_rows/part-NNNNNN.parquet (a shard's
bad rows, when it had any), bad_rows.parquet (all of them), workers.parquet, shards.parquet,
slices.parquet (with --slice-by),
metrics.json, job.json, report.html, _LEASE while a driver runs, and _SUCCESS, written last: an
output without it is not a finished run.

A worker writes each attempt at a shard under a hidden, attempt-unique name; only the driver
makes an attempt the shard's part (commit), so two attempts at one shard never race on one file
and a late or losing attempt is never visible. Only what this project writes is ever deleted.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from cluster import storage
from cluster.lease import LEASE

if TYPE_CHECKING:
    import pyarrow.dataset as ds

MARKER = "_SUCCESS"
JOB = "job.json"
WRITER = "evalpipe"  # job.json's "writer": how an output this project wrote is recognised
SUMMARY_KEY = "evalpipe.shard_summary"  # part-file footer key holding the shard's summary (for resume)
PREDICTIONS, BAD_ROW_PARTS, BAD_ROWS, SLICES = "predictions", "_bad_rows", "bad_rows.parquet", "slices.parquet"
PART_PREFIX, PART_SUFFIX = "part-", ".parquet"
# Every file name this project writes at the top of an output (and so may delete there), but the lease.
OWN_FILES = (MARKER, JOB, "metrics.json", "workers.parquet", "shards.parquet", BAD_ROWS, SLICES,
             "report.html")


def part_name(shard_index: int) -> str:
    """The committed part file of a shard: one name per shard, so a retried shard never duplicates."""
    return f"{PART_PREFIX}{shard_index:06d}{PART_SUFFIX}"


def attempt_name(shard_index: int, attempt: str) -> str:
    """A worker's file for one attempt at a shard: hidden (dataset discovery skips it) and unique."""
    return f".{PART_PREFIX}{shard_index:06d}.{attempt}{PART_SUFFIX}"


def _ours(name: str) -> bool:
    """A part, an attempt or a half-written temporary in predictions/ or _bad_rows/."""
    return name.startswith(PART_PREFIX) or _uncommitted(name)


def _uncommitted(name: str) -> bool:
    """An attempt, or the temporary an attempt is written to (hidden either way)."""
    return name.startswith(".") and PART_PREFIX in name


class Output:
    """Paths within one run's output location, and the operations on them."""

    def __init__(self, location: str):
        self.location = storage.absolute(str(location))
        self.predictions = storage.join(self.location, PREDICTIONS)
        self.bad_row_parts = storage.join(self.location, BAD_ROW_PARTS)

    def path(self, name: str) -> str:
        return storage.join(self.location, name)

    def part(self, shard_index: int) -> str:
        """Where a shard's committed part file is."""
        return storage.join(self.predictions, part_name(shard_index))

    def attempt(self, shard_index: int, attempt: str, bad_rows: bool = False) -> str:
        """Where a worker writes an attempt's predictions (or its bad rows)."""
        return storage.join(self.bad_row_parts if bad_rows else self.predictions, attempt_name(shard_index, attempt))

    def commit(self, shard_index: int, attempt: str, bad_rows: bool) -> None:
        """Make an attempt the shard's part (its bad rows first: a part present means the shard is whole).

        OSError when the attempt's file is not where the output says: written on another node's disk.
        """
        if bad_rows:
            storage.move(self.attempt(shard_index, attempt, bad_rows=True),
                         storage.join(self.bad_row_parts, part_name(shard_index)))
        storage.move(self.attempt(shard_index, attempt), self.part(shard_index))

    def discard(self, shard_index: int, attempt: str) -> None:
        """Delete an attempt that lost (another attempt at the shard was committed first)."""
        storage.delete(self.attempt(shard_index, attempt))
        storage.delete(self.attempt(shard_index, attempt, bad_rows=True))

    def sweep(self) -> None:
        """Delete every uncommitted attempt and half-written temporary left in the part directories."""
        for directory in (self.predictions, self.bad_row_parts):
            for info in storage.listing(directory):
                if _uncommitted(info.base_name):
                    storage.delete(storage.join(directory, info.base_name))

    def missing_parts(self, shard_indices) -> list[int]:
        """The shards whose committed part is not where the output says."""
        present = {info.base_name for info in storage.listing(self.predictions)}
        return [i for i in shard_indices if part_name(i) not in present]

    def finished(self) -> bool:
        return storage.exists(self.path(MARKER))

    def has_any(self) -> bool:
        """True when the location holds anything but a driver's lease."""
        return any(info.base_name != LEASE for info in storage.listing(self.location))

    def written_by_us(self) -> bool:
        """True when the location holds a job.json this project wrote."""
        try:
            return self.read_json(JOB).get("writer") == WRITER
        except (OSError, ValueError, AttributeError):
            return False

    def clear(self) -> None:
        """Delete a run this project wrote, and nothing else: the marker first, so a half-cleared run never
        looks finished; then its own files and parts. Anything else in the location stays."""
        storage.delete(self.path(MARKER))
        for directory in (self.predictions, self.bad_row_parts):
            for info in storage.listing(directory):
                if info.type == pafs.FileType.File and _ours(info.base_name):
                    storage.delete(storage.join(directory, info.base_name))
        for name in OWN_FILES:
            storage.delete(self.path(name))

    def write_json(self, name: str, value) -> None:
        with storage.atomic_output(self.path(name)) as stream:
            stream.write(json.dumps(value, indent=2, sort_keys=False, default=str).encode() + b"\n")

    def read_json(self, name: str):
        filesystem, path = storage.resolve(self.path(name))
        with filesystem.open_input_stream(path) as stream:
            return json.loads(stream.read())

    def write_table(self, name: str, table: pa.Table) -> None:
        with storage.atomic_output(self.path(name)) as stream:
            pq.write_table(table, stream, write_page_checksum=True)

    def read_table(self, name: str) -> pa.Table:
        filesystem, path = storage.resolve(self.path(name))
        with filesystem.open_input_file(path) as source:
            return pq.ParquetFile(source).read()  # (pq.read_table goes through pyarrow.dataset, which imports pandas)

    def write_empty_predictions(self, schema: pa.Schema) -> None:
        """One empty part file, so a zero-row run still reads as a dataset with its schema."""
        with storage.atomic_output(self.part(0)) as stream:
            pq.write_table(schema.empty_table(), stream)

    def merge_bad_rows(self, schema: pa.Schema) -> int:
        """Gather every committed shard's bad rows into bad_rows.parquet, streaming; the rows written."""
        parts = sorted(i.base_name for i in storage.listing(self.bad_row_parts) if i.base_name.startswith(PART_PREFIX))
        rows = 0
        with storage.atomic_output(self.path(BAD_ROWS)) as stream, \
                pq.ParquetWriter(stream, schema, write_page_checksum=True) as writer:
            for name in parts:
                filesystem, path = storage.resolve(storage.join(self.bad_row_parts, name))
                with filesystem.open_input_file(path) as source:
                    table = pq.ParquetFile(source).read()
                writer.write_table(table)
                rows += table.num_rows
        return rows

    def mark_finished(self) -> None:
        with storage.atomic_output(self.path(MARKER)) as stream:
            stream.write(b"")

    def predictions_dataset(self) -> ds.Dataset:
        import pyarrow.dataset as ds  # here: it imports pandas where installed, which workers never need
        filesystem, path = storage.resolve(self.predictions)
        return ds.dataset(path, format="parquet", filesystem=filesystem)

    def part_summaries(self) -> dict[int, str]:
        """Shard index -> the summary in its committed part's footer, for every complete part present."""
        found = {}
        for info in storage.listing(self.predictions):
            name = info.base_name
            if info.type != pafs.FileType.File or not (name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX)):
                continue
            try:
                filesystem, path = storage.resolve(storage.join(self.predictions, name))
                with filesystem.open_input_file(path) as source:
                    metadata = pq.ParquetFile(source).metadata.metadata or {}
                index = int(name[len(PART_PREFIX):-len(PART_SUFFIX)])
            except (pa.ArrowInvalid, OSError, ValueError):
                continue  # not a complete part file (copied in by hand, truncated): run its shard again
            summary = metadata.get(SUMMARY_KEY.encode())
            if summary is not None:
                found[index] = summary.decode()
        return found
