"""Slices: metrics per value of a data column (or per combination of several), checked against a group-by of the
written predictions joined to the data; slices.parquet; the codes a batch carries; bad usage."""

import datetime
import decimal
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import feature_table, write_parquet
from results_runs import LEVEL, REPLICATES, SEED, column

import cluster
from cluster.bootstrap import poisson_weights
from cluster.errors import InputError
from cluster.slices import SliceSums, batch_codes, json_value
from jobs.evaluate import main


def group_by(joined: pa.Table, columns: list[str], prediction: str = "prediction") -> dict:
    """Per slice value (a tuple for several columns): rows and correct rows, by pyarrow's group_by."""
    correct = pa.compute.equal(joined.column(prediction), joined.column("label"))
    table = joined.select(columns).append_column("correct", pa.compute.cast(correct, pa.int64()))
    grouped = table.group_by(columns, use_threads=False).aggregate([("correct", "count"), ("correct", "sum")])
    found = {}
    for row in grouped.to_pylist():
        values = [json_value(row[c]) for c in columns]
        found[values[0] if len(columns) == 1 else tuple(values)] = (row["correct_count"], row["correct_sum"])
    return found


def by_value(entries: list[dict]) -> dict:
    return {tuple(e["value"]) if isinstance(e["value"], list) else e["value"]: e for e in entries}


@pytest.mark.parametrize("slicing", ["source", "source,even", "day"])
def test_each_slices_rows_and_accuracy_equal_a_group_by_of_the_predictions_joined_to_the_data(sliced_runs, slicing):
    expected = group_by(sliced_runs.joined(sliced_runs["a"]), slicing.split(","))
    entries = by_value(sliced_runs["a"].metrics["slices"][slicing])
    assert set(entries) == set(expected)
    for value, (rows, correct) in expected.items():
        assert entries[value]["rows"] == rows
        assert entries[value]["accuracy"] == pytest.approx(correct / rows, rel=1e-12)


def test_nulls_are_a_slice_of_their_own_and_dates_read_as_iso_strings(sliced_runs):
    metrics = sliced_runs["a"].metrics
    assert None in by_value(metrics["slices"]["source"]) and metrics["bad_rows"]["rows"] == 0
    assert set(by_value(metrics["slices"]["day"])) == {"2026-01-01", "2026-01-02", "2026-01-03"}
    assert all(len(e["value"]) == 2 for e in metrics["slices"]["source,even"])


def test_slices_with_fewer_rows_than_the_minimum_are_flagged_small_not_hidden(sliced_runs):
    entries = by_value(sliced_runs["a"].metrics["slices"]["source"])
    assert entries["rare"]["rows"] < 30 and entries["rare"]["small"]
    assert not entries["scan"]["small"] and sum(e["rows"] for e in entries.values()) == 1000


def test_a_slices_accuracy_interval_is_the_percentile_interval_of_its_rows_bootstrap(sliced_runs):
    joined = sliced_runs.joined(sliced_runs["a"])
    ids, source = column(joined, "row_id"), joined.column("source").to_pylist()
    correct = column(joined, "prediction") == column(joined, "label")
    weights = poisson_weights(SEED, ids, REPLICATES).astype(np.float64)
    for value, entry in by_value(sliced_runs["a"].metrics["slices"]["source"]).items():
        rows = np.array([s == value for s in source])
        estimates = weights[rows].T @ correct[rows] / weights[rows].sum(axis=0)
        estimates = estimates[~np.isnan(estimates)]  # a replicate that drew none of a small slice's rows
        expected = np.quantile(estimates, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        assert entry["accuracy_ci"] == pytest.approx(list(expected), rel=1e-12)


def test_slices_parquet_holds_every_models_slices_as_metrics_json_does(sliced_runs):
    result = sliced_runs["ab"]
    table = pq.read_table(f"{result.output}/slices.parquet")
    assert table.column_names == ["slicing", "value", "model", "rows", "accuracy", "accuracy_lo", "accuracy_hi",
                                  "loss", "mse", "mae", "small"]
    for row in table.to_pylist():
        entries = by_value(result.metrics["models"][row["model"]]["slices"][row["slicing"]])
        value = json.loads(row["value"])
        entry = entries[tuple(value) if isinstance(value, list) else value]
        assert [row["rows"], row["accuracy"], [row["accuracy_lo"], row["accuracy_hi"]], row["loss"], row["small"]] \
            == [entry["rows"], entry["accuracy"], entry["accuracy_ci"], entry["loss"], entry["small"]]
    assert table.num_rows == 2 * sum(len(e) for e in result.metrics["models"]["a"]["slices"].values())


def test_regression_slices_hold_each_slices_mse_and_mae(sliced_runs, tmp_path):
    result = cluster.evaluate(data=[str(sliced_runs.data)], model="fixture_models:mlp", output=str(tmp_path / "o"),
                              task="regression", label="label", id="id", model_kwargs={"classes": 1},
                              slice_by="even", workers=1)
    joined = sliced_runs.joined(result)
    error = column(joined, "prediction").astype(np.float64) - column(joined, "label")
    even = column(joined, "even")
    for entry in result.metrics["slices"]["even"]:
        rows = even == entry["value"]
        assert entry["rows"] == rows.sum() and "accuracy" not in entry
        assert entry["mse"] == pytest.approx(np.mean(error[rows] ** 2), rel=1e-6)
        assert entry["mae"] == pytest.approx(np.mean(np.abs(error[rows])), rel=1e-6)


def test_slicing_by_a_missing_column_exits_2_with_one_line_naming_it(sliced_runs, capsys):
    code = main(["--data", str(sliced_runs.data), "--model", "fixture_models:mlp", "--label", "label",
                 "--slice-by", "source,nope", "--output", "unused"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1
    assert error.startswith("error: --slice-by:") and "no column 'nope'" in error


def test_slicing_by_a_column_of_lists_is_refused_naming_it(tmp_path):
    write_parquet(tmp_path / "d" / "a.parquet", feature_table(20))
    with pytest.raises(InputError, match="--slice-by: .*column 'features' is fixed_size_list"):
        cluster.evaluate(data=[str(tmp_path / "d")], model="fixture_models:mlp", output=str(tmp_path / "o"),
                         slice_by="features")


def codes_of(table: pa.Table, columns: str) -> dict:
    codes = batch_codes(table.to_batches()[0], columns.split(","))
    return {key: np.flatnonzero(codes.codes == i).tolist() for i, key in enumerate(codes.keys)}


def test_a_batchs_codes_give_each_row_its_slice_with_nulls_and_nan_as_none():
    table = pa.table({"s": pa.array(["x", None, "y", "x"]), "f": pa.array([1.5, float("nan"), None, 1.5]),
                      "d": pa.array(["u", "v", "u", "v"]).dictionary_encode()})
    assert codes_of(table, "s") == {"x": [0, 3], None: [1], "y": [2]}
    assert codes_of(table, "f") == {1.5: [0, 3], None: [1, 2]}
    assert codes_of(table, "d") == {"u": [0, 2], "v": [1, 3]}
    assert codes_of(table, "s,d") == {("x", "u"): [0], (None, "v"): [1], ("y", "u"): [2], ("x", "v"): [3]}


def test_slice_values_are_what_json_holds():
    assert json_value(datetime.date(2026, 1, 2)) == "2026-01-02"
    assert json_value(datetime.datetime(2026, 1, 2, 3, 4)) == "2026-01-02T03:04:00"
    assert json_value(decimal.Decimal("1.10")) == "1.10"
    assert json_value(math.inf) == "inf" and json_value(math.nan) is None and json_value(True) is True


def test_slice_sums_merge_and_round_trip_through_json():
    table = pa.table({"s": pa.array(["x", None, "y", "x"])})
    codes = batch_codes(table.to_batches()[0], ["s"])
    first, second = SliceSums(("rows", "correct")), SliceSums(("rows", "correct"))
    first.add(codes, np.array([[1, 1], [1, 0], [1, 1], [1, 0]], np.float64))
    second.add(codes.take(np.array([True, False, False, False])), np.array([[1.0, 1.0]]))
    merged = SliceSums.from_json(json.loads(json.dumps(first.to_json()))).merge(second)
    assert {k: v.tolist() for k, v in merged.sums.items()} == {"x": [3, 2], None: [1, 0], "y": [1, 1]}
    assert merged.ordered_keys() == ["x", "y", None]  # largest first, ties by their JSON text
