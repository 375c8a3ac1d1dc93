"""Slices: figures per value of a column of the data (or per combination of several), mergeable across shards.

The reader turns each --slice-by slicing of a batch into codes (each row's index in the batch's list of
slice values, SliceCodes); the evaluator adds the rows' figures per slice into SliceSums; the driver
merges the shards' sums. A slice value is what JSON holds: ints, floats, strings, bools, and None for
nulls (and NaN); dates and times as ISO strings, decimals as strings; with several columns, a tuple
(a list in JSON).
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cluster.bootstrap import hashable_key, json_key
from cluster.errors import InputError


def key_name(columns: Sequence[str]) -> str:
    """A slicing's name in metrics.json and slices.parquet: its columns joined by commas."""
    return ",".join(columns)


def check_type(name: str, kind: pa.DataType, location: str) -> None:
    """InputError naming the column unless it holds single values a slice can be keyed by."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
            or pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_decimal(kind)
            or pa.types.is_temporal(kind) and not pa.types.is_interval(kind)):
        raise InputError(f"--slice-by: {location}: column {name!r} is {kind}, expected single values (numbers, "
                         "strings, booleans, dates or times) to slice by")


def json_value(value):
    """A slice value as JSON holds it (see the module's docstring)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return value


@dataclass
class SliceCodes:
    """One slicing of a batch: each row's index into `keys`, the batch's distinct slice values."""

    codes: np.ndarray  # (rows,) int64
    keys: list[Hashable]

    def take(self, keep: np.ndarray) -> SliceCodes:
        """The codes of the rows where `keep` is True (the keys stay)."""
        return SliceCodes(self.codes[keep], self.keys)


def batch_codes(records: pa.RecordBatch, columns: Sequence[str]) -> SliceCodes:
    """The slicing by `columns` of a batch: one slice per distinct value (per combination, with several columns)."""
    per_column = [_column_codes(records.column(name)) for name in columns]
    if len(per_column) == 1:
        return SliceCodes(*per_column[0])
    combined = np.zeros(records.num_rows, np.int64)
    for codes, keys in per_column:  # kept below rows² by compacting after each column, so it never overflows
        combined = np.unique(combined * len(keys) + codes, return_inverse=True)[1].reshape(-1)
    _, first = np.unique(combined, return_index=True)
    keys = [tuple(column_keys[codes[row]] for codes, column_keys in per_column) for row in first]
    return SliceCodes(combined, keys)


def _column_codes(column: pa.Array) -> tuple[np.ndarray, list]:
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    values = [json_value(v) for v in encoded.dictionary.to_pylist()]
    keys = list(dict.fromkeys(values))  # values Arrow tells apart that JSON does not (NaN and null): one slice
    if len(keys) != len(values):
        index = {key: i for i, key in enumerate(keys)}
        codes = np.array([index[v] for v in values], np.int64)[codes]
    return codes, keys


class SliceSums:
    """Per-slice sums of named columns (rows, correct answers, losses ...), float64, mergeable and JSON-able."""

    def __init__(self, columns: Sequence[str]):
        self.columns = tuple(columns)
        self.sums: dict[Hashable, np.ndarray] = {}

    def add(self, slicing: SliceCodes, values: np.ndarray) -> None:
        """Add a batch: values (rows, columns), rows grouped by the slicing's codes."""
        count = len(slicing.keys)
        totals = np.stack([np.bincount(slicing.codes, values[:, j], count) for j in range(values.shape[1])], axis=1)
        for code in np.flatnonzero(np.bincount(slicing.codes, minlength=count)):
            key = slicing.keys[code]
            if key in self.sums:
                self.sums[key] += totals[code]
            else:
                self.sums[key] = totals[code].copy()

    def merge(self, other: SliceSums) -> SliceSums:
        """The sums of two disjoint sets of rows (a new object)."""
        merged = SliceSums(self.columns)
        merged.sums = {key: total.copy() for key, total in self.sums.items()}
        for key, total in other.sums.items():
            merged.sums[key] = merged.sums[key] + total if key in merged.sums else total.copy()
        return merged

    def column(self, name: str, key: Hashable) -> float:
        return float(self.sums[key][self.columns.index(name)])

    def ordered_keys(self) -> list[Hashable]:
        """The slices, largest first (first column: rows), ties by their JSON text."""
        return sorted(self.sums, key=lambda k: (-self.sums[k][0], json.dumps(json_key(k))))

    def to_json(self) -> dict:
        return {"columns": list(self.columns), "sums": [[json_key(k), v.tolist()] for k, v in self.sums.items()]}

    @classmethod
    def from_json(cls, value: dict) -> SliceSums:
        sums = cls(value["columns"])
        sums.sums = {hashable_key(k): np.asarray(v, np.float64) for k, v in value["sums"]}
        return sums


SLICES_SCHEMA = pa.schema([
    ("slicing", pa.string()), ("value", pa.string()), ("model", pa.string()), ("rows", pa.int64()),
    ("accuracy", pa.float64()), ("accuracy_lo", pa.float64()), ("accuracy_hi", pa.float64()),
    ("loss", pa.float64()), ("mse", pa.float64()), ("mae", pa.float64()), ("small", pa.bool_()),
])


def slices_table(by_model: dict[str, dict[str, list[dict]]]) -> pa.Table:
    """slices.parquet: a row per (slicing, slice value, model); the value as JSON text (a list for several columns)."""
    rows = []
    for model, slicings in by_model.items():
        for slicing, entries in slicings.items():
            for entry in entries:
                interval = entry.get("accuracy_ci") or (None, None)
                rows.append({"slicing": slicing, "value": json.dumps(entry["value"]), "model": model,
                             "rows": entry["rows"], "accuracy": entry.get("accuracy"), "accuracy_lo": interval[0],
                             "accuracy_hi": interval[1], "loss": entry.get("loss"), "mse": entry.get("mse"),
                             "mae": entry.get("mae"), "small": entry["small"]})
    return pa.Table.from_pylist(rows, schema=SLICES_SCHEMA)
