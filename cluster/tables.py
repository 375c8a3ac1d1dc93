"""The driver's tables: one row per worker (of every run) and one per shard, from the run's records."""

from __future__ import annotations

import pyarrow as pa

from cluster import storage
from cluster.records import ShardRecord, WorkerRecord


def workers_table(workers: list[WorkerRecord], grad_mode: str, run_walls: dict[int, float]) -> pa.Table:
    """One row per worker that ran (or died trying), in every run of the output, with throughput and memory peaks."""
    rows = []
    for w in workers:
        rows.append({
            "run": w.identity.run, "worker": w.name, "node": w.identity.node, "host": w.identity.host,
            "pid": w.identity.pid, "shards": w.shards, "rows": w.rows, "busy_s": w.busy_s, "read_s": w.read_s,
            "compute_s": w.compute_s, "write_s": w.write_s,
            "wall_s": run_walls.get(w.identity.run), "rows_per_s": w.rows / w.busy_s if w.busy_s else 0.0,
            "rss_peak_bytes": w.rss_peak_bytes, "engine_allocated_peak_bytes": w.engine_allocated_peak_bytes,
            "engine_saved_peak_bytes": w.engine_saved_peak_bytes, "arrow_peak_bytes": w.arrow_peak_bytes,
            "grad_mode": grad_mode, "failures": w.failures,
        })
    return pa.Table.from_pylist(rows, schema=WORKERS_SCHEMA)


def shards_table(records: list[ShardRecord]) -> pa.Table:
    """One row per shard: where it came from, who ran it when, how often, how long, bad rows, memory peaks."""
    rows = []
    for r in records:
        s = r.summary
        rows.append({
            "shard": r.shard.index, "path": storage.redact(r.shard.location), "first_row": r.shard.first_row,
            "rows": r.shard.rows, "run": s.worker.run if s else None, "worker": r.worker, "node": r.node,
            "attempts": r.attempts, "speculative": r.speculative,
            "started_at": s.started_at if s else None, "finished_at": s.started_at + s.seconds if s else None,
            "seconds": s.seconds if s else None, "read_s": s.read_s if s else None,
            "compute_s": s.compute_s if s else None, "write_s": s.write_s if s else None,
            "bad_rows": s.bad_rows if s else None,
            "rss_peak_bytes": s.rss_peak_bytes if s else None,
            "engine_allocated_peak_bytes": s.engine_allocated_peak_bytes if s else None,
            "engine_saved_peak_bytes": s.engine_saved_peak_bytes if s else None,
            "arrow_peak_bytes": s.arrow_peak_bytes if s else None,
        })
    return pa.Table.from_pylist(rows, schema=SHARDS_SCHEMA)


def bad_rows_table(row_ids: list[int], location: str, reasons: list[str], details: list[str]) -> pa.Table:
    """Rows set aside, as bad_rows.parquet holds them."""
    return pa.table([pa.array(row_ids, pa.int64()), pa.array([location] * len(row_ids), pa.string()),
                     pa.array(reasons, pa.string()), pa.array(details, pa.string())], schema=BAD_ROWS_SCHEMA)


WORKERS_SCHEMA = pa.schema([
    ("run", pa.int64()), ("worker", pa.string()), ("node", pa.string()), ("host", pa.string()), ("pid", pa.int64()),
    ("shards", pa.int64()), ("rows", pa.int64()), ("busy_s", pa.float64()), ("read_s", pa.float64()),
    ("compute_s", pa.float64()), ("write_s", pa.float64()), ("wall_s", pa.float64()),
    ("rows_per_s", pa.float64()), ("rss_peak_bytes", pa.int64()), ("engine_allocated_peak_bytes", pa.int64()),
    ("engine_saved_peak_bytes", pa.int64()), ("arrow_peak_bytes", pa.int64()), ("grad_mode", pa.string()),
    ("failures", pa.int64()),
])

SHARDS_SCHEMA = pa.schema([
    ("shard", pa.int64()), ("path", pa.string()), ("first_row", pa.int64()), ("rows", pa.int64()),
    ("run", pa.int64()), ("worker", pa.string()), ("node", pa.string()), ("attempts", pa.int64()),
    ("speculative", pa.bool_()), ("started_at", pa.float64()), ("finished_at", pa.float64()),
    ("seconds", pa.float64()), ("read_s", pa.float64()), ("compute_s", pa.float64()), ("write_s", pa.float64()),
    ("bad_rows", pa.int64()), ("rss_peak_bytes", pa.int64()),
    ("engine_allocated_peak_bytes", pa.int64()), ("engine_saved_peak_bytes", pa.int64()),
    ("arrow_peak_bytes", pa.int64()),
])

BAD_ROWS_SCHEMA = pa.schema([("row_id", pa.int64()), ("file", pa.string()), ("reason", pa.string()),
                             ("detail", pa.string())])
