"""The worker's evaluation loop, free of Ray: read a shard, run the model, write its part file, report.

A ShardEvaluator holds one model, built once and put in eval(). For each shard it streams batches
from storage, runs the forward under the configured grad mode, writes the predictions as one
Parquet part file (complete or absent), and returns a small summary: rows, partial metrics,
timings and memory peaks. Its memory is bounded by a batch, not by the shard or the dataset.
"""

from __future__ import annotations

import json
import os
import resource
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import engine
from cluster import metrics, storage
from cluster.columns import ColumnSpec
from cluster.errors import InputError, ShardDataError
from cluster.models import ModelSpec, build_model
from cluster.outputs import SUMMARY_KEY
from cluster.planner import Shard
from cluster.reader import Batch, read_shard

# The option's spelling -> the engine's mode. `enabled` records the graph, to measure what no_grad saves.
GRAD_MODES = {"no_grad": engine.no_grad, "inference_mode": engine.inference_mode, "enabled": engine.enable_grad}


@dataclass(frozen=True)
class EvalConfig:
    """Everything a worker needs besides its shards (small and picklable)."""

    model: ModelSpec
    columns: ColumnSpec
    predictions: str  # location of the predictions directory
    task: str = "classification"
    batch_size: int = 1024
    grad_mode: str = "no_grad"
    top_k: int | None = None
    save_scores: bool = False

    def __post_init__(self):
        if self.task not in metrics.TASKS:
            raise InputError(f"unknown task {self.task!r}; expected one of {', '.join(metrics.TASKS)}")
        if self.grad_mode not in GRAD_MODES:
            raise InputError(f"unknown grad mode {self.grad_mode!r}; expected one of {', '.join(GRAD_MODES)}")
        if self.batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {self.batch_size}")
        if self.top_k is not None and (self.task != "classification" or self.top_k < 1):
            raise InputError("top-k needs a classification task and k >= 1")


@dataclass
class ShardSummary:
    """What a worker reports for one shard."""

    shard: int
    rows: int
    seconds: float
    partial: dict
    engine_allocated_peak_bytes: int
    engine_saved_peak_bytes: int
    rss_peak_bytes: int
    arrow_peak_bytes: int
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ShardSummary:
        values = json.loads(text)
        if "confusion" in values["partial"]:
            values["partial"]["confusion"] = tuple(values["partial"]["confusion"])
        return cls(**values)


def part_name(shard: Shard) -> str:
    """The part file of a shard: one name per shard, so a retried shard replaces, never duplicates."""
    return f"part-{shard.index:06d}.parquet"


def current_rss() -> int:
    """Resident memory of this process now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> None:
    """Start a new peak: Linux resets VmHWM to the current RSS on '5' in clear_refs (no-op where it cannot)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def shard_peak_rss() -> int:
    """The highest RSS since reset_peak_rss (VmHWM), exact rather than sampled; the current RSS where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return current_rss()


def peak_rss() -> int:
    """The highest resident memory this process has had, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def check_eval_mode(model: engine.nn.Module) -> None:
    """Every submodule must be in eval mode; name the first that is not."""
    for name, module in model.named_modules():
        if module.training:
            raise InputError(f"model submodule {name or '(root)'} ({type(module).__name__}) is still in training "
                             "mode after eval(): its train() does not propagate")


class ShardEvaluator:
    """One model, evaluating shards one after another."""

    def __init__(self, config: EvalConfig):
        self.config = config
        self.model = build_model(config.model)
        check_eval_mode(self.model)
        self.mode = GRAD_MODES[config.grad_mode]

    def probe(self, row_shape: tuple[int, ...], label_type: pa.DataType | None) -> pa.Schema:
        """Run the model on one row of zeros: InputError if it cannot take that shape; the part-file schema."""
        zeros = np.zeros((1, *row_shape), np.float32)
        try:
            with engine.no_grad():
                outputs = self.model(engine.from_numpy(zeros)).numpy()
        except (RuntimeError, ValueError, IndexError) as e:
            raise InputError(f"model {self.config.model.describe()} does not take rows of shape "
                             f"{'x'.join(map(str, row_shape))}: {e}") from None
        labels = None if label_type is None else pa.array([0], label_type).to_numpy(zero_copy_only=False)
        probe = Batch(zeros, labels, np.zeros(1, np.int64))
        table, _ = self._task_columns(outputs, probe, "probe", check_labels=False)
        return table.schema

    def evaluate(self, shard: Shard) -> ShardSummary:
        """Evaluate every row of `shard`, write its part file, and summarise."""
        start = time.perf_counter()
        reset_peak_rss()
        engine.reset_peak_memory_stats()
        pool = pa.default_memory_pool()
        arrow_peak = 0
        partial: dict = {}
        location = storage.join(self.config.predictions, part_name(shard))
        with storage.atomic_output(location) as stream:
            writer = None
            for batch in read_shard(shard, self.config.columns, self.config.batch_size):
                table, batch_partial = self._evaluate_batch(batch, shard)
                partial = metrics.merge(partial, batch_partial)
                if writer is None:  # row ids are distinct: a dictionary for them is built only to be dropped
                    writer = pq.ParquetWriter(stream, table.schema,
                                              use_dictionary=[n for n in table.schema.names if n != "row_id"])
                writer.write_table(table)
                arrow_peak = max(arrow_peak, pool.bytes_allocated())
            rss_peak = shard_peak_rss()
            if writer is None:  # a shard always has rows; an empty part file would still need a schema
                raise ShardDataError(f"{shard.describe()}: no rows read")
            stats = engine.memory_stats()
            summary = ShardSummary(shard.index, shard.rows, time.perf_counter() - start, partial,
                                   stats["allocated_bytes.peak"], stats["saved_bytes.peak"], rss_peak, arrow_peak)
            writer.add_key_value_metadata({SUMMARY_KEY: summary.to_json()})  # what a resumed run reuses
            writer.close()
        return summary

    def _evaluate_batch(self, batch, shard: Shard) -> tuple[pa.Table, dict]:
        x = engine.from_numpy(batch.features)
        with self.mode():
            out = self.model(x)
        if self.config.grad_mode != "enabled" and out.grad_fn is not None:
            raise InputError(f"model {self.config.model.describe()} returned an output with grad_fn "
                             f"{out.grad_fn.name()} under {self.config.grad_mode}: something inside it re-enables grad")
        outputs = out.detach().numpy()
        where = f"{storage.redact(shard.location)} rows with ids {batch.row_ids[0]}-{batch.row_ids[-1]}"
        return self._task_columns(outputs, batch, where)

    def _task_columns(self, outputs: np.ndarray, batch: Batch, where: str,
                      check_labels: bool = True) -> tuple[pa.Table, dict]:
        """The part-file columns and the partial metrics of one batch."""
        config = self.config
        columns = {"row_id": pa.array(batch.row_ids)}
        if batch.labels is not None:
            columns["label"] = pa.array(batch.labels)
        if config.task == "classification":
            if outputs.ndim != 2:
                raise InputError(f"classification needs (rows, classes) outputs; model {config.model.describe()} "
                                 f"returned shape {list(outputs.shape)} (use --task raw for other outputs)")
            predictions = outputs.argmax(axis=1).astype(np.int64)
            columns["prediction"] = pa.array(predictions)
            topk = None
            if config.top_k:
                k = min(config.top_k, outputs.shape[1])
                topk = np.argsort(-outputs, axis=1, kind="stable")[:, :k].astype(np.int64)
                columns["topk"] = _fixed_lists(topk)
            if config.save_scores:
                columns["scores"] = _fixed_lists(np.exp(metrics.log_softmax(outputs)).astype(np.float32))
            labels = batch.labels if check_labels else None
            partial = metrics.classification_partial(outputs, labels, predictions, topk, where)
        else:
            flat = outputs.reshape(len(outputs), -1).astype(np.float32, copy=False)
            single = config.task == "regression" and flat.shape[1] == 1
            columns["prediction"] = pa.array(flat[:, 0]) if single else _fixed_lists(flat)
            partial = (metrics.regression_partial(outputs, batch.labels) if config.task == "regression"
                       else {"rows": len(outputs)})
        return pa.table(columns), partial


def _fixed_lists(values: np.ndarray) -> pa.Array:
    """(rows, k) numpy -> a fixed-size-list column, without copying."""
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(values).ravel()), values.shape[1])
