"""One evaluation job, from its configuration to its written outputs: plan, probe, run on the pool, finish.

Everything here is plain Python; the Ray layer (cluster.pool) is imported only when there are
shards to run, so planning and checking a job, or importing `cluster`, never imports Ray.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from cluster import columns, decode, figures, planner, storage, tracking
from cluster.config import JobConfig, versions
from cluster.errors import InputError, JobFailed, ShardDataError
from cluster.evaluator import ShardEvaluator
from cluster.lease import Lease
from cluster.outputs import JOB, SLICES, WRITER, Output
from cluster.reader import Batch, read_shard
from cluster.records import ShardRecord, ShardSummary, WorkerRecord
from cluster.report import write_report
from cluster.results import ShardResults
from cluster.tables import BAD_ROWS_SCHEMA, shards_table, workers_table

if TYPE_CHECKING:
    import pyarrow.dataset as ds

PROBE_ROWS = 8  # rows read to find the data's first good row, run through the model before any actor starts


@dataclass
class EvalResult:
    """A finished job: metrics, per-worker and per-shard tables, and the predictions as a dataset."""

    metrics: dict
    workers: pa.Table
    shards: pa.Table
    predictions: ds.Dataset
    output: str
    wall_s: float
    already_finished: bool = False  # a --resume of a run that had finished: nothing was done or rewritten


def evaluate(config=None, /, model=None, output=None, *, on_start: Callable[[int, int], None] | None = None,
             on_shard_done: Callable[[ShardRecord], None] | None = None, **options) -> EvalResult:
    """Evaluate the job's model on every row of its data with a pool of Ray actors; write and return the results.

    Give a JobConfig, or its options: `evaluate(data, model, output, label="y", ...)`, every JobConfig
    field by keyword. Input problems raise InputError before any actor starts or anything is written;
    a failed job raises JobFailed. on_start(total_rows, resumed_rows) and on_shard_done(ShardRecord)
    report progress.
    """
    if not isinstance(config, JobConfig):
        given = {"data": config, "model": model, "output": output}
        config = JobConfig(**{k: v for k, v in given.items() if v is not None}, **options)
    elif model is not None or output is not None or options:
        raise TypeError("evaluate takes a JobConfig or the job's options, not both")
    started_at, start = datetime.now(timezone.utc), time.perf_counter()
    shards, files, config, schema = plan(config)
    out = Output(config.output)
    _refuse_overlap(out, config, files)
    with Lease(out.location):
        job = _prepare_output(out, config, config.fingerprint(shards, files), started_at)
        if job is None:
            return _finished_result(out)
        out.write_json(JOB, job)
        run_index = job["runs"][-1]["run"]
        records = [ShardRecord(s) for s in shards]
        earlier = out.part_summaries() if run_index else {}
        for r in records:
            if r.shard.index in earlier:
                summary = ShardSummary.from_json(earlier[r.shard.index])
                r.summary, r.worker, r.node, r.attempts = summary, summary.worker.name, summary.worker.node, 1
        todo = [r.shard for r in records if r.summary is None]
        cap = _bad_row_cap(config, sum(s.rows for s in shards), records, on_shard_done)
        workers: list[WorkerRecord] = []
        if todo:
            from cluster import pool  # the Ray layer, only now
            total, remaining = sum(s.rows for s in shards), sum(s.rows for s in todo)
            ready = None if on_start is None else (lambda: on_start(total, total - remaining))
            finished, workers = pool.run(config, todo, schema, run_index, on_ready=ready, on_shard_done=cap)
            for r in finished:
                records[r.shard.index] = r
        elif not shards:
            out.write_empty_predictions(schema or pa.schema([("row_id", pa.int64())]))
        return _finish(out, config, records, workers, job, time.perf_counter() - start)


def plan(config: JobConfig) -> tuple[list[planner.Shard], list[storage.DataFile], JobConfig, pa.Schema | None]:
    """The job's shards and files, its configuration with the rows' shape filled in, and the part files' schema.

    Checks the inputs and runs the data's first good row through the model (and the transform) in
    this process: bad paths, columns, weights, factories, shapes or dtypes raise InputError here,
    before any actor starts.
    """
    shards, layouts = planner.plan(config)
    config = _with_row_shape(config, layouts)
    evaluator = ShardEvaluator(config)  # builds the model: a bad factory or checkpoint fails here
    files = [layout.file for layout in layouts]
    batch = _probe_rows(config, shards)
    if batch is None:
        return shards, files, config, None
    label_type = layouts[0].schema.field(config.label).type if config.label else None
    return shards, files, config, evaluator.probe(batch, label_type)


def _with_row_shape(config: JobConfig, layouts: list[planner.FileLayout]) -> JobConfig:
    """The one input's per-row shape, as the data declares it (or its first row has), so every worker knows it."""
    if config.inputs is not None or config.input_shape is not None:
        return config
    schema = layouts[0].schema  # the planner has checked that every file agrees with it
    shape = columns.declared_shape(config, schema)
    name = config.features[0]
    if shape is None and decode.kind_of(name, schema.field(name).type) == "vector":
        width = planner.first_row_width(layouts, name)
        shape = (width,) if width else None
    return dataclasses.replace(config, input_shape=shape) if shape else config


def _probe_rows(config: JobConfig, shards: list[planner.Shard]) -> Batch | None:
    """The job's first good row as the workers will read it (zeros of the declared shape if there is none)."""
    sample = dataclasses.replace(config, batch_size=PROBE_ROWS, on_bad_rows="skip", prefetch=0)
    for shard in shards[:1]:
        try:
            batches = read_shard(dataclasses.replace(shard, rows=min(shard.rows, PROBE_ROWS)), sample)
            batch = next((b for b in batches if len(b.row_ids)), None)
        except ShardDataError as e:
            raise InputError(str(e)) from None
        if batch is not None:  # its first good row: one row, as a model may tell the probe by its size
            return Batch([x[:1] for x in batch.inputs], None, batch.row_ids[:1], batch.location)
    if config.inputs is not None or config.input_shape is None or config.transform is not None:
        return None
    return Batch([np.zeros((1, *config.input_shape), np.float32)], None, np.zeros(1, np.int64), "(zeros)")


def _refuse_overlap(out: Output, config: JobConfig, files: list[storage.DataFile]) -> None:
    """An output holding (or inside) an input would be read as data, or deleted by --overwrite: refuse it."""
    for location in [*config.data, *(f.location for f in files)]:
        if not any(ch in location for ch in "*?[") and storage.overlaps(out.location, storage.absolute(location)):
            raise InputError(f"output {storage.redact(out.location)} overlaps input {storage.redact(location)}: "
                             "choose an output outside the data")


def _prepare_output(out: Output, config: JobConfig, fingerprint: str, started_at: datetime) -> dict | None:
    """The job record for this run, after checking the output is free or resumable (None: already finished).

    --overwrite clears an output only when this project wrote it (its job.json says so).
    """
    run = {"run": 0, "started": started_at.isoformat()}
    fresh = {"writer": WRITER, "fingerprint": fingerprint, "config": config.record(), "versions": versions(),
             "runs": [run]}
    name = storage.redact(out.location)
    if not out.has_any():
        return fresh
    if not out.written_by_us():
        raise InputError(f"output {name} holds files this project did not write (no evalpipe job.json): refusing "
                         f"to {'delete' if config.overwrite else 'write among'} them; choose a new location")
    if config.overwrite:
        out.clear()
        return fresh
    if not config.resume:
        state = "a finished run" if out.finished() else "an unfinished run"
        raise InputError(f"output {name} already holds {state}; refusing to overwrite it "
                         "(resume it with --resume / resume=True, or replace it with --overwrite / overwrite=True)")
    job = out.read_json(JOB)
    if job.get("fingerprint") != fingerprint:
        raise InputError(f"output {name} holds a run with a different configuration or different data, weights or "
                         "model code; resuming would mix the two (use a new output, or --overwrite / overwrite=True)")
    if out.finished():
        return None
    runs = job.get("runs", [])
    return {**job, "runs": [*runs, {**run, "run": len(runs)}]}


def _bad_row_cap(config: JobConfig, total_rows: int, records: list[ShardRecord], on_shard_done) -> Callable:
    """on_shard_done, after failing the job once more rows were set aside than --max-bad-rows allows."""
    limit = config.max_bad_rows
    if limit is not None and limit < 1:
        limit *= total_rows
    seen = [sum(r.summary.bad_rows for r in records if r.summary is not None)]

    def done(record: ShardRecord) -> None:
        seen[0] += record.summary.bad_rows if record.summary is not None else 0
        if limit is not None and seen[0] > limit:
            raise JobFailed(f"{seen[0]} rows were set aside as bad, more than --max-bad-rows {config.max_bad_rows:g} "
                            f"allows (the latest in shard {record.shard.index}, {record.shard.describe()})")
        if on_shard_done is not None:
            on_shard_done(record)

    return done


def _finish(out: Output, config: JobConfig, records: list[ShardRecord], workers: list[WorkerRecord], job: dict,
            wall: float) -> EvalResult:
    """Check every part is in place, merge the metrics, write tables, metrics and job record, then the marker."""
    out.sweep()  # attempts that lost, and anything half-written by a worker stopped mid-shard
    summaries = [r.summary for r in records if r.summary is not None]
    missing = out.missing_parts([s.shard for s in summaries])
    if missing:
        raise JobFailed(f"{len(missing)} committed part file(s) are missing from {storage.redact(out.predictions)} "
                        f"(first: shard {missing[0]}): --output must be storage every node and the driver share")
    this_run = job["runs"][-1]["run"]
    finished_at = datetime.now(timezone.utc).isoformat()
    job["runs"][-1].update(finished=finished_at, wall_s=wall)
    result_metrics, slices_out = _metrics(config, summaries, job, this_run, wall)
    earlier = WorkerRecord.from_summaries([s for s in summaries if s.worker.run != this_run])
    run_walls = {r["run"]: r.get("wall_s") for r in result_metrics["runs"]}
    workers_out = workers_table(earlier + workers, config.grad_mode, run_walls)
    shards_out = shards_table(records)
    out.write_table("workers.parquet", workers_out)
    out.write_table("shards.parquet", shards_out)
    if slices_out is not None:
        out.write_table(SLICES, slices_out)
    if result_metrics["bad_rows"]["rows"]:
        out.merge_bad_rows(BAD_ROWS_SCHEMA)
    out.write_json("metrics.json", result_metrics)
    out.write_json(JOB, {**job, "finished": finished_at, "wall_s": wall})
    write_report(out.location)
    if summaries and not result_metrics["rows"]:
        raise JobFailed(f"every one of the {result_metrics['bad_rows']['rows']:,} rows was set aside as bad: see "
                        f"{storage.redact(out.path('bad_rows.parquet'))}")
    out.mark_finished()
    tracking.log_run(config.mlflow, out.location, config.record(), result_metrics)
    return EvalResult(result_metrics, workers_out, shards_out, out.predictions_dataset(), out.location, wall)


def _metrics(config: JobConfig, summaries: list[ShardSummary], job: dict, this_run: int,
             wall: float) -> tuple[dict, pa.Table | None]:
    """metrics.json: every model's figures over every run's shards (cluster.figures), bad rows by reason, and each
    run's throughput; and slices.parquet's table (None without --slice-by)."""
    merged = ShardResults(config)
    for summary in summaries:  # in shard order, whichever worker ran each: the same sums for any number of workers
        merged.merge(ShardResults.from_json(config, summary.partial))
    result, slices_table = figures.finish(config, merged)
    reasons: dict[str, int] = {}
    for summary in summaries:
        for reason, count in summary.bad_row_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    runs = []
    for run in job["runs"]:
        ran = [s for s in summaries if s.worker.run == run["run"]]
        run_wall = wall if run["run"] == this_run else run.get("wall_s") or _span(run, ran)
        rows = sum(s.rows for s in ran)
        runs.append({"run": run["run"], "rows": rows, "wall_s": run_wall,
                     "rows_per_s": rows / run_wall if run_wall else 0.0})
    rows_now = runs[-1]["rows"]
    result = {"rows": sum(s.rows for s in summaries), **result}
    result.update(rows=sum(s.rows for s in summaries), wall_s=wall, rows_per_s=rows_now / wall if wall else 0.0,
                  bad_rows={"rows": sum(reasons.values()), "by_reason": reasons}, runs=runs)
    return result, slices_table


def _span(run: dict, summaries: list[ShardSummary]) -> float | None:
    """An interrupted run's wall time: from its start to the end of its last committed shard."""
    if not summaries:
        return None
    started = datetime.fromisoformat(run["started"]).timestamp()
    return max(s.started_at + s.seconds for s in summaries) - started


def _finished_result(out: Output) -> EvalResult:
    """A finished output, as it is: resuming it changes nothing."""
    result_metrics = out.read_json("metrics.json")
    return EvalResult(result_metrics, out.read_table("workers.parquet"), out.read_table("shards.parquet"),
                      out.predictions_dataset(), out.location, result_metrics.get("wall_s", 0.0),
                      already_finished=True)
