"""Task metrics as partial sums: each shard adds its own, the driver merges them and finishes.

Partials are small (counts and sums; the confusion matrix as sparse (label, prediction) counts),
so a shard's summary stays tiny whatever its size.
"""

from __future__ import annotations

import numpy as np

from cluster.bootstrap import macro_f1


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_parts(logits: np.ndarray, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The log-sum-exp trick's parts, shared by the loss and the calibration: each row's logits less its top logit,
    and the row's sum of exp of those (in the logits' dtype).

    Reductions along a 10-wide row axis are slow in numpy (a (4096, 10) max or sum costs 70-180 us),
    so the row max is the predicted class's logit and the row sum a product with ones.
    """
    shifted = logits - logits[np.arange(len(predictions)), predictions][:, None]
    return shifted, np.exp(shifted) @ np.ones(logits.shape[1], logits.dtype)


def row_losses(shifted: np.ndarray, exp_sums: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each row's cross-entropy (float64) from softmax_parts: log-sum-exp minus the label's shifted logit."""
    return np.log(exp_sums.astype(np.float64)) - shifted[np.arange(len(labels)), labels]


def _loss_sum(logits: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> float:
    """Sum of cross-entropy over rows, without a full log-softmax."""
    return float(row_losses(*softmax_parts(logits, predictions), labels).sum())


def partial(task: str, predicted, labels: np.ndarray | None) -> dict:
    """The partial sums of one batch's predictions (a cluster.predictions.Predictions) against its labels."""
    if task == "classification":
        return classification_partial(predicted.outputs, labels, predicted.classes, predicted.topk)
    if task == "regression":
        return regression_partial(predicted.outputs, labels)
    return {"rows": len(predicted.outputs)}


def classification_partial(logits: np.ndarray, labels: np.ndarray | None, predictions: np.ndarray,
                           topk: np.ndarray | None, losses: np.ndarray | None = None) -> dict:
    """Counts and sums for one batch of a classification task (labels already checked to be classes).

    `losses`: the rows' cross-entropy when the caller has it already (row_losses), else computed here.
    """
    classes = logits.shape[1]
    partial = {"rows": len(logits), "classes": classes}
    if labels is None:
        return partial
    labels = labels.astype(np.int64, copy=False)
    if classes <= 256:  # a dense count is cheapest while the matrix is small
        cells = np.bincount(labels * classes + predictions, minlength=classes * classes)
        pairs = np.flatnonzero(cells)
        counts = cells[pairs]
    else:
        pairs, counts = np.unique(labels * classes + predictions, return_counts=True)
    partial.update(
        labeled=len(labels),
        correct=int((predictions == labels).sum()),
        loss_sum=_loss_sum(logits, labels, predictions) if losses is None else float(losses.sum()),
        confusion=(pairs.tolist(), counts.tolist()),
    )
    if topk is not None:
        partial["topk_correct"] = int((topk == labels[:, None]).any(axis=1).sum())
    return partial


def regression_partial(outputs: np.ndarray, labels: np.ndarray | None) -> dict:
    """Error sums for one batch of a regression task, over every output value against its row's label.

    A model with k outputs per row compared with one label per row makes k errors per row: the
    means divide by the number of values (rows x k), not by the rows.
    """
    partial = {"rows": len(outputs)}
    if labels is None:
        return partial
    predicted = outputs.astype(np.float64).reshape(len(outputs), -1)
    y = np.broadcast_to(labels.astype(np.float64).reshape(len(labels), -1), predicted.shape)
    error = predicted - y
    partial.update(labeled=len(outputs), values=int(error.size), sse=float((error ** 2).sum()),
                   sae=float(np.abs(error).sum()), sum_y=float(y.sum()), sum_y2=float((y ** 2).sum()))
    return partial


def merge(a: dict, b: dict) -> dict:
    """The partial of two disjoint sets of rows."""
    if not a:
        return dict(b)
    merged = dict(a)
    for key, value in b.items():
        if key == "classes":
            merged[key] = max(merged.get(key, 0), value)
        elif key == "confusion":
            pairs, counts = merged.get(key, ([], []))
            keys, inverse = np.unique(np.asarray(list(pairs) + list(value[0]), np.int64), return_inverse=True)
            totals = np.bincount(inverse, weights=np.asarray(list(counts) + list(value[1]), np.int64))
            merged[key] = (keys.tolist(), totals.astype(np.int64).tolist())
        else:
            merged[key] = merged.get(key, 0) + value
    return merged


def finish(task: str, partial: dict, top_k: int | None = None) -> dict:
    """The task's metrics from the merged partial of every row."""
    rows = partial.get("rows", 0)
    if task == "classification" and partial.get("labeled"):
        return _classification_metrics(partial, top_k)
    if task == "regression" and partial.get("labeled"):
        n = partial["values"]
        total = partial["sum_y2"] - partial["sum_y"] ** 2 / n
        return {"rows": rows, "mse": partial["sse"] / n, "mae": partial["sae"] / n,
                "r2": 1 - partial["sse"] / total if total > 0 else float("nan")}
    return {"rows": rows}


def _classification_metrics(partial: dict, top_k: int | None) -> dict:
    classes, labeled = partial["classes"], partial["labeled"]
    matrix = np.zeros(classes * classes, np.int64)
    pairs, counts = partial["confusion"]
    np.add.at(matrix, np.asarray(pairs, np.int64), np.asarray(counts, np.int64))
    matrix = matrix.reshape(classes, classes)  # rows: true label, columns: prediction
    support, predicted, hits = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(support > 0, hits / support, 0.0)
    metrics = {"rows": partial["rows"], "accuracy": partial["correct"] / labeled,
               "loss": partial["loss_sum"] / labeled}
    if top_k is not None and "topk_correct" in partial:
        metrics["top_k_accuracy"] = partial["topk_correct"] / labeled
        metrics["top_k"] = top_k
    metrics["macro_f1"] = float(macro_f1(hits, support, predicted))  # over the classes labelled or predicted
    metrics["per_class"] = [{"class": c, "precision": float(precision[c]), "recall": float(recall[c]),
                             "support": int(support[c])} for c in range(classes)]
    metrics["confusion_matrix"] = matrix.tolist()
    return metrics
