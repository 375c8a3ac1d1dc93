"""The bundled demo: the digits split as documented, and the shipped checkpoints reaching their accuracy targets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import engine
import zoo
from zoo.digits import read_digits

TARGETS = {"mlp": 0.96, "convnet": 0.98}
SPLITS = {"train": zoo.DIGITS_TRAIN, "test": zoo.DIGITS_TEST}
SCHEMA = pa.schema([("id", pa.int64()), ("features", pa.list_(pa.float32(), 64)), ("label", pa.int64())])


@pytest.fixture(scope="module")
def test_split():
    return read_digits(zoo.DIGITS_TEST)


def test_zoo_names_agree_across_factories_weights_and_input_shapes():
    assert set(zoo.FACTORIES) == set(zoo.WEIGHTS) == set(zoo.INPUT_SHAPES) == {"mlp", "convnet"}


@pytest.mark.parametrize("split", SPLITS)
def test_digits_split_has_the_documented_schema(split):
    schema = pq.read_schema(SPLITS[split])
    assert [(f.name, f.type) for f in schema] == [(f.name, f.type) for f in SCHEMA]


@pytest.mark.parametrize("split", SPLITS)
def test_digits_split_records_its_provenance(split):
    metadata = {k.decode(): v.decode() for k, v in pq.read_schema(SPLITS[split]).metadata.items()}
    assert metadata["source_file"] == "sklearn/datasets/data/digits.csv.gz"
    assert metadata["split"] == split
    assert len(metadata["source_sha256"]) == 64
    assert {"scikit_learn_version", "split_seed"} <= set(metadata)


@pytest.mark.parametrize("split", SPLITS)
def test_digits_split_has_several_row_groups_to_shard(split):
    assert pq.ParquetFile(SPLITS[split]).metadata.num_row_groups >= 3


def test_digits_splits_hold_all_1797_rows_between_them():
    assert sum(pq.ParquetFile(path).metadata.num_rows for path in SPLITS.values()) == 1797


def test_digits_splits_share_no_ids_and_cover_every_source_row():
    train_ids, test_ids = read_digits(zoo.DIGITS_TRAIN)[0], read_digits(zoo.DIGITS_TEST)[0]
    assert not set(train_ids) & set(test_ids)
    assert sorted([*train_ids, *test_ids]) == list(range(1797))


@pytest.mark.parametrize("split", SPLITS)
def test_digits_split_has_all_ten_classes(split):
    assert set(read_digits(SPLITS[split])[2]) == set(range(10))


@pytest.mark.parametrize("split", SPLITS)
def test_digits_pixels_are_sixteenths_in_the_unit_interval(split):
    pixels = read_digits(SPLITS[split])[1]
    assert pixels.min() >= 0 and pixels.max() <= 1
    assert np.array_equal(pixels * 16, np.round(pixels * 16))


@pytest.mark.parametrize("name", zoo.FACTORIES)
def test_factory_state_dict_keys_match_the_checkpoint_exactly(name):
    assert sorted(zoo.FACTORIES[name]().state_dict()) == sorted(engine.load(zoo.WEIGHTS[name]))  # no order on disk


@pytest.mark.parametrize("name", zoo.FACTORIES)
def test_shipped_checkpoint_reaches_its_accuracy_target_on_the_test_split(name, test_split):
    _, pixels, labels = test_split
    model = zoo.FACTORIES[name]()
    model.load_state_dict(engine.load(zoo.WEIGHTS[name]))
    model.eval()
    with engine.no_grad():
        logits = model(engine.from_numpy(pixels.reshape(len(pixels), *zoo.INPUT_SHAPES[name])))
    accuracy = float((logits.argmax(dim=1).numpy() == labels).mean())
    assert accuracy >= TARGETS[name], f"{name}: {accuracy:.4f} < {TARGETS[name]}"
