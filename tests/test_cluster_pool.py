"""Sharded evaluation on a real local Ray: exactly once, faults, memory per worker, bad input."""

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import feature_table, write_parquet

import cluster
from cluster.errors import InputError, JobFailed

pytestmark = pytest.mark.usefixtures("ray_cluster")


def run(data, out, **options):
    options.setdefault("label", "label")
    options.setdefault("workers", 2)
    return cluster.evaluate([str(data)], options.pop("model", "fixture_models:mlp"), str(out), **options)


def predictions(result) -> dict:
    table = result.predictions.to_table()
    return dict(zip(table.column("row_id").to_pylist(), table.column("prediction").to_pylist()))


@pytest.mark.parametrize("workers, shard_rows", [(1, 1000), (2, 100), (3, 200)])
def test_every_row_once_and_identical_predictions_whatever_the_pool(dataset, tmp_path, workers, shard_rows):
    reference = run(dataset, tmp_path / "ref", workers=1, shard_rows=10_000)
    result = run(dataset, tmp_path / "out", workers=workers, shard_rows=shard_rows)
    ids = result.predictions.to_table().column("row_id").to_pylist()
    assert sorted(ids) == list(range(720)) and len(ids) == len(set(ids))
    assert predictions(result) == predictions(reference)
    assert result.metrics["rows"] == 720 and result.metrics["accuracy"] == reference.metrics["accuracy"]
    assert sum(result.workers.column("rows").to_pylist()) == 720


def test_scores_are_bitwise_identical_across_shard_sizes_and_pools_for_one_batching(dataset, tmp_path):
    # Batches of one row group each whatever the shards: the same GEMMs, so the same bits. (A different
    # batch size may change BLAS's blocking, and with it the last bits of the scores.)
    common = {"batch_size": 100, "save_scores": True}
    a = run(dataset, tmp_path / "a", shard_rows=100, workers=2, **common).predictions.to_table().sort_by("row_id")
    b = run(dataset, tmp_path / "b", shard_rows=1000, workers=1, **common).predictions.to_table().sort_by("row_id")
    assert a.column("scores").equals(b.column("scores"))


def test_as_many_one_cpu_actors_as_the_cluster_has_cpus_do_not_deadlock(dataset, tmp_path, ray_cluster):
    cpus = int(ray_cluster.cluster_resources()["CPU"])
    result = run(dataset, tmp_path / "out", workers=cpus, cpus_per_worker=1, shard_rows=100)
    assert result.metrics["rows"] == 720 and result.workers.num_rows == cpus


def test_an_actor_killed_mid_job_loses_nothing(dataset, tmp_path):
    marker = tmp_path / "died-once"
    result = run(dataset, tmp_path / "out", model="fixture_models:exit_once", model_kwargs={"marker": str(marker)},
                 shard_rows=100)
    assert marker.exists()
    ids = result.predictions.to_table().column("row_id").to_pylist()
    assert sorted(ids) == list(range(720))
    assert sum(result.workers.column("failures").to_pylist()) == 1
    assert max(result.shards.column("attempts").to_pylist()) == 2
    assert result.workers.num_rows == 3  # the dead worker is reported, and so is its replacement


def test_a_shard_that_always_kills_its_actor_fails_the_job_after_its_attempts(tmp_path):
    table = feature_table(300)
    poisoned = np.array(table.column("features").combine_chunks().flatten())
    poisoned[8 * 250] = 12345.0  # row 250: in the third shard of 100
    table = table.set_column(0, "features", pa.FixedSizeListArray.from_arrays(pa.array(poisoned), 8))
    data = write_parquet(tmp_path / "d" / "a.parquet", table)
    with pytest.raises(JobFailed, match=r"shard 2 .*a.parquet.*rows 200-299.* failed 2 attempts"):
        run(data, tmp_path / "out", model="fixture_models:exit_on_row", model_kwargs={"poison": 12345.0},
            shard_rows=100, max_attempts=2)
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def test_bad_data_fails_at_once_naming_the_file_and_rows(tmp_path):
    write_parquet(tmp_path / "d" / "a.parquet", feature_table(100))
    bad = feature_table(100).set_column(1, "label", pa.array([9] * 100, pa.int64()))
    write_parquet(tmp_path / "d" / "b.parquet", bad)
    with pytest.raises(JobFailed, match=r"b.parquet row id 100: label 9 is out of range"):
        run(tmp_path / "d", tmp_path / "out", shard_rows=100)


def test_bad_rows_can_be_skipped_and_are_reported_with_their_reasons(tmp_path):
    write_parquet(tmp_path / "d" / "a.parquet", feature_table(100))
    write_parquet(tmp_path / "d" / "b.parquet", feature_table(100).set_column(1, "label", pa.array([9] * 100)))
    result = run(tmp_path / "d", tmp_path / "out", shard_rows=100, on_bad_rows="skip")
    assert result.metrics["rows"] == 100
    assert result.metrics["bad_rows"] == {"rows": 100, "by_reason": {"label out of range": 100}}
    bad = pq.read_table(tmp_path / "out" / "bad_rows.parquet")
    assert sorted(bad.column("row_id").to_pylist()) == list(range(100, 200))
    assert set(bad.column("file").to_pylist()) == {str(tmp_path / "d" / "b.parquet")}
    assert result.shards.column("bad_rows").to_pylist() == [0, 100]


def test_saved_for_backward_is_reported_per_worker_and_zero_under_no_grad(dataset, tmp_path):
    enabled = run(dataset, tmp_path / "e", grad_mode="enabled", shard_rows=100)
    no_grad = run(dataset, tmp_path / "n", grad_mode="no_grad", shard_rows=100)
    inference = run(dataset, tmp_path / "i", grad_mode="inference_mode", shard_rows=100)
    busy = [w for w in enabled.workers.to_pylist() if w["shards"]]  # a late starter may have found no work left
    assert busy and all(w["engine_saved_peak_bytes"] > 0 for w in busy)
    assert all(b == 0 for b in no_grad.workers.column("engine_saved_peak_bytes").to_pylist())
    assert all(b == 0 for b in inference.workers.column("engine_saved_peak_bytes").to_pylist())
    assert set(enabled.workers.column("grad_mode").to_pylist()) == {"enabled"}
    assert predictions(enabled) == predictions(no_grad) == predictions(inference)


def test_a_workers_memory_does_not_grow_with_the_shards_it_streams(tmp_path):
    rows = 100_000
    write_parquet(tmp_path / "d" / "big.parquet", feature_table(rows, width=64), row_group_size=5_000)
    options = {"workers": 1, "shard_rows": 5_000, "model_kwargs": {"width": 64}, "batch_size": 1024}
    one = run(tmp_path / "d", tmp_path / "one", limit=5_000, **options)
    many = run(tmp_path / "d", tmp_path / "many", **options)
    assert many.metrics["rows"] == rows
    assert many.workers.column("rss_peak_bytes")[0].as_py() <= 1.10 * one.workers.column("rss_peak_bytes")[0].as_py()


def test_an_empty_dataset_is_a_clean_zero_row_result(tmp_path):
    write_parquet(tmp_path / "d" / "empty.parquet", feature_table(0))
    result = run(tmp_path / "d", tmp_path / "out")
    assert result.metrics["rows"] == 0
    table = result.predictions.to_table()
    assert table.num_rows == 0 and table.schema.names == ["row_id", "label", "prediction"]
    assert (tmp_path / "out" / "_SUCCESS").exists()


def test_input_errors_come_before_any_actor_starts(dataset, tmp_path):
    with pytest.raises(InputError, match="does not take rows of shape 8"):
        run(dataset, tmp_path / "out", model_kwargs={"width": 5})
    with pytest.raises(InputError, match="no column 'y'"):
        run(dataset, tmp_path / "out2", label="y")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


def test_result_tables_and_files(dataset, tmp_path):
    result = run(dataset, tmp_path / "out", shard_rows=200, top_k=2)
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {"predictions", "workers.parquet", "shards.parquet", "metrics.json",
                                              "job.json", "report.html", "_SUCCESS"}
    assert pq.read_table(out / "workers.parquet").equals(result.workers)
    assert result.shards.num_rows == 5 and set(result.shards.column("attempts").to_pylist()) == {1}
    assert 0 <= result.metrics["top_k_accuracy"] <= 1 and result.metrics["top_k_accuracy"] >= result.metrics["accuracy"]


def test_a_python_caller_gets_the_whole_configuration_in_job_json(dataset, tmp_path):
    config = cluster.JobConfig(data=[str(dataset)], model="fixture_models:mlp", output=str(tmp_path / "out"),
                               label="label", workers=1, top_k=2, model_kwargs={"seed": 1})
    cluster.evaluate(config)
    recorded = json.loads((tmp_path / "out" / "job.json").read_text())["config"]
    resolved = dataclasses.replace(config, input_shape=(8,))  # the rows' shape, as the data declares it
    assert recorded == resolved.record() and recorded["model_kwargs"] == {"seed": 1} and recorded["top_k"] == 2


def test_each_shard_record_names_the_worker_and_node_that_finished_it(dataset, tmp_path):
    seen = []
    result = cluster.evaluate([str(dataset)], "fixture_models:mlp", str(tmp_path / "out"), label="label",
                              workers=2, shard_rows=100, on_shard_done=seen.append)
    workers = {w["worker"]: w["node"] for w in result.workers.to_pylist()}
    assert len(seen) == result.shards.num_rows == 8
    assert all(r.node == workers[r.worker] and r.node for r in seen)
    assert result.shards.column("node").to_pylist() == [workers[w] for w in result.shards.column("worker").to_pylist()]


def test_resume_reuses_finished_shards_and_gives_the_same_result(dataset, tmp_path):
    full = run(dataset, tmp_path / "full", shard_rows=100)
    partial_out = tmp_path / "partial"
    run(dataset, partial_out, shard_rows=100)
    (partial_out / "_SUCCESS").unlink()
    parts = sorted((partial_out / "predictions").iterdir())
    for p in parts[::2]:
        p.unlink()  # as if the run had died before these shards finished
    resumed = run(dataset, partial_out, shard_rows=100, resume=True)
    assert predictions(resumed) == predictions(full)
    assert resumed.metrics["accuracy"] == full.metrics["accuracy"]
    shards_by_run = {0: 0, 1: 0}
    for worker in resumed.workers.to_pylist():
        shards_by_run[worker["run"]] += worker["shards"]
    assert shards_by_run == {0: len(parts) - len(parts[::2]), 1: len(parts[::2])}  # both runs' workers kept
    assert resumed.metrics["runs"][1]["rows"] == sum(resumed.shards.filter(
        pa.compute.equal(resumed.shards.column("run"), 1)).column("rows").to_pylist())


def test_a_finished_output_is_not_overwritten_unless_asked(dataset, tmp_path):
    run(dataset, tmp_path / "out")
    with pytest.raises(InputError, match="already holds a finished run"):
        run(dataset, tmp_path / "out")
    run(dataset, tmp_path / "out", overwrite=True)


def test_resume_refuses_a_different_configuration(dataset, tmp_path):
    run(dataset, tmp_path / "out")
    (tmp_path / "out" / "_SUCCESS").unlink()
    with pytest.raises(InputError, match="different configuration"):
        run(dataset, tmp_path / "out", resume=True, top_k=2)
