"""Shard planning and input discovery, from metadata alone."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import feature_table, write_arrow, write_parquet

from cluster import planner, storage
from cluster.config import JobConfig
from cluster.errors import InputError


def plan(locations, shard_rows=200, **columns):
    columns.setdefault("label", "label")
    return planner.plan(JobConfig(data=locations, model="fixture_models:mlp", shard_rows=shard_rows, **columns))[0]


def test_shards_cover_every_row_once_in_file_then_row_order(dataset):
    shards = plan([str(dataset)])
    assert [(s.first_row, s.rows) for s in shards] == [(0, 200), (200, 100), (300, 200), (500, 50), (550, 170)]
    for before, after in zip(shards, shards[1:]):
        assert after.first_row == before.first_row + before.rows


def test_shards_follow_row_group_boundaries(dataset):
    shards = plan([str(dataset)], shard_rows=200)
    first_file = [s for s in shards if s.location.endswith("part-0.parquet")]
    assert [(s.start, s.stop, s.rows) for s in first_file] == [(0, 2, 200), (2, 3, 100)]


def test_a_row_group_larger_than_the_target_is_a_shard_of_its_own(tmp_path):
    write_parquet(tmp_path / "big.parquet", feature_table(500), row_group_size=500)
    shards = plan([str(tmp_path / "big.parquet")], shard_rows=100)
    assert [(s.start, s.stop, s.rows) for s in shards] == [(0, 1, 500)]


def test_planning_is_deterministic(dataset):
    assert plan([str(dataset)]) == plan([str(dataset)])


def test_files_keep_the_order_given_and_directories_sort_by_path(tmp_path):
    b = write_parquet(tmp_path / "b.parquet", feature_table(10))
    a = write_parquet(tmp_path / "a.parquet", feature_table(10))
    assert [f.location for f in storage.list_inputs([str(b), str(a)])] == [str(b), str(a)]
    assert [f.location for f in storage.list_inputs([str(tmp_path)])] == [str(a), str(b)]


def test_globs_match_one_directory_level_sorted(tmp_path):
    for name in ("x2.parquet", "x1.parquet", "y.parquet", "sub/x3.parquet"):
        write_parquet(tmp_path / name, feature_table(5))
    found = [f.location for f in storage.list_inputs([str(tmp_path / "x*.parquet")])]
    assert found == [str(tmp_path / "x1.parquet"), str(tmp_path / "x2.parquet")]
    deep = [f.location for f in storage.list_inputs([str(tmp_path / "**" / "*.parquet")])]
    assert str(tmp_path / "sub" / "x3.parquet") in deep


def test_arrow_ipc_and_parquet_mix_and_list_child_names_do_not_matter(tmp_path):
    write_parquet(tmp_path / "a.parquet", feature_table(150))  # list child named 'element'
    write_arrow(tmp_path / "b.arrow", feature_table(120), batch_rows=50)  # ... and 'item'
    shards = plan([str(tmp_path)], shard_rows=100)
    arrow = [s for s in shards if s.format == "ipc"]
    assert [(s.start, s.stop, s.rows) for s in arrow] == [(0, 2, 100), (2, 3, 20)]
    assert sum(s.rows for s in shards) == 270


def test_an_empty_file_gives_no_shards_but_is_not_an_error(tmp_path):
    write_parquet(tmp_path / "empty.parquet", feature_table(0))
    write_parquet(tmp_path / "full.parquet", feature_table(30))
    shards = plan([str(tmp_path)])
    assert len(shards) == 1 and shards[0].rows == 30 and shards[0].first_row == 0


def test_limit_cuts_the_plan_at_a_row(dataset):
    shards = plan([str(dataset)], limit=250)
    assert sum(s.rows for s in shards) == 250 and shards[-1].rows == 50


def test_missing_path_is_named(tmp_path):
    with pytest.raises(InputError, match="input not found: .*nope.parquet"):
        plan([str(tmp_path / "nope.parquet")])


def test_a_glob_matching_nothing_is_named(tmp_path):
    with pytest.raises(InputError, match=r"no Parquet or Arrow files match .*\*.parquet"):
        plan([str(tmp_path / "*.parquet")])


def test_a_corrupt_file_is_named(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet at all")
    with pytest.raises(InputError, match="bad.parquet"):
        plan([str(tmp_path / "bad.parquet")])


def test_missing_columns_name_the_available_ones(dataset):
    with pytest.raises(InputError, match="no column 'pixels'; available: features, label"):
        plan([str(dataset)], features="pixels", label=None)


def test_files_whose_schemas_disagree_are_named(tmp_path):
    write_parquet(tmp_path / "a.parquet", feature_table(10))
    table = feature_table(10)
    write_parquet(tmp_path / "b.parquet", table.set_column(1, "label", table.column("label").cast(pa.float64())))
    with pytest.raises(InputError, match="schemas disagree: column 'label'.*a.parquet.*b.parquet"):
        plan([str(tmp_path)])


def test_non_numeric_features_are_refused(tmp_path):
    pq.write_table(pa.table({"features": ["a", "b"], "label": [0, 1]}), tmp_path / "s.parquet")
    with pytest.raises(InputError, match="feature column 'features' is string"):
        plan([str(tmp_path)])


def test_feature_width_must_fit_the_input_shape(dataset):
    with pytest.raises(InputError, match="8 features per row do not fit input shape 1x3x3"):
        plan([str(dataset)], input_shape=(1, 3, 3))


def test_null_features_shown_by_statistics_are_refused_before_reading(tmp_path):
    values = pa.array([1.0, None, 3.0, 4.0], pa.float32())
    table = pa.table({"features": pa.FixedSizeListArray.from_arrays(values, 2), "label": [0, 1]})
    pq.write_table(table, tmp_path / "n.parquet")
    with pytest.raises(InputError, match="holds nulls"):
        plan([str(tmp_path)])
