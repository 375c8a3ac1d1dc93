"""From a batch's model outputs to its predictions and its part-file columns."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cluster import metrics
from cluster.config import JobConfig
from cluster.errors import InputError


@dataclass
class Predictions:
    """One batch's model outputs and what the task makes of them (classes and top-k for classification)."""

    outputs: np.ndarray  # (rows, ...) as the model returned them
    classes: np.ndarray | None = None  # (rows,) int64 argmax
    topk: np.ndarray | None = None  # (rows, k) int64, best first

    def take(self, keep: np.ndarray) -> Predictions:
        """These predictions for the rows where `keep` is True."""
        return Predictions(self.outputs[keep], None if self.classes is None else self.classes[keep],
                           None if self.topk is None else self.topk[keep])

    def problems(self, labels: np.ndarray | None, model: str | None = None) -> list:
        """Rows whose outputs are not finite, and (classification) whose label is beyond the model's classes.

        `model`: the model's name, for the details, when the job has several.
        """
        found = []
        outputs = self.outputs.reshape(len(self.outputs), -1)
        whose, which = (f"model {model}'s", f"model {model}") if model else ("the model's", "a model")
        if not np.isfinite(outputs).all():
            found.append((~np.isfinite(outputs).all(axis=1), "non-finite output",
                          lambda i: f"{whose} output holds NaN or infinity"))
        if self.classes is not None and labels is not None:
            classes = self.outputs.shape[1]
            beyond = labels >= classes
            if beyond.any():
                found.append((beyond, "label out of range",
                              lambda i: f"label {labels[i]} is out of range for {which} with {classes} classes"))
        return found


def select(outputs, key: str | None, model: str):
    """The tensor that holds the predictions, from whatever forward() returned: a tensor, a tuple or list, a dict
    (or a mapping such as a ModelOutput) or a dataclass. `key` picks a name, field or index; by default the
    'logits' entry, else the first. InputError naming what there is when the key is not there."""
    if dataclasses.is_dataclass(outputs) and not isinstance(outputs, type):
        outputs = {f.name: getattr(outputs, f.name) for f in dataclasses.fields(outputs)}
    if isinstance(outputs, Mapping):
        if key is None:
            key = "logits" if "logits" in outputs else next(iter(outputs), None)
        if key not in outputs:
            raise InputError(f"model {model} returned outputs {', '.join(map(repr, outputs))}; --output-key "
                             f"{key!r} is not among them")
        return outputs[key]
    if isinstance(outputs, (tuple, list)):
        try:
            return outputs[int(key) if key is not None else 0]
        except (ValueError, IndexError):
            raise InputError(f"model {model} returned {len(outputs)} outputs; --output-key {key!r} is not an index "
                             f"from 0 to {len(outputs) - 1}") from None
    return outputs


def predict(config: JobConfig, outputs: np.ndarray, model: str) -> Predictions:
    """The task's predictions from one batch's outputs; InputError when `model`'s outputs do not suit the task."""
    if config.task != "classification":
        return Predictions(outputs)
    if outputs.ndim != 2:
        raise InputError(f"classification needs (rows, classes) outputs; model {model} returned shape "
                         f"{list(outputs.shape)} (use --task raw for other outputs)")
    topk = None
    if config.top_k:
        k = min(config.top_k, outputs.shape[1])
        topk = np.argsort(-outputs, axis=1, kind="stable")[:, :k].astype(np.int64)
    return Predictions(outputs, outputs.argmax(axis=1).astype(np.int64), topk)


def table(config: JobConfig, predicted: list[Predictions], row_ids: np.ndarray, labels: np.ndarray | None,
          names: tuple[str, ...] = ()) -> pa.Table:
    """The part-file rows of one batch: row_id, label, and per model its prediction, and topk / scores when asked for.

    With several models (named by `names`) each model's columns are prefixed with its name: NAME.prediction ...
    """
    columns = {"row_id": pa.array(row_ids)}
    if labels is not None:
        columns["label"] = pa.array(labels)
    for name, one in zip(names if len(predicted) > 1 else [None], predicted):
        prefix = f"{name}." if name is not None else ""
        columns.update({prefix + column: values for column, values in _model_columns(config, one).items()})
    return pa.table(columns)


def _model_columns(config: JobConfig, predicted: Predictions) -> dict[str, pa.Array]:
    """One model's columns: prediction, and topk / scores when asked for."""
    columns, outputs = {}, predicted.outputs
    if config.task == "classification":
        columns["prediction"] = pa.array(predicted.classes)
        if predicted.topk is not None:
            columns["topk"] = _fixed_lists(predicted.topk)
        if config.save_scores:
            columns["scores"] = _fixed_lists(np.exp(metrics.log_softmax(outputs)).astype(np.float32))
    elif config.task == "regression":
        flat = outputs.reshape(len(outputs), -1).astype(np.float32, copy=False)
        columns["prediction"] = pa.array(flat[:, 0]) if flat.shape[1] == 1 else _fixed_lists(flat)
    else:  # raw: each row's output, whatever its shape, as a tensor
        values = np.ascontiguousarray(outputs, dtype=np.float32)
        columns["prediction"] = pa.array(values) if values.ndim == 1 else \
            pa.FixedShapeTensorArray.from_numpy_ndarray(values)
    return columns


def _fixed_lists(values: np.ndarray) -> pa.Array:
    """(rows, k) numpy -> a fixed-size-list column, without copying."""
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(values).ravel()), values.shape[1])
