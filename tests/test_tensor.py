"""Tensor basics: creation, dtypes, conversion, printing, PyTorch's porting surface."""

import numpy as np
import pytest

import engine


def test_repr_of_a_leaf_that_requires_grad():
    assert repr(engine.tensor([1.0, 2.0, 3.0], requires_grad=True)) == "tensor([1., 2., 3.], requires_grad=True)"


def test_repr_of_an_op_result_names_its_grad_fn():
    x = engine.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert repr(x * 2) == "tensor([2., 4., 6.], grad_fn=<MulBackward0>)"


def test_repr_shows_four_decimals_for_float32():
    assert repr(engine.tensor([0.5, 1.0 / 3])) == "tensor([0.5000, 0.3333])"


def test_repr_of_size():
    assert repr(engine.zeros(5, 2).shape) == "engine.Size([5, 2])"


def test_shape_is_a_size_tuple_and_size_takes_a_dim():
    t = engine.zeros(5, 2)
    assert isinstance(t.shape, engine.Size) and isinstance(t.shape, tuple)
    assert t.shape == (5, 2) and t.size() == (5, 2) and t.size(1) == 2 and t.size(-1) == 2
    assert t.dim() == t.ndim == 2 and t.numel() == 10


def test_default_dtypes_follow_pytorch():
    assert engine.tensor([1.0]).dtype == engine.float32
    assert engine.tensor([1]).dtype == engine.int64
    assert engine.tensor([True]).dtype == engine.bool
    assert engine.tensor(np.zeros(2)).dtype == engine.float64  # numpy's dtype is kept
    assert engine.zeros(2).dtype == engine.get_default_dtype() == engine.float32
    assert engine.arange(3).dtype == engine.int64 and engine.arange(0.0, 1.0, 0.5).dtype == engine.float32
    assert engine.full((2,), 7).dtype == engine.int64 and engine.full((2,), 7.0).dtype == engine.float32


def test_float32_survives_python_scalars_and_numpy_scalars():
    x = engine.ones(3)
    for y in (x * 2.5, 2.5 * x, x / 3, x + np.float64(1), x ** 2, 1 - x, x.exp(), x.mean()):
        assert y.dtype == engine.float32


def test_from_numpy_shares_memory_both_ways():
    array = np.zeros(3, np.float32)
    t = engine.from_numpy(array)
    array[0] = 1
    t.numpy()[1] = 2
    assert t.tolist() == [1.0, 2.0, 0.0] and array.tolist() == [1.0, 2.0, 0.0]


def test_as_tensor_shares_memory_when_the_dtype_matches_and_copies_otherwise():
    array = np.zeros(3, np.float32)
    assert np.shares_memory(engine.as_tensor(array).numpy(), array)
    assert not np.shares_memory(engine.as_tensor(array, dtype=engine.float64).numpy(), array)


def test_tensor_copies_its_data():
    array = np.zeros(3, np.float32)
    t = engine.tensor(array)
    array[0] = 5
    assert t.tolist() == [0.0, 0.0, 0.0]


def test_numpy_refuses_a_tensor_that_requires_grad_and_names_detach():
    x = engine.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"detach\(\)"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0, 1.0]
    with engine.no_grad():
        assert x.numpy().tolist() == [1.0, 1.0]  # as PyTorch: allowed while grad mode is off


def test_item_and_conversions():
    assert engine.tensor([3.5]).item() == 3.5
    assert float(engine.tensor(2.0)) == 2.0 and int(engine.tensor(7)) == 7
    with pytest.raises(RuntimeError, match="3 elements"):
        engine.ones(3).item()


def test_to_float_long_and_device_cpu():
    t = engine.tensor([1.7, -2.2])
    assert t.long().tolist() == [1, -2] and t.long().dtype == engine.int64
    assert t.to(engine.float64).dtype == engine.float64
    assert t.to("cpu") is t and t.cpu() is t and str(t.device) == "cpu"
    with pytest.raises(RuntimeError, match="CPU only"):
        t.to("cuda")


def test_cuda_is_reported_unavailable_for_ported_scripts():
    assert engine.cuda.is_available() is False
    device = engine.device("cuda" if engine.cuda.is_available() else "cpu")
    assert engine.ones(2).to(device).device == device


def test_comparisons_return_bool_tensors_without_grad():
    x = engine.tensor([1.0, 2.0, 3.0], requires_grad=True)
    mask = x > 1.5
    assert mask.dtype == engine.bool and not mask.requires_grad and mask.tolist() == [False, True, True]
    assert (x == 2).tolist() == [False, True, False]


def test_boolean_value_of_multi_element_tensor_is_ambiguous():
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(engine.ones(2))


def test_manual_seed_makes_random_draws_repeatable():
    engine.manual_seed(3)
    a = engine.randn(4)
    engine.manual_seed(3)
    assert engine.equal(a, engine.randn(4))
    assert engine.randint(0, 10, (100,)).dtype == engine.int64


def test_view_of_a_non_contiguous_tensor_is_an_error_naming_reshape():
    t = engine.zeros(3, 4).T
    with pytest.raises(RuntimeError, match="reshape"):
        t.view(12)
    assert t.reshape(12).shape == (12,)


def test_reshape_with_a_wrong_size_names_the_shape_and_size():
    with pytest.raises(RuntimeError, match=r"shape '\[5, 5\]' is invalid for input of size 12"):
        engine.zeros(3, 4).reshape(5, 5)


def test_tensors_pickle_and_deepcopy():
    import copy
    import pickle
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    for y in (pickle.loads(pickle.dumps(x)), copy.deepcopy(x)):
        assert y.tolist() == [1.0, 2.0] and y.requires_grad


def test_max_with_dim_returns_values_and_indices():
    result = engine.max(engine.tensor([[1.0, 5.0], [7.0, 2.0]]), dim=1)
    values, indices = result
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert result.values is values and result.indices is indices
