"""`cluster.evaluate`: run one evaluation job from Python and get everything back in one object."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.dataset as ds

from cluster import metrics, planner, runtime, storage
from cluster.columns import ColumnSpec
from cluster.errors import InputError
from cluster.models import ModelSpec
from cluster.outputs import Output
from cluster.pool import Scheduler, ShardRecord
from cluster.report import shards_table, workers_table
from cluster.worker import EvalConfig, ShardEvaluator, ShardSummary, part_name


@dataclass
class EvalResult:
    """A finished job: metrics, per-worker and per-shard tables, and the predictions as a dataset."""

    metrics: dict
    workers: pa.Table
    shards: pa.Table
    predictions: ds.Dataset
    output: str
    wall_s: float


def evaluate(data, model, output: str, *, weights: str | None = None, features="features", label: str | None = None,
             id: str | None = None, input_shape=None, task: str = "classification", batch_size: int = 1024,  # noqa: A002
             workers: int | None = None, cpus_per_worker: float = 1, shard_rows: int = 65536, max_attempts: int = 3,
             grad_mode: str = "no_grad", top_k: int | None = None, save_scores: bool = False,
             skip_bad_shards: bool = False, limit: int | None = None, address: str | None = None,
             resume: bool = False, overwrite: bool = False, model_kwargs: dict | None = None,
             job_info: dict | None = None, on_start: Callable | None = None,
             on_shard_done: Callable | None = None) -> EvalResult:
    """Evaluate `model` on every row of `data` with a pool of Ray actors; write and return the results.

    data: paths, directories, globs or URIs of Parquet / Arrow IPC files. model: a zoo name,
    'package.module:factory' or a callable returning an engine.nn.Module. output: where the part
    files, workers.parquet, shards.parquet, metrics.json, job.json and the _SUCCESS marker go.
    Input problems raise InputError before any actor starts; a failed job raises JobFailed.
    on_start(total_rows, resumed_rows) and on_shard_done(ShardRecord) report progress.
    """
    started_at, start = datetime.now(timezone.utc), time.perf_counter()
    columns = ColumnSpec(features, label, id, input_shape)
    out = Output(output)
    weights = storage.absolute(str(weights)) if weights else None
    config = EvalConfig(ModelSpec(model, weights, model_kwargs or {}), columns, out.predictions, task, batch_size,
                        grad_mode, top_k, save_scores)
    if max_attempts < 1:
        raise InputError(f"max attempts must be at least 1, got {max_attempts}")
    shards, layouts = planner.plan(storage.list_inputs(data), columns, shard_rows)
    if limit is not None:
        shards = planner.limit_rows(shards, limit)
    schema = _probe(config, layouts)
    fingerprint = _fingerprint(config, shards)
    done = _prepare_output(out, fingerprint, resume, overwrite)
    record = {"started": started_at.isoformat(), "fingerprint": fingerprint, "config": job_info or {},
              "versions": _versions()}
    out.write_json("job.json", record)

    records = [ShardRecord(s) for s in shards]
    todo = [s for s in shards if part_name(s) not in done]
    for r in records:
        if part_name(r.shard) in done:
            r.summary, r.worker, r.attempts = ShardSummary.from_json(done[part_name(r.shard)]), "(earlier run)", 1
    scheduler = None
    total, remaining = sum(s.rows for s in shards), sum(s.rows for s in todo)
    if todo:
        started_ray = runtime.connect(address)
        if on_start is not None:
            on_start(total, total - remaining)
        try:
            n = workers or max(1, int(runtime.cluster_cpus() // cpus_per_worker))
            scheduler = Scheduler(config, n, cpus_per_worker, max_attempts, skip_bad_shards=skip_bad_shards,
                                  on_shard_done=on_shard_done)
            for r in scheduler.run(todo):
                records[r.shard.index] = r
        finally:
            if started_ray:
                runtime.shutdown()
    elif not shards:
        out.write_empty_predictions(schema or pa.schema([("row_id", pa.int64())]))
    wall = time.perf_counter() - start
    return _finish(out, config, records, scheduler, record, wall)


def _probe(config: EvalConfig, layouts: list[planner.FileLayout]) -> pa.Schema:
    """Build the model once in the driver and run one row through it: bad weights or shapes fail here."""
    evaluator = ShardEvaluator(config)
    columns = config.columns
    schema = layouts[0].schema  # the planner has checked that every file agrees with it
    width = columns.width(schema)
    row_shape = columns.input_shape or ((width,) if width is not None else None)
    label_type = schema.field(columns.label).type if columns.label else None
    if row_shape is None:  # variable-length lists: the width is only known row by row
        return None
    return evaluator.probe(row_shape, label_type)


def _fingerprint(config: EvalConfig, shards) -> str:
    """What makes two runs' outputs interchangeable: inputs, model, and every option that changes a value."""
    model = config.model
    identity = {
        "shards": [(s.location, s.start, s.stop, s.first_row, s.rows) for s in shards],
        "model": model.factory if isinstance(model.factory, str) else getattr(model.factory, "__qualname__", "?"),
        "weights": model.weights, "kwargs": model.kwargs, "columns": repr(config.columns), "task": config.task,
        "batch_size": config.batch_size, "grad_mode": config.grad_mode, "top_k": config.top_k,
        "save_scores": config.save_scores,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _prepare_output(out: Output, fingerprint: str, resume: bool, overwrite: bool) -> dict[str, str]:
    """Check the output location is free (or resumable); the part files already complete, by name."""
    name = storage.redact(out.location)
    if overwrite:
        out.clear()
        return {}
    if not out.has_any():
        return {}
    if not resume:
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


def _finish(out: Output, config: EvalConfig, records: list[ShardRecord], scheduler, record: dict,
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
    workers = workers_table(scheduler.records if scheduler else [], config.grad_mode, wall)
    shards = shards_table(records)
    out.write_table("workers.parquet", workers)
    out.write_table("shards.parquet", shards)
    out.write_json("metrics.json", result_metrics)
    out.write_json("job.json", {**record, "finished": datetime.now(timezone.utc).isoformat(), "wall_s": wall})
    out.mark_finished()
    return EvalResult(result_metrics, workers, shards, out.predictions_dataset(), out.location, wall)


def _versions() -> dict:
    import numpy
    import ray

    import engine
    return {"project": engine.__version__, "ray": ray.__version__, "numpy": numpy.__version__,
            "pyarrow": pa.__version__}


