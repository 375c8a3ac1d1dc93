"""The engine's ops against PyTorch on the same float32 inputs: values, dtypes, shapes, gradients, errors."""

import numpy as np
import pytest
from op_cases import CASES

import engine

torch = pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")
pytestmark = pytest.mark.parity

# Ops that only move or pick values: their results must be bit-identical to PyTorch's.
EXACT = {
    "abs", "absolute", "amax", "amin", "cat", "chunk", "clamp", "clamp_", "clip", "clone", "concat", "contiguous",
    "expand", "expand_as", "flatten", "gather", "getitem", "masked_fill", "max", "maximum", "min", "minimum", "mT",
    "neg", "negative", "permute", "relu", "reshape", "setitem", "sort", "split", "squeeze", "stack", "t", "T", "to",
    "topk", "transpose", "unflatten", "unsqueeze", "view", "where",
}


def _dtype_name(t) -> str:
    return str(t.dtype).rsplit(".", 1)[-1]


def _outputs(result) -> tuple:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _run(m, fn, inputs, upstreams=None):
    """fn's outputs and its inputs' gradients after backward of sum((out * upstream).sum())."""
    leaves = [m.tensor(a, requires_grad=True) for a in inputs]
    outs = _outputs(fn(m, *leaves))
    if upstreams is None:
        rng = np.random.default_rng(0)
        upstreams = [rng.standard_normal(tuple(o.shape)).astype(_dtype_name(o)) for o in outs]
    sum(((o * m.tensor(u)).sum() for o, u in zip(outs, upstreams)), m.tensor(0.0)).backward()
    return [o.detach().numpy() for o in outs], [x.grad.numpy() for x in leaves], upstreams


def _close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6 * scale, err_msg=what)


@pytest.fixture(params=list(CASES))
def parity_run(request):
    """(case name, engine run, torch run) on float32 copies of the case's inputs."""
    fn, inputs, _ = CASES[request.param]
    inputs32 = [a.astype(np.float32) for a in inputs]
    e_out, e_grads, upstreams = _run(engine, fn, inputs32)
    t_out, t_grads, _ = _run(torch, fn, inputs32, upstreams)
    return request.param, (e_out, e_grads), (t_out, t_grads)


def test_forward_dtype_and_shape_match(parity_run):
    _, (e_out, _), (t_out, _) = parity_run
    assert [(o.dtype, o.shape) for o in e_out] == [(o.dtype, o.shape) for o in t_out]


def test_forward_values_match(parity_run):
    name, (e_out, _), (t_out, _) = parity_run
    for i, (e, t) in enumerate(zip(e_out, t_out)):
        if name.split("-")[0] in EXACT:
            np.testing.assert_array_equal(e, t, err_msg=f"output {i}")
        else:
            _close(e, t, f"output {i}")


def test_gradients_match(parity_run):
    _, (_, e_grads), (_, t_grads) = parity_run
    for i, (e, t) in enumerate(zip(e_grads, t_grads)):
        assert (e.dtype, e.shape) == (t.dtype, t.shape), f"input {i}"
        _close(e, t, f"input {i}")


# -- result dtypes (PyTorch's type promotion) ----------------------------------------------------
PROMOTIONS = {
    "float32_stays_float32": (lambda m: m.ones(3) * 2.5 + m.ones(3) / 3, "float32"),
    "int64_times_half_is_float32": (lambda m: m.tensor([1, 2]) * 0.5, "float32"),
    "int_div_int_is_float32": (lambda m: m.tensor([1, 2]) / m.tensor([2, 4]), "float32"),
    "int_div_number_is_float32": (lambda m: m.tensor([3, 4]) / 2, "float32"),
    "int32_plus_number_stays_int32": (lambda m: m.tensor([1, 2], dtype=m.int32) + 3, "int32"),
    "bool_plus_number_is_int64": (lambda m: m.tensor([True, False]) + 1, "int64"),
    "bool_times_int32_is_int32": (lambda m: m.tensor([True, False]) * m.tensor([3, 4], dtype=m.int32), "int32"),
    "float32_plus_float64_is_float64": (lambda m: m.ones(2) + m.ones(2, dtype=m.float64), "float64"),
    "float64_0d_plus_float32_is_float32": (lambda m: m.tensor(1.5, dtype=m.float64) + m.ones(2), "float32"),
    "int32_plus_float64_0d_is_float64": (lambda m: m.ones(2, dtype=m.int32) + m.tensor(1.5, dtype=m.float64),
                                         "float64"),
    "int32_plus_int64_0d_stays_int32": (lambda m: m.ones(2, dtype=m.int32) + m.tensor(7), "int32"),
    "uint8_plus_int8_is_int16": (lambda m: m.ones(2, dtype=m.uint8) + m.ones(2, dtype=m.int8), "int16"),
    "float16_times_number_stays_float16": (lambda m: m.ones(2, dtype=m.float16) * 2.5, "float16"),
    "int_pow_half_is_float32": (lambda m: m.tensor([1, 4]) ** 0.5, "float32"),
    "number_pow_int_tensor_is_int64": (lambda m: 2 ** m.tensor([1, 3]), "int64"),
    "int_maximum_float_is_float32": (lambda m: m.maximum(m.tensor([1, 5]), m.tensor([2.5, 0.5])), "float32"),
    "where_int_and_number_is_float32": (lambda m: m.where(m.tensor([True, False]), m.tensor([1, 2]), 0.5),
                                        "float32"),
    "exp_of_int_is_float32": (lambda m: m.exp(m.tensor([0, 1])), "float32"),
    "sum_of_int32_is_int64": (lambda m: m.tensor([1, 2], dtype=m.int32).sum(), "int64"),
    "sum_of_bool_is_int64": (lambda m: m.tensor([True, True, False]).sum(), "int64"),
    "prod_of_int32_is_int64": (lambda m: m.tensor([2, 3], dtype=m.int32).prod(), "int64"),
    "mean_of_float64_stays_float64": (lambda m: m.ones(3, dtype=m.float64).mean(), "float64"),
    "cat_of_int_and_float_is_float32": (lambda m: m.cat([m.tensor([1, 2]), m.tensor([0.5])]), "float32"),
    "clamp_of_int_stays_int64": (lambda m: m.tensor([-3, 5]).clamp(0, 4), "int64"),
    "clamp_of_int_to_float_bound_is_float32": (lambda m: m.tensor([-3, 5]).clamp(min=-1.5), "float32"),
    "norm_p0_counts_nonzeros": (lambda m: m.tensor([[3.0, 0.0], [-1.0, 2.0]]).norm(p=0), "float32"),
    "floor_divide_int_stays_int64": (lambda m: m.tensor([7, -7]) // 2, "int64"),
    "remainder_int32_stays_int32": (lambda m: m.tensor([7, -7], dtype=m.int32) % 3, "int32"),
    "matmul_int_stays_int64": (lambda m: m.tensor([[1, 2]]) @ m.tensor([[3], [4]]), "int64"),
    "softmax_float64_stays_float64": (lambda m: m.ones(3, dtype=m.float64).softmax(0), "float64"),
}


@pytest.mark.parametrize("name", list(PROMOTIONS))
def test_result_dtype_matches_pytorch(name):
    make, expected = PROMOTIONS[name]
    ours, theirs = make(engine), make(torch)
    assert (_dtype_name(ours), _dtype_name(theirs)) == (expected, expected)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


# -- comparisons: bool results, never part of the graph -----------------------------------------
COMPARISONS = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
}
LEFT = np.array([[0.5, 1.0, 2.0], [-1.0, 0.25, 3.0]], np.float32)
RIGHT = np.array([0.5, 0.0, 3.0], np.float32)


@pytest.mark.parametrize("op", list(COMPARISONS))
@pytest.mark.parametrize("form", ["tensor_tensor", "tensor_number", "number_tensor"])
def test_comparison_matches_pytorch_and_is_not_differentiable(op, form):
    compare = COMPARISONS[op]

    def run(m):
        a, b = m.tensor(LEFT, requires_grad=True), m.tensor(RIGHT)
        out = {"tensor_tensor": lambda: compare(a, b), "tensor_number": lambda: compare(a, 1.0),
               "number_tensor": lambda: compare(0.5, a)}[form]()
        return out

    ours, theirs = run(engine), run(torch)
    assert _dtype_name(ours) == _dtype_name(theirs) == "bool"
    assert not ours.requires_grad and ours.grad_fn is None
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


# -- indices and other integer results -----------------------------------------------------------
DISTINCT = np.array([[0.3, -1.2, 2.5, 0.9], [1.7, 0.1, -0.4, 2.2], [-2.0, 1.1, 0.6, -0.8]], np.float32)
INTEGER_RESULTS = {
    "argmax": lambda m, x: x.argmax(),
    "argmax-dim": lambda m, x: x.argmax(1),
    "argmax-dim_keepdim": lambda m, x: m.argmax(x, dim=-1, keepdim=True),
    "argmax-all_keepdim": lambda m, x: x.argmax(keepdim=True),
    "argmin": lambda m, x: m.argmin(x),
    "argmin-dim": lambda m, x: x.argmin(dim=0),
    "argmin-dim_keepdim": lambda m, x: x.argmin(0, keepdim=True),
    "max-indices": lambda m, x: x.max(1).indices,
    "max-indices_keepdim": lambda m, x: m.max(x, dim=0, keepdim=True).indices,
    "max-unpacked_indices": lambda m, x: m.max(x, 1)[1],
    "min-indices": lambda m, x: x.min(dim=-1).indices,
    "min-indices_keepdim": lambda m, x: x.min(1, True)[1],
    "topk-indices": lambda m, x: x.topk(2).indices,
    "topk-smallest_dim0_indices": lambda m, x: x.topk(2, dim=0, largest=False)[1],
    "sort-indices": lambda m, x: x.sort().indices,
    "sort-descending_dim0_indices": lambda m, x: x.sort(dim=0, descending=True)[1],
    "argsort": lambda m, x: x.argsort(dim=1),
    "argsort-descending": lambda m, x: m.argsort(x, descending=True),
}


@pytest.mark.parametrize("name", list(INTEGER_RESULTS))
def test_integer_result_matches_pytorch(name):
    ours, theirs = (INTEGER_RESULTS[name](m, m.tensor(DISTINCT)) for m in (engine, torch))
    assert _dtype_name(ours) == _dtype_name(theirs) == "int64"
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_with_dim_return_values_and_indices(op, keepdim):
    ours, theirs = (getattr(m.tensor(DISTINCT), op)(1, keepdim=keepdim) for m in (engine, torch))
    values, indices = ours
    assert values is ours.values and indices is ours.indices
    np.testing.assert_array_equal(values.numpy(), theirs.values.numpy())
    np.testing.assert_array_equal(indices.numpy(), theirs.indices.numpy())
    assert tuple(values.shape) == tuple(theirs.values.shape) == tuple(indices.shape)


# -- floor division and remainder (PyTorch floors: the sign follows the divisor) ----------------
INTS = np.array([7, -7, 6, -1, 0], np.int64)
FLOATS = np.array([7.5, -7.5, 2.25, -0.5, 0.0], np.float32)
DIVISIONS = {
    "floordiv-int_number": lambda m, x: x // 3,
    "floordiv-int_negative_number": lambda m, x: x // -3,
    "floordiv-number_int": lambda m, x: 20 // (x + 8),
    "floordiv-tensor": lambda m, x: x // m.tensor([2, 3, -4, 5, 6]),
    "div-floor": lambda m, x: m.div(x, 4, rounding_mode="floor"),
    "div-trunc": lambda m, x: m.div(x, 4, rounding_mode="trunc"),
    "remainder-int_number": lambda m, x: x % 3,
    "remainder-int_negative_number": lambda m, x: x % -3,
    "remainder-tensor": lambda m, x: x % m.tensor([2, 3, -4, 5, 6]),
}


@pytest.mark.parametrize("operand", ["int64", "float32"])
@pytest.mark.parametrize("name", list(DIVISIONS))
def test_division_with_rounding_matches_pytorch(name, operand):
    data = INTS if operand == "int64" else FLOATS
    ours, theirs = (DIVISIONS[name](m, m.tensor(data)) for m in (engine, torch))
    assert _dtype_name(ours) == _dtype_name(theirs)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


# -- boolean tests ---------------------------------------------------------------------------
WITH_NAN = np.array([[0.0, np.nan, 1.0], [2.0, 3.0, np.inf]], np.float32)
FLAGS = np.array([[True, False, True], [True, True, True]])
BOOLEAN_RESULTS = {
    "any": lambda m: m.tensor(FLAGS).any(),
    "any-dim": lambda m: m.tensor(FLAGS).any(1),
    "any-dim_keepdim": lambda m: m.any(m.tensor(FLAGS), dim=0, keepdim=True),
    "any-float": lambda m: m.tensor([[0.0, 0.5], [0.0, 0.0]]).any(dim=1),
    "all": lambda m: m.tensor(FLAGS).all(),
    "all-dim": lambda m: m.all(m.tensor(FLAGS), dim=-1),
    "all-dim_keepdim": lambda m: m.tensor(FLAGS).all(0, keepdim=True),
    "isnan": lambda m: m.isnan(m.tensor(WITH_NAN)),
    "isnan-method": lambda m: m.tensor(WITH_NAN).isnan(),
    "isfinite": lambda m: m.tensor(WITH_NAN).isfinite(),
    "isnan-any": lambda m: m.tensor(WITH_NAN).isnan().any(dim=0),
}


@pytest.mark.parametrize("name", list(BOOLEAN_RESULTS))
def test_boolean_result_matches_pytorch(name):
    ours, theirs = (BOOLEAN_RESULTS[name](m) for m in (engine, torch))
    assert _dtype_name(ours) == _dtype_name(theirs) == "bool"
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


# -- factories ---------------------------------------------------------------------------------
FACTORIES = {
    "arange-int": lambda m: m.arange(5),
    "arange-start_end_step": lambda m: m.arange(1, 10, 3),
    "arange-negative_step": lambda m: m.arange(5, 0, -2),
    "arange-float": lambda m: m.arange(0, 1, 0.25),
    "arange-float_end": lambda m: m.arange(3.0),
    "arange-dtype": lambda m: m.arange(4, dtype=m.float64),
    "linspace": lambda m: m.linspace(0, 1, 5),
    "linspace-dtype": lambda m: m.linspace(-1, 1, 4, dtype=m.float64),
    "eye": lambda m: m.eye(3),
    "eye-rectangular": lambda m: m.eye(2, 3),
    "eye-dtype": lambda m: m.eye(2, dtype=m.int64),
    "full-int": lambda m: m.full((2, 3), 7),
    "full-float": lambda m: m.full((2,), 1.5),
    "full-bool": lambda m: m.full((2,), True),
    "full-dtype": lambda m: m.full((2,), 3, dtype=m.float32),
    "zeros": lambda m: m.zeros(2, 3),
    "ones-dtype": lambda m: m.ones((2,), dtype=m.int32),
    "tensor-ints": lambda m: m.tensor([1, 2]),
    "tensor-floats": lambda m: m.tensor([1.0, 2.5]),
    "tensor-bools": lambda m: m.tensor([True, False]),
    "zeros_like": lambda m: m.zeros_like(m.tensor([1, 2], dtype=m.int32)),
    "full_like": lambda m: m.full_like(m.ones(2, dtype=m.float64), 2.5),
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_factory_matches_pytorch(name):
    ours, theirs = (FACTORIES[name](m) for m in (engine, torch))
    assert _dtype_name(ours) == _dtype_name(theirs)
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


# -- errors -----------------------------------------------------------------------------------
def _ones(m, *shapes):
    return [m.ones(*s) for s in shapes]


ERRORS = {
    "matmul-2d": (lambda m: m.matmul(*_ones(m, (3, 4), (5, 6))), RuntimeError),
    "matmul-1d_1d": (lambda m: m.matmul(*_ones(m, (3,), (4,))), RuntimeError),
    "matmul-2d_1d": (lambda m: m.matmul(*_ones(m, (2, 3), (4,))), RuntimeError),
    "matmul-batched": (lambda m: m.matmul(*_ones(m, (2, 3, 4), (2, 5, 6))), RuntimeError),
    "matmul-batch_dims": (lambda m: m.matmul(*_ones(m, (2, 3, 4), (3, 4, 6))), RuntimeError),
    "matmul-0d": (lambda m: m.matmul(m.tensor(1.0), m.ones(2)), RuntimeError),
    "linear": (lambda m: m.nn.functional.linear(*_ones(m, (2, 3, 4), (6, 5))), RuntimeError),
    "add-broadcast": (lambda m: m.add(*_ones(m, (2, 3), (4,))), RuntimeError),
    "mul-broadcast": (lambda m: m.ones(3, 1, 2) * m.ones(4, 3), RuntimeError),
    "lt-broadcast": (lambda m: m.ones(3) < m.ones(4), RuntimeError),
    "where-broadcast": (lambda m: m.where(m.ones(2, 3) > 0, *_ones(m, (2, 1), (4,))), RuntimeError),
    "cat-sizes": (lambda m: m.cat(_ones(m, (2, 3), (2, 4))), RuntimeError),
    "stack-sizes": (lambda m: m.stack(_ones(m, (2, 3), (3, 2))), RuntimeError),
    "view-size": (lambda m: m.ones(2, 3).view(4, 2), RuntimeError),
    "view-non_contiguous": (lambda m: m.ones(2, 3).t().view(6), RuntimeError),
    "reshape-two_inferred": (lambda m: m.ones(2, 3).reshape(-1, -1), RuntimeError),
    "expand-size": (lambda m: m.ones(2, 3).expand(4, 3), RuntimeError),
    "permute-not_a_permutation": (lambda m: m.ones(2, 3).permute(0, 0), RuntimeError),
    "getitem-out_of_range": (lambda m: m.ones(2, 3)[2], IndexError),
    "sum-dim_out_of_range": (lambda m: m.ones(2, 3).sum(2), IndexError),
    "softmax-dim_out_of_range": (lambda m: m.ones(2, 3).softmax(-3), IndexError),
    "gather-index_too_large": (lambda m: m.ones(2, 3).gather(1, m.zeros(3, 1, dtype=m.int64)), RuntimeError),
    "topk-k_too_large": (lambda m: m.ones(2, 3).topk(4), RuntimeError),
    "split-sizes": (lambda m: m.ones(5).split([2, 2]), RuntimeError),
    "matmul-dtypes": (lambda m: m.ones(2, 3) @ m.ones(3, dtype=m.float64), RuntimeError),
    "linear-bias_size": (lambda m: m.nn.functional.linear(*_ones(m, (2, 3), (4, 3), (5,))), RuntimeError),
    "floordiv-int_zero": (lambda m: m.tensor([1, 2]) // m.tensor([1, 0]), RuntimeError),
    "remainder-int_zero": (lambda m: m.tensor([1, 2]) % 0, RuntimeError),
    "div-rounding_mode": (lambda m: m.div(m.ones(2), 2, rounding_mode="round"), RuntimeError),
    "sum-repeated_dim": (lambda m: m.ones(2, 3).sum((1, -1)), RuntimeError),
    "gather-index_out_of_range": (lambda m: m.ones(2, 3).gather(1, m.tensor([[0], [3]])), RuntimeError),
    "amax-empty_dim": (lambda m: m.ones(2, 0).amax(1), IndexError),
    "amax-empty": (lambda m: m.ones(0).amax(), RuntimeError),
    "max-tuple_dim": (lambda m: m.ones(2, 3).max(dim=(0, 1)), TypeError),
    "mean-int": (lambda m: m.tensor([1, 2]).mean(), RuntimeError),
    "requires_grad-int": (lambda m: m.tensor([1, 2]).requires_grad_(), RuntimeError),
    "item-many": (lambda m: m.ones(2).item(), RuntimeError),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_error_type_matches_pytorch(name):
    make, error = ERRORS[name]
    for m in (torch, engine):
        with pytest.raises(error):
            make(m)


@pytest.mark.parametrize("name", ["matmul-2d", "linear"])
def test_matmul_mismatch_names_both_shapes(name):
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(\d+x\d+ and \d+x\d+\)"):
        ERRORS[name][0](engine)
    with pytest.raises(RuntimeError) as theirs:
        ERRORS[name][0](torch)
    with pytest.raises(RuntimeError) as ours:
        ERRORS[name][0](engine)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name", ["add-broadcast", "mul-broadcast", "where-broadcast", "matmul-batch_dims"])
def test_broadcast_mismatch_message_matches_pytorch(name):
    with pytest.raises(RuntimeError) as theirs:
        ERRORS[name][0](torch)
    with pytest.raises(RuntimeError) as ours:
        ERRORS[name][0](engine)
    assert str(ours.value) == str(theirs.value)


# -- special points and NaN ----------------------------------------------------------------------
SPECIAL_GRADIENTS = {
    # PyTorch: d/da a**b is 0 where b == 0 (even at a == 0); d/db is 0 at a == 0 and nan for a < 0.
    "pow-zero_base": (lambda m, a, b: a ** b, [0.0, 0.0, 2.0, -2.0], [0.0, 2.0, 0.0, 2.0]),
    "pow-number_exponent_zero": (lambda m, a, b: a ** 0 + b, [0.0, 1.5], [1.0, 1.0]),
    "var-no_degrees_of_freedom": (lambda m, a, b: a.var() + b, [1.5], [1.0]),
    "amax-ties_share": (lambda m, a, b: a.amax() * b, [2.0, 1.0, 2.0], [3.0]),
    "max-ties_share": (lambda m, a, b: a.max() * b, [2.0, 1.0, 2.0], [3.0]),
    "maximum-ties_share": (lambda m, a, b: m.maximum(a, b), [2.0, 1.0], [2.0, 0.0]),
    "clamp-at_bounds": (lambda m, a, b: a.clamp(0.0, 1.0) * b, [0.0, 1.0, 2.0], [1.0]),
    "abs-at_zero": (lambda m, a, b: a.abs() * b, [0.0, -1.0], [1.0]),
    "relu-at_zero": (lambda m, a, b: a.relu() * b, [0.0, -1.0, 2.0], [1.0]),
    "sqrt-at_zero": (lambda m, a, b: a.sqrt() * b, [0.0, 4.0], [1.0]),
}


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch warns of var() without degrees of freedom
@pytest.mark.parametrize("name", list(SPECIAL_GRADIENTS))
def test_gradient_at_special_points_matches_pytorch(name):
    fn, *inputs = SPECIAL_GRADIENTS[name]
    inputs = [np.array(x, np.float32) for x in inputs]
    with np.errstate(all="ignore"):  # numpy's inf/nan warnings are not the point here
        (e_out, e_grads, upstreams), (t_out, t_grads, _) = (_run(m, fn, inputs) for m in (engine, torch))
    for e, t in zip(e_out + e_grads, t_out + t_grads):
        np.testing.assert_allclose(e, t, rtol=1e-6, equal_nan=True)


WITH_NANS = np.array([[1.0, np.nan, 3.0, 0.5], [np.inf, 2.0, np.nan, -1.0]], np.float32)
NAN_ORDERING = {
    "sort": lambda m, x: x.sort(),
    "sort-descending": lambda m, x: x.sort(descending=True),
    "topk": lambda m, x: x.topk(2),
    "topk-smallest": lambda m, x: x.topk(2, largest=False),
    "max-dim": lambda m, x: x.max(1),
    "min-dim": lambda m, x: x.min(1),
}


@pytest.mark.parametrize("name", list(NAN_ORDERING))
def test_nan_counts_as_largest_as_in_pytorch(name):
    ours, theirs = (NAN_ORDERING[name](m, m.tensor(WITH_NANS)) for m in (engine, torch))
    np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
