"""The evaluator: read a shard, run the model under the job's grad mode, write its part file, summarise.

A ShardEvaluator holds one model, built once and put in eval(). For each shard it streams batches
from storage, runs the forward under the configured grad mode, writes the predictions as one
Parquet part file (complete or absent), and returns a ShardSummary: rows, partial metrics, time
and memory peaks. Its memory is bounded by a batch, not by the shard or the dataset. Plain Python:
the Ray layer (cluster.pool) only calls it.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import engine
from cluster import metrics, predictions, storage
from cluster.config import GRAD_MODES, JobConfig
from cluster.errors import InputError, ShardDataError
from cluster.models import build_model, describe
from cluster.outputs import SUMMARY_KEY, Output
from cluster.planner import Shard
from cluster.process_memory import peak_rss_since_reset, process_peak_rss, reset_peak_rss
from cluster.reader import Batch, read_shard
from cluster.records import ShardSummary


class ShardEvaluator:
    """One model, evaluating shards one after another."""

    def __init__(self, config: JobConfig):
        self.config = config
        self.model = build_model(config)
        self.model_name = describe(config)
        self.mode = GRAD_MODES[config.grad_mode]
        self.output = Output(config.output)

    def probe(self, row_shape: tuple[int, ...], label_type: pa.DataType | None) -> pa.Schema:
        """Run the model on one row of zeros: InputError if it cannot take that shape; the part-file schema."""
        zeros = np.zeros((1, *row_shape), np.float32)
        try:
            with engine.no_grad():
                outputs = self.model(engine.from_numpy(zeros)).numpy()
        except (RuntimeError, ValueError, IndexError) as e:
            raise InputError(f"model {self.model_name} does not take rows of shape "
                             f"{'x'.join(map(str, row_shape))}: {e}") from None
        labels = None if label_type is None else pa.array([0], label_type).to_numpy(zero_copy_only=False)
        predicted = predictions.predict(self.config, outputs, self.model_name)
        return predictions.table(self.config, predicted, np.zeros(1, np.int64), labels).schema

    def evaluate(self, shard: Shard) -> ShardSummary:
        """Evaluate every row of `shard`, write its part file, and summarise."""
        start = time.perf_counter()
        reset_peak_rss()
        engine.reset_peak_memory_stats()
        pool = pa.default_memory_pool()
        arrow_peak = 0
        partial: dict = {}
        with storage.atomic_output(self.output.part(shard.index)) as stream:
            writer = None
            for batch in read_shard(shard, self.config):
                table, batch_partial = self._evaluate_batch(batch, shard)
                partial = metrics.merge(partial, batch_partial)
                if writer is None:  # row ids are distinct: a dictionary for them is built only to be dropped
                    writer = pq.ParquetWriter(stream, table.schema,
                                              use_dictionary=[n for n in table.schema.names if n != "row_id"])
                writer.write_table(table)
                arrow_peak = max(arrow_peak, pool.bytes_allocated())
            if writer is None:  # a shard always has rows; an empty part file would still need a schema
                raise ShardDataError(f"{shard.describe()}: no rows read")
            stats = engine.memory_stats()
            summary = ShardSummary(shard.index, shard.rows, time.perf_counter() - start, partial,
                                   stats["allocated_bytes.peak"], stats["saved_bytes.peak"], peak_rss_since_reset(),
                                   process_peak_rss(), arrow_peak)
            writer.add_key_value_metadata({SUMMARY_KEY: summary.to_json()})  # what a resumed run reuses
            writer.close()
        return summary

    def _evaluate_batch(self, batch: Batch, shard: Shard) -> tuple[pa.Table, dict]:
        """The part-file rows and the partial metrics of one batch."""
        with self.mode():
            out = self.model(engine.from_numpy(batch.features))
        if self.config.grad_mode != "enabled" and out.grad_fn is not None:
            raise InputError(f"model {self.model_name} returned an output with grad_fn {out.grad_fn.name()} "
                             f"under {self.config.grad_mode}: something inside it re-enables grad")
        predicted = predictions.predict(self.config, out.detach().numpy(), self.model_name)
        where = f"{storage.redact(shard.location)} rows with ids {batch.row_ids[0]}-{batch.row_ids[-1]}"
        partial = metrics.partial(self.config.task, predicted, batch.labels, where)
        return predictions.table(self.config, predicted, batch.row_ids, batch.labels), partial
