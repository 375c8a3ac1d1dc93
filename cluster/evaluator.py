"""The evaluator: read a shard, run the model under the job's grad mode, write its part file, summarise.

A ShardEvaluator holds one model, built once and put in eval(). For each attempt at a shard it
streams batches from storage (read and decoded ahead on a background thread), runs the forward
under the configured grad mode, writes the
predictions as one Parquet file under the attempt's own hidden name (complete or absent; the
driver commits it), sets bad rows aside by the job's policy, and returns a ShardSummary: rows,
bad rows, partial metrics, time and memory peaks. Its memory is bounded by a batch, not by the
shard or the dataset. Plain Python: the Ray layer (cluster.pool) only calls it.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import engine
from cluster import metrics, predictions, storage
from cluster.config import GRAD_MODES, JobConfig
from cluster.errors import InputError
from cluster.models import build_model, describe
from cluster.outputs import SUMMARY_KEY, Output
from cluster.planner import Shard
from cluster.prefetch import Ahead
from cluster.process_memory import peak_rss_since_reset, process_peak_rss, reset_peak_rss
from cluster.reader import BadRows, Batch, read_shard
from cluster.records import ShardSummary, WorkerIdentity
from cluster.tables import BAD_ROWS_SCHEMA, bad_rows_table


class ShardEvaluator:
    """One model, evaluating shards one after another.

    `schema` is the part files' schema (the driver's probe gives it), for a shard whose rows are all bad.
    """

    def __init__(self, config: JobConfig, worker: WorkerIdentity | None = None, schema: pa.Schema | None = None):
        self.config, self.worker, self.schema = config, worker or WorkerIdentity(), schema
        self.model = build_model(config)
        self.model_name = describe(config)
        self.mode = GRAD_MODES[config.grad_mode]
        self.output = Output(config.output)

    def probe(self, batch: Batch, label_type: pa.DataType | None) -> pa.Schema:
        """Run the model on a few real rows: InputError if it cannot take them; the part-file schema."""
        try:
            with engine.no_grad():
                outputs = self._forward(batch.inputs).numpy()
        except InputError:
            raise
        except Exception as e:  # whatever the model raises, the job cannot start: name the model and the inputs
            shapes = ", ".join("x".join(map(str, x.shape[1:])) or "scalar" for x in batch.inputs)
            raise InputError(f"model {self.model_name} does not take rows of shape {shapes} "
                             f"({type(e).__name__}: {e})") from None
        labels = None if label_type is None else pa.array([0] * len(outputs), label_type).to_numpy(
            zero_copy_only=False)
        predicted = predictions.predict(self.config, outputs, self.model_name)
        return predictions.table(self.config, predicted, np.zeros(len(outputs), np.int64), labels).schema

    def _forward(self, inputs: list[np.ndarray]) -> engine.Tensor:
        """The model on one batch's inputs, the predictions' tensor picked from whatever forward() returns."""
        out = self.model(*(engine.from_numpy(np.ascontiguousarray(x)) for x in inputs))
        out = predictions.select(out, self.config.output_key, self.model_name)
        if not isinstance(out, engine.Tensor):
            raise InputError(f"model {self.model_name} returned {type(out).__name__} where a tensor of predictions "
                             "was expected (see --output-key)")
        return out

    def evaluate(self, shard: Shard, attempt: str = "0") -> ShardSummary:
        """Evaluate every row of `shard`, write the attempt's part file (and its bad rows), and summarise."""
        started_at, start = time.time(), time.perf_counter()
        reset_peak_rss()
        engine.reset_peak_memory_stats()
        pool = pa.default_memory_pool()
        arrow_peak, rows, partial, bad, compute_s, write_s = 0, 0, {}, BadRows(), 0.0, 0.0
        batches = Ahead(read_shard(shard, self.config), self.config.prefetch)
        with storage.atomic_output(self.output.attempt(shard.index, attempt)) as stream:
            writer = None
            for batch in batches:
                began = time.perf_counter()
                table, batch_partial = self._evaluate_batch(batch) if len(batch.row_ids) else (None, {})
                computed = time.perf_counter()
                compute_s += computed - began
                bad.extend(batch.bad)
                if table is None or not table.num_rows:
                    continue
                partial = metrics.merge(partial, batch_partial)
                rows += table.num_rows
                writer = writer or self._writer(stream, table.schema)
                writer.write_table(table)
                write_s += time.perf_counter() - computed
                arrow_peak = max(arrow_peak, pool.bytes_allocated())
            writer = writer or self._writer(stream, self.schema)
            stats = engine.memory_stats()
            reasons = {reason: bad.reasons.count(reason) for reason in sorted(set(bad.reasons))}
            summary = ShardSummary(shard.index, attempt, self.worker, rows, len(bad), reasons, started_at,
                                   time.perf_counter() - start, batches.busy_s, compute_s, write_s, partial,
                                   stats["allocated_bytes.peak"], stats["saved_bytes.peak"], peak_rss_since_reset(),
                                   process_peak_rss(), arrow_peak)
            writer.add_key_value_metadata({SUMMARY_KEY: summary.to_json()})  # what a resumed run reuses
            writer.close()
        if bad:
            table = bad_rows_table(bad.row_ids, storage.redact(shard.location), bad.reasons, bad.details)
            with storage.atomic_output(self.output.attempt(shard.index, attempt, bad_rows=True)) as stream:
                pq.write_table(table.cast(BAD_ROWS_SCHEMA), stream, write_page_checksum=True)
        return summary

    def _writer(self, stream, schema: pa.Schema | None) -> pq.ParquetWriter:
        if schema is None:
            raise InputError("every row of a shard was bad and the part files' schema is unknown")
        # Row ids are distinct: a dictionary for them is built only to be dropped.
        return pq.ParquetWriter(stream, schema, write_page_checksum=True,
                                use_dictionary=[n for n in schema.names if n != "row_id"])

    def _evaluate_batch(self, batch: Batch) -> tuple[pa.Table, dict]:
        """The part-file rows and the partial metrics of one batch (rows whose outputs are bad set aside)."""
        with self.mode():
            out = self._forward(batch.inputs)
        if self.config.grad_mode != "enabled" and out.grad_fn is not None:
            raise InputError(f"model {self.model_name} returned an output with grad_fn {out.grad_fn.name()} "
                             f"under {self.config.grad_mode}: something inside it re-enables grad")
        predicted = predictions.predict(self.config, out.detach().numpy(), self.model_name)
        batch, keep = batch.without(predicted.problems(batch.labels), self.config.on_bad_rows)
        if keep is not None:
            predicted = predicted.take(keep)
        partial = metrics.partial(self.config.task, predicted, batch.labels)
        return predictions.table(self.config, predicted, batch.row_ids, batch.labels), partial
