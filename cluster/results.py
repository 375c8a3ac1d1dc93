"""A shard's results beside its predictions, for every model: metrics, calibration, slices and bootstrap sums.

A worker adds each batch (add); the shard's results travel as JSON in its summary (to_json, written
into the part file's footer, so a resumed run reads them back); the driver merges every shard's
(from_json, merge) and finishes them into metrics.json's figures (cluster.figures). Everything kept is
a count or a sum, never a row: per model the metrics' partial sums (cluster.metrics) and calibration
bins; per slicing the slices' sums; per pair of models the rows only one of them got right; and with
intervals the bootstrap's per-replicate sums, whose row weights are computed once per batch and shared
by every model and slicing.
"""

from __future__ import annotations

import numpy as np

from cluster import bootstrap, calibration, metrics
from cluster.bootstrap import BootstrapSums
from cluster.config import JobConfig
from cluster.slices import SliceSums, key_name


def bootstrapped(config: JobConfig) -> bool:
    """Whether the job keeps bootstrap sums (intervals asked for, on labelled classification): its rows need weights."""
    return bool(config.ci) and config.task == "classification" and config.label is not None


def row_weights(config: JobConfig, row_ids: np.ndarray) -> np.ndarray:
    """Each row's bootstrap weight in each replicate, (rows, replicates) float32: a function of (seed, row id)."""
    return bootstrap.poisson_weights(config.seed, row_ids, config.bootstrap)


def pairs(count: int) -> list[tuple[int, int]]:
    """Every pair of models (a, b) in the given order: (0, 1), (0, 2) ... (1, 2) ..."""
    return [(a, b) for a in range(count) for b in range(a + 1, count)]


def slice_columns(config: JobConfig) -> tuple[str, ...]:
    """What a slice sums: its rows, then per model its correct rows and loss, or its values and their squared and
    absolute errors."""
    per_model = {"classification": ("correct", "loss"), "regression": ("values", "sse", "sae")}.get(config.task, ())
    if config.label is None:
        per_model = ()
    return ("rows", *(f"{column}{i}" for i in range(len(config.model)) for column in per_model))


class ShardResults:
    """The results of the rows seen so far (a batch, a shard, or every shard once merged)."""

    def __init__(self, config: JobConfig):
        self.config = config
        count = len(config.model)
        self.partials: list[dict] = [{} for _ in range(count)]
        self.calibrations: list[dict] = [{} for _ in range(count)]
        self.only_correct = [[0, 0] for _ in pairs(count)]  # per pair: rows only a got right, only b
        self.slices = {key_name(s): SliceSums(slice_columns(config)) for s in config.slice_by}
        self.model_sums: list[BootstrapSums | None] = [None] * count  # made at the first batch: it tells the classes
        correct = [f"correct{i}" for i in range(count)]
        self.slice_sums = {key_name(s): BootstrapSums(config.bootstrap, ("weight", *correct))
                           for s in config.slice_by} if bootstrapped(config) else {}

    def add(self, batch, predicted: list) -> None:
        """Add one batch (a cluster.reader.Batch, bad rows set aside) and each model's Predictions of it."""
        labels, config, rows = batch.labels, self.config, len(batch.row_ids)
        classified = config.task == "classification" and labels is not None
        # Per model, its rows' figures as slice_columns lists them: (correct, loss) or (values, sse, sae), or none.
        columns = [self._add_classification(i, p, labels) if classified else self._add_other(i, p, labels)
                   for i, p in enumerate(predicted)]
        if classified:
            for k, (a, b) in enumerate(pairs(len(predicted))):
                correct_a, correct_b = columns[a][0], columns[b][0]
                self.only_correct[k][0] += int(np.count_nonzero(correct_a & ~correct_b))
                self.only_correct[k][1] += int(np.count_nonzero(correct_b & ~correct_a))
        if config.slice_by:
            values = np.column_stack([np.ones(rows), *(c for model in columns if model for c in model)])
            for slicing, codes in zip(config.slice_by, batch.slices):
                self.slices[key_name(slicing)].add(codes, values)
        if bootstrapped(config) and rows:
            self._add_bootstrap(batch, predicted, columns)

    def _add_classification(self, i: int, predicted, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model i's metrics and calibration; its rows' correctness and loss."""
        shifted, exp_sums = metrics.softmax_parts(predicted.outputs, predicted.classes)
        losses = metrics.row_losses(shifted, exp_sums, labels)
        correct = predicted.classes == labels
        self.partials[i] = metrics.merge(self.partials[i], metrics.classification_partial(
            predicted.outputs, labels, predicted.classes, predicted.topk, losses))
        confidence = calibration.top1_confidence(predicted.outputs, predicted.classes, exp_sums)
        self.calibrations[i] = calibration.merge_calibration(self.calibrations[i],
                                                             calibration.calibration_partial(confidence, correct))
        return correct, losses

    def _add_other(self, i: int, predicted, labels: np.ndarray | None):
        """Model i's metrics (regression, raw, or no labels); for labelled regression its rows' errors."""
        self.partials[i] = metrics.merge(self.partials[i], metrics.partial(self.config.task, predicted, labels))
        if self.config.task != "regression" or labels is None:
            return None
        outputs = predicted.outputs.astype(np.float64).reshape(len(predicted.outputs), -1)
        error = outputs - labels.astype(np.float64).reshape(len(labels), -1)
        return np.full(len(outputs), outputs.shape[1], np.float64), (error ** 2).sum(axis=1), np.abs(error).sum(axis=1)

    def _add_bootstrap(self, batch, predicted: list, columns: list[tuple]) -> None:
        """Every model's and slicing's per-replicate sums, in one product over the batch's weights."""
        weights = batch.weights if batch.weights is not None else row_weights(self.config, batch.row_ids)
        parts = []
        for i, p in enumerate(predicted):
            classes = p.outputs.shape[1]
            per_class = classes <= bootstrap.MACRO_F1_MAX_CLASSES
            if self.model_sums[i] is None:
                self.model_sums[i] = BootstrapSums(self.config.bootstrap,
                                                   bootstrap.classification_columns(classes, per_class))
            correct, losses = columns[i]
            values = bootstrap.classification_values(losses, batch.labels, p.classes, classes, per_class)
            parts.append((self.model_sums[i], values, None, None))
        if self.slice_sums:
            values = np.column_stack([np.ones(len(weights)), *(c[0] for c in columns)]).astype(np.float32)
            for slicing, codes in zip(self.config.slice_by, batch.slices):
                parts.append((self.slice_sums[key_name(slicing)], values, codes.codes, codes.keys))
        bootstrap.add_together(weights, parts)

    def merge(self, other: ShardResults) -> ShardResults:
        """The results of two disjoint sets of rows (this object, updated)."""
        self.partials = [metrics.merge(a, b) for a, b in zip(self.partials, other.partials)]
        self.calibrations = [calibration.merge_calibration(a, b) for a, b in zip(self.calibrations, other.calibrations)]
        self.only_correct = [[a + c, b + d] for (a, b), (c, d) in zip(self.only_correct, other.only_correct)]
        self.slices = {name: sums.merge(other.slices[name]) for name, sums in self.slices.items()}
        self.model_sums = [b if a is None else a if b is None else a.merge(b)
                           for a, b in zip(self.model_sums, other.model_sums)]
        self.slice_sums = {name: sums.merge(other.slice_sums[name]) for name, sums in self.slice_sums.items()}
        return self

    def to_json(self) -> dict:
        """What a shard's summary holds: JSON-able, exact (the bootstrap sums as base64 float64)."""
        value = {"models": [{"metrics": p, "calibration": c} for p, c in zip(self.partials, self.calibrations)],
                 "only_correct": self.only_correct, "slices": {k: s.to_json() for k, s in self.slices.items()}}
        if bootstrapped(self.config):
            value["bootstrap"] = {"models": [s and s.to_json() for s in self.model_sums],
                                  "slices": {k: s.to_json() for k, s in self.slice_sums.items()}}
        return value

    @classmethod
    def from_json(cls, config: JobConfig, value: dict) -> ShardResults:
        """The results to_json wrote (a shard summary's partial)."""
        results = cls(config)
        results.partials = [m["metrics"] for m in value["models"]]
        results.calibrations = [m["calibration"] for m in value["models"]]
        results.only_correct = [list(pair) for pair in value["only_correct"]]
        results.slices = {k: SliceSums.from_json(s) for k, s in value["slices"].items()}
        if "bootstrap" in value:
            results.model_sums = [s and BootstrapSums.from_json(s) for s in value["bootstrap"]["models"]]
            results.slice_sums = {k: BootstrapSums.from_json(s) for k, s in value["bootstrap"]["slices"].items()}
        return results
