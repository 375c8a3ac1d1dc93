"""The evaluator: read a shard, run the job's models under its grad mode, write its part file, summarise.

A ShardEvaluator holds the job's models, each built once and put in eval(). For each attempt at a
shard it streams batches from storage (read and decoded ahead on a background thread, with the
bootstrap's row weights), runs every model's forward on each batch under the configured grad mode,
writes the predictions as one Parquet file under the attempt's own hidden name (complete or absent;
the driver commits it), sets bad rows aside by the job's policy, and returns a ShardSummary: rows,
bad rows, the shard's results (cluster.results: metrics, calibration, slices, bootstrap sums), time
and memory peaks. Its memory is bounded by a batch, not by the
shard or the dataset. Plain Python: the Ray layer (cluster.pool) only calls it.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import engine
from cluster import predictions, results, storage
from cluster.config import GRAD_MODES, JobConfig
from cluster.errors import InputError
from cluster.model_specs import ModelSpec
from cluster.models import build_model
from cluster.outputs import SUMMARY_KEY, Output
from cluster.planner import Shard
from cluster.prefetch import Ahead, ReadAhead
from cluster.process_memory import peak_rss_since_reset, process_peak_rss, reset_peak_rss
from cluster.reader import BadRows, Batch, read_shard
from cluster.records import ShardSummary, WorkerIdentity
from cluster.results import ShardResults
from cluster.tables import BAD_ROWS_SCHEMA, bad_rows_table


class ShardEvaluator:
    """The job's models, evaluating shards one after another: each batch is read and decoded once, every model runs
    on it.

    `schema` is the part files' schema (the driver's probe gives it), for a shard whose rows are all bad.
    """

    def __init__(self, config: JobConfig, worker: WorkerIdentity | None = None, schema: pa.Schema | None = None):
        self.config, self.worker, self.schema = config, worker or WorkerIdentity(), schema
        self.specs = config.models()
        self.models = [build_model(spec) for spec in self.specs]
        self.mode = GRAD_MODES[config.grad_mode]
        self.output = Output(config.output)
        self.read_ahead = ReadAhead()  # one thread for every shard (see cluster.prefetch)

    def probe(self, batch: Batch, label_type: pa.DataType | None) -> pa.Schema:
        """Run every model on a few real rows: InputError if one cannot take them; the part-file schema."""
        predicted = []
        for spec, model in zip(self.specs, self.models):
            try:
                with engine.no_grad():
                    outputs = self._forward(spec, model, batch.inputs).numpy()
            except InputError:
                raise
            except Exception as e:  # whatever the model raises, the job cannot start: name the model and the inputs
                given = self._inputs(spec, batch.inputs)
                shapes = ", ".join("x".join(map(str, x.shape[1:])) or "scalar" for x in given)
                raise InputError(f"model {spec.describe()} does not take rows of shape {shapes} "
                                 f"({type(e).__name__}: {e})") from None
            predicted.append(predictions.predict(self.config, outputs, spec.describe()))
        rows = len(predicted[0].outputs)
        labels = None if label_type is None else pa.array([0] * rows, label_type).to_numpy(zero_copy_only=False)
        return predictions.table(self.config, predicted, np.zeros(rows, np.int64), labels, self.config.name).schema

    def _inputs(self, spec: ModelSpec, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """The batch's inputs as the model takes them: a zoo model takes the one --features input in its own row
        shape (a view), so that models of different shapes run on the same rows."""
        if spec.input_shape is None or len(inputs) != 1 or self.config.inputs is not None or self.config.transform:
            return inputs
        x = inputs[0]
        if x.shape[1:] == spec.input_shape or math.prod(x.shape[1:]) != math.prod(spec.input_shape):
            return inputs
        return [x.reshape((len(x), *spec.input_shape))]

    def _forward(self, spec: ModelSpec, model, inputs: list[np.ndarray]) -> engine.Tensor:
        """A model on one batch's inputs, the predictions' tensor picked from whatever forward() returns."""
        out = model(*(engine.from_numpy(np.ascontiguousarray(x)) for x in self._inputs(spec, inputs)))
        out = predictions.select(out, self.config.output_key, spec.describe())
        if not isinstance(out, engine.Tensor):
            raise InputError(f"model {spec.describe()} returned {type(out).__name__} where a tensor of predictions "
                             "was expected (see --output-key)")
        return out

    def evaluate(self, shard: Shard, attempt: str = "0") -> ShardSummary:
        """Evaluate every row of `shard`, write the attempt's part file (and its bad rows), and summarise."""
        started_at, start = time.time(), time.perf_counter()
        reset_peak_rss()
        engine.reset_peak_memory_stats()
        pool = pa.default_memory_pool()
        arrow_peak, rows, bad, compute_s, write_s = 0, 0, BadRows(), 0.0, 0.0
        shard_results = ShardResults(self.config)
        batches = Ahead(self._prepared(read_shard(shard, self.config)), self.config.prefetch, self.read_ahead)
        with storage.atomic_output(self.output.attempt(shard.index, attempt)) as stream:
            writer = None
            for batch in batches:
                began = time.perf_counter()
                table = self._evaluate_batch(batch, shard_results) if len(batch.row_ids) else None
                computed = time.perf_counter()
                compute_s += computed - began
                bad.extend(batch.bad)
                if table is None or not table.num_rows:
                    continue
                rows += table.num_rows
                writer = writer or self._writer(stream, table.schema)
                writer.write_table(table)
                write_s += time.perf_counter() - computed
                arrow_peak = max(arrow_peak, pool.bytes_allocated())
            writer = writer or self._writer(stream, self.schema)
            stats = engine.memory_stats()
            reasons = {reason: bad.reasons.count(reason) for reason in sorted(set(bad.reasons))}
            summary = ShardSummary(shard.index, attempt, self.worker, rows, len(bad), reasons, started_at,
                                   time.perf_counter() - start, batches.busy_s, compute_s, write_s,
                                   shard_results.to_json(), stats["allocated_bytes.peak"], stats["saved_bytes.peak"],
                                   peak_rss_since_reset(), process_peak_rss(), arrow_peak)
            writer.add_key_value_metadata({SUMMARY_KEY: summary.to_json()})  # what a resumed run reuses
            writer.close()
        if bad:
            table = bad_rows_table(bad.row_ids, storage.redact(shard.location), bad.reasons, bad.details)
            with storage.atomic_output(self.output.attempt(shard.index, attempt, bad_rows=True)) as stream:
                pq.write_table(table.cast(BAD_ROWS_SCHEMA), stream, write_page_checksum=True)
        return summary

    def _prepared(self, batches):
        """The shard's batches, each with its rows' bootstrap weights when the job keeps intervals: computed here,
        on the read-ahead thread, while the models run on the batch before."""
        weighted = results.bootstrapped(self.config)
        try:
            for batch in batches:
                if weighted:
                    batch.weights = results.row_weights(self.config, batch.row_ids)
                yield batch
        finally:
            batches.close()  # the reader's files, on the thread that opened them

    def _writer(self, stream, schema: pa.Schema | None) -> pq.ParquetWriter:
        if schema is None:
            raise InputError("every row of a shard was bad and the part files' schema is unknown")
        # Row ids are distinct: a dictionary for them is built only to be dropped.
        return pq.ParquetWriter(stream, schema, write_page_checksum=True,
                                use_dictionary=[n for n in schema.names if n != "row_id"])

    def _evaluate_batch(self, batch: Batch, shard_results: ShardResults) -> pa.Table:
        """The part-file rows of one batch, every model's results added (rows a model's outputs make bad set aside)."""
        predicted = [self._predict(spec, model, batch) for spec, model in zip(self.specs, self.models)]
        named = len(self.specs) > 1
        problems = [problem for spec, one in zip(self.specs, predicted)
                    for problem in one.problems(batch.labels, spec.name if named else None)]
        batch, keep = batch.without(problems, self.config.on_bad_rows)
        if keep is not None:
            predicted = [one.take(keep) for one in predicted]
        if len(batch.row_ids):
            shard_results.add(batch, predicted)
        return predictions.table(self.config, predicted, batch.row_ids, batch.labels, self.config.name)

    def _predict(self, spec: ModelSpec, model, batch: Batch) -> predictions.Predictions:
        """One model's predictions of a batch, under the job's grad mode."""
        with self.mode():
            out = self._forward(spec, model, batch.inputs)
        if self.config.grad_mode != "enabled" and out.grad_fn is not None:
            raise InputError(f"model {spec.describe()} returned an output with grad_fn {out.grad_fn.name()} "
                             f"under {self.config.grad_mode}: something inside it re-enables grad")
        return predictions.predict(self.config, out.detach().numpy(), spec.describe())
