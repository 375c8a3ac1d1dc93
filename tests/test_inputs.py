"""The data kinds real test sets hold: encoded images, token sequences, Arrow tensors, several inputs, transforms."""

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import feature_table, write_parquet
from PIL import Image
from sklearn.datasets import load_sample_images

import cluster
import engine
import zoo
from cluster import planner
from cluster.config import JobConfig
from cluster.errors import InputError, ShardDataError
from cluster.reader import read_shard
from jobs.evaluate import main

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SAMPLE_JPEGS = [Path(p).read_bytes() for p in load_sample_images().filenames]  # real photographs, 427 x 640


def encoded(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def synthetic(n: int, size=(24, 20), seed=0, fmt="PNG") -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [encoded(rng.integers(0, 256, (*size, 3), dtype=np.uint8), fmt) for _ in range(n)]


def hf_images(images: list[bytes], labels=None) -> pa.Table:
    """The Hugging Face datasets layout: a struct column `image` of {bytes, path}."""
    structs = [{"bytes": b, "path": f"img-{i}.png"} for i, b in enumerate(images)]
    kind = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    labels = labels if labels is not None else [i % 4 for i in range(len(images))]
    return pa.table({"image": pa.array(structs, kind), "label": pa.array(labels, pa.int64())})


def expected_pixels(data: bytes, mode="RGB", size=None, mean=None, std=None) -> np.ndarray:
    """What the reader must make of one image, computed here with Pillow and numpy directly."""
    image = Image.open(io.BytesIO(data)).convert(mode)
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    x = np.asarray(image, np.float32) / 255
    x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
    if mean is not None:
        x = (x - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None]
    return x


def read_all(path, **options):
    options.setdefault("model", "fixture_models:image_net")
    config = JobConfig(data=[str(path)], **options)
    shards, _ = planner.plan(config)
    return [b for s in shards for b in read_shard(s, config)]


def run(data, out, **options):
    options.setdefault("workers", 1)
    return cluster.evaluate([str(data)], options.pop("model"), str(out), **options)


def apply(model, *inputs) -> np.ndarray:
    with engine.no_grad():
        return model.eval()(*(engine.from_numpy(x) for x in inputs)).numpy()


# -- images ------------------------------------------------------------------------------------------
def test_png_and_jpeg_bytes_in_the_hf_layout_decode_as_pillow_would_resize_and_normalise(tmp_path):
    images = synthetic(3) + SAMPLE_JPEGS + synthetic(2, size=(32, 32), fmt="JPEG", seed=1)
    write_parquet(tmp_path / "i.parquet", hf_images(images))
    (batch,) = read_all(tmp_path / "i.parquet", features="image", label="label", image_size="28,30",
                        mean=",".join(map(str, MEAN)), std=",".join(map(str, STD)))
    expected = np.stack([expected_pixels(b, size=(28, 30), mean=MEAN, std=STD) for b in images])
    assert batch.inputs[0].shape == (7, 3, 28, 30) and batch.inputs[0].dtype == np.float32
    np.testing.assert_allclose(batch.inputs[0], expected, atol=1e-6)


def test_a_grey_image_mode_gives_one_channel(tmp_path):
    write_parquet(tmp_path / "i.parquet", hf_images(SAMPLE_JPEGS))
    (batch,) = read_all(tmp_path / "i.parquet", features="image", image_mode="L", model="fixture_models:image_net")
    assert batch.inputs[0].shape == (2, 1, 427, 640)
    np.testing.assert_allclose(batch.inputs[0][1], expected_pixels(SAMPLE_JPEGS[1], mode="L"), atol=1e-6)


def test_images_of_different_sizes_need_an_image_size(tmp_path):
    write_parquet(tmp_path / "i.parquet", hf_images(synthetic(2) + synthetic(1, size=(10, 10))))
    with pytest.raises(ShardDataError, match=r"row id 2: .*10x10 image where the batch's first is 20x24: give "
                                             r"--image-size"):
        read_all(tmp_path / "i.parquet", features="image")
    (batch,) = read_all(tmp_path / "i.parquet", features="image", image_size="12,12")
    assert batch.inputs[0].shape == (3, 3, 12, 12)


def test_a_plain_binary_column_of_encoded_images_works_too(tmp_path):
    images = synthetic(3)
    write_parquet(tmp_path / "i.parquet", pa.table({"png": pa.array(images, pa.binary())}))
    (batch,) = read_all(tmp_path / "i.parquet", features="png")
    np.testing.assert_allclose(batch.inputs[0], np.stack([expected_pixels(b) for b in images]), atol=1e-6)


def test_an_undecodable_image_fails_naming_the_row_or_is_skipped(tmp_path):
    images = synthetic(4)
    images[2] = b"\x89PNG this is not an image"
    write_parquet(tmp_path / "i.parquet", hf_images(images))
    with pytest.raises(ShardDataError, match=r"i.parquet row id 2: image column 'image' does not decode"):
        read_all(tmp_path / "i.parquet", features="image")
    (batch,) = read_all(tmp_path / "i.parquet", features="image", on_bad_rows="skip")
    assert batch.row_ids.tolist() == [0, 1, 3] and batch.bad.reasons == ["undecodable image"]


def test_an_image_given_only_by_its_path_is_named_as_such_not_read_from_disk(tmp_path):
    (tmp_path / "img-1.png").write_bytes(synthetic(1)[0])  # there, and still not read: the data must hold the bytes
    table = hf_images(synthetic(3))
    structs = table.column("image").combine_chunks()
    table = table.set_column(0, "image", pa.StructArray.from_arrays(
        [pa.array([b, None, c], pa.binary()) for b, _, c in [structs.field("bytes").to_pylist()]]
        + [structs.field("path")], names=["bytes", "path"]))
    write_parquet(tmp_path / "i.parquet", table)
    with pytest.raises(ShardDataError, match=r"row id 1: image column 'image' holds no bytes, only the path "
                                             r"'img-1.png'"):
        read_all(tmp_path / "i.parquet", features="image")


@pytest.mark.usefixtures("ray_cluster")
def test_an_image_job_predicts_what_the_model_gives_on_pillow_decoded_images(tmp_path):
    images = synthetic(10) + SAMPLE_JPEGS
    data = write_parquet(tmp_path / "d" / "i.parquet", hf_images(images), row_group_size=4)
    result = run(data, tmp_path / "out", model="fixture_models:image_net", features="image", label="label",
                 image_size=(16, 16), mean=MEAN, std=STD, shard_rows=4, batch_size=3)
    from fixture_models import image_net
    expected = apply(image_net(), np.stack([expected_pixels(b, size=(16, 16), mean=MEAN, std=STD) for b in images]))
    table = result.predictions.to_table().sort_by("row_id")
    assert table.column("prediction").to_pylist() == expected.argmax(1).tolist()
    assert result.metrics["rows"] == 12


# -- tokens ------------------------------------------------------------------------------------------
def token_table(lengths, vocab=50, seed=0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = [rng.integers(1, vocab, n).tolist() for n in lengths]
    return pa.table({"input_ids": pa.array(ids, pa.list_(pa.int32())),
                     "attention_mask": pa.array([[1] * n for n in lengths], pa.list_(pa.int8())),
                     "label": pa.array(rng.integers(0, 3, len(lengths)), pa.int64())})


def test_token_lists_are_padded_to_the_batchs_longest_and_cut_at_max_length(tmp_path):
    table = token_table([3, 1, 5, 2])
    write_parquet(tmp_path / "t.parquet", table)
    (batch,) = read_all(tmp_path / "t.parquet", inputs="input_ids,attention_mask", pad_value=7,
                        model="fixture_models:masked_mean")
    ids, mask = batch.inputs
    assert ids.dtype == np.int64 and ids.shape == (4, 5) and mask.shape == (4, 5)
    assert ids[1].tolist() == [table.column("input_ids")[1].as_py()[0], 7, 7, 7, 7]
    assert mask[1].tolist() == [1, 7, 7, 7, 7]  # (the mask pads with the pad value too; masks pad with 0 by default)
    (cut,) = read_all(tmp_path / "t.parquet", inputs="input_ids,attention_mask", max_length=2,
                      model="fixture_models:masked_mean")
    assert cut.inputs[0].shape == (4, 2) and cut.inputs[0][2].tolist() == table.column("input_ids")[2].as_py()[:2]


@pytest.mark.usefixtures("ray_cluster")
def test_a_model_taking_ids_and_a_mask_gets_each_column_as_its_own_argument(tmp_path):
    lengths = list(range(1, 13))
    data = write_parquet(tmp_path / "d" / "t.parquet", token_table(lengths), row_group_size=5)
    result = run(data, tmp_path / "out", model="fixture_models:masked_mean", inputs="input_ids,attention_mask",
                 label="label", shard_rows=5, batch_size=4)
    from fixture_models import masked_mean
    model, table = masked_mean(), token_table(lengths)
    expected = [apply(model, np.array([ids], np.int64), np.ones((1, len(ids)), np.int64))[0].argmax()
                for ids in table.column("input_ids").to_pylist()]  # each row alone: no padding at all
    assert result.predictions.to_table().sort_by("row_id").column("prediction").to_pylist() == expected


# -- tensors -----------------------------------------------------------------------------------------
def digits_as(kind: str) -> pa.Table:
    table = pq.read_table(zoo.DIGITS_TEST)
    pixels = np.stack(table.column("features").to_numpy(zero_copy_only=False)).astype(np.float32)
    if kind == "tensor":
        column = pa.FixedShapeTensorArray.from_numpy_ndarray(pixels.reshape(-1, 1, 8, 8))
    else:  # nested fixed-size lists
        column = pa.FixedSizeListArray.from_arrays(pa.FixedSizeListArray.from_arrays(
            pa.FixedSizeListArray.from_arrays(pa.array(pixels.ravel()), 8), 8), 1)
    return table.set_column(table.schema.get_field_index("features"), "features", column)


@pytest.mark.usefixtures("ray_cluster")
@pytest.mark.parametrize("kind", ["tensor", "nested lists"])
def test_a_tensor_column_gives_the_same_predictions_as_a_list_column_with_an_input_shape(tmp_path, kind):
    data = write_parquet(tmp_path / "d" / "t.parquet", digits_as(kind))
    as_tensor = run(data, tmp_path / "t", model="convnet", input_shape=None, label="label", id="id")
    as_list = run(zoo.DIGITS_TEST, tmp_path / "l", model="convnet", input_shape=(1, 8, 8), label="label", id="id")
    assert as_tensor.predictions.to_table().sort_by("row_id").equals(as_list.predictions.to_table().sort_by("row_id"))


def test_an_input_shape_disagreeing_with_the_tensor_type_is_an_error(tmp_path):
    write_parquet(tmp_path / "t.parquet", digits_as("tensor"))
    with pytest.raises(InputError, match=r"holds 1x8x8 tensors, but --input-shape says 8x8"):
        planner.plan(JobConfig(data=[str(tmp_path / "t.parquet")], model="convnet", input_shape=(8, 8)))


# -- the hook, outputs, raw tensors, read-ahead ------------------------------------------------------
@pytest.mark.usefixtures("ray_cluster")
def test_a_transform_makes_the_models_inputs_from_the_raw_columns(dataset, tmp_path):
    plain = run(dataset, tmp_path / "p", model="fixture_models:mlp", label="label")
    from fixture_models import mlp
    x = np.concatenate([np.stack(pq.read_table(p).column("features").to_numpy(zero_copy_only=False))
                        for p in sorted(dataset.glob("*.parquet"))]).astype(np.float32)
    doubled = run(dataset, tmp_path / "d", model="fixture_models:mlp", label="label",
                  transform="fixture_models:doubled")
    predicted = doubled.predictions.to_table().sort_by("row_id").column("prediction").to_pylist()
    assert predicted == apply(mlp(), 2 * x).argmax(1).tolist() != plain.predictions.to_table().sort_by(
        "row_id").column("prediction").to_pylist()


@pytest.mark.usefixtures("ray_cluster")
@pytest.mark.parametrize("form, key", [("tuple", "1"), ("dict", None), ("dataclass", None), ("dict", "logits")])
def test_a_model_returning_a_tuple_dict_or_dataclass_is_read_by_its_output_key(dataset, tmp_path, form, key):
    reference = run(dataset, tmp_path / "r", model="fixture_models:mlp", label="label")
    result = run(dataset, tmp_path / "o", model="fixture_models:outputs", model_kwargs={"form": form},
                 output_key=key, label="label")
    assert result.predictions.to_table().sort_by("row_id").equals(reference.predictions.to_table().sort_by("row_id"))


def test_an_output_key_that_is_not_there_names_what_is(dataset, capsys):
    assert main(["--data", str(dataset), "--model", "fixture_models:outputs", "--output-key", "scores"]) == 2
    assert "returned outputs 'hidden', 'logits'; --output-key 'scores' is not among them" in capsys.readouterr().err


@pytest.mark.usefixtures("ray_cluster")
def test_raw_per_row_tensors_are_written_as_fixed_shape_tensors(dataset, tmp_path):
    result = run(dataset, tmp_path / "o", model="fixture_models:reshape", task="raw")
    table = pq.read_table(tmp_path / "o" / "predictions").sort_by("row_id")
    assert table.schema.field("prediction").type == pa.fixed_shape_tensor(pa.float32(), (2, 4))
    x = np.concatenate([np.stack(pq.read_table(p).column("features").to_numpy(zero_copy_only=False))
                        for p in sorted(dataset.glob("*.parquet"))])
    np.testing.assert_array_equal(table.column("prediction").combine_chunks().to_numpy_ndarray(),
                                  2 * x.reshape(-1, 2, 4))
    assert result.metrics["rows"] == 720


@pytest.mark.usefixtures("ray_cluster")
def test_reading_ahead_changes_no_prediction_and_reports_each_stages_time(dataset, tmp_path):
    ahead = run(dataset, tmp_path / "a", model="fixture_models:mlp", label="label", prefetch=2, shard_rows=100)
    inline = run(dataset, tmp_path / "i", model="fixture_models:mlp", label="label", prefetch=0, shard_rows=100)
    assert ahead.predictions.to_table().sort_by("row_id").equals(inline.predictions.to_table().sort_by("row_id"))
    for result in (ahead, inline):
        worker = result.workers.to_pylist()[0]
        assert worker["read_s"] > 0 and worker["compute_s"] > 0 and worker["write_s"] > 0
        assert worker["compute_s"] < worker["busy_s"]


# -- bad usage ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--features", "features", "--inputs", "a,b"], "--features and --inputs both name the model's inputs"),
    (["--features", "name"], "feature column 'name' is string: not a kind of input"),
    (["--model", "fixture_models:masked_mean", "--features", "features"], "does not take rows of shape 8"),
    (["--transform", "fixture_models:nope"], "transform 'fixture_models:nope': module 'fixture_models' has no"),
    (["--image-size", "3"], "--image-size: expected H,W"),
    (["--mean", "0.5,0.5"], "--mean: 2 values for 3-channel RGB images"),
])
def test_inputs_that_cannot_work_exit_2_naming_the_option_or_column(tmp_path, capsys, args, message):
    table = feature_table(20).append_column("name", pa.array(["x"] * 20))
    data = write_parquet(tmp_path / "d.parquet", table)
    assert main(["--data", str(data), "--model", "fixture_models:mlp", "--output", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
