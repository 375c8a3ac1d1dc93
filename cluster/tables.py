"""The driver's tables: one row per worker and one per shard, from the scheduler's records."""

from __future__ import annotations

import pyarrow as pa

from cluster import storage
from cluster.records import ShardRecord, WorkerRecord


def workers_table(workers: list[WorkerRecord], grad_mode: str, wall_s: float) -> pa.Table:
    """One row per worker that ran (or died trying), with its throughput and memory peaks."""
    rows = []
    for w in workers:
        rows.append({
            "worker": w.name, "node": w.node, "host": w.host, "pid": w.pid, "shards": w.shards, "rows": w.rows,
            "busy_s": w.busy_s, "wall_s": wall_s, "rows_per_s": w.rows / w.busy_s if w.busy_s else 0.0,
            "rss_peak_bytes": w.rss_peak_bytes, "engine_allocated_peak_bytes": w.engine_allocated_peak_bytes,
            "engine_saved_peak_bytes": w.engine_saved_peak_bytes, "arrow_peak_bytes": w.arrow_peak_bytes,
            "grad_mode": grad_mode, "failures": w.failures,
        })
    return pa.Table.from_pylist(rows, schema=WORKERS_SCHEMA)


def shards_table(records: list[ShardRecord]) -> pa.Table:
    """One row per shard: where it came from, who ran it, how often, how long, its memory peaks."""
    rows = []
    for r in records:
        s = r.summary
        rows.append({
            "shard": r.shard.index, "path": storage.redact(r.shard.location), "first_row": r.shard.first_row,
            "rows": r.shard.rows,
            "worker": r.worker, "node": r.node, "attempts": r.attempts, "seconds": s.seconds if s else None,
            "rss_peak_bytes": s.rss_peak_bytes if s else None,
            "engine_allocated_peak_bytes": s.engine_allocated_peak_bytes if s else None,
            "engine_saved_peak_bytes": s.engine_saved_peak_bytes if s else None,
            "arrow_peak_bytes": s.arrow_peak_bytes if s else None, "skipped": r.skipped,
        })
    return pa.Table.from_pylist(rows, schema=SHARDS_SCHEMA)


WORKERS_SCHEMA = pa.schema([
    ("worker", pa.string()), ("node", pa.string()), ("host", pa.string()), ("pid", pa.int64()),
    ("shards", pa.int64()), ("rows", pa.int64()), ("busy_s", pa.float64()), ("wall_s", pa.float64()),
    ("rows_per_s", pa.float64()), ("rss_peak_bytes", pa.int64()), ("engine_allocated_peak_bytes", pa.int64()),
    ("engine_saved_peak_bytes", pa.int64()), ("arrow_peak_bytes", pa.int64()), ("grad_mode", pa.string()),
    ("failures", pa.int64()),
])

SHARDS_SCHEMA = pa.schema([
    ("shard", pa.int64()), ("path", pa.string()), ("first_row", pa.int64()), ("rows", pa.int64()),
    ("worker", pa.string()), ("node", pa.string()), ("attempts", pa.int64()), ("seconds", pa.float64()),
    ("rss_peak_bytes", pa.int64()),
    ("engine_allocated_peak_bytes", pa.int64()), ("engine_saved_peak_bytes", pa.int64()),
    ("arrow_peak_bytes", pa.int64()), ("skipped", pa.string()),
])
