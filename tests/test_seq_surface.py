"""The non-differentiable tensor surface ported sequence models use, against PyTorch: masks, bool ops, casts."""

import numpy as np
import pytest

import engine

torch = pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")
pytestmark = pytest.mark.parity

# Each builds a result from module m (engine or torch); results must match in dtype, shape and values.
SURFACE = {
    "invert_bool": lambda m: ~m.tensor([True, False, True]),
    "invert_int": lambda m: ~m.tensor([0, 5, -3]),
    "and_bool": lambda m: m.tensor([True, False, True]) & m.tensor([True, True, False]),
    "or_bool": lambda m: m.tensor([True, False, False]) | m.tensor([False, False, True]),
    "xor_bool": lambda m: m.tensor([True, False, True]) ^ m.tensor([True, True, False]),
    "xor_int": lambda m: m.tensor([6, 3]) ^ m.tensor([5, 5]),
    "logical_not": lambda m: m.logical_not(m.tensor([True, False])),
    "logical_xor": lambda m: m.logical_xor(m.tensor([True, False]), m.tensor([True, True])),
    "causal_mask_from_triu": lambda m: m.triu(m.ones(4, 4, dtype=m.bool), diagonal=1),
    "causal_float_mask": lambda m: m.triu(m.full((3, 3), float("-inf")), diagonal=1),
    "tril_bool_mask_eq_zero": lambda m: m.tril(m.ones(3, 3)) == 0,
    "padding_mask_from_lengths": lambda m: m.arange(5)[None, :] >= m.tensor([3, 5])[:, None],
    "arange_float_step": lambda m: m.arange(0, 8, 2).float(),
    "arange_int": lambda m: m.arange(5),
    "to_float64": lambda m: m.ones(2, 3).to(m.float64),
    "to_bool": lambda m: m.tensor([0.0, 2.0]).to(m.bool),
    "to_keyword_dtype": lambda m: m.ones(2).to(device="cpu", dtype=m.float64),
    "type_as_int": lambda m: m.tensor([1.7, -2.2]).type_as(m.tensor([1])),
    "where_numbers": lambda m: m.where(m.tensor([True, False]), 1.0, 0.0),
    "where_tensors": lambda m: m.where(m.tensor([[True], [False]]), m.ones(2, 3), m.zeros(3)),
    "masked_fill_int_casts_value": lambda m: m.zeros(3, dtype=m.long).masked_fill(m.tensor([True, False, True]), 2.7),
    "masked_fill_neg_inf_softmax": lambda m: m.zeros(2, 3).masked_fill(m.tensor([False, True, True]),
                                                                        float("-inf")).softmax(-1),
    "cumsum_of_bool_is_int64": lambda m: m.tensor([True, False, True]).cumsum(0),
    "cumsum_dtype": lambda m: m.tensor([1, 2, 3]).cumsum(0, dtype=m.float32),
    "repeat_interleave_counts_only": lambda m: m.repeat_interleave(m.tensor([2, 0, 1])),
    "split_sizes": lambda m: m.ones(5, 2).split([2, 3])[1],
    "one_hot": lambda m: m.nn.functional.one_hot(m.tensor([[0, 2], [1, 3]]), 4),
    "flatten_function": lambda m: m.flatten(m.ones(2, 3, 4), 1),
    "expand_as": lambda m: m.tensor([[1.0], [2.0]]).expand_as(m.ones(2, 3)),
    "clamp_min_tensor": lambda m: m.tensor([1.0, -2.0, 3.0]).clamp(min=m.tensor([0.0, 0.0, 4.0])),
    "erf_large": lambda m: m.erf(m.tensor([-6.0, -0.5, 0.0, 0.5, 6.0])),
    "embedding": lambda m: m.nn.functional.embedding(m.tensor([[0, 2]]), m.arange(6.0).reshape(3, 2)),
}


def _numpy(t) -> np.ndarray:
    return t.detach().numpy()


@pytest.mark.parametrize("name", list(SURFACE))
def test_result_matches_pytorch(name):
    ours, theirs = SURFACE[name](engine), SURFACE[name](torch)
    assert str(ours.dtype).rsplit(".", 1)[-1] == str(theirs.dtype).rsplit(".", 1)[-1]
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(_numpy(ours), _numpy(theirs), rtol=1e-6, atol=1e-7)


def test_invert_of_a_float_tensor_is_a_type_error():
    with pytest.raises(TypeError, match="only implemented on integer and Boolean"):
        ~engine.ones(2)


def test_masked_fill_refuses_a_float_mask():
    with pytest.raises(RuntimeError, match="only supports boolean masks"):
        engine.zeros(3).masked_fill(engine.ones(3), 1.0)


def test_masked_fill_refuses_a_value_tensor_with_dimensions():
    with pytest.raises(RuntimeError, match="0-dimensional value tensor"):
        engine.zeros(3).masked_fill(engine.tensor([True, False, True]), engine.ones(3))


def test_masked_fill_in_place_writes_the_tensor():
    x = engine.zeros(2, 3)
    assert x.masked_fill_(engine.tensor([True, False, True]), 1.0) is x
    np.testing.assert_array_equal(x.numpy(), [[1, 0, 1], [1, 0, 1]])


def test_einsum_gradient_of_a_repeated_subscript_says_it_is_unsupported():
    x = engine.ones(3, 3, requires_grad=True)
    y = engine.einsum("ii->i", x)
    with pytest.raises(NotImplementedError, match="repeated subscript"):
        y.sum().backward()


def test_einsum_rejects_an_operand_of_the_wrong_rank():
    with pytest.raises(RuntimeError, match="number of subscripts"):
        engine.einsum("ij,jk->ik", engine.ones(2, 3), engine.ones(3))


def test_identity_accepts_and_ignores_constructor_arguments():
    x = engine.ones(2)
    assert engine.nn.Identity(54, unused="argument")(x) is x


def test_tensors_are_never_nested():
    assert engine.ones(2).is_nested is False


def test_repeat_refuses_fewer_sizes_than_dimensions():
    with pytest.raises(RuntimeError, match="can not be smaller"):
        engine.ones(2, 3).repeat(2)


def test_erf_in_float64_is_exact():
    x = np.linspace(-6, 6, 101)
    np.testing.assert_allclose(engine.erf(engine.tensor(x)).numpy(), torch.erf(torch.tensor(x)).numpy(),
                               rtol=1e-15, atol=1e-16)
