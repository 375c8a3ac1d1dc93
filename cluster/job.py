"""One evaluation job, from its configuration to its written outputs: plan, probe, run on the pool, finish.

Everything here is plain Python; the Ray layer (cluster.pool) is imported only when there are
shards to run, so planning and checking a job, or importing `cluster`, never imports Ray.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.dataset as ds

from cluster import columns, metrics, planner, tracking
from cluster.config import JobConfig, versions
from cluster.errors import InputError
from cluster.evaluator import ShardEvaluator
from cluster.outputs import Output, part_name
from cluster.records import ShardRecord, ShardSummary, WorkerRecord
from cluster.report import write_report
from cluster.storage import redact
from cluster.tables import shards_table, workers_table


@dataclass
class EvalResult:
    """A finished job: metrics, per-worker and per-shard tables, and the predictions as a dataset."""

    metrics: dict
    workers: pa.Table
    shards: pa.Table
    predictions: ds.Dataset
    output: str
    wall_s: float


def evaluate(config=None, /, model=None, output=None, *, on_start: Callable[[int, int], None] | None = None,
             on_shard_done: Callable[[ShardRecord], None] | None = None, **options) -> EvalResult:
    """Evaluate the job's model on every row of its data with a pool of Ray actors; write and return the results.

    Give a JobConfig, or its options: `evaluate(data, model, output, label="y", ...)`, every JobConfig
    field by keyword. Input problems raise InputError before any actor starts; a failed job raises
    JobFailed. on_start(total_rows, resumed_rows) and on_shard_done(ShardRecord) report progress.
    """
    if not isinstance(config, JobConfig):
        given = {"data": config, "model": model, "output": output}
        config = JobConfig(**{k: v for k, v in given.items() if v is not None}, **options)
    elif model is not None or output is not None or options:
        raise TypeError("evaluate takes a JobConfig or the job's options, not both")
    started_at, start = datetime.now(timezone.utc), time.perf_counter()
    shards, schema = plan(config)
    out = Output(config.output)
    fingerprint = config.fingerprint(shards)
    done = _prepare_output(out, fingerprint, config)
    record = {"started": started_at.isoformat(), "fingerprint": fingerprint, "config": config.record(),
              "versions": versions()}
    out.write_json("job.json", record)

    records = [ShardRecord(s) for s in shards]
    for r in records:
        if part_name(r.shard.index) in done:
            r.summary, r.worker, r.attempts = ShardSummary.from_json(done[part_name(r.shard.index)]), "(earlier run)", 1
    todo = [r.shard for r in records if r.summary is None]
    workers: list[WorkerRecord] = []
    if todo:
        from cluster import pool  # the Ray layer, only now
        total, remaining = sum(s.rows for s in shards), sum(s.rows for s in todo)
        ready = None if on_start is None else (lambda: on_start(total, total - remaining))
        finished, workers = pool.run(config, todo, on_ready=ready, on_shard_done=on_shard_done)
        for r in finished:
            records[r.shard.index] = r
    elif not shards:
        out.write_empty_predictions(schema or pa.schema([("row_id", pa.int64())]))
    return _finish(out, config, records, workers, record, time.perf_counter() - start)


def plan(config: JobConfig) -> tuple[list[planner.Shard], pa.Schema | None]:
    """The job's shards, after checking its inputs and running one row through its model in this process.

    Bad paths, columns, weights or shapes raise InputError here, before any actor starts. Also returns
    the part files' schema (None when rows have no fixed shape: variable-length lists).
    """
    shards, layouts = planner.plan(config)
    schema = layouts[0].schema  # the planner has checked that every file agrees with it
    width = columns.width(config, schema)
    row_shape = config.input_shape or ((width,) if width is not None else None)
    evaluator = ShardEvaluator(config)  # builds the model: a bad factory or checkpoint fails here
    if row_shape is None:
        return shards, None
    label_type = schema.field(config.label).type if config.label else None
    return shards, evaluator.probe(row_shape, label_type)


def _prepare_output(out: Output, fingerprint: str, config: JobConfig) -> dict[str, str]:
    """Check the output location is free (or resumable); the part files already complete, by name."""
    name = redact(out.location)
    if config.overwrite:
        out.clear()
        return {}
    if not out.has_any():
        return {}
    if not config.resume:
        state = "a finished run" if out.finished() else "an unfinished run"
        raise InputError(f"output {name} already holds {state}; refusing to overwrite it "
                         "(resume it with --resume / resume=True, or replace it with --overwrite / overwrite=True)")
    try:
        previous = out.read_json("job.json")["fingerprint"]
    except (OSError, KeyError, ValueError):
        raise InputError(f"output {name} holds files but no job.json: not a run that can be resumed") from None
    if previous != fingerprint:
        raise InputError(f"output {name} holds a run with a different configuration; resuming would mix "
                         "the two (use a new output, or --overwrite / overwrite=True)")
    return out.part_summaries()


def _finish(out: Output, config: JobConfig, records: list[ShardRecord], workers: list[WorkerRecord], record: dict,
            wall: float) -> EvalResult:
    """Merge the shards' metrics, write the tables, metrics and job record, then the marker, last."""
    partial: dict = {}
    for r in records:
        if r.summary is not None:
            partial = metrics.merge(partial, r.summary.partial)
    result_metrics = metrics.finish(config.task, partial, config.top_k)
    rows = sum(r.summary.rows for r in records if r.summary is not None)
    result_metrics.update(rows=rows, wall_s=wall, rows_per_s=rows / wall if wall else 0.0,
                          skipped_shards=sum(1 for r in records if r.skipped))
    workers_out, shards_out = workers_table(workers, config.grad_mode, wall), shards_table(records)
    out.write_table("workers.parquet", workers_out)
    out.write_table("shards.parquet", shards_out)
    out.write_json("metrics.json", result_metrics)
    out.write_json("job.json", {**record, "finished": datetime.now(timezone.utc).isoformat(), "wall_s": wall})
    write_report(out.location)
    out.mark_finished()
    tracking.log_run(config.mlflow, out.location, config.record(), result_metrics)
    return EvalResult(result_metrics, workers_out, shards_out, out.predictions_dataset(), out.location, wall)
