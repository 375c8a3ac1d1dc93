"""cluster.calibration against torchmetrics' definition of the top-label ECE, computed independently."""

import math

import numpy as np
import pytest

from cluster.calibration import calibration, calibration_partial, merge_calibration, top1_confidence


def _torchmetrics_ece(confidences: np.ndarray, correct: np.ndarray) -> float:
    """torchmetrics' L1 calibration error bin by bin: 15 bins [k/15, (k+1)/15), and 1.0 in a bin of its own."""
    edges = np.linspace(0, 1, 16, dtype=np.float32)
    members = [(edges[k] <= confidences) & (confidences < edges[k + 1]) for k in range(15)] + [confidences == 1.0]
    ece = 0.0
    for in_bin in members:
        if in_bin.any():
            ece += abs(correct[in_bin].mean() - confidences[in_bin].astype(np.float64).mean()) * in_bin.mean()
    return ece


def _random_run(seed: int, rows: int = 5000, classes: int = 10):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(rows, classes)) * rng.uniform(0.2, 6, (rows, 1))).astype(np.float32)
    predictions = logits.argmax(axis=1)
    labels = np.where(rng.random(rows) < 0.7, predictions, rng.integers(0, classes, rows))
    confidences = top1_confidence(logits, predictions)
    return confidences, predictions == labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_matches_torchmetrics_definition_on_random_data(seed):
    confidences, correct = _random_run(seed)
    assert calibration(calibration_partial(confidences, correct))["ece"] == pytest.approx(
        _torchmetrics_ece(confidences, correct), rel=1e-9)


def test_bins_hold_each_bins_rows_mean_confidence_and_accuracy():
    confidences, correct = _random_run(3)
    bins = calibration(calibration_partial(confidences, correct))["bins"]
    assert [(b["lo"], b["hi"]) for b in bins] == [(k / 15, (k + 1) / 15) for k in range(15)]
    for b in bins:
        in_bin = (confidences >= b["lo"]) & (confidences < b["hi"])
        assert b["count"] == in_bin.sum()
        if b["count"]:
            assert b["confidence"] == pytest.approx(confidences[in_bin].mean(), rel=1e-6)
            assert b["accuracy"] == pytest.approx(correct[in_bin].mean())


def test_empty_bins_are_listed_without_confidence_or_accuracy():
    bins = calibration(calibration_partial(np.array([0.95, 0.97], np.float32), [True, False]))["bins"]
    assert len(bins) == 15 and bins[0] == {"lo": 0.0, "hi": 1 / 15, "count": 0, "confidence": None, "accuracy": None}


def test_a_confidence_of_exactly_one_has_a_bin_of_its_own():
    result = calibration(calibration_partial(np.array([1.0, 1.0, 0.99], np.float32), [True, False, True]))
    assert result["bins"][-1] == {"lo": 1.0, "hi": 1.0, "count": 2, "confidence": 1.0, "accuracy": 0.5}
    assert result["bins"][-2]["count"] == 1
    assert result["ece"] == pytest.approx(2 / 3 * 0.5 + 1 / 3 * abs(1 - 0.99), rel=1e-6)


def test_partials_merge_to_the_partial_of_all_rows():
    confidences, correct = _random_run(4)
    merged = {}
    for piece in np.array_split(np.arange(len(correct)), 5):
        merged = merge_calibration(merged, calibration_partial(confidences[piece], correct[piece]))
    assert calibration(merged)["ece"] == pytest.approx(calibration(calibration_partial(confidences, correct))["ece"],
                                                       rel=1e-12)


def test_no_rows_have_no_calibration_error():
    assert math.isnan(calibration(calibration_partial(np.array([], np.float32), []))["ece"])


def test_top1_confidence_is_the_largest_softmax_probability():
    logits = np.random.default_rng(5).normal(size=(100, 7)).astype(np.float32) * 5
    probabilities = np.exp(logits.astype(np.float64))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(top1_confidence(logits, logits.argmax(axis=1)), probabilities.max(axis=1), rtol=1e-6)


@pytest.mark.parity
@pytest.mark.parametrize("on_boundaries", [False, True])
def test_rows_land_in_the_bins_torch_bucketize_gives_them_in_torchmetrics(on_boundaries):
    torch = pytest.importorskip("torch", reason="torch is the oracle here (pip install '.[parity]')")
    confidences, correct = _random_run(6)
    if on_boundaries:  # every float32 boundary torch.linspace makes, and its two neighbours
        edges = torch.linspace(0, 1, 16, dtype=torch.float).numpy()
        confidences = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, 2)]).astype(np.float32)
        confidences = confidences[(confidences > 0) & (confidences <= 1)]
        correct = np.arange(len(confidences)) % 2 == 0
    # torchmetrics' _binning_bucketize, as it is written there
    c = torch.from_numpy(confidences)
    boundaries = torch.linspace(0, 1, 16, dtype=torch.float)
    indices = torch.bucketize(c, boundaries, right=True) - 1
    count = torch.zeros(16).scatter_add_(0, indices, torch.ones_like(c))
    accuracy = torch.nan_to_num(torch.zeros(16).scatter_add_(0, indices, torch.from_numpy(correct).float()) / count)
    confidence = torch.nan_to_num(torch.zeros(16).scatter_add_(0, indices, c) / count)
    ece = torch.sum(torch.abs(accuracy - confidence) * count / count.sum()).item()
    partial = calibration_partial(confidences, correct)
    assert partial["count"] == count.to(torch.int64).tolist()
    assert calibration(partial)["ece"] == pytest.approx(ece, rel=1e-5)
