"""Confidence intervals and calibration in metrics.json, each checked against an independent computation from the
written predictions and scores: scipy's Wilson interval, a bootstrap recomputed row by row, numpy's ECE."""

import json

import numpy as np
import pytest
from conftest import feature_table, write_parquet
from results_runs import LEVEL, REPLICATES, SEED, column, footer_summaries
from scipy import stats as scipy_stats

import cluster
from cluster.bootstrap import poisson_weights
from cluster.process_memory import process_peak_rss

MIB = 2 ** 20


def wilson(successes: int, n: int) -> list[float]:
    interval = scipy_stats.binomtest(successes, n).proportion_ci(LEVEL, method="wilson")
    return [interval.low, interval.high]


def percentile_interval(estimates: np.ndarray) -> list[float]:
    return list(np.quantile(estimates, [(1 - LEVEL) / 2, (1 + LEVEL) / 2]))


def written(sliced_runs, run: str = "a"):
    """The run's metrics, and per row (in id order): id, label, prediction, top-2 classes, scores."""
    result = sliced_runs[run]
    table = result.predictions.to_table().sort_by("row_id")
    return result.metrics, *(column(table, name) for name in ("row_id", "label", "prediction", "topk", "scores"))


def test_accuracy_and_top_k_accuracy_intervals_are_wilsons(sliced_runs):
    metrics, _, labels, predicted, topk, _ = written(sliced_runs)
    correct, in_top_k = predicted == labels, (topk == labels[:, None]).any(axis=1)
    assert metrics["ci"]["level"] == LEVEL
    assert metrics["ci"]["accuracy"] == pytest.approx(wilson(int(correct.sum()), len(labels)), rel=1e-12)
    assert metrics["ci"]["top_k_accuracy"] == pytest.approx(wilson(int(in_top_k.sum()), len(labels)), rel=1e-12)


def test_the_loss_interval_is_the_percentile_interval_of_the_rows_poisson_bootstrap(sliced_runs):
    metrics, ids, labels, _, _, scores = written(sliced_runs)
    losses = -np.log(scores[np.arange(len(labels)), labels].astype(np.float64))
    weights = poisson_weights(SEED, ids, REPLICATES).astype(np.float64)  # a row's weights: (seed, row id) alone
    estimates = weights.T @ losses / weights.sum(axis=0)
    assert metrics["loss"] == pytest.approx(losses.mean(), rel=1e-5)
    assert metrics["ci"]["loss"] == pytest.approx(percentile_interval(estimates), rel=1e-5)


def weighted_macro_f1(w: np.ndarray, labels: np.ndarray, predicted: np.ndarray) -> float:
    f1 = []
    for c in np.union1d(labels, predicted):
        hits = np.sum(w * ((labels == c) & (predicted == c)))
        f1.append(2 * hits / (np.sum(w * (labels == c)) + np.sum(w * (predicted == c))))
    return float(np.mean(f1))


def test_the_macro_f1_interval_is_the_percentile_interval_of_each_replicates_weighted_f1(sliced_runs):
    metrics, ids, labels, predicted, _, _ = written(sliced_runs)
    weights = poisson_weights(SEED, ids, REPLICATES).astype(np.float64)
    estimates = [weighted_macro_f1(weights[:, r], labels, predicted) for r in range(REPLICATES)]
    assert metrics["macro_f1"] == pytest.approx(weighted_macro_f1(np.ones(len(ids)), labels, predicted), rel=1e-12)
    assert metrics["ci"]["macro_f1"] == pytest.approx(percentile_interval(np.array(estimates)), rel=1e-12)


def test_ece_and_reliability_bins_equal_numpy_on_the_written_scores(sliced_runs):
    metrics, _, labels, predicted, _, scores = written(sliced_runs)
    confidence, correct = scores.max(axis=1).astype(np.float64), predicted == labels
    bins = np.minimum((confidence * 15).astype(int), 15)  # [k/15, (k+1)/15); 1.0 alone
    ece = sum(abs(correct[bins == k].mean() - confidence[bins == k].mean()) * np.sum(bins == k) / len(bins)
              for k in np.unique(bins))
    assert metrics["calibration"]["ece"] == pytest.approx(ece, abs=1e-6)
    assert [b["count"] for b in metrics["calibration"]["bins"]][:15] == np.bincount(bins, minlength=15)[:15].tolist()


def test_bootstrap_intervals_are_identical_for_one_and_three_workers_and_other_shard_sizes(sliced_runs):
    one = sliced_runs["a"].metrics  # 1 worker, shards of 300 rows
    three = sliced_runs["ab"].metrics["models"]["a"]  # 3 workers, shards of 100 rows (and a second model beside)
    assert len(sliced_runs["a"].shards) == 4 and len(sliced_runs["ab"].shards) == 10
    assert sliced_runs["ab"].workers.num_rows == 3 and sliced_runs["a"].workers.num_rows == 1
    assert three["ci"] == one["ci"]
    for name, entries in one["slices"].items():  # every count, accuracy and interval exactly; the loss's float sums
        exact = ["value", "rows", "accuracy", "accuracy_ci", "small"]  # are added in another grouping
        assert [[e[k] for k in exact] for e in three["slices"][name]] == [[e[k] for k in exact] for e in entries]
        assert [e["loss"] for e in three["slices"][name]] == pytest.approx([e["loss"] for e in entries], rel=1e-12)
    for ours, theirs in zip(three["calibration"]["bins"], one["calibration"]["bins"], strict=True):
        assert [ours[k] for k in ("lo", "hi", "count")] == [theirs[k] for k in ("lo", "hi", "count")]
        for k in ("confidence", "accuracy"):  # None for an empty bin; else a mean added in another grouping
            assert ours[k] == (None if theirs[k] is None else pytest.approx(theirs[k]))


def test_without_intervals_metrics_hold_no_ci_and_shards_keep_no_bootstrap_sums(sliced_runs):
    result = sliced_runs["ab_no_ci"]
    for model in result.metrics["models"].values():
        assert "ci" not in model and "calibration" in model
        assert all("accuracy_ci" not in entry for entries in model["slices"].values() for entry in entries)
    assert all("accuracy_diff_ci" not in c for c in result.metrics["comparisons"])
    assert all("bootstrap" not in summary["partial"] for summary in footer_summaries(result.output))


def test_a_resumed_run_gives_the_very_same_figures(sliced_runs, tmp_path):
    full = sliced_runs["ab"].metrics
    out = tmp_path / "resumed"
    sliced_runs.run("ab", out)
    (out / "_SUCCESS").unlink()
    for part in sorted((out / "predictions").glob("part-*.parquet"))[::2]:
        part.unlink()  # as if the run had died before these shards finished
    resumed = sliced_runs.run("ab", out, resume=True, workers=2, cpus_per_worker=1.0)
    assert resumed.metrics["runs"][1]["rows"] < resumed.metrics["rows"] == full["rows"]
    assert resumed.metrics["models"] == full["models"] and resumed.metrics["comparisons"] == full["comparisons"]


@pytest.fixture(scope="module")
def thousand_classes(ray_cluster, tmp_path_factory):
    """A 1,000-class model on 3,000 rows, in 3 shards."""
    root = tmp_path_factory.mktemp("classes")
    for i in range(3):
        write_parquet(root / "data" / f"part-{i}.parquet", feature_table(1000, seed=i, classes=1000), 1000)
    return cluster.evaluate(data=[str(root / "data")], model="fixture_models:mlp", output=str(root / "out"),
                            label="label", model_kwargs={"classes": 1000}, workers=1, shard_rows=1000)


def test_a_thousand_classes_have_intervals_but_macro_f1s_with_a_note(thousand_classes):
    ci = thousand_classes.metrics["ci"]
    assert set(ci) == {"level", "accuracy", "loss", "note"} and "1,000 classes" in ci["note"]
    assert ci["loss"][0] < thousand_classes.metrics["loss"] < ci["loss"][1]
    assert "macro_f1" in thousand_classes.metrics  # the point estimate stays


def test_a_thousand_class_shards_results_stay_small_whatever_the_classes(thousand_classes):
    for summary in footer_summaries(thousand_classes.output):
        assert len(json.dumps(summary["partial"])) < 100_000  # no per-row state, no classes x replicates arrays
        (model,) = summary["partial"]["bootstrap"]["models"]
        assert len(model["columns"]) == 6 and model["replicates"] == 200  # weight, loss (4 pieces), correct
    assert thousand_classes.workers.column("rss_peak_bytes")[0].as_py() < 600 * MIB
    assert process_peak_rss() < 2048 * MIB  # the driver (this process) too
