"""The evaluator and the reader, without Ray."""

import dataclasses
import os

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import feature_table, write_arrow, write_parquet

import engine
from cluster import planner
from cluster.config import JobConfig
from cluster.errors import InputError, ShardDataError
from cluster.evaluator import ShardEvaluator
from cluster.outputs import Output, attempt_name, part_name
from cluster.reader import Batch, read_shard, to_batch


def job(location, **options) -> JobConfig:
    options.setdefault("model", "fixture_models:mlp")
    return JobConfig(data=[str(location)], **options)


def shards_of(config, shard_rows=1000):
    return planner.plan(dataclasses.replace(config, shard_rows=shard_rows))[0]


def config(tmp_path, data, **options):
    options.setdefault("label", "label")
    return job(data, output=str(tmp_path / "out"), **options)


def test_fixed_size_float32_lists_are_converted_without_copying(tmp_path):
    path = write_parquet(tmp_path / "a.parquet", feature_table(50))
    spec = job(path, label="label")
    records = feature_table(50).to_batches()[0].slice(10, 20)  # a slice: the offset must be honoured
    batch = to_batch(records, spec, shards_of(spec)[0], 0)
    values = records.column("features").flatten().to_numpy()
    assert np.shares_memory(batch.inputs[0], values)
    assert batch.inputs[0].dtype == np.float32 and batch.inputs[0].shape == (20, 8)
    assert np.array_equal(batch.inputs[0].ravel(), values)


def test_arrow_ipc_shards_read_their_record_batches(tmp_path):
    path = write_arrow(tmp_path / "a.arrow", feature_table(120), batch_rows=50)
    spec = job(path, label="label", batch_size=30)
    shards = shards_of(spec, shard_rows=100)
    rows = [b.row_ids for s in shards for b in read_shard(s, spec)]
    assert np.concatenate(rows).tolist() == list(range(120))


def test_scalar_feature_columns_are_stacked_in_the_given_order(tmp_path):
    pq.write_table(pa.table({"b": [1.0, 2.0], "a": [10.0, 20.0], "y": [0, 1]}), tmp_path / "s.parquet")
    spec = job(tmp_path / "s.parquet", features="a,b", label="y", batch_size=10)
    (batch,) = read_shard(shards_of(spec)[0], spec)
    assert batch.inputs[0].tolist() == [[10.0, 1.0], [20.0, 2.0]]


def test_features_reshape_to_the_declared_input_shape(tmp_path):
    path = write_parquet(tmp_path / "a.parquet", feature_table(4, width=8))
    spec = job(path, input_shape=(2, 2, 2), batch_size=10)
    (batch,) = read_shard(shards_of(spec)[0], spec)
    assert batch.inputs[0].shape == (4, 2, 2, 2)


def test_row_ids_come_from_the_id_column_or_the_global_row_number(tmp_path):
    write_parquet(tmp_path / "d" / "a.parquet", feature_table(30, id_offset=1000))
    write_parquet(tmp_path / "d" / "b.parquet", feature_table(20, id_offset=5000))
    with_id, without = job(tmp_path / "d", id="id", batch_size=7), job(tmp_path / "d", batch_size=7)
    ids = [b.row_ids for s in shards_of(with_id) for b in read_shard(s, with_id)]
    numbers = [b.row_ids for s in shards_of(without) for b in read_shard(s, without)]
    assert np.concatenate(ids).tolist() == list(range(1000, 1030)) + list(range(5000, 5020))
    assert np.concatenate(numbers).tolist() == list(range(50))


def test_ragged_list_features_name_the_file_and_rows(tmp_path):
    features = pa.array([[1.0, 2.0], [3.0], [4.0, 5.0]], pa.list_(pa.float32()))
    pq.write_table(pa.table({"features": features}), tmp_path / "r.parquet")
    spec = job(tmp_path / "r.parquet", batch_size=10)
    with pytest.raises(ShardDataError, match=r"r.parquet row id 1: feature column 'features' holds 1 values where 2"):
        list(read_shard(shards_of(spec)[0], spec))


def evaluated(cfg, shard, attempt="a1"):
    """Evaluate one shard and commit the attempt, as the driver does; its summary."""
    summary = ShardEvaluator(cfg).evaluate(shard, attempt)
    Output(cfg.output).commit(shard.index, attempt, bad_rows=summary.bad_rows > 0)
    return summary


def test_an_attempt_is_written_whole_under_its_own_hidden_name(tmp_path, dataset):
    cfg = config(tmp_path, dataset)
    shard = shards_of(cfg, 200)[1]
    summary = ShardEvaluator(cfg).evaluate(shard, "a1")
    parts = tmp_path / "out" / "predictions"
    assert [p.name for p in parts.iterdir()] == [attempt_name(shard.index, "a1")]
    table = pq.read_table(parts / attempt_name(shard.index, "a1"))
    assert table.num_rows == shard.rows == summary.rows and summary.attempt == "a1"
    assert table.column("row_id").to_pylist() == list(range(shard.first_row, shard.first_row + shard.rows))
    assert table.schema.names == ["row_id", "label", "prediction"]
    (model,) = summary.partial["models"]
    assert model["metrics"]["rows"] == shard.rows and model["metrics"]["labeled"] == shard.rows
    assert ds.dataset(parts).count_rows() == 0  # invisible until committed


def test_committing_an_attempt_makes_it_the_shards_only_part(tmp_path, dataset):
    cfg = config(tmp_path, dataset)
    shard = shards_of(cfg, 200)[1]
    ShardEvaluator(cfg).evaluate(shard, "loser")
    evaluated(cfg, shard, "winner")
    Output(cfg.output).discard(shard.index, "loser")
    assert [p.name for p in (tmp_path / "out" / "predictions").iterdir()] == [part_name(shard.index)]


def test_predictions_equal_the_model_applied_directly(tmp_path, dataset):
    cfg = config(tmp_path, dataset, top_k=2, save_scores=True)
    shard = shards_of(cfg, 1000)[0]
    evaluated(cfg, shard)
    table = pq.read_table(tmp_path / "out" / "predictions" / part_name(shard.index))
    x = pq.read_table(shard.location).column("features").combine_chunks().flatten().to_numpy().reshape(-1, 8)
    from fixture_models import mlp
    with engine.no_grad():
        logits = mlp().eval()(engine.from_numpy(x)).numpy()
    assert table.column("prediction").to_pylist() == logits.argmax(1).tolist()
    assert np.array_equal(np.stack(table.column("topk").to_numpy(zero_copy_only=False)),
                          np.argsort(-logits, axis=1)[:, :2])
    scores = np.stack(table.column("scores").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(scores.sum(1), 1, rtol=1e-5)


def test_saved_bytes_are_zero_under_no_grad_and_positive_when_enabled(tmp_path, dataset):
    shard = shards_of(config(tmp_path, dataset), 1000)[0]
    no_grad = ShardEvaluator(config(tmp_path, dataset, grad_mode="no_grad")).evaluate(shard)
    enabled = ShardEvaluator(config(tmp_path, dataset, grad_mode="enabled")).evaluate(shard)
    assert no_grad.engine_saved_peak_bytes == 0
    assert enabled.engine_saved_peak_bytes > 0


def test_labels_beyond_the_models_classes_name_the_rows(tmp_path):
    table = feature_table(10, classes=3)
    table = table.set_column(1, "label", pa.array([7] * 10, pa.int64()))
    write_parquet(tmp_path / "d" / "a.parquet", table)
    cfg = config(tmp_path, tmp_path / "d")
    with pytest.raises(ShardDataError, match="label 7 is out of range for a model with 3 classes"):
        ShardEvaluator(cfg).evaluate(shards_of(cfg)[0])


def test_a_model_left_in_training_mode_is_named(tmp_path):
    with pytest.raises(InputError, match="submodule 1 .*Stubborn.* still in training mode"):
        ShardEvaluator(config(tmp_path, tmp_path, model="fixture_models:stubborn"))


def test_a_model_that_re_enables_grad_is_caught(tmp_path, dataset):
    cfg = config(tmp_path, dataset, model="fixture_models:grad_leaker")
    with pytest.raises(InputError, match="grad_fn"):
        ShardEvaluator(cfg).evaluate(shards_of(cfg)[0])


def test_probe_names_a_width_the_model_does_not_take(tmp_path):
    evaluator = ShardEvaluator(config(tmp_path, tmp_path))
    with pytest.raises(InputError, match="does not take rows of shape 9"):
        evaluator.probe(Batch([np.zeros((2, 9), np.float32)], None, np.arange(2), "x"), pa.int64())


def test_part_files_read_back_as_one_dataset(tmp_path, dataset):
    cfg = config(tmp_path, dataset)
    evaluator = ShardEvaluator(cfg)
    shards = shards_of(cfg, 200)
    for shard in shards:
        evaluator.evaluate(shard, "a1")
        Output(cfg.output).commit(shard.index, "a1", bad_rows=False)
    table = ds.dataset(tmp_path / "out" / "predictions").to_table()
    assert sorted(table.column("row_id").to_pylist()) == list(range(720))


def test_weights_saved_by_torch_save_load_into_the_evaluator(tmp_path, dataset):
    torch = pytest.importorskip("torch", reason="needs PyTorch to write the checkpoint (pip install '.[parity]')")
    from fixture_models import mlp
    reference = mlp(seed=3)
    torch.save({k: torch.from_numpy(v.detach().numpy().copy()) for k, v in reference.state_dict().items()},
               tmp_path / "w.pt")
    cfg = config(tmp_path, dataset, weights=str(tmp_path / "w.pt"))
    summary = evaluated(cfg, shards_of(cfg, 1000)[0])
    table = pq.read_table(tmp_path / "out" / "predictions" / part_name(0))
    x = pq.read_table(dataset / "part-0.parquet").column("features").combine_chunks().flatten().to_numpy()
    with engine.no_grad():
        expected = reference.eval()(engine.from_numpy(x.reshape(-1, 8))).numpy().argmax(1)
    assert table.column("prediction").to_pylist() == expected.tolist() and summary.rows == 300


def test_a_checkpoint_whose_pickle_would_run_code_is_refused_and_nothing_runs(tmp_path, dataset):
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    import zipfile
    with zipfile.ZipFile(tmp_path / "evil.pt", "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"fc.weight": Payload()}, protocol=2))
        archive.writestr("archive/version", "3\n")
    with pytest.raises(InputError, match=r"evil.pt.*(system|posix)"):
        ShardEvaluator(config(tmp_path, dataset, weights=str(tmp_path / "evil.pt")))
    assert not (tmp_path / "pwned").exists()
