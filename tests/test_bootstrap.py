"""cluster.bootstrap: counter-based Poisson weights, mergeable per-replicate sums, and the replicates' estimates.

Each expectation is computed independently: weighted sums with explicit loops over replicates, the weight
distribution from its documented byte counts, interval coverage by simulation.
"""

import json

import numpy as np
import pytest

from cluster import bootstrap
from cluster.bootstrap import COMPARISON_COLUMNS, WEIGHT_COUNTS, BootstrapSums, poisson_weights
from cluster.stats import bootstrap_interval

ROW_IDS = np.arange(5_000_000, 5_010_000, dtype=np.int64)


def test_a_rows_weights_are_the_same_however_the_rows_are_split_into_batches():
    whole = poisson_weights(3, ROW_IDS, 200)
    shuffled = np.random.default_rng(0).permutation(len(ROW_IDS))
    pieces = np.array_split(shuffled, [7, 1000, 1001, 4096])
    for piece in pieces:
        np.testing.assert_array_equal(poisson_weights(3, ROW_IDS[piece], 200), whole[piece])


def test_a_replicates_weights_do_not_depend_on_how_many_replicates_there_are():
    np.testing.assert_array_equal(poisson_weights(3, ROW_IDS, 13), poisson_weights(3, ROW_IDS, 200)[:, :13])


def test_weights_have_mean_one_and_variance_one():
    weights = poisson_weights(11, np.arange(200_000), 64, np.uint8).astype(np.float64)
    standard_error = 1 / np.sqrt(weights.size)  # of the mean; the variance's is about twice that
    assert abs(weights.mean() - 1) < 5 * standard_error
    assert abs(weights.var() - 1) < 10 * standard_error


def test_weights_follow_the_documented_quantised_poisson_distribution():
    weights = poisson_weights(5, np.arange(100_000), 40, np.uint8)
    observed = np.bincount(weights.ravel(), minlength=len(WEIGHT_COUNTS))
    expected = np.array(WEIGHT_COUNTS) / 256 * weights.size
    chi_square = ((observed - expected) ** 2 / expected).sum()
    assert len(observed) == len(WEIGHT_COUNTS) and chi_square < 25  # 5 degrees of freedom: p < 1e-4 above 25


def test_weights_of_neighbouring_rows_and_replicates_are_uncorrelated():
    weights = poisson_weights(5, np.arange(100_000), 16).astype(np.float64)
    for a, b in [(weights[:-1], weights[1:]), (weights[:, :-1], weights[:, 1:]), (weights[:, :8], weights[:, 8:])]:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01


def test_different_seeds_give_different_weights():
    a, b = poisson_weights(1, ROW_IDS, 50), poisson_weights(2, ROW_IDS, 50)
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.02


def test_weights_take_any_int64_row_id():
    ids = np.array([np.iinfo(np.int64).min, -1, 0, np.iinfo(np.int64).max])
    weights = poisson_weights(0, ids, 24, np.uint8)
    assert weights.shape == (4, 24) and weights.max() <= 5


def _direct_sums(weights, values):
    return np.array([[np.sum(weights[:, r] * values[:, j]) for j in range(values.shape[1])]
                     for r in range(weights.shape[1])])


def test_sums_are_each_replicates_weighted_column_sums():
    rng = np.random.default_rng(1)
    weights, values = poisson_weights(0, np.arange(300), 20), rng.normal(size=(300, 3)).astype(np.float32)
    sums = BootstrapSums(20, ("a", "b", "c"))
    sums.add(weights, values)
    np.testing.assert_allclose(sums.sums[None], _direct_sums(weights.astype(np.float64), values), atol=1e-3)


@pytest.mark.parametrize("groups_by_matmul", [True, False])
def test_grouped_sums_are_each_groups_weighted_column_sums(groups_by_matmul, monkeypatch):
    if not groups_by_matmul:
        monkeypatch.setattr("cluster.bootstrap._GROUPS_BY_MATMUL", 0)
    rng = np.random.default_rng(2)
    weights, values = poisson_weights(0, np.arange(500), 30), rng.integers(0, 2, (500, 2)).astype(np.float32)
    keys, groups = ["x", ("y", 1), None], rng.integers(0, 3, 500)
    sums = BootstrapSums(30, ("weight", "correct"))
    sums.add(weights, values, groups, keys)
    for code, key in enumerate(keys):
        rows = groups == code
        np.testing.assert_array_equal(sums.sums[key], _direct_sums(weights[rows], values[rows]))


def test_count_sums_merged_from_any_split_equal_the_sums_of_all_rows_exactly():
    rng = np.random.default_rng(3)
    ids, correct = np.arange(10_000), rng.integers(0, 2, 10_000).astype(np.float32)
    values = np.stack([np.ones(10_000, np.float32), correct], axis=1)
    whole = BootstrapSums(200, ("weight", "correct"))
    whole.add(poisson_weights(9, ids, 200), values)
    merged = BootstrapSums(200, ("weight", "correct"))
    for piece in np.array_split(rng.permutation(10_000), 7):
        part = BootstrapSums(200, ("weight", "correct"))
        part.add(poisson_weights(9, ids[piece], 200), values[piece])
        merged = merged.merge(part)
    np.testing.assert_array_equal(merged.sums[None], whole.sums[None])


def test_sums_round_trip_through_json_exactly():
    sums = BootstrapSums(7, ("weight", "loss"))
    values = np.random.default_rng(4).normal(size=(50, 2))
    sums.add(poisson_weights(0, np.arange(50), 7, np.float64), values, np.arange(50) % 2, [("a", 1), np.int64(5)])
    again = BootstrapSums.from_json(json.loads(json.dumps(sums.to_json())))
    assert again.columns == sums.columns and again.sums.keys() == sums.sums.keys()
    for key in sums.sums:
        np.testing.assert_array_equal(again.sums[key], sums.sums[key])


def test_sums_of_other_columns_are_refused_in_a_merge():
    with pytest.raises(ValueError, match="cannot merge"):
        BootstrapSums(5, ("weight",)).merge(BootstrapSums(5, ("weight", "loss")))


def _weighted_f1(w, labels, predictions, classes):
    f1 = []
    for c in range(classes):
        hits = np.sum(w * ((labels == c) & (predictions == c)))
        denominator = np.sum(w * (labels == c)) + np.sum(w * (predictions == c))
        if (labels == c).any() or (predictions == c).any():
            f1.append(2 * hits / denominator if denominator else 0.0)
    return np.mean(f1)


def test_classification_replicates_are_each_replicates_weighted_loss_accuracy_and_macro_f1():
    rng = np.random.default_rng(5)
    rows, classes, replicates = 400, 6, 25
    labels, predictions = rng.integers(0, classes, rows), rng.integers(0, classes - 1, rows)  # class 5 never predicted
    losses = rng.exponential(size=rows)
    weights = poisson_weights(1, np.arange(rows), replicates)
    sums = BootstrapSums(replicates, bootstrap.classification_columns(classes, per_class=True))
    sums.add(weights, bootstrap.classification_values(losses, labels, predictions, classes, per_class=True))
    estimates = bootstrap.classification_replicates(sums)
    w = weights.astype(np.float64)
    np.testing.assert_allclose(estimates["loss"], (w.T @ losses) / w.sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(estimates["accuracy"], (w.T @ (labels == predictions)) / w.sum(axis=0), rtol=1e-12)
    expected_f1 = [_weighted_f1(w[:, r], labels, predictions, classes) for r in range(replicates)]
    np.testing.assert_allclose(estimates["macro_f1"], expected_f1, rtol=1e-12)


def test_comparison_replicates_are_each_replicates_weighted_accuracy_difference():
    rng = np.random.default_rng(6)
    correct_a, correct_b = rng.random(300) < 0.7, rng.random(300) < 0.8
    weights = poisson_weights(2, np.arange(300), 40)
    sums = BootstrapSums(40, COMPARISON_COLUMNS)
    sums.add(weights, bootstrap.comparison_values(correct_a, correct_b))
    w = weights.astype(np.float64)
    expected = (w.T @ correct_b - w.T @ correct_a) / w.sum(axis=0)
    np.testing.assert_allclose(bootstrap.ratio_replicates(sums, "difference"), expected, rtol=1e-12)


def test_percentile_intervals_of_a_mean_cover_the_truth_at_about_the_nominal_rate():
    # 400 samples of 100 rows from an exponential of mean 1, a 90% interval from 200 replicates each:
    # coverage is binomial(400, ~0.9), sd 0.015, and the percentile bootstrap undercovers skewed means a little.
    rng, covered = np.random.default_rng(7), 0
    for trial in range(400):
        values = rng.exponential(size=(100, 1)).astype(np.float32)
        weights = poisson_weights(trial, np.arange(100), 200)
        totals = BootstrapSums(200, ("weight", "value"))
        totals.add(weights, np.hstack([np.ones_like(values), values]))
        lo, hi = bootstrap_interval(bootstrap.ratio_replicates(totals, "value"), 0.9)
        covered += lo <= 1.0 <= hi
    assert 0.84 <= covered / 400 <= 0.94


def test_fixed_point_pieces_are_whole_numbers_below_4096_that_sum_back_to_the_values():
    values = np.concatenate([np.random.default_rng(8).exponential(size=1000), [0.0, 2.0 ** -18, 65535.9]])
    pieces = bootstrap.fixed_point(values)
    assert pieces.dtype == np.float32 and (pieces == np.round(pieces)).all() and pieces.min() >= 0
    assert pieces.max() <= bootstrap.EXACT_MAX
    np.testing.assert_allclose(bootstrap.from_fixed_point(pieces), values, rtol=0, atol=2.0 ** -17)
    assert bootstrap.from_fixed_point(pieces.astype(np.float64).sum(axis=0)) == pytest.approx(
        values.sum(), abs=len(values) * 2.0 ** -17)
    assert bootstrap.from_fixed_point(bootstrap.fixed_point(np.array([1e9, -1.0]))).tolist() == \
        [bootstrap.FIXED_MAX - 2.0 ** -16, 0.0]  # beyond the range: its ends


def test_loss_sums_merged_from_any_split_equal_the_sums_of_all_rows_exactly():
    rng = np.random.default_rng(9)
    rows, classes = 6000, 4
    labels, predictions = rng.integers(0, classes, rows), rng.integers(0, classes, rows)
    losses, ids = rng.exponential(size=rows) * 3, np.arange(rows)
    columns = bootstrap.classification_columns(classes, per_class=True)
    whole = BootstrapSums(50, columns)
    whole.add(poisson_weights(4, ids, 50), bootstrap.classification_values(losses, labels, predictions, classes, True))
    merged = BootstrapSums(50, columns)
    for piece in np.array_split(rng.permutation(rows), 9):
        part = BootstrapSums(50, columns)
        part.add(poisson_weights(4, ids[piece], 50),
                 bootstrap.classification_values(losses[piece], labels[piece], predictions[piece], classes, True))
        merged = merged.merge(part)
    np.testing.assert_array_equal(merged.sums[None], whole.sums[None])
    np.testing.assert_array_equal(bootstrap.classification_replicates(merged)["loss"],
                                  bootstrap.classification_replicates(whole)["loss"])


def test_whole_number_sums_stay_exact_in_batches_far_larger_than_float32_can_sum():
    rows = 40_000  # 40,000 rows of 4095 with weights up to 5: sums far past 2^24
    weights = poisson_weights(1, np.arange(rows), 8)
    values = np.full((rows, 1), bootstrap.EXACT_MAX, np.float32)
    sums = BootstrapSums(8, ("v",))
    sums.add(weights, values)
    expected = weights.astype(np.int64).sum(axis=0) * bootstrap.EXACT_MAX
    np.testing.assert_array_equal(sums.sums[None][:, 0], expected)


def test_sums_added_together_equal_sums_added_one_by_one():
    rng = np.random.default_rng(10)
    weights = poisson_weights(2, np.arange(700), 30)
    a, b = rng.integers(0, 2, (700, 2)).astype(np.float32), rng.integers(0, 5, (700, 3)).astype(np.float32)
    groups, keys = rng.integers(0, 4, 700), ["w", ("x", 1), None, 7]
    separate = [BootstrapSums(30, ("p", "q")), BootstrapSums(30, ("r", "s", "t"))]
    separate[0].add(weights, a)
    separate[1].add(weights, b, groups, keys)
    together = [BootstrapSums(30, ("p", "q")), BootstrapSums(30, ("r", "s", "t"))]
    bootstrap.add_together(weights, [(together[0], a, None, None), (together[1], b, groups, keys)])
    for one, other in zip(separate, together):
        assert one.sums.keys() == other.sums.keys()
        for key in one.sums:
            np.testing.assert_array_equal(one.sums[key], other.sums[key])
