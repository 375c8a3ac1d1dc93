"""Calibration as mergeable sums: torchmetrics' top-label expected calibration error (L1), 15 equal-width bins.

torchmetrics bins the top-1 probability (float32) with torch.bucketize(confidence, boundaries, right=True) - 1 over
boundaries = torch.linspace(0, 1, 16) in float32, and keeps one slot per boundary: bin k holds
boundaries[k] <= confidence < boundaries[k + 1], and a confidence of exactly 1.0 has a 16th bin of its own.
ECE = Σ_bins |accuracy - mean confidence| · count / rows. The boundaries below are torch's float32 values,
bit for bit (six of them differ by one unit in the last place from the nearest float32 to k/15), so that a
confidence on a boundary lands where torchmetrics puts it.
"""

from __future__ import annotations

import math

import numpy as np

from cluster import metrics

CALIBRATION_BINS = 15
_BOUNDARIES = np.array([0x0, 0x3D888889, 0x3E088889, 0x3E4CCCCE, 0x3E888889, 0x3EAAAAAB, 0x3ECCCCCE, 0x3EEEEEF0,
                        0x3F088888, 0x3F199999, 0x3F2AAAAA, 0x3F3BBBBC, 0x3F4CCCCD, 0x3F5DDDDE, 0x3F6EEEEF,
                        0x3F800000], np.uint32).view(np.float32)


def top1_confidence(logits: np.ndarray, predictions: np.ndarray, exp_sums: np.ndarray | None = None) -> np.ndarray:
    """The softmax probability of each row's predicted (top-1) class, float32: 1 / Σ exp(logit - top logit).

    `exp_sums`: those sums when the caller has them already (metrics.softmax_parts, which the loss shares).
    """
    if exp_sums is None:
        exp_sums = metrics.softmax_parts(logits, predictions)[1]
    return (1.0 / exp_sums).astype(np.float32)


def calibration_partial(confidences: np.ndarray, correct: np.ndarray) -> dict:
    """One batch's calibration bins: per bin the row count, Σ confidence and Σ correct (lists of 16, mergeable)."""
    confidences = np.asarray(confidences, np.float32)  # compared in float32, as torchmetrics does
    bins = np.searchsorted(_BOUNDARIES, confidences, side="right") - 1
    slots = len(_BOUNDARIES)
    return {"count": np.bincount(bins, minlength=slots).tolist(),
            "confidence": np.bincount(bins, confidences.astype(np.float64), minlength=slots).tolist(),
            "correct": np.bincount(bins, np.asarray(correct, np.float64), minlength=slots).tolist()}


def merge_calibration(a: dict, b: dict) -> dict:
    """The calibration bins of two disjoint sets of rows."""
    if not a or not b:
        return dict(a or b)
    return {name: [x + y for x, y in zip(a[name], b[name])] for name in ("count", "confidence", "correct")}


def calibration(partial: dict) -> dict:
    """The expected calibration error and reliability bins: {"ece", "bins": [{lo, hi, count, confidence, accuracy}]}.

    All 15 bins are listed (an empty one with null confidence and accuracy); the 16th, confidence exactly 1.0,
    only when it holds rows.
    """
    count = np.asarray(partial["count"], np.float64)
    rows = count.sum()
    bins, ece = [], 0.0
    for k in range(len(count)):
        if k == CALIBRATION_BINS and not count[k]:
            break
        lo, hi = (k / CALIBRATION_BINS, (k + 1) / CALIBRATION_BINS) if k < CALIBRATION_BINS else (1.0, 1.0)
        bin_ = {"lo": lo, "hi": hi, "count": int(count[k]), "confidence": None, "accuracy": None}
        if count[k]:
            bin_["confidence"] = partial["confidence"][k] / count[k]
            bin_["accuracy"] = partial["correct"][k] / count[k]
            ece += abs(bin_["accuracy"] - bin_["confidence"]) * count[k] / rows
        bins.append(bin_)
    return {"ece": ece if rows else math.nan, "bins": bins}
