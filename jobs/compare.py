"""--compare-grad-modes: one sample evaluated under enabled, no_grad and inference_mode, side by side.

It runs in this process (no Ray), on the first rows of the data, so a user sees in seconds what
no_grad saves on their own model: time, and the engine's allocated and saved-for-backward peaks.
"""

from __future__ import annotations

import tempfile
import time

from cluster import planner, storage
from cluster.columns import ColumnSpec
from cluster.models import ModelSpec
from cluster.worker import EvalConfig, ShardEvaluator
from jobs.summary import human_bytes, table_lines

MODES = ("enabled", "no_grad", "inference_mode")


def compare(o, sample_rows: int = 4096, repeats: int = 2) -> str:
    """Evaluate the first `sample_rows` rows under each grad mode; the comparison as text."""
    columns = ColumnSpec(o.features, o.label, o.id, o.input_shape)
    shards, _ = planner.plan(storage.list_inputs(o.data), columns, o.shard_rows)
    shards = planner.limit_rows(shards, o.limit or sample_rows)
    rows, results = sum(s.rows for s in shards), {}
    with tempfile.TemporaryDirectory() as scratch:
        for mode in MODES:
            config = EvalConfig(ModelSpec(o.model, o.weights), columns, scratch, o.task, o.batch_size, mode)
            evaluator = ShardEvaluator(config)
            best = None
            for _ in range(repeats):  # the first pass warms caches; keep the best
                start = time.perf_counter()
                summaries = [evaluator.evaluate(s) for s in shards]
                seconds = time.perf_counter() - start
                if best is None or seconds < best[0]:
                    best = (seconds, summaries)
            seconds, summaries = best
            results[mode] = (seconds, max(s.engine_allocated_peak_bytes for s in summaries),
                             max(s.engine_saved_peak_bytes for s in summaries))
    base = results["enabled"][0]
    table = [[mode, f"{seconds * 1e3:,.1f} ms", f"{rows / seconds:,.0f}", f"{base / seconds:.2f}x",
              human_bytes(allocated), human_bytes(saved)] for mode, (seconds, allocated, saved) in results.items()]
    header = [f"{rows:,} rows, batch {o.batch_size}", "time", "rows/s", "speed-up", "engine peak", "saved for bwd"]
    return "\n".join(["Grad modes compared on one sample (in this process):", *table_lines(header, table)])
