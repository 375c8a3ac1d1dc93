"""Activation modules (ReLU6, Hardtanh, Hardsigmoid, Hardswish, ELU, Softplus, Mish, PReLU, GELU tanh, and the
inplace flag of these and ReLU, LeakyReLU, SiLU): PyTorch's values, gradients, reprs, in-place semantics and what
each keeps for backward. Gradients by finite differences are in op_cases.py."""

import numpy as np
import pytest
from module_parity import assert_runs_match, run, twins

import engine
import engine.nn as nn
import engine.nn.functional as F

rng = np.random.default_rng(0)

# name: factory(nn) -> module; inputs are standard normal * 4, so every piece of each function is exercised
MODULES = {
    "relu6": lambda nn: nn.ReLU6(),
    "hardtanh": lambda nn: nn.Hardtanh(-2.0, 3.0),
    "hardsigmoid": lambda nn: nn.Hardsigmoid(),
    "hardswish": lambda nn: nn.Hardswish(),
    "elu": lambda nn: nn.ELU(alpha=0.5),
    "softplus": lambda nn: nn.Softplus(beta=2.0, threshold=5.0),
    "mish": lambda nn: nn.Mish(),
    "prelu_shared": lambda nn: nn.PReLU(),
    "prelu_per_channel": lambda nn: nn.PReLU(3, init=0.1),
    "gelu_tanh": lambda nn: nn.GELU(approximate="tanh"),
}
INPLACE = {
    "relu": lambda nn: nn.ReLU(inplace=True),
    "relu6": lambda nn: nn.ReLU6(inplace=True),
    "leaky_relu": lambda nn: nn.LeakyReLU(0.2, inplace=True),
    "hardtanh": lambda nn: nn.Hardtanh(-2.0, 3.0, inplace=True),
    "hardsigmoid": lambda nn: nn.Hardsigmoid(inplace=True),
    "hardswish": lambda nn: nn.Hardswish(inplace=True),
    "elu": lambda nn: nn.ELU(inplace=True),
    "mish": lambda nn: nn.Mish(inplace=True),
    "silu": lambda nn: nn.SiLU(inplace=True),
}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")


def _input() -> np.ndarray:
    return (rng.standard_normal((2, 3, 4, 5)) * 4).astype(np.float32)


# -- against PyTorch ----------------------------------------------------------------------------------------
@pytest.mark.parity
@pytest.mark.parametrize("name", list(MODULES))
def test_module_values_and_gradients_match_torch(torch, name):
    torch_module, engine_module = twins(torch, MODULES[name])
    x = _input()
    assert_runs_match(run(engine_module, engine, x), run(torch_module, torch, x))


@pytest.mark.parity
@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_module_inside_a_graph_matches_torch(torch, name):
    factory = INPLACE[name]
    x = _input()

    def graph(framework, nn_module):
        leaf = framework.tensor(x, requires_grad=True)
        out = nn_module(leaf * 1)
        (out * out).sum().backward()
        return out.detach().numpy(), leaf.grad.numpy()

    ours, theirs = graph(engine, factory(nn)), graph(torch, factory(torch.nn))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("name", [*MODULES, *(f"{n}_inplace" for n in INPLACE)])
def test_repr_matches_torch(torch, name):
    factory = MODULES.get(name) or INPLACE[name.removesuffix("_inplace")]
    assert repr(factory(nn)) == repr(factory(torch.nn))


def _torch_saved_bytes(torch, module, x) -> int:
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(x)
    del out
    return sum(storages.values())


@pytest.mark.parity
@pytest.mark.parametrize("name", list(MODULES))
def test_module_keeps_for_backward_what_torch_keeps(torch, name):
    torch_module, engine_module = twins(torch, MODULES[name])
    x = _input()
    before = engine.memory_stats()["saved_bytes.current"]
    out = engine_module(engine.tensor(x, requires_grad=True))
    ours = engine.memory_stats()["saved_bytes.current"] - before
    assert out.requires_grad and ours == _torch_saved_bytes(torch, torch_module, torch.tensor(x, requires_grad=True))


@pytest.mark.parity
@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_module_inside_a_graph_keeps_what_torch_keeps(torch, name):
    """relu_, hardtanh_, elu_ keep their result (the input itself); the others a copy of the input, as torch."""
    x = _input()
    theirs = _torch_saved_bytes(torch, lambda t: INPLACE[name](torch.nn)(t * 1), torch.tensor(x, requires_grad=True))
    leaf = engine.tensor(x, requires_grad=True)
    middle = leaf * 1
    before = engine.memory_stats()["saved_bytes.current"]
    out = INPLACE[name](nn)(middle)
    assert out.requires_grad and engine.memory_stats()["saved_bytes.current"] - before == theirs


# -- in place ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_module_returns_its_input_holding_the_result(name):
    x = engine.tensor(_input())
    out_of_place = INPLACE[name](nn)
    out_of_place.inplace = False
    expected = out_of_place(x.clone())
    out = INPLACE[name](nn)(x)
    assert out is x
    np.testing.assert_allclose(x.numpy(), expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_module_bumps_the_version_of_its_input(name):
    x = engine.tensor(_input())
    before = x._version[0]
    INPLACE[name](nn)(x)
    assert x._version[0] == before + 1


def test_inplace_under_no_grad_allocates_no_new_tensor_storage():
    x = engine.tensor(_input())
    with engine.no_grad():
        before = engine.memory_stats()["allocated_bytes.current"]
        out = nn.Hardswish(inplace=True)(x)
        assert engine.memory_stats()["allocated_bytes.current"] == before and out is x


def test_out_of_place_module_leaves_its_input_unchanged():
    x = engine.tensor(_input())
    copy = x.numpy().copy()
    nn.ReLU6()(x)
    np.testing.assert_array_equal(x.numpy(), copy)


def test_inplace_on_a_leaf_that_requires_grad_is_an_error():
    x = engine.tensor(_input(), requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation"):
        F.relu6(x, inplace=True)


def test_inplace_on_a_leaf_that_requires_grad_is_allowed_under_no_grad():
    x = engine.tensor([-1.0, 7.0], requires_grad=True)
    with engine.no_grad():
        F.relu6(x, inplace=True)
    assert x.tolist() == [0.0, 6.0]


def test_inplace_over_a_tensor_saved_for_backward_fails_at_backward():
    a = engine.tensor(_input(), requires_grad=True) * 1
    b = a * a  # keeps a for its gradient
    F.hardswish(a, inplace=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()


def test_inplace_on_an_inference_tensor_outside_inference_mode_is_an_error():
    with engine.inference_mode():
        x = engine.tensor(_input())
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode"):
        F.relu(x, inplace=True)


def test_inplace_inside_inference_mode_writes_the_inference_tensor():
    with engine.inference_mode():
        x = engine.tensor([-1.0, 2.0])
        out = F.elu(x, inplace=True)
    assert out is x and x.tolist()[1] == 2.0 and x.tolist()[0] == pytest.approx(np.expm1(-1.0))


def test_functional_in_place_names_write_their_input():
    x = engine.tensor([-2.0, 0.5, 3.0])
    assert F.hardtanh_(x) is x and x.tolist() == [-1.0, 0.5, 1.0]
    assert F.relu_(x) is x and x.tolist() == [0.0, 0.5, 1.0]


# -- construction --------------------------------------------------------------------------------------------
def test_prelu_has_one_weight_of_num_parameters_filled_with_init():
    m = nn.PReLU(4, init=0.3)
    assert list(m.state_dict()) == ["weight"]
    np.testing.assert_allclose(m.weight.detach().numpy(), np.full(4, 0.3, np.float32))


def test_prelu_weight_count_must_match_the_channels():
    with pytest.raises(RuntimeError, match="Found parameter numbers = 3 and channel size = 4"):
        nn.PReLU(3)(engine.randn(2, 4, 5))


def test_prelu_weight_must_be_one_dimensional():
    with pytest.raises(RuntimeError, match="Expected `weight` to be a scalar or 1D tensor, but got: ndim = 2"):
        F.prelu(engine.randn(2, 3), engine.ones(1, 3))


def test_relu6_is_a_hardtanh_from_0_to_6():
    m = nn.ReLU6()
    assert isinstance(m, nn.Hardtanh) and (m.min_val, m.max_val) == (0.0, 6.0)


def test_hardtanh_needs_max_above_min():
    with pytest.raises(AssertionError):
        nn.Hardtanh(1.0, 1.0)
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(engine.randn(3), 2.0, 1.0)


def test_hardswish_of_an_integer_tensor_is_an_error_naming_the_dtype():
    with pytest.raises(RuntimeError, match="hardswish needs a floating point input"):
        F.hardswish(engine.tensor([1, 2]))
