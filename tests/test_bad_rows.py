"""No silently wrong number: bad rows fail naming the file and row id, or go to bad_rows.parquet, never into metrics."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import feature_table, write_parquet

import cluster
from cluster import metrics, planner
from cluster.config import JobConfig
from cluster.errors import InputError, JobFailed, ShardDataError
from cluster.reader import read_shard
from jobs.evaluate import main


def batches(path, **options):
    """Every batch the reader makes of one file's first shard."""
    options.setdefault("model", "fixture_models:mlp")
    config = JobConfig(data=[str(path)], **options)
    return list(read_shard(planner.plan(config)[0][0], config))


def with_features(table: pa.Table, values) -> pa.Table:
    return table.set_column(0, "features", pa.array(values, pa.list_(pa.float32())))


def run(data, out, **options):
    options.setdefault("label", "label")
    options.setdefault("workers", 1)
    return cluster.evaluate([str(data)], options.pop("model", "fixture_models:mlp"), str(out), **options)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_non_finite_feature_fails_naming_the_file_and_row_id(tmp_path, value):
    table = feature_table(20, id_offset=500)
    x = np.stack(table.column("features").to_numpy(zero_copy_only=False))
    x[7, 3] = value
    write_parquet(tmp_path / "a.parquet", with_features(table, list(x)))
    with pytest.raises(ShardDataError, match=r"a.parquet row id 507: features hold NaN or infinity"):
        batches(tmp_path / "a.parquet", id="id", label="label")


def test_skipped_rows_leave_the_batch_with_their_reasons(tmp_path):
    table = feature_table(6)
    x = list(np.stack(table.column("features").to_numpy(zero_copy_only=False)))
    x[1] = x[1].copy()
    x[1][0] = np.nan
    x[3] = []
    x[4] = x[4][:5]
    x[5] = None
    write_parquet(tmp_path / "a.parquet", with_features(table, x))
    (batch,) = batches(tmp_path / "a.parquet", label="label", on_bad_rows="skip", input_shape=(8,))
    assert batch.row_ids.tolist() == [0, 2] and batch.inputs[0].shape == (2, 8)
    assert batch.bad.row_ids == [1, 3, 4, 5]
    assert batch.bad.reasons == ["non-finite feature", "empty list", "wrong length", "null feature"]
    assert "holds 0 values where 8 are expected" in batch.bad.details[1]


def test_an_empty_list_is_named_as_one_not_as_a_null(tmp_path):
    table = with_features(feature_table(3), [[1.0] * 8, [], [2.0] * 8])
    write_parquet(tmp_path / "a.parquet", table)
    with pytest.raises(ShardDataError, match=r"row id 1: feature column 'features' holds 0 values where 8 are"):
        batches(tmp_path / "a.parquet", label="label")


def test_a_fractional_float_label_is_not_truncated_to_a_class(tmp_path):
    table = feature_table(4).set_column(1, "label", pa.array([0.0, 1.0, 1.7, 2.0]))
    write_parquet(tmp_path / "a.parquet", table)
    with pytest.raises(ShardDataError, match=r"row id 2: label 1.7 is not a class index"):
        batches(tmp_path / "a.parquet", label="label")
    (batch,) = batches(tmp_path / "a.parquet", label="label", on_bad_rows="skip")
    assert batch.labels.tolist() == [0, 1, 2] and batch.labels.dtype == np.int64


def test_whole_float_labels_score_exactly_as_integer_labels(tmp_path):
    ints = feature_table(50)
    floats = ints.set_column(1, "label", ints.column("label").cast(pa.float64()))
    write_parquet(tmp_path / "i" / "a.parquet", ints)
    write_parquet(tmp_path / "f" / "a.parquet", floats)
    (a,), (b,) = batches(tmp_path / "i", label="label"), batches(tmp_path / "f", label="label")
    assert a.labels.tolist() == b.labels.tolist()


def test_multi_output_regression_divides_by_the_values_not_the_rows():
    labels = np.array([1.0, 2.0, 3.0, 4.0])
    outputs = np.stack([labels + 1, labels - 1, labels + 1], axis=1)  # three outputs, each off by one
    result = metrics.finish("regression", metrics.regression_partial(outputs, labels))
    assert result["mse"] == pytest.approx(1.0) and result["mae"] == pytest.approx(1.0)
    y = np.repeat(labels, 3)
    assert result["r2"] == pytest.approx(1 - 12 / ((y - y.mean()) ** 2).sum())


def test_a_corrupt_page_under_an_intact_footer_is_an_error_not_numbers(tmp_path):
    path = tmp_path / "a.parquet"
    pq.write_table(feature_table(2000), path, row_group_size=2000, write_page_checksum=True, compression="none")
    data = bytearray(path.read_bytes())
    middle = len(data) // 3
    data[middle:middle + 64] = bytes(64)  # zeros over the values of the features' page
    path.write_bytes(bytes(data))
    assert pq.read_metadata(path).num_rows == 2000  # the footer is intact
    with pytest.raises(ShardDataError, match=r"a.parquet .*cannot be read: .*(checksum|CRC)"):
        batches(path, label="label")


@pytest.mark.usefixtures("ray_cluster")
def test_our_own_part_files_carry_page_checksums(dataset, tmp_path):
    run(dataset, tmp_path / "out")
    part = sorted((tmp_path / "out" / "predictions").glob("part-*.parquet"))[0]
    row_ids = pq.read_metadata(part).row_group(0).column(0)  # a page of values (the footer holds the summary)
    middle = row_ids.data_page_offset + row_ids.total_compressed_size // 2
    data = bytearray(part.read_bytes())
    data[middle:middle + 32] = bytes(32)
    part.write_bytes(bytes(data))
    with pytest.raises(OSError, match="(checksum|CRC)"):
        pq.ParquetFile(part, page_checksum_verification=True).read()


@pytest.mark.usefixtures("ray_cluster")
def test_non_finite_outputs_fail_the_job_naming_the_row(dataset, tmp_path):
    with pytest.raises(JobFailed, match=r"part-\d.parquet row id \d+: the model's output holds NaN or infinity"):
        run(dataset, tmp_path / "out", model="fixture_models:inf_on_rows", model_kwargs={"above": 1.5})


@pytest.mark.usefixtures("ray_cluster")
def test_skipped_rows_are_written_counted_per_shard_and_kept_out_of_the_metrics(dataset, tmp_path):
    result = run(dataset, tmp_path / "out", model="fixture_models:inf_on_rows", model_kwargs={"above": 1.5},
                 on_bad_rows="skip", shard_rows=100)
    table = pq.read_table(dataset)
    x = np.stack(table.column("features").to_numpy(zero_copy_only=False))
    bad_ids = np.flatnonzero(x[:, 0] > 1.5)
    bad = pq.read_table(tmp_path / "out" / "bad_rows.parquet")
    assert sorted(bad.column("row_id").to_pylist()) == bad_ids.tolist() and len(bad_ids) > 5
    assert set(bad.column("reason").to_pylist()) == {"non-finite output"}
    assert result.metrics["bad_rows"] == {"rows": len(bad_ids), "by_reason": {"non-finite output": len(bad_ids)}}
    assert result.metrics["rows"] == 720 - len(bad_ids) and np.isfinite(result.metrics["loss"])
    assert sum(result.shards.column("bad_rows").to_pylist()) == len(bad_ids)
    predicted = result.predictions.to_table()
    assert set(predicted.column("row_id").to_pylist()).isdisjoint(bad_ids.tolist())
    labels = predicted.column("label").to_numpy()
    assert result.metrics["accuracy"] == pytest.approx(np.mean(predicted.column("prediction").to_numpy() == labels))


@pytest.mark.usefixtures("ray_cluster")
@pytest.mark.parametrize("cap", [3, 0.001])
def test_more_bad_rows_than_the_cap_fail_the_job(dataset, tmp_path, cap):
    with pytest.raises(JobFailed, match=rf"more than --max-bad-rows {cap:g}"):
        run(dataset, tmp_path / "out", model="fixture_models:inf_on_rows", model_kwargs={"above": 1.5},
            on_bad_rows="skip", max_bad_rows=cap, shard_rows=100)
    assert not (tmp_path / "out" / "_SUCCESS").exists()


@pytest.mark.usefixtures("ray_cluster")
def test_a_job_whose_every_row_was_skipped_exits_1(tmp_path, capsys):
    data = write_parquet(tmp_path / "d" / "a.parquet", feature_table(50).set_column(
        1, "label", pa.array([9] * 50, pa.int64())))
    out = tmp_path / "out"
    assert main(["--data", str(data), "--model", "fixture_models:mlp", "--label", "label", "--on-bad-rows", "skip",
                 "--output", str(out)]) == 1
    assert "every one of the 50 rows was set aside as bad" in capsys.readouterr().err
    assert not (out / "_SUCCESS").exists() and pq.read_table(out / "bad_rows.parquet").num_rows == 50
    assert json.loads((out / "metrics.json").read_text())["bad_rows"]["rows"] == 50


def test_a_factory_that_raises_is_a_usage_error_naming_it(dataset, capsys):
    assert main(["--data", str(dataset), "--model", "fixture_models:raising_factory"]) == 2
    err = capsys.readouterr().err
    assert "fixture_models:raising_factory raised KeyError" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_probe_failing_with_any_exception_is_a_usage_error(dataset):
    with pytest.raises(InputError, match="does not take rows of shape 8"):
        cluster.job.plan(JobConfig(data=[str(dataset)], model="fixture_models:inf_on_rows",
                                   model_kwargs={"above": 0.0, "width": 5}))
