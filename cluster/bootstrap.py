"""The Poisson bootstrap as sums: counter-based row weights, and mergeable per-replicate sums of weighted columns.

A worker weights each row in each replicate (poisson_weights) and adds weights.T @ values into a
BootstrapSums; the driver merges the shards' sums and turns each replicate's sums into an estimate
(classification_replicates, ratio_replicates), whose spread is the interval (stats.bootstrap_interval).
No per-row state is kept, and the weights do not depend on how rows are split among shards, batches
or workers. Per batch, in a worker:

    weights = poisson_weights(seed, row_ids, replicates)            # (rows, replicates) float32
    sums.add(weights, classification_values(losses, labels, predictions, classes, per_class=classes <= 100))
    by_slice.add(weights, values, groups=codes, keys=slice_values)  # codes: each row's index in slice_values
    pair.add(weights, comparison_values(correct_a, correct_b))

(or all of them in one product, add_together, which reads the weights once), and at the driver, after
merging the shards' BootstrapSums.from_json(...):

    bootstrap_interval(classification_replicates(sums)["macro_f1"], level)
    bootstrap_interval(ratio_replicates(by_slice, "correct", key=value), level)

Every column holds whole numbers (the loss as fixed_point pieces), so every sum is exact, and the
intervals are identical for any sharding, batch size or number of workers.
"""

from __future__ import annotations

import base64
from collections.abc import Hashable, Sequence

import numpy as np

# Poisson(1) weights from a counter-based generator.
#
# A row's weight in replicate r is byte r % 8 of the 64-bit word that SplitMix64 gives for (seed, row id, r // 8):
# the row's stream starts at mix(row id + mix(seed)) and steps by the golden gamma, as SplitMix64 does. So a weight
# is a pure function of (seed, row id, replicate): the same for any sharding, batch size, worker count or
# number of replicates. A uniform byte b becomes a weight through thresholds: the weight is how many of
# _THRESHOLDS are <= b. The 256 byte values are shared out among weights 0..5 as (94, 95, 46, 16, 4, 1), chosen
# so that the mean and the variance are exactly 1, as Poisson(1)'s are (the bootstrap's validity rests on those two),
# and the distribution is close to Poisson(1): total variation distance 0.0055 (probabilities .367 .371 .180
# .0625 .0156 .0039 against .368 .368 .184 .0613 .0153 .0037 and .0006 above 5), third moment 4.98 against 5.

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31))
_THRESHOLDS = tuple(np.uint8(t) for t in (94, 189, 235, 251, 255))
WEIGHT_COUNTS = (94, 95, 46, 16, 4, 1)  # byte values (of 256) giving weight 0, 1, ... 5


def _mix(z: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """SplitMix64's output function, in place (uint64 arithmetic wraps, as the generator needs)."""
    for shift, multiplier in zip(_SHIFTS, (_MIX1, _MIX2, None)):
        np.right_shift(z, shift, out=scratch)
        z ^= scratch
        if multiplier is not None:
            z *= multiplier
    return z


def _row_streams(seed: int, row_ids: np.ndarray) -> np.ndarray:
    """Each row's stream start: mix(row id + mix(seed)), as uint64."""
    key = _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], np.uint64), np.empty(1, np.uint64))
    start = np.asarray(row_ids, np.int64).view(np.uint64) + key
    return _mix(start, np.empty_like(start))


def poisson_weights(seed: int, row_ids: np.ndarray, replicates: int, dtype=np.float32) -> np.ndarray:
    """Each row's Poisson(1) weight in each replicate, (rows, replicates): a pure function of (seed, row id, replicate).

    float32 by default, what a BLAS matmul of per-replicate sums wants; uint8 also works.
    """
    words = -(-replicates // 8)
    z = _row_streams(seed, row_ids)[:, None] + np.arange(1, words + 1, dtype=np.uint64) * _GAMMA
    uniform = _mix(z, np.empty_like(z)).astype("<u8", copy=False).view(np.uint8)[:, :replicates]
    weights = np.greater_equal(uniform, _THRESHOLDS[0]).view(np.uint8)
    above = np.empty(uniform.shape, np.bool_)
    for threshold in _THRESHOLDS[1:]:
        weights += np.greater_equal(uniform, threshold, out=above).view(np.uint8)
    return weights if dtype == np.uint8 else weights.astype(dtype)


_GROUPS_BY_MATMUL = 512  # up to this many (group, column) pairs in a batch, one one-hot matmul; beyond, one per group
# Rows multiplied at a time. A float32 product of whole numbers is exact while every partial sum stays below 2^24:
# with weights of at most 5 and values of at most EXACT_MAX, 5 · 255 · 8192 < 2^24. So sums of whole-number columns
# (counts, indicators, fixed_point pieces) are exact, and do not depend on how rows were split into batches,
# shards or workers. A batch of up to 8192 rows is one product; a larger one is cut (each piece reads its own rows).
EXACT_ROWS, EXACT_MAX = 8192, 255


class BootstrapSums:
    """Per-replicate weighted sums of named columns, optionally per group (a slice's value): mergeable, JSON-able.

    sums[key][r, j] = Σ over the group's rows of weight(row, r) · values(row, j). Without groups every row
    is in the one group keyed None. Columns holding whole numbers up to EXACT_MAX (ones, 0/1 indicators,
    fixed_point pieces) sum exactly (float32 products over EXACT_ROWS rows at a time, float64 after), so
    their replicates do not depend on how rows were split or merged.
    """

    def __init__(self, replicates: int, columns: Sequence[str]):
        self.replicates, self.columns = int(replicates), tuple(columns)
        self.sums: dict[Hashable, np.ndarray] = {}  # key -> (replicates, columns) float64

    def add(self, weights: np.ndarray, values: np.ndarray, groups: np.ndarray | None = None,
            keys: Sequence[Hashable] | None = None) -> None:
        """Add a batch: weights (rows, replicates), values (rows, columns); groups[i] indexes row i's key in keys."""
        add_together(weights, [(self, values, groups, keys)])

    def _spread(self, values: np.ndarray, groups, keys) -> tuple[np.ndarray | None, list]:
        """The batch as columns of one product, and where each group's sums land: [(key, first column)].

        Grouped, column g·k + j holds values[:, j] on group g's rows and zero elsewhere (a one-hot spread).
        None when there are too many groups for that: they are added one group at a time instead.
        """
        k = len(self.columns)
        if groups is None:
            return values, [(None, 0)]
        if len(keys) * k > _GROUPS_BY_MATMUL:
            return None, []
        spread = np.zeros((len(values), len(keys) * k), np.result_type(values.dtype, np.float32))
        spread[np.arange(len(values))[:, None], groups[:, None] * k + np.arange(k)] = values
        return spread, [(keys[g], g * k) for g in np.unique(groups)]

    def _add_by_group(self, weights: np.ndarray, values: np.ndarray, groups: np.ndarray, keys) -> None:
        order = np.argsort(groups, kind="stable")
        codes = groups[order]
        starts = np.flatnonzero(np.diff(codes, prepend=-1))
        for start, stop in zip(starts, [*starts[1:], len(codes)]):
            rows = order[start:stop]
            self._accumulate(keys[codes[start]], _product(values[rows], weights[rows]))

    def _checked(self, values) -> np.ndarray:
        values = np.asarray(values).reshape(len(values), -1)
        if values.shape[1] != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} value columns ({', '.join(self.columns)}), "
                             f"got {values.shape[1]}")
        return values

    def _accumulate(self, key: Hashable, transposed: np.ndarray) -> None:
        total = self.sums.get(key)
        if total is None:
            self.sums[key] = transposed.T.astype(np.float64)
        else:
            total += transposed.T

    def merge(self, other: BootstrapSums) -> BootstrapSums:
        """The sums of two disjoint sets of rows (a new object)."""
        if (other.replicates, other.columns) != (self.replicates, self.columns):
            raise ValueError(f"cannot merge sums of {other.replicates} replicates of {other.columns} into "
                             f"{self.replicates} replicates of {self.columns}")
        merged = BootstrapSums(self.replicates, self.columns)
        merged.sums = {key: total.copy() for key, total in self.sums.items()}
        for key, total in other.sums.items():
            merged._accumulate(key, total.T)
        return merged

    def to_json(self) -> dict:
        """A JSON-able dict: each group's sums as base64 little-endian float64 (exact, half the size of decimals)."""
        return {"replicates": self.replicates, "columns": list(self.columns),
                "groups": [[json_key(key), base64.b64encode(total.astype("<f8").tobytes()).decode()]
                           for key, total in self.sums.items()]}

    @classmethod
    def from_json(cls, value: dict) -> BootstrapSums:
        """The sums to_json wrote."""
        sums = cls(value["replicates"], value["columns"])
        shape = (sums.replicates, len(sums.columns))
        for key, data in value["groups"]:
            total = np.frombuffer(base64.b64decode(data), "<f8").reshape(shape)
            sums.sums[hashable_key(key)] = total.astype(np.float64)
        return sums

    def column(self, name: str, key: Hashable = None) -> np.ndarray:
        """One column's per-replicate sums for one group, (replicates,)."""
        return self.sums[key][:, self.columns.index(name)]


def add_together(weights: np.ndarray, parts: Sequence[tuple]) -> None:
    """Several BootstrapSums.add(weights, values, groups, keys) in one product, so the weights are read once per batch.

    `parts`: (sums, values, groups, keys) tuples, groups and keys None for ungrouped sums.
    """
    blocks, targets, width = [], [], 0
    for sums, values, groups, keys in parts:
        values = sums._checked(values)
        groups = None if groups is None else np.asarray(groups)
        block, where = sums._spread(values, groups, keys)
        if block is None:
            sums._add_by_group(weights, values, groups, keys)
            continue
        blocks.append(block)
        targets += [(sums, key, width + first, width + first + len(sums.columns)) for key, first in where]
        width += block.shape[1]
    if not blocks:
        return
    dtype = np.result_type(*(b.dtype for b in blocks), np.float32)
    totals = _product(np.hstack(blocks).astype(dtype, copy=False) if len(blocks) > 1 else blocks[0], weights)
    for sums, key, start, stop in targets:
        sums._accumulate(key, totals[start:stop])


def _product(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """values.T @ weights in float64, multiplied EXACT_ROWS rows at a time (exact for whole numbers up to EXACT_MAX)."""
    total = np.zeros((values.shape[1], weights.shape[1]), np.float64)
    for start in range(0, len(values), EXACT_ROWS):
        total += values[start:start + EXACT_ROWS].T @ weights[start:start + EXACT_ROWS]
    return total


def json_key(key):
    """A group's key as JSON holds it: tuples (several columns' values) as lists, numpy scalars as Python's."""
    if isinstance(key, tuple):
        return [json_key(k) for k in key]
    return key.item() if isinstance(key, np.generic) else key


def hashable_key(key):
    """A key read back from JSON, as the sums were keyed: lists as tuples."""
    return tuple(key) if isinstance(key, list) else key


MACRO_F1_MAX_CLASSES = 100  # per-class columns cost 2 per class in every batch's matmul and every replicate

# Fixed point: a non-negative value v as round(v · 2^16) = Σ piece_i · 2^(8·i), four whole numbers below 2^8
# (EXACT_MAX), so that its weighted sums are exact like counts and the same for any split of the rows. Values from 0
# to 2^16 (65,536), to within 2^-17; larger ones count as 2^16. (A loss interval moves by less than that.)
_FIXED_BITS, _PIECE_BITS, FIXED_MAX = 16, 8, 2.0 ** 16
FIXED_POINT_PIECES = ("3", "2", "1", "0")  # most significant first


def fixed_point(values: np.ndarray) -> np.ndarray:
    """Non-negative values as their fixed-point pieces (rows, 4), float32 whole numbers below 2^8."""
    top = 2.0 ** (_PIECE_BITS * len(FIXED_POINT_PIECES)) - 1
    whole = np.minimum(np.rint(np.maximum(np.asarray(values, np.float64), 0.0) * 2.0 ** _FIXED_BITS), top)
    pieces = whole.astype("<u4").view(np.uint8).reshape(len(whole), len(FIXED_POINT_PIECES))  # its bytes, low first
    return pieces[:, ::-1].astype(np.float32)


def from_fixed_point(pieces: np.ndarray) -> np.ndarray:
    """Sums of fixed_point pieces (..., 4) back to sums of the values, float64."""
    pieces = np.asarray(pieces, np.float64)
    total = np.zeros(pieces.shape[:-1])
    for i in range(pieces.shape[-1]):
        total = total * 2.0 ** _PIECE_BITS + pieces[..., i]
    return total / 2.0 ** _FIXED_BITS


_LOSS = tuple(f"loss_{piece}" for piece in FIXED_POINT_PIECES)
_PER_CLASS_FROM = 2 + len(_LOSS)  # weight, the loss's pieces, correct


def classification_columns(classes: int, per_class: bool) -> tuple[str, ...]:
    """The columns classification_values fills: weight, the loss (fixed_point pieces), correct, then per class
    the rows labelled plus the rows predicted (F1's denominator), and the hits."""
    names = ["weight", *_LOSS, "correct"]
    if per_class:
        names += [f"{kind}{c}" for kind in ("counted", "hit") for c in range(classes)]
    return tuple(names)


def classification_values(losses: np.ndarray, labels: np.ndarray, predictions: np.ndarray, classes: int,
                          per_class: bool) -> np.ndarray:
    """One batch's rows as classification_columns, float32 (rows, columns): what BootstrapSums.add takes."""
    first = _PER_CLASS_FROM
    correct = predictions == labels
    values = np.empty((len(labels), first + (2 * classes if per_class else 0)), np.float32)
    values[:, 0], values[:, 1:first - 1], values[:, first - 1] = 1.0, fixed_point(losses), correct
    if per_class:  # rows of an identity matrix, gathered: one-hot columns without a scatter
        one_hot = np.eye(classes, dtype=np.float32)
        labelled = one_hot[labels]
        np.add(labelled, one_hot[predictions], out=values[:, first:first + classes])
        np.multiply(labelled, correct[:, None], out=values[:, first + classes:])
    return values


def macro_f1(hits: np.ndarray, labels: np.ndarray, predicted: np.ndarray, present: np.ndarray | None = None):
    """Mean F1 over the present classes (last axis); F1 = 2·hits / (labels + predicted), 0 where that is 0/0.

    By default the present classes are those with a label or a prediction, as scikit-learn's average='macro'.
    """
    hits, labels, predicted = (np.asarray(a, np.float64) for a in (hits, labels, predicted))
    denominator = labels + predicted
    if present is None:
        present = denominator > 0
    f1 = np.divide(2 * hits, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return (f1 * present).sum(axis=-1) / np.maximum(np.sum(present, axis=-1), 1)


def classification_replicates(sums: BootstrapSums, key: Hashable = None) -> dict[str, np.ndarray]:
    """Each replicate's loss, accuracy and (with per-class columns) macro-F1, from classification_values' sums.

    A replicate where a group has no weight gives nan (bootstrap_interval leaves it out). Macro-F1 averages
    over the classes present in any replicate, which are those present in the data.
    """
    total = sums.sums[key]
    weight, first = total[:, 0], _PER_CLASS_FROM
    with np.errstate(divide="ignore", invalid="ignore"):
        estimates = {"loss": from_fixed_point(total[:, 1:first - 1]) / weight, "accuracy": total[:, first - 1] / weight}
    if len(sums.columns) > first:
        counted, hits = np.split(total[:, first:], 2, axis=1)
        estimates["macro_f1"] = macro_f1(hits, counted, np.zeros_like(counted), counted.sum(axis=0) > 0)
    return estimates


COMPARISON_COLUMNS = ("weight", "difference")


def comparison_values(correct_a: np.ndarray, correct_b: np.ndarray) -> np.ndarray:
    """One batch's rows for a paired comparison of models A and B (COMPARISON_COLUMNS): 1, correct_b - correct_a."""
    values = np.ones((len(correct_a), 2), np.float32)
    values[:, 1] = correct_b.astype(np.float32) - correct_a.astype(np.float32)
    return values


def ratio_replicates(sums: BootstrapSums, numerator: str, denominator: str = "weight", key: Hashable = None):
    """Each replicate's Σ numerator / Σ denominator (an accuracy difference, a slice's accuracy); nan where 0/0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return sums.column(numerator, key) / sums.column(denominator, key)
