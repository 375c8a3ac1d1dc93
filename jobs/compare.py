"""--compare-grad-modes: one sample evaluated under each grad mode, side by side, by the job's own evaluator.

It runs in this process (no Ray), on the first rows of the data, so a user sees in seconds what
no_grad saves on their own model: time, and the engine's allocated and saved-for-backward peaks.
With several --model, it compares the first model's modes only.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time

from cluster.config import GRAD_MODES, JobConfig
from cluster.evaluator import ShardEvaluator
from cluster.job import plan
from jobs.summary import human_bytes, table_lines


def compare(config: JobConfig, sample_rows: int = 4096, repeats: int = 2) -> str:
    """Evaluate the first `sample_rows` rows (or the job's --limit) under each grad mode with the job's first model;
    the comparison as text."""
    with tempfile.TemporaryDirectory() as scratch:
        sample = dataclasses.replace(config.with_model(0), limit=config.limit or sample_rows, output=scratch,
                                     overwrite=False, resume=False, ci=0.0)
        shards, _, sample, schema = plan(sample)
        rows, results = sum(s.rows for s in shards), {}
        for mode in GRAD_MODES:
            evaluator = ShardEvaluator(dataclasses.replace(sample, grad_mode=mode), schema=schema)
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
    header = [f"{rows:,} rows, batch {config.batch_size}", "time", "rows/s", "speed-up", "engine peak",
              "saved for bwd"]
    title = f"Grad modes compared on one sample (in this process), model {config.models()[0].label()}:"
    return "\n".join([title, *table_lines(header, table)])
