"""metrics.json's figures from every shard's merged results: each model's metrics with their intervals, calibration
and slices, and the comparison of every pair of models.

One model: its figures at the top level of metrics.json (as before several models existed). Several:
{"models": {NAME: <one model's figures>}, "comparisons": [...]}. The intervals (with --ci LEVEL):
Wilson's for accuracy and top-k accuracy, from the counts; percentile intervals of the Poisson
bootstrap's replicates for the loss, macro-F1 (up to bootstrap.MACRO_F1_MAX_CLASSES classes), each
slice's accuracy and each pair's accuracy difference.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cluster import bootstrap, calibration, metrics, stats
from cluster.bootstrap import json_key
from cluster.config import JobConfig
from cluster.results import ShardResults, pairs
from cluster.slices import slices_table


def finish(config: JobConfig, results: ShardResults) -> tuple[dict, pa.Table | None]:
    """The task's figures for metrics.json, and slices.parquet's table (None without --slice-by)."""
    models = {spec.name: model_figures(config, results, i) for i, spec in enumerate(config.models())}
    table = slices_table({name: m.get("slices", {}) for name, m in models.items()}) if config.slice_by else None
    if len(models) == 1:
        return next(iter(models.values())), table
    return {"models": models, "comparisons": comparisons(config, results)}, table


def model_figures(config: JobConfig, results: ShardResults, i: int) -> dict:
    """Model i's metrics (cluster.metrics.finish), and with labels its calibration, intervals and slices."""
    partial = results.partials[i]
    figures = metrics.finish(config.task, partial, config.top_k)
    if config.task == "classification" and partial.get("labeled"):
        figures["calibration"] = calibration.calibration(results.calibrations[i])
        if config.ci:
            figures["ci"] = intervals(config, results, i)
    if config.slice_by:
        figures["slices"] = {name: slice_entries(config, results, name, i) for name in results.slices}
    return figures


def intervals(config: JobConfig, results: ShardResults, i: int) -> dict:
    """Model i's "ci": {"level", "accuracy", "top_k_accuracy", "loss", "macro_f1"}, each [lo, hi]."""
    level, partial = config.ci, results.partials[i]
    ci = {"level": level, "accuracy": list(stats.wilson(partial["correct"], partial["labeled"], level))}
    if "topk_correct" in partial:
        ci["top_k_accuracy"] = list(stats.wilson(partial["topk_correct"], partial["labeled"], level))
    replicates = bootstrap.classification_replicates(results.model_sums[i])
    ci["loss"] = list(stats.bootstrap_interval(replicates["loss"], level))
    if "macro_f1" in replicates:
        ci["macro_f1"] = list(stats.bootstrap_interval(replicates["macro_f1"], level))
    else:
        ci["note"] = (f"macro-F1 has no interval with {partial['classes']:,} classes: above "
                      f"{bootstrap.MACRO_F1_MAX_CLASSES}, its per-class bootstrap sums (2 columns per class in "
                      "every batch) would cost more than the rest together")
    return ci


def slice_entries(config: JobConfig, results: ShardResults, name: str, i: int) -> list[dict]:
    """Model i's figures per slice of one slicing, largest first: value, rows, accuracy (its interval), loss, small."""
    sums, replicates = results.slices[name], results.slice_sums.get(name)
    entries = []
    for key in sums.ordered_keys():
        rows = int(sums.column("rows", key))
        entry = {"value": json_key(key), "rows": rows}
        if f"correct{i}" in sums.columns:
            entry["accuracy"] = sums.column(f"correct{i}", key) / rows
            if replicates is not None:
                estimates = bootstrap.ratio_replicates(replicates, f"correct{i}", key=key)
                entry["accuracy_ci"] = list(stats.bootstrap_interval(estimates, config.ci))
            entry["loss"] = sums.column(f"loss{i}", key) / rows
        elif f"sse{i}" in sums.columns:
            values = sums.column(f"values{i}", key)
            entry.update(mse=sums.column(f"sse{i}", key) / values, mae=sums.column(f"sae{i}", key) / values)
        entry["small"] = rows < config.min_slice_rows
        entries.append(entry)
    return entries


def comparisons(config: JobConfig, results: ShardResults) -> list[dict]:
    """Each pair (a, b) in the given order: B's accuracy minus A's with its paired-bootstrap interval, McNemar's
    exact p-value, and the rows only A and only B got right. Empty without labelled classification."""
    if config.task != "classification" or not all(p.get("labeled") for p in results.partials):
        return []
    found = []
    for k, (a, b) in enumerate(pairs(len(config.model))):
        first, second = results.partials[a], results.partials[b]
        a_only, b_only = results.only_correct[k]
        entry = {"a": config.name[a], "b": config.name[b],
                 "accuracy_diff": (second["correct"] - first["correct"]) / first["labeled"]}
        if config.ci:
            # The models' sums share their rows and weights: (Σ w·correct_b - Σ w·correct_a) / Σ w per replicate is
            # the paired bootstrap of the difference, exactly what sums of comparison_values would give.
            sums_a, sums_b = results.model_sums[a], results.model_sums[b]
            with np.errstate(divide="ignore", invalid="ignore"):
                estimates = (sums_b.column("correct") - sums_a.column("correct")) / sums_a.column("weight")
            entry["accuracy_diff_ci"] = list(stats.bootstrap_interval(estimates, config.ci))
        entry.update(mcnemar_p=stats.mcnemar_exact(a_only, b_only), a_only_correct=a_only, b_only_correct=b_only)
        found.append(entry)
    return found
