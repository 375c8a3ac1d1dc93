"""The worker's evaluation loop and the reader, without Ray."""

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import feature_table, write_arrow, write_parquet

import engine
from cluster import planner, storage
from cluster.columns import ColumnSpec
from cluster.errors import InputError, ShardDataError
from cluster.models import ModelSpec
from cluster.reader import read_shard, to_batch
from cluster.worker import EvalConfig, ShardEvaluator, part_name


def shards_of(location, spec, shard_rows=1000):
    return planner.plan(storage.list_inputs([str(location)]), spec, shard_rows)[0]


def config(tmp_path, **options):
    columns = options.pop("columns", ColumnSpec("features", label="label"))
    model = options.pop("model", ModelSpec("fixture_models:mlp"))
    return EvalConfig(model, columns, str(tmp_path / "out" / "predictions"), **options)


def test_fixed_size_float32_lists_are_converted_without_copying(tmp_path):
    path = write_parquet(tmp_path / "a.parquet", feature_table(50))
    spec = ColumnSpec("features", label="label")
    records = feature_table(50).to_batches()[0].slice(10, 20)  # a slice: the offset must be honoured
    batch = to_batch(records, spec, shards_of(path, spec)[0], 0)
    values = records.column("features").flatten().to_numpy()
    assert np.shares_memory(batch.features, values)
    assert batch.features.dtype == np.float32 and batch.features.shape == (20, 8)
    assert np.array_equal(batch.features.ravel(), values)


def test_arrow_ipc_shards_read_their_record_batches(tmp_path):
    path = write_arrow(tmp_path / "a.arrow", feature_table(120), batch_rows=50)
    spec = ColumnSpec("features", label="label")
    shards = shards_of(path, spec, shard_rows=100)
    rows = [b.row_ids for s in shards for b in read_shard(s, spec, 30)]
    assert np.concatenate(rows).tolist() == list(range(120))


def test_scalar_feature_columns_are_stacked_in_the_given_order(tmp_path):
    pq.write_table(pa.table({"b": [1.0, 2.0], "a": [10.0, 20.0], "y": [0, 1]}), tmp_path / "s.parquet")
    spec = ColumnSpec("a,b", label="y")
    (batch,) = read_shard(shards_of(tmp_path / "s.parquet", spec)[0], spec, 10)
    assert batch.features.tolist() == [[10.0, 1.0], [20.0, 2.0]]


def test_features_reshape_to_the_declared_input_shape(tmp_path):
    path = write_parquet(tmp_path / "a.parquet", feature_table(4, width=8))
    spec = ColumnSpec("features", input_shape=(2, 2, 2))
    (batch,) = read_shard(shards_of(path, spec)[0], spec, 10)
    assert batch.features.shape == (4, 2, 2, 2)


def test_row_ids_come_from_the_id_column_or_the_global_row_number(tmp_path):
    write_parquet(tmp_path / "d" / "a.parquet", feature_table(30, id_offset=1000))
    write_parquet(tmp_path / "d" / "b.parquet", feature_table(20, id_offset=5000))
    with_id, without = ColumnSpec("features", id="id"), ColumnSpec("features")
    ids = [b.row_ids for s in shards_of(tmp_path / "d", with_id) for b in read_shard(s, with_id, 7)]
    numbers = [b.row_ids for s in shards_of(tmp_path / "d", without) for b in read_shard(s, without, 7)]
    assert np.concatenate(ids).tolist() == list(range(1000, 1030)) + list(range(5000, 5020))
    assert np.concatenate(numbers).tolist() == list(range(50))


def test_ragged_list_features_name_the_file_and_rows(tmp_path):
    features = pa.array([[1.0, 2.0], [3.0], [4.0, 5.0]], pa.list_(pa.float32()))
    pq.write_table(pa.table({"features": features}), tmp_path / "r.parquet")
    spec = ColumnSpec("features")
    with pytest.raises(ShardDataError, match=r"r.parquet rows 0-2 of the job: feature lists have different"):
        list(read_shard(shards_of(tmp_path / "r.parquet", spec)[0], spec, 10))


def test_evaluator_writes_one_complete_part_file_per_shard(tmp_path, dataset):
    cfg = config(tmp_path)
    evaluator = ShardEvaluator(cfg)
    shard = shards_of(dataset, cfg.columns, 200)[1]
    summary = evaluator.evaluate(shard)
    table = pq.read_table(tmp_path / "out" / "predictions" / part_name(shard))
    assert table.num_rows == shard.rows == summary.rows
    assert table.column("row_id").to_pylist() == list(range(shard.first_row, shard.first_row + shard.rows))
    assert table.schema.names == ["row_id", "label", "prediction"]
    assert summary.partial["rows"] == shard.rows and summary.partial["labeled"] == shard.rows
    leftovers = [p.name for p in (tmp_path / "out" / "predictions").iterdir()]
    assert leftovers == [part_name(shard)]


def test_predictions_equal_the_model_applied_directly(tmp_path, dataset):
    cfg = config(tmp_path, top_k=2, save_scores=True)
    shard = shards_of(dataset, cfg.columns, 1000)[0]
    ShardEvaluator(cfg).evaluate(shard)
    table = pq.read_table(tmp_path / "out" / "predictions" / part_name(shard))
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
    shard = shards_of(dataset, ColumnSpec("features", label="label"), 1000)[0]
    no_grad = ShardEvaluator(config(tmp_path, grad_mode="no_grad")).evaluate(shard)
    enabled = ShardEvaluator(config(tmp_path, grad_mode="enabled")).evaluate(shard)
    assert no_grad.engine_saved_peak_bytes == 0
    assert enabled.engine_saved_peak_bytes > 0


def test_labels_beyond_the_models_classes_name_the_rows(tmp_path):
    table = feature_table(10, classes=3)
    table = table.set_column(1, "label", pa.array([7] * 10, pa.int64()))
    write_parquet(tmp_path / "d" / "a.parquet", table)
    cfg = config(tmp_path)
    with pytest.raises(ShardDataError, match="label 7 is out of range for a model with 3 classes"):
        ShardEvaluator(cfg).evaluate(shards_of(tmp_path / "d", cfg.columns)[0])


def test_a_model_left_in_training_mode_is_named(tmp_path):
    with pytest.raises(InputError, match="submodule 1 .*Stubborn.* still in training mode"):
        ShardEvaluator(config(tmp_path, model=ModelSpec("fixture_models:stubborn")))


def test_a_model_that_re_enables_grad_is_caught(tmp_path, dataset):
    cfg = config(tmp_path, model=ModelSpec("fixture_models:grad_leaker"))
    with pytest.raises(InputError, match="grad_fn"):
        ShardEvaluator(cfg).evaluate(shards_of(dataset, cfg.columns)[0])


def test_probe_names_a_width_the_model_does_not_take(tmp_path):
    evaluator = ShardEvaluator(config(tmp_path))
    with pytest.raises(InputError, match="does not take rows of shape 9"):
        evaluator.probe((9,), pa.int64())


def test_part_files_read_back_as_one_dataset(tmp_path, dataset):
    cfg = config(tmp_path)
    evaluator = ShardEvaluator(cfg)
    shards = shards_of(dataset, cfg.columns, 200)
    for shard in shards:
        evaluator.evaluate(shard)
    table = ds.dataset(tmp_path / "out" / "predictions").to_table()
    assert sorted(table.column("row_id").to_pylist()) == list(range(720))
