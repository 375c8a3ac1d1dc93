"""The output location of a run: part files, tables, metrics, job record, and the completion marker.

Layout: predictions/part-NNNNNN.parquet, workers.parquet, shards.parquet, metrics.json, job.json,
and _SUCCESS, written last: an output without it is not a finished run.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from cluster import storage

MARKER = "_SUCCESS"
SUMMARY_KEY = "evalpipe.shard_summary"  # part-file footer key holding the shard's summary (for resume)
PART_PREFIX, PART_SUFFIX = "part-", ".parquet"


def part_name(shard_index: int) -> str:
    """The part file of a shard: one name per shard, so a retried shard replaces, never duplicates."""
    return f"{PART_PREFIX}{shard_index:06d}{PART_SUFFIX}"


class Output:
    """Paths within one run's output location."""

    def __init__(self, location: str):
        self.location = storage.absolute(str(location))
        self.predictions = storage.join(self.location, "predictions")

    def path(self, name: str) -> str:
        return storage.join(self.location, name)

    def part(self, shard_index: int) -> str:
        """Where a shard's part file goes."""
        return storage.join(self.predictions, part_name(shard_index))

    def finished(self) -> bool:
        return storage.exists(self.path(MARKER))

    def has_any(self) -> bool:
        """True when the location holds anything at all."""
        filesystem, path = storage.resolve(self.location)
        info = filesystem.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            return False
        return bool(filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True)))

    def clear(self) -> None:
        """Delete everything in the location (for --overwrite)."""
        filesystem, path = storage.resolve(self.location)
        if filesystem.get_file_info(path).type == pafs.FileType.Directory:
            filesystem.delete_dir_contents(path, missing_dir_ok=True)

    def write_json(self, name: str, value) -> None:
        with storage.atomic_output(self.path(name)) as stream:
            stream.write(json.dumps(value, indent=2, sort_keys=False, default=str).encode() + b"\n")

    def read_json(self, name: str):
        filesystem, path = storage.resolve(self.path(name))
        with filesystem.open_input_stream(path) as stream:
            return json.loads(stream.read())

    def write_table(self, name: str, table: pa.Table) -> None:
        with storage.atomic_output(self.path(name)) as stream:
            pq.write_table(table, stream)

    def write_empty_predictions(self, schema: pa.Schema) -> None:
        """One empty part file, so a zero-row run still reads as a dataset with its schema."""
        with storage.atomic_output(self.part(0)) as stream:
            pq.write_table(schema.empty_table(), stream)

    def mark_finished(self) -> None:
        with storage.atomic_output(self.path(MARKER)) as stream:
            stream.write(b"")

    def predictions_dataset(self) -> ds.Dataset:
        filesystem, path = storage.resolve(self.predictions)
        return ds.dataset(path, format="parquet", filesystem=filesystem)

    def part_summaries(self) -> dict[str, str]:
        """Part file name -> the shard summary in its footer, for every complete part file present."""
        filesystem, path = storage.resolve(self.predictions)
        listing = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        found = {}
        for info in listing:
            name = info.path.rsplit("/", 1)[-1]
            if info.type == pafs.FileType.File and name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX):
                try:
                    with filesystem.open_input_file(info.path) as source:
                        metadata = pq.ParquetFile(source).metadata.metadata or {}
                except (pa.ArrowInvalid, OSError):
                    continue  # not a complete part file (copied in by hand, truncated): run its shard again
                summary = metadata.get(SUMMARY_KEY.encode())
                if summary is not None:
                    found[name] = summary.decode()
        return found
