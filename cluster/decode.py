"""Model inputs from Arrow columns, by the kind the column's type says it holds.

- scalar: a number per row;
- vector: a fixed-size list of numbers, or a variable-length list of floats (all of one length);
- tensor: nested fixed-size lists or Arrow's `fixed_shape_tensor`: the per-row shape comes from the type;
- tokens: a variable-length list of integers, padded per batch to its longest row (int64, N x L);
- image: encoded bytes (PNG, JPEG ...) in a binary column, or a struct with a `bytes` field (the
  Hugging Face `datasets` layout), decoded with Pillow to float32 N x C x H x W in [0, 1], normalised.

Each decoder returns the batch's array (bad rows zero-filled) and the problems it found, a boolean
mask of rows with a reason and a detail each: the reader sets those rows aside or fails on them.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cluster.config import JobConfig
from cluster.errors import InputError

# A check's finding: which rows it finds bad, a short reason (metrics.json counts them by it), and a detail per row.
Problem = tuple[np.ndarray, str, Callable[[int], str]]
KINDS = ("scalar", "vector", "tensor", "tokens", "image")


class RowError(Exception):
    """A row that makes the whole batch impossible (not a bad row to set aside): the reader names its file and id."""

    def __init__(self, row: int, message: str):
        super().__init__(message)
        self.row = row


def kind_of(name: str, kind: pa.DataType) -> str:
    """The kind of input a column's type holds; InputError naming the column and its type if none."""
    if isinstance(kind, pa.FixedShapeTensorType):
        return "tensor" if _numeric(kind.value_type) else _unsupported(name, kind)
    if pa.types.is_fixed_size_list(kind):
        inner = kind.value_type
        if pa.types.is_fixed_size_list(inner):
            return "tensor" if _numeric(_leaf(inner)) else _unsupported(name, kind)
        return "vector" if _numeric(inner) else _unsupported(name, kind)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        if pa.types.is_integer(kind.value_type):
            return "tokens"
        return "vector" if _numeric(kind.value_type) else _unsupported(name, kind)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return "image"
    if pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0:
        inner = kind.field("bytes").type
        return "image" if pa.types.is_binary(inner) or pa.types.is_large_binary(inner) else _unsupported(name, kind)
    if _numeric(kind):
        return "scalar"
    return _unsupported(name, kind)


def declared_shape(kind: pa.DataType) -> tuple[int, ...] | None:
    """The per-row shape a column's type declares (fixed-size lists, nested or as a tensor), else None."""
    if isinstance(kind, pa.FixedShapeTensorType):
        return tuple(kind.shape)
    shape = []
    while pa.types.is_fixed_size_list(kind):
        shape.append(kind.list_size)
        kind = kind.value_type
    return tuple(shape) or None


def _numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def _leaf(kind: pa.DataType) -> pa.DataType:
    while pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
        kind = kind.value_type
    return kind


def _unsupported(name: str, kind: pa.DataType) -> str:
    raise InputError(f"feature column {name!r} is {kind}: not a kind of input this job reads (numbers, lists of "
                     "numbers, nested fixed-size lists, fixed_shape_tensor, lists of integers, encoded images)")


def decode(column: pa.Array, name: str, config: JobConfig, shape: tuple[int, ...] | None = None):
    """One input column of a batch as the model's array, and its problems (bad rows zero-filled)."""
    kind = kind_of(name, column.type)
    if kind == "tensor":
        return _tensor(column, name)
    if kind == "tokens":
        return _tokens(column, name, config)
    if kind == "image":
        return _images(column, name, config)
    if kind == "vector":
        return _vector(column, name, math.prod(shape) if shape else None)
    return _scalar(column, name)


def null_rows(column: pa.Array, name: str) -> list[Problem]:
    if not column.null_count:
        return []
    return [(column.is_null().to_numpy(zero_copy_only=False), "null feature",
             lambda i: f"feature column {name!r} is null")]


def raw(column: pa.Array) -> np.ndarray:
    """A column as numpy with no kind-specific work (what --transform gets): numbers and fixed shapes as arrays,
    variable-length lists as an object array of arrays, encoded images as an object array of bytes."""
    if isinstance(column.type, pa.FixedShapeTensorType):
        return column.to_numpy_ndarray()
    if pa.types.is_struct(column.type):
        column = column.field("bytes")
    shape = declared_shape(column.type)
    if shape is not None:
        flat = column
        while pa.types.is_fixed_size_list(flat.type):
            flat = flat.flatten()
        return flat.to_numpy(zero_copy_only=False).reshape(len(column), *shape)
    return column.to_numpy(zero_copy_only=False)


def _scalar(column: pa.Array, name: str):
    values = column.fill_null(0).to_numpy(zero_copy_only=False)
    values = values.astype(np.float32, copy=False) if values.dtype.kind in "fb" else values.astype(np.int64)
    return values, null_rows(column, name) + non_finite(values)


def _vector(column: pa.Array, name: str, width: int | None):
    """(rows, width) float32: a view of the Arrow buffer when every row is whole (zero-copy for float32)."""
    lengths = pc.list_value_length(column).fill_null(-1).to_numpy(zero_copy_only=False)
    if width is None:
        width = column.type.list_size if pa.types.is_fixed_size_list(column.type) else \
            int(lengths[0]) if len(lengths) else 0
    problems: list[Problem] = []
    nulls = _list_nulls(column)
    if nulls is not None:
        problems.append((nulls, "null feature", lambda i: f"feature column {name!r} holds a null"))
    for reason, rows in (("empty list", lengths == 0), ("wrong length", lengths > 0)):
        wrong = rows & (lengths != width)
        if wrong.any():
            problems.append((wrong, reason,
                             lambda i: f"feature column {name!r} holds {lengths[i]} values where {width} are expected"))
    if not problems:
        flat = column.flatten().to_numpy(zero_copy_only=False)  # honours the slice offset
        features = flat.astype(np.float32, copy=False).reshape(len(column), width)
    else:
        keep = ~np.logical_or.reduce([mask for mask, _, _ in problems])
        good = pc.list_flatten(column.filter(pa.array(keep))).to_numpy(zero_copy_only=False)
        features = np.zeros((len(column), width), np.float32)
        features[keep] = good.astype(np.float32, copy=False).reshape(int(keep.sum()), width)
    return features, problems + non_finite(features)


def _list_nulls(column: pa.Array) -> np.ndarray | None:
    """Rows that are null, or hold a null value, in a list column (None when there are none)."""
    values = pc.list_flatten(column)
    if not column.null_count and not values.null_count:
        return None
    rows = column.is_null().to_numpy(zero_copy_only=False).copy()
    if values.null_count:
        parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
        rows[parents[values.is_null().to_numpy(zero_copy_only=False)]] = True
    return rows


def _tensor(column: pa.Array, name: str):
    """(rows, *shape) float32 from a fixed_shape_tensor or nested fixed-size lists (shape from the type)."""
    shape = declared_shape(column.type)
    storage = column.storage if isinstance(column, pa.ExtensionArray) else column
    problems = null_rows(storage, name)
    if isinstance(column.type, pa.FixedShapeTensorType) and not problems:
        values = column.to_numpy_ndarray()  # honours the type's permutation
    else:
        flat = storage
        while pa.types.is_fixed_size_list(flat.type):
            flat = flat.flatten()
        values = flat.fill_null(0).to_numpy(zero_copy_only=False).reshape(len(column), *shape)
    values = values.astype(np.float32, copy=False)
    return values, problems + non_finite(values)


def _tokens(column: pa.Array, name: str, config: JobConfig):
    """(rows, L) int64: each row's ids, cut at --max-length, padded with --pad-value to the batch's longest."""
    lengths = pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    longest = int(lengths.max()) if len(lengths) else 0
    width = min(longest, config.max_length) if config.max_length else longest
    tokens = np.full((len(column), width), config.pad_value, np.int64)
    values = pc.list_flatten(column)
    problems = null_rows(column, name)
    if values.null_count:
        parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
        rows = np.zeros(len(column), bool)
        rows[parents[values.is_null().to_numpy(zero_copy_only=False)]] = True
        problems.append((rows, "null feature", lambda i: f"token column {name!r} holds a null id"))
    empty = (lengths == 0) & column.is_valid().to_numpy(zero_copy_only=False)
    if empty.any():
        problems.append((empty, "empty list", lambda i: f"token column {name!r} holds an empty sequence"))
    if len(values):
        rows = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        positions = np.arange(len(values)) - starts[rows]
        keep = positions < width
        tokens[rows[keep], positions[keep]] = values.fill_null(config.pad_value).to_numpy(
            zero_copy_only=False)[keep]
    return tokens, problems


def _images(column: pa.Array, name: str, config: JobConfig):
    """N x C x H x W float32 from encoded bytes: decoded, converted, resized if asked, scaled to [0, 1], normalised.

    Each image is decoded to its integer pixels; the batch is scaled and normalised in one pass (the same float32
    operations, image by image, cost a fifth more than the decoding they follow).
    """
    from PIL import Image, ImageMode, UnidentifiedImageError

    encoded = column.field("bytes") if pa.types.is_struct(column.type) else column
    nulls = encoded.is_null().to_numpy(zero_copy_only=False) | column.is_null().to_numpy(zero_copy_only=False)
    images: list[np.ndarray | None] = []
    undecodable: dict[int, str] = {}
    for i, data in enumerate(encoded.to_pylist()):
        if nulls[i]:
            images.append(None)
            continue
        try:
            with Image.open(io.BytesIO(data)) as image:
                images.append(_pixels(image, config))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            undecodable[i] = f"{type(e).__name__}: {e}"
            images.append(None)
    first = next((im for im in images if im is not None), None)
    if first is None:  # no image decoded: every row is a bad row, and the values are never used
        channels = len(ImageMode.getmode(config.image_mode).bands)
        first = np.zeros((*(config.image_size or (1, 1)), channels), np.uint8)
    pixels = np.zeros((len(images), *first.shape), first.dtype)
    for i, image in enumerate(images):
        if image is None:
            continue
        if image.shape != first.shape:  # only without --image-size: with it, every image was resized
            raise RowError(i, f"image column {name!r} holds a {image.shape[1]}x{image.shape[0]} image where the "
                              f"batch's first is {first.shape[1]}x{first.shape[0]}: give --image-size H,W to resize "
                              "every image to one size")
        pixels[i] = image
    problems: list[Problem] = []
    if nulls.any():
        paths = (column.field("path").to_pylist() if pa.types.is_struct(column.type)
                 and column.type.get_field_index("path") >= 0 else [None] * len(column))
        problems.append((nulls, "null feature", lambda i: (
            f"image column {name!r} holds no bytes, only the path {paths[i]!r}: images are read from the column's "
            "bytes, never from files it names: embed each image's bytes in the data"
            if column.is_valid()[i].as_py() and paths[i] else f"image column {name!r} is null")))
    if undecodable:
        mask = np.zeros(len(images), bool)
        mask[list(undecodable)] = True
        problems.append((mask, "undecodable image",
                         lambda i: f"image column {name!r} does not decode ({undecodable[i]})"))
    return _normalised(pixels, config), problems


def _pixels(image, config: JobConfig) -> np.ndarray:
    """H x W (x C) pixels as Pillow gives them, in --image-mode, resized (bilinear) only when --image-size differs."""
    from PIL import Image

    if image.mode != config.image_mode:
        image = image.convert(config.image_mode)
    if config.image_size is not None and image.size != (config.image_size[1], config.image_size[0]):
        image = image.resize((config.image_size[1], config.image_size[0]), Image.BILINEAR)
    pixels = np.asarray(image)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _normalised(pixels: np.ndarray, config: JobConfig) -> np.ndarray:
    """N x H x W x C pixels to N x C x H x W float32: scaled to [0, 1], normalised by --mean and --std per channel."""
    x = pixels.astype(np.float32)
    x /= np.float32(255.0)
    if config.mean is not None:
        x -= np.asarray(config.mean, np.float32)
    if config.std is not None:
        x /= np.asarray(config.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def non_finite(values: np.ndarray) -> list[Problem]:
    """NaN or infinity in a row (one check over the batch when there is none)."""
    if values.dtype.kind != "f" or np.isfinite(values).all():
        return []
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    return [(bad, "non-finite feature", lambda i: "features hold NaN or infinity")]
