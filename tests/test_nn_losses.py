"""Losses and one_hot: gradients by finite differences, semantics, errors, and parity with PyTorch."""

import warnings

import numpy as np
import pytest
from gradcheck import gradcheck

import engine
import engine.nn as nn
import engine.nn.functional as F

rng = np.random.default_rng(0)

X = rng.standard_normal((6, 5))  # logits: 6 samples, 5 classes
T = np.array([0, 4, 2, -100, 1, 3])  # class indices, one ignored
T_VALID = np.array([0, 4, 2, 2, 1, 3])
W = rng.uniform(0.5, 2.0, 5)  # class weights
P = rng.dirichlet(np.ones(5), 6)  # class probabilities
X_ND = rng.standard_normal((2, 4, 3, 2))  # (N, C, d1, d2)
T_ND = rng.integers(0, 4, (2, 3, 2))
T_ND[0, 1, 1] = -100
PROB = rng.uniform(0.05, 0.95, (4, 3))  # BCE inputs, away from 0 and 1
Y = rng.uniform(0, 1, (4, 3))  # BCE targets
POS = rng.uniform(0.5, 3.0, 3)


def t(a, dtype=None):
    return engine.tensor(a, dtype=dtype)


# -- gradients against finite differences (float64) -------------------------------------------------------
GRAD_CASES = {
    "cross_entropy": (lambda x: F.cross_entropy(x, t(T)), [X]),
    "cross_entropy_sum": (lambda x: F.cross_entropy(x, t(T), reduction="sum"), [X]),
    "cross_entropy_none": (lambda x: F.cross_entropy(x, t(T), reduction="none"), [X]),
    "cross_entropy_weight": (lambda x: F.cross_entropy(x, t(T), weight=t(W)), [X]),
    "cross_entropy_smoothing": (lambda x: F.cross_entropy(x, t(T), label_smoothing=0.2), [X]),
    "cross_entropy_weight_smoothing_none": (lambda x: F.cross_entropy(x, t(T), t(W), reduction="none",
                                                                      label_smoothing=0.3), [X]),
    "cross_entropy_ignore_index": (lambda x: F.cross_entropy(x, t(T_VALID), ignore_index=2), [X]),
    "cross_entropy_nd": (lambda x: F.cross_entropy(x, t(T_ND), label_smoothing=0.1), [X_ND]),
    "cross_entropy_unbatched": (lambda x: F.cross_entropy(x, t(3)), [X[0]]),
    "cross_entropy_probabilities": (lambda x, p: F.cross_entropy(x, p), [X, P]),
    "cross_entropy_probabilities_weight_smoothing": (lambda x, p: F.cross_entropy(x, p, t(W), label_smoothing=0.1),
                                                     [X, P]),
    "nll_loss": (lambda x: F.nll_loss(x, t(T)), [X]),
    "nll_loss_weight_none": (lambda x: F.nll_loss(x, t(T), t(W), reduction="none"), [X]),
    "nll_loss_nd": (lambda x: F.nll_loss(x, t(T_ND), reduction="sum"), [X_ND]),
    "mse_loss": (lambda a, b: F.mse_loss(a, b), [X, P]),
    "mse_loss_none": (lambda a, b: F.mse_loss(a, b, reduction="none"), [X, P]),
    "l1_loss": (lambda a, b: F.l1_loss(a, b, reduction="sum"), [X, P]),
    "binary_cross_entropy": (lambda p, y: F.binary_cross_entropy(p, y), [PROB, Y]),
    "binary_cross_entropy_weight": (lambda p, y: F.binary_cross_entropy(p, y, t(POS), reduction="none"), [PROB, Y]),
    "bce_with_logits": (lambda x, y: F.binary_cross_entropy_with_logits(x, y), [X[:4, :3] * 4, Y]),
    "bce_with_logits_pos_weight": (lambda x, y: F.binary_cross_entropy_with_logits(
        x, y, t(POS[::-1].copy()), pos_weight=t(POS), reduction="sum"), [X[:4, :3] * 4, Y]),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradient_matches_finite_differences(name):
    fn, inputs = GRAD_CASES[name]
    gradcheck(fn, *inputs)


# -- semantics -----------------------------------------------------------------------------------------
def _log_softmax(x):
    shifted = x - x.max(1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(1, keepdims=True))


def test_cross_entropy_mean_divides_by_total_weight_of_kept_targets():
    kept = T != -100
    logp = _log_softmax(X)[kept, T[kept]]
    expected = -(W[T[kept]] * logp).sum() / W[T[kept]].sum()
    assert F.cross_entropy(t(X), t(T), weight=t(W)).item() == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_ignored_targets_give_zero_loss_and_gradient():
    x = t(X).requires_grad_()
    loss = F.cross_entropy(x, t(T), reduction="none")
    loss.sum().backward()
    assert loss[3].item() == 0 and not x.grad[3].numpy().any()


def test_cross_entropy_with_every_target_ignored_is_nan():
    assert np.isnan(F.cross_entropy(t(X), t(np.full(6, -100))).item())


def test_cross_entropy_of_one_hot_probabilities_equals_class_indices():
    probabilities = F.one_hot(t(T_VALID), 5).to(engine.float64)
    assert F.cross_entropy(t(X), probabilities).item() == pytest.approx(F.cross_entropy(t(X), t(T_VALID)).item())


def test_cross_entropy_unbatched_none_reduction_is_a_scalar():
    assert F.cross_entropy(t(X[0]), t(2), reduction="none").shape == ()


def test_cross_entropy_accepts_uint8_targets():
    assert F.cross_entropy(t(X), t(T_VALID).to(engine.uint8)).item() == pytest.approx(
        F.cross_entropy(t(X), t(T_VALID)).item())


def test_binary_cross_entropy_clamps_log_at_minus_100():
    assert F.binary_cross_entropy(t([0.0, 1.0]), t([1.0, 0.0]), reduction="none").tolist() == [100.0, 100.0]


def test_bce_with_logits_is_stable_for_large_logits():
    loss = F.binary_cross_entropy_with_logits(t([1000.0, -1000.0]), t([0.0, 1.0]), reduction="none")
    assert loss.tolist() == [1000.0, 1000.0]


def test_mse_loss_warns_when_target_broadcasts():
    with pytest.warns(UserWarning, match="different to the input size"):
        F.mse_loss(t(X[:, :1]), t(X[:, 0]))


def test_legacy_size_average_false_means_sum():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert nn.MSELoss(size_average=False).reduction == "sum"


@pytest.mark.parametrize("dtype", [engine.float32, engine.float64])
@pytest.mark.parametrize("fn", [
    lambda x: F.cross_entropy(x, t(T)), lambda x: F.cross_entropy(x, t(T), t(W, engine.float32), label_smoothing=0.1),
    lambda x: F.nll_loss(x, t(T)), lambda x: F.mse_loss(x, x.detach() * 2), lambda x: F.l1_loss(x, x.detach() * 2),
    lambda x: F.binary_cross_entropy(x.sigmoid(), x.detach().sigmoid()),
    lambda x: F.binary_cross_entropy_with_logits(x, x.detach().sigmoid(), pos_weight=t(W, engine.float32)),
], ids=["ce", "ce_weight_smoothing", "nll", "mse", "l1", "bce", "bce_logits"])
def test_loss_and_gradient_keep_the_input_dtype(fn, dtype):
    x = t(X, dtype).requires_grad_()
    loss = fn(x)
    loss.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype


def test_weighted_loss_modules_keep_weights_as_buffers():
    assert list(nn.CrossEntropyLoss(weight=t(W)).state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    assert list(nn.BCEWithLogitsLoss(pos_weight=t(POS)).state_dict()) == ["pos_weight"]


def test_one_hot_encodes_along_a_new_last_dim():
    assert F.one_hot(t([[2, 0]]), 3).tolist() == [[[0, 0, 1], [1, 0, 0]]]


def test_one_hot_infers_class_count_from_max():
    out = F.one_hot(t([1, 3]))
    assert out.shape == (2, 4) and out.dtype == engine.int64


# -- errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target, message", [([0, 12, 1], "Target 12 is out of bounds."),
                                             ([0, -3, 1], "Target -3 is out of bounds.")])
def test_cross_entropy_rejects_class_out_of_range(target, message):
    with pytest.raises(IndexError, match=message):
        F.cross_entropy(t(X[:3]), t(target))


def test_nll_loss_rejects_class_out_of_range():
    with pytest.raises(IndexError, match="Target 5 is out of bounds."):
        F.nll_loss(t(X[:2]), t([5, 0]))


def test_cross_entropy_rejects_batch_size_mismatch():
    with pytest.raises(ValueError, match=r"Expected input batch_size \(3\) to match target batch_size \(2\)"):
        F.cross_entropy(t(X[:3]), t([0, 1]))


def test_cross_entropy_rejects_spatial_target_size_mismatch():
    with pytest.raises(RuntimeError, match=r"Expected target size \[2, 3, 2\], got \[2, 3\]"):
        F.cross_entropy(t(X_ND), t(T_ND[:, :, 0]))


def test_cross_entropy_rejects_float_class_targets():
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
        F.cross_entropy(t(X[:3]), t([0.0, 1.0, 2.0]))


def test_cross_entropy_rejects_integer_probability_targets():
    with pytest.raises(RuntimeError, match="Expected floating point type for target with class probabilities"):
        F.cross_entropy(t(X), t(np.zeros((6, 5), np.int64)))


def test_cross_entropy_rejects_ignore_index_with_probabilities():
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point target"):
        F.cross_entropy(t(X), t(P), ignore_index=1)


def test_cross_entropy_rejects_weight_of_wrong_size():
    with pytest.raises(RuntimeError, match="weight tensor should be defined either for all 5 classes"):
        F.cross_entropy(t(X), t(T), weight=engine.ones(4, dtype=engine.float64))


def test_cross_entropy_rejects_label_smoothing_outside_unit_interval():
    with pytest.raises(RuntimeError, match="label_smoothing must be between 0.0 and 1.0. Got: 1.5"):
        F.cross_entropy(t(X), t(T), label_smoothing=1.5)


def test_loss_rejects_unknown_reduction():
    with pytest.raises(ValueError, match="bad is not a valid value for reduction"):
        F.mse_loss(t(X), t(X), reduction="bad")


def test_binary_cross_entropy_rejects_size_mismatch():
    with pytest.raises(ValueError, match=r"Using a target size \(engine.Size\(\[4\]\)\) that is different"):
        F.binary_cross_entropy(t(PROB[0]), t(Y[:, 0]))


def test_binary_cross_entropy_rejects_input_outside_unit_interval():
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(t([1.5]), t([1.0]))


def test_bce_with_logits_rejects_size_mismatch():
    with pytest.raises(ValueError, match="must be the same as input size"):
        F.binary_cross_entropy_with_logits(t(X[0]), t(X[1, :4]))


@pytest.mark.parametrize("values, num_classes, message", [
    ([1, 5], 3, "Class values must be smaller than num_classes"), ([1, -1], 3, "Class values must be non-negative"),
    ([], -1, "Can not infer total number of classes from empty tensor"),
])
def test_one_hot_rejects_bad_class_values(values, num_classes, message):
    with pytest.raises(RuntimeError, match=message):
        F.one_hot(t(np.array(values, np.int64)), num_classes)


# -- parity with PyTorch (float32) ---------------------------------------------------------------------
@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")


def f32(a):
    return np.asarray(a, np.float32)


# name: (fn(m, *float leaves) for m = engine or torch, float inputs); every float input gets a gradient
PARITY_CASES = {
    "cross_entropy": (lambda m, x: m.nn.functional.cross_entropy(x, m.tensor(T)), [X]),
    "cross_entropy_sum": (lambda m, x: m.nn.functional.cross_entropy(x, m.tensor(T), reduction="sum"), [X]),
    "cross_entropy_none": (lambda m, x: m.nn.functional.cross_entropy(x, m.tensor(T), reduction="none"), [X]),
    "cross_entropy_weight": (lambda m, x: m.nn.functional.cross_entropy(x, m.tensor(T), m.tensor(f32(W))), [X]),
    "cross_entropy_smoothing": (lambda m, x: m.nn.functional.cross_entropy(x, m.tensor(T), label_smoothing=0.2),
                                [X]),
    "cross_entropy_weight_smoothing": (lambda m, x: m.nn.functional.cross_entropy(
        x, m.tensor(T), m.tensor(f32(W)), label_smoothing=0.3), [X]),
    "cross_entropy_weight_smoothing_none": (lambda m, x: m.nn.functional.cross_entropy(
        x, m.tensor(T), m.tensor(f32(W)), reduction="none", label_smoothing=0.3), [X]),
    "cross_entropy_ignore_index": (lambda m, x: m.nn.functional.cross_entropy(x, m.tensor(T_VALID), ignore_index=2),
                                   [X]),
    "cross_entropy_all_ignored_sum": (lambda m, x: m.nn.functional.cross_entropy(
        x, m.tensor(np.full(6, -100)), reduction="sum"), [X]),
    "cross_entropy_nd": (lambda m, x: m.nn.functional.cross_entropy(x, m.tensor(T_ND)), [X_ND]),
    "cross_entropy_nd_weight_smoothing_none": (lambda m, x: m.nn.functional.cross_entropy(
        x, m.tensor(T_ND), m.tensor(f32(W[:4])), reduction="none", label_smoothing=0.1), [X_ND]),
    "cross_entropy_unbatched": (lambda m, x: m.nn.functional.cross_entropy(x, m.tensor(3)), [X[0]]),
    "cross_entropy_probabilities": (lambda m, x, p: m.nn.functional.cross_entropy(x, p), [X, P]),
    "cross_entropy_probabilities_all_options": (lambda m, x, p: m.nn.functional.cross_entropy(
        x, p, m.tensor(f32(W)), reduction="none", label_smoothing=0.1), [X, P]),
    "cross_entropy_probabilities_nd": (lambda m, x, p: m.nn.functional.cross_entropy(x, p, reduction="sum"),
                                       [X_ND, rng.dirichlet(np.ones(4), (2, 3, 2)).transpose(0, 3, 1, 2)]),
    "CrossEntropyLoss": (lambda m, x: m.nn.CrossEntropyLoss(m.tensor(f32(W)), label_smoothing=0.1)(x, m.tensor(T)),
                         [X]),
    "nll_loss": (lambda m, x: m.nn.functional.nll_loss(x, m.tensor(T)), [X]),
    "nll_loss_weight": (lambda m, x: m.nn.functional.nll_loss(x, m.tensor(T), m.tensor(f32(W))), [X]),
    "nll_loss_nd_none": (lambda m, x: m.nn.functional.nll_loss(x, m.tensor(T_ND), reduction="none"), [X_ND]),
    "NLLLoss": (lambda m, x: m.nn.NLLLoss(reduction="sum", ignore_index=4)(x.log_softmax(1), m.tensor(T_VALID)),
                [X]),
    "mse_loss": (lambda m, a, b: m.nn.functional.mse_loss(a, b), [X, P]),
    "MSELoss_sum": (lambda m, a, b: m.nn.MSELoss(reduction="sum")(a, b), [X, P]),
    "l1_loss": (lambda m, a, b: m.nn.functional.l1_loss(a, b), [X, P]),
    "L1Loss_none": (lambda m, a, b: m.nn.L1Loss(reduction="none")(a, b), [X, P]),
    "binary_cross_entropy": (lambda m, p, y: m.nn.functional.binary_cross_entropy(p, y), [PROB, Y]),
    "BCELoss_weight_none": (lambda m, p, y: m.nn.BCELoss(m.tensor(f32(POS)), reduction="none")(p, y), [PROB, Y]),
    "binary_cross_entropy_at_0_and_1": (lambda m, p, y: m.nn.functional.binary_cross_entropy(p, y, reduction="sum"),
                                        [[0.0, 1.0, 0.5, 1e-30], [0.0, 1.0, 0.3, 1.0]]),
    "bce_with_logits": (lambda m, x, y: m.nn.functional.binary_cross_entropy_with_logits(x, y), [X[:4, :3] * 4, Y]),
    "BCEWithLogitsLoss_all_options": (lambda m, x, y: m.nn.BCEWithLogitsLoss(
        m.tensor(f32(POS[::-1].copy())), reduction="sum", pos_weight=m.tensor(f32(POS)))(x, y), [X[:4, :3] * 4, Y]),
    "bce_with_logits_extreme": (lambda m, x, y: m.nn.functional.binary_cross_entropy_with_logits(
        x, y, reduction="none"), [[-200.0, 200.0, 30.0, -30.0], [1.0, 0.0, 0.5, 0.5]]),
}


def _run(m, fn, inputs, upstream=None):
    """Loss value and every input's gradient after backward of (loss * upstream).sum()."""
    leaves = [m.tensor(f32(a), requires_grad=True) for a in inputs]
    loss = fn(m, *leaves)
    if upstream is None:
        upstream = np.random.default_rng(1).standard_normal(tuple(loss.shape)).astype(np.float32)
    (loss * m.tensor(upstream)).sum().backward()
    return loss.detach().numpy(), [x.grad.numpy() for x in leaves], upstream


@pytest.fixture(params=list(PARITY_CASES))
def loss_runs(request, torch):
    fn, inputs = PARITY_CASES[request.param]
    e_loss, e_grads, upstream = _run(engine, fn, inputs)
    t_loss, t_grads, _ = _run(torch, fn, inputs, upstream)
    return (e_loss, e_grads), (t_loss, t_grads)


def _close(actual, expected, what):
    scale = max(1.0, float(np.abs(expected[np.isfinite(expected)]).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6 * scale, err_msg=what)


@pytest.mark.parity
def test_loss_value_matches_torch(loss_runs):
    (e_loss, _), (t_loss, _) = loss_runs
    assert e_loss.dtype == t_loss.dtype and e_loss.shape == t_loss.shape
    _close(e_loss, t_loss, "loss")


@pytest.mark.parity
def test_loss_gradients_match_torch(loss_runs):
    (_, e_grads), (_, t_grads) = loss_runs
    for i, (e, t_) in enumerate(zip(e_grads, t_grads)):
        assert e.dtype == t_.dtype, f"input {i}"
        _close(e, t_, f"input {i}")


@pytest.mark.parity
def test_cross_entropy_with_every_target_ignored_is_nan_like_torch(torch):
    target = np.full(6, -100)
    assert np.isnan(torch.nn.functional.cross_entropy(torch.tensor(f32(X)), torch.tensor(target)).item())
    assert np.isnan(F.cross_entropy(t(f32(X)), t(target)).item())


@pytest.mark.parity
def test_one_hot_matches_torch(torch):
    values = rng.integers(0, 4, (3, 2))
    expected = torch.nn.functional.one_hot(torch.tensor(values), 5).numpy()
    actual = F.one_hot(t(values), 5).numpy()
    assert actual.dtype == expected.dtype and (actual == expected).all()
