"""Several models in one pass: the data read once per batch and every model run on it, each model's predictions and
metrics as its own run gives them, and every pair compared (checked against scipy and a row-by-row bootstrap)."""

import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from results_runs import LEVEL, REPLICATES, SEED, column
from scipy import stats as scipy_stats

import cluster
from cluster.bootstrap import poisson_weights
from jobs.evaluate import main

EXACT = ("rows", "accuracy", "top_k_accuracy", "top_k", "macro_f1", "per_class", "confusion_matrix", "ci")


def by_id(result) -> dict:
    table = result.predictions.to_table().sort_by("row_id")
    return {name: column(table, name) for name in table.column_names}


def test_each_model_gets_its_own_prefixed_columns_beside_row_id_and_label(sliced_runs):
    names = sliced_runs["ab"].predictions.schema.names
    assert names == ["row_id", "label", "a.prediction", "a.topk", "a.scores", "b.prediction", "b.topk", "b.scores"]
    assert sliced_runs["a"].predictions.schema.names == ["row_id", "label", "prediction", "topk", "scores"]


@pytest.mark.parametrize("name", ["a", "b"])
def test_each_models_predictions_and_metrics_equal_its_own_single_model_run(sliced_runs, name):
    together, alone = sliced_runs["ab"], sliced_runs[name]
    both, one = by_id(together), by_id(alone)
    assert np.array_equal(both["row_id"], one["row_id"])
    for part in ("prediction", "topk", "scores"):
        assert np.array_equal(both[f"{name}.{part}"], one[part])
    metrics = together.metrics["models"][name]
    assert {k: metrics[k] for k in EXACT} == {k: alone.metrics[k] for k in EXACT}
    assert metrics["loss"] == pytest.approx(alone.metrics["loss"], rel=1e-12)
    assert metrics["calibration"]["ece"] == pytest.approx(alone.metrics["calibration"]["ece"], rel=1e-9)
    assert together.metrics["rows"] == alone.metrics["rows"] == 1000


def test_the_comparison_counts_the_rows_only_one_model_got_right_and_tests_them_with_mcnemar(sliced_runs):
    rows = by_id(sliced_runs["ab"])
    correct_a, correct_b = rows["a.prediction"] == rows["label"], rows["b.prediction"] == rows["label"]
    (comparison,) = sliced_runs["ab"].metrics["comparisons"]
    a_only, b_only = int((correct_a & ~correct_b).sum()), int((correct_b & ~correct_a).sum())
    assert (comparison["a"], comparison["b"]) == ("a", "b")
    assert (comparison["a_only_correct"], comparison["b_only_correct"]) == (a_only, b_only)
    assert comparison["accuracy_diff"] == pytest.approx(correct_b.mean() - correct_a.mean(), rel=1e-12)
    expected = scipy_stats.binomtest(min(a_only, b_only), a_only + b_only, 0.5).pvalue
    assert comparison["mcnemar_p"] == pytest.approx(expected, rel=1e-9)


def test_the_accuracy_differences_interval_is_a_paired_bootstrap_on_the_same_rows(sliced_runs):
    rows = by_id(sliced_runs["ab"])
    difference = (rows["b.prediction"] == rows["label"]).astype(float) - (rows["a.prediction"] == rows["label"])
    weights = poisson_weights(SEED, rows["row_id"], REPLICATES).astype(np.float64)
    estimates = weights.T @ difference / weights.sum(axis=0)
    expected = np.quantile(estimates, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    assert sliced_runs["ab"].metrics["comparisons"][0]["accuracy_diff_ci"] == pytest.approx(list(expected),
                                                                                            rel=1e-12)


def test_one_models_bad_output_sets_the_row_aside_for_every_model(sliced_runs, tmp_path):
    result = cluster.evaluate(data=[str(sliced_runs.data)], output=str(tmp_path / "o"), label="label", id="id",
                              model=["fixture_models:mlp", "fixture_models:inf_on_rows"],
                              model_kwargs=[{}, {"above": 1.5}], on_bad_rows="skip", workers=1)
    bad = pq.read_table(tmp_path / "o" / "bad_rows.parquet")
    features = pq.read_table(sliced_runs.data, columns=["id", "features"]).sort_by("id")
    expected = column(features, "id")[column(features, "features")[:, 0] > 1.5]
    assert sorted(bad.column("row_id").to_pylist()) == expected.tolist() and len(expected)
    assert set(bad.column("reason").to_pylist()) == {"non-finite output"}
    assert "model inf_on_rows's output" in bad.column("detail")[0].as_py()
    for model in result.metrics["models"].values():
        assert model["rows"] == 1000 - len(expected)
    assert result.predictions.count_rows() == 1000 - len(expected)


@pytest.mark.parametrize("flags, message", [
    (["--model", "fixture_models:mlp", "--model", "mlp", "--weights", "w1", "--weights", "w2", "--weights", "w3"],
     "3 --weights for 2 --model (1 of them not zoo models)"),
    (["--model", "convnet", "--model", "mlp", "--name", "only-one"], "1 --name for 2 --model"),
])
def test_a_mismatched_count_exits_2_with_one_line_naming_the_counts(flags, message, capsys):
    code = main([*flags, "--output", "unused"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.splitlines() == [f"error: {error[len('error: '):]}"] and message in error


def test_grad_modes_are_compared_on_the_first_model(capsys):
    assert main(["--model", "mlp", "--model", "convnet", "--limit", "64", "--compare-grad-modes"]) == 0
    assert "model mlp:" in capsys.readouterr().out


def test_two_zoo_models_of_different_input_shapes_are_compared_from_the_command_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "jobs.evaluate", "--model", "convnet", "--model", "mlp",
                           "--slice-by", "label", "--output", str(tmp_path / "o")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.lstrip().startswith("convnet  accuracy") for line in lines)
    assert any(line.lstrip().startswith("mlp      accuracy") for line in lines)
    assert any(line.lstrip().startswith("mlp - convnet: accuracy") and "McNemar p" in line for line in lines)
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert list(metrics["models"]) == ["convnet", "mlp"] and metrics["models"]["mlp"]["accuracy"] > 0.9
    assert (tmp_path / "o" / "slices.parquet").exists() and (tmp_path / "o" / "report.html").exists()
    assert json.loads((tmp_path / "o" / "job.json").read_text())["config"]["name"] == ["convnet", "mlp"]
