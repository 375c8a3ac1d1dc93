"""A finished output written directly, with every section a report can show: two models, slices, calibration,
intervals, a comparison, several workers and a shard timeline with a retry and a speculative attempt.

The metrics are computed with the project's own statistics on random predictions, so they are consistent
with one another; the files have the layout a job writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cluster import bootstrap, calibration, stats

LEVEL, REPLICATES = 0.95, 200


def write_synthetic_output(out: Path, classes: int = 10, rows: int = 3000, timed: bool = True,
                           models: tuple[str, ...] = ("convnet", "mlp")) -> Path:
    """Write metrics.json, job.json, workers.parquet, shards.parquet and _SUCCESS into `out`."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, rows)
    source = rng.choice(np.array(["scan", "photo", "synthetic", "rare"]), rows, p=[0.5, 0.3, 0.19, 0.01])
    correct = {name: rng.random(rows) < 0.93 - 0.05 * i for i, name in enumerate(models)}
    per_model = {name: _model_metrics(rng, labels, correct[name], classes, source) for name in models}
    metrics = {"rows": rows, "wall_s": 12.5, "rows_per_s": rows / 12.5, "skipped_shards": 0}
    if len(models) == 1:
        metrics.update(per_model[models[0]])
    else:
        metrics["models"] = per_model
        metrics["comparisons"] = [_comparison(a, b, correct[a], correct[b]) for i, a in enumerate(models)
                                  for b in models[i + 1:]]
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics))
    config = {"data": ["/data/test-*.parquet"], "model": ",".join(models), "task": "classification",
              "output": str(out), "workers": 3, "batch_size": 1024}
    (out / "job.json").write_text(json.dumps({"started": "2026-01-01T00:00:00+00:00", "config": config,
                                              "finished": "2026-01-01T00:00:12+00:00", "versions": {"project": "0"}}))
    pq.write_table(_workers(), out / "workers.parquet")
    pq.write_table(_shards(rows, timed), out / "shards.parquet")
    (out / "_SUCCESS").write_bytes(b"")
    return out


def _model_metrics(rng, labels, correct, classes, source) -> dict:
    rows = len(labels)
    predictions = np.where(correct, labels, (labels + rng.integers(1, classes, rows)) % classes)
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    support, predicted, hits = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    confidences = np.clip(np.where(correct, 0.9, 0.6) + rng.normal(0, 0.1, rows), 0.1, 1.0).astype(np.float32)
    losses = -np.log(np.where(correct, confidences, (1 - confidences) / 2))
    weights = bootstrap.poisson_weights(1, np.arange(rows), REPLICATES)
    sums = bootstrap.BootstrapSums(REPLICATES, bootstrap.classification_columns(classes, per_class=True))
    sums.add(weights, bootstrap.classification_values(losses, labels, predictions, classes, per_class=True))
    replicates = bootstrap.classification_replicates(sums)
    return {
        "rows": rows, "accuracy": float(correct.mean()), "loss": float(losses.mean()),
        "top_k_accuracy": float(np.minimum(correct.mean() + 0.04, 1)), "top_k": 3,
        "macro_f1": float(bootstrap.macro_f1(hits, support, predicted)),
        "per_class": [{"class": c, "precision": float(hits[c] / max(predicted[c], 1)),
                       "recall": float(hits[c] / max(support[c], 1)), "support": int(support[c])}
                      for c in range(classes)],
        "confusion_matrix": matrix.tolist(),
        "ci": {"level": LEVEL, "accuracy": stats.wilson(int(correct.sum()), rows, LEVEL),
               "top_k_accuracy": stats.wilson(int(min(correct.sum() + 0.04 * rows, rows)), rows, LEVEL),
               "loss": stats.bootstrap_interval(replicates["loss"], LEVEL),
               "macro_f1": stats.bootstrap_interval(replicates["macro_f1"], LEVEL)},
        "calibration": calibration.calibration(calibration.calibration_partial(confidences, correct)),
        "slices": {"source": [_slice(value, correct[source == value], losses[source == value])
                              for value in ("scan", "photo", "synthetic", "rare")],
                   "source,even": [_slice([value, even], correct[(source == value) & (labels % 2 == even)],
                                          losses[(source == value) & (labels % 2 == even)])
                                   for value in ("scan", "photo") for even in (0, 1)]},
    }


def _slice(value, correct, losses) -> dict:
    return {"value": value, "rows": len(correct), "accuracy": float(correct.mean()),
            "accuracy_ci": list(stats.wilson(int(correct.sum()), len(correct), LEVEL)),
            "loss": float(losses.mean()), "small": len(correct) < 30}


def _comparison(a, b, correct_a, correct_b) -> dict:
    weights = bootstrap.poisson_weights(2, np.arange(len(correct_a)), REPLICATES)
    sums = bootstrap.BootstrapSums(REPLICATES, bootstrap.COMPARISON_COLUMNS)
    sums.add(weights, bootstrap.comparison_values(correct_a, correct_b))
    a_only, b_only = int((correct_a & ~correct_b).sum()), int((correct_b & ~correct_a).sum())
    return {"a": a, "b": b, "accuracy_diff": float(correct_b.mean() - correct_a.mean()),
            "accuracy_diff_ci": list(stats.bootstrap_interval(bootstrap.ratio_replicates(sums, "difference"), LEVEL)),
            "mcnemar_p": stats.mcnemar_exact(a_only, b_only), "a_only_correct": a_only, "b_only_correct": b_only}


def _workers() -> pa.Table:
    mib = 2 ** 20
    return pa.Table.from_pylist([
        {"worker": f"worker-{i}", "node": "a1b2c3d4e5", "host": "vm", "pid": 100 + i, "shards": 8, "rows": 1000,
         "busy_s": 10.0 + i, "wall_s": 12.5, "rows_per_s": 1000 / (10.0 + i), "rss_peak_bytes": (300 + 20 * i) * mib,
         "engine_allocated_peak_bytes": (40 + i) * mib, "engine_saved_peak_bytes": 0, "arrow_peak_bytes": mib,
         "grad_mode": "no_grad", "failures": int(i == 2)} for i in range(3)])


def _shards(rows: int, timed: bool) -> pa.Table:
    shards, per_shard = [], rows // 24
    for index in range(24):
        worker, slot = index % 3, index // 3
        row = {"shard": index, "path": f"/data/test-{index // 8}.parquet", "first_row": index * per_shard,
               "rows": per_shard, "worker": f"worker-{worker}", "node": "a1b2c3d4e5",
               "attempts": 2 if index == 5 else 1, "seconds": 1.2, "rss_peak_bytes": 300 * 2 ** 20,
               "engine_allocated_peak_bytes": 40 * 2 ** 20, "engine_saved_peak_bytes": 0, "arrow_peak_bytes": 2 ** 20}
        if timed:
            row.update(speculative=index == 22, started_at=1.7e9 + 1.5 * slot + 0.1 * worker,
                       finished_at=1.7e9 + 1.5 * slot + 0.1 * worker + 1.2)
        shards.append(row)
    return pa.Table.from_pylist(shards)
