"""GroupNorm, InstanceNorm1d/2d and LayerNorm over several trailing dims: PyTorch's values, gradients, running
statistics, state dict keys, reprs and errors. Gradients by finite differences are in op_cases.py."""

import warnings

import numpy as np
import pytest
from module_parity import assert_close, assert_runs_match, run, twins

import engine
import engine.nn as nn
import engine.nn.functional as F

rng = np.random.default_rng(0)

# name: (factory(nn), input shape)
MODULES = {
    "group_norm": (lambda nn: nn.GroupNorm(3, 6), (2, 6, 4, 5)),
    "group_norm_1d_input": (lambda nn: nn.GroupNorm(2, 4), (3, 4, 7)),
    "group_norm_no_affine": (lambda nn: nn.GroupNorm(2, 4, affine=False), (2, 4, 3, 3)),
    "group_norm_no_bias": (lambda nn: nn.GroupNorm(1, 4, bias=False), (2, 4, 3, 3)),
    "instance_norm_2d": (lambda nn: nn.InstanceNorm2d(3), (2, 3, 4, 5)),
    "instance_norm_2d_affine": (lambda nn: nn.InstanceNorm2d(3, affine=True), (2, 3, 4, 5)),
    "instance_norm_2d_unbatched": (lambda nn: nn.InstanceNorm2d(3, affine=True), (3, 4, 5)),
    "instance_norm_1d": (lambda nn: nn.InstanceNorm1d(4, affine=True), (2, 4, 6)),
    "layer_norm_three_dims": (lambda nn: nn.LayerNorm((3, 4, 5)), (2, 3, 4, 5)),
}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")


def _randomised(torch, factory):
    """factory(nn) with random affine parameters, so that they matter."""
    def build(nn_module):
        m = factory(nn_module)
        if nn_module is torch.nn:
            with torch.no_grad():
                for p in m.parameters():
                    p.copy_(torch.randn(p.shape))
        return m
    return build


@pytest.mark.parity
@pytest.mark.parametrize("name", list(MODULES))
def test_module_values_and_gradients_match_torch(torch, name):
    factory, shape = MODULES[name]
    torch_module, engine_module = twins(torch, _randomised(torch, factory))
    x = rng.standard_normal(shape).astype(np.float32)
    assert_runs_match(run(engine_module, engine, x), run(torch_module, torch, x))


@pytest.mark.parity
@pytest.mark.parametrize("name", list(MODULES))
def test_repr_and_state_dict_keys_match_torch(torch, name):
    factory, _ = MODULES[name]
    assert repr(factory(nn)) == repr(factory(torch.nn))
    assert list(factory(nn).state_dict()) == list(factory(torch.nn).state_dict())


@pytest.mark.parity
@pytest.mark.parametrize("momentum", [0.1, None])
def test_instance_norm_tracking_updates_running_statistics_as_torch(torch, momentum):
    torch_module, engine_module = twins(torch, lambda nn: nn.InstanceNorm2d(3, momentum=momentum, affine=True,
                                                                            track_running_stats=True))
    for _ in range(3):
        x = rng.standard_normal((4, 3, 5, 6)).astype(np.float32) * 2 + 1
        torch_module(torch.from_numpy(x))
        engine_module(engine.tensor(x))
    for key, value in torch_module.state_dict().items():
        np.testing.assert_allclose(engine_module.state_dict()[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=key)


@pytest.mark.parity
def test_instance_norm_tracking_uses_running_statistics_in_eval(torch):
    torch_module, engine_module = twins(torch, lambda nn: nn.InstanceNorm2d(3, track_running_stats=True))
    with torch.no_grad():
        torch_module.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        torch_module.running_var.copy_(torch.tensor([2.0, 0.5, 1.5]))
    engine_module.load_state_dict({k: engine.tensor(v.numpy()) for k, v in torch_module.state_dict().items()})
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    with torch.no_grad(), engine.no_grad():
        assert_close(engine_module.eval()(engine.tensor(x)).numpy(), torch_module.eval()(torch.from_numpy(x)).numpy())


@pytest.mark.parity
def test_group_norm_keeps_for_backward_what_torch_keeps(torch):
    torch_module, engine_module = twins(torch, lambda nn: nn.GroupNorm(2, 4))
    x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        torch_module(torch.tensor(x, requires_grad=True))
    before = engine.memory_stats()["saved_bytes.current"]
    out = engine_module(engine.tensor(x, requires_grad=True))
    assert out.requires_grad and engine.memory_stats()["saved_bytes.current"] - before == sum(storages.values())


def test_instance_norm_eval_without_tracking_normalises_by_the_input_itself():
    m = nn.InstanceNorm2d(2).eval()
    out = m(engine.randn(3, 2, 4, 4) * 5 + 3)
    np.testing.assert_allclose(out.numpy().mean(axis=(2, 3)), 0, atol=1e-5)


def test_instance_norm_with_affine_needs_matching_channels():
    with pytest.raises(ValueError, match=r"expected input's size at dim=1 to match num_features \(3\), but got: 4"):
        nn.InstanceNorm2d(3, affine=True)(engine.randn(2, 4, 4, 4))


def test_instance_norm_without_affine_warns_on_mismatched_channels():
    with pytest.warns(UserWarning, match="input's size at dim=1 does not match num_features"):
        nn.InstanceNorm2d(3)(engine.randn(2, 4, 4, 4))


def test_instance_norm_of_a_wrong_rank_is_an_error():
    with pytest.raises(ValueError, match=r"expected 3D or 4D input \(got 2D input\)"):
        nn.InstanceNorm2d(3)(engine.randn(3, 4))


def test_instance_norm_over_one_spatial_element_in_training_is_an_error():
    with pytest.raises(ValueError, match="Expected more than 1 spatial element when training"):
        F.instance_norm(engine.randn(2, 3, 1))


def test_group_norm_needs_channels_divisible_by_groups():
    with pytest.raises(ValueError, match=r"num_channels \(6\) must be divisible by num_groups \(4\)"):
        nn.GroupNorm(4, 6)
    with pytest.raises(RuntimeError, match="Expected number of channels in input to be divisible by num_groups"):
        F.group_norm(engine.randn(2, 6, 4), 4)


def test_group_norm_weight_must_have_one_value_per_channel():
    with pytest.raises(RuntimeError, match="Expected weight to be a vector of size equal to the number of channels"):
        F.group_norm(engine.randn(2, 6, 4), 3, engine.ones(5))


def test_group_norm_in_eval_is_the_same_as_in_training():
    m = nn.GroupNorm(2, 4)
    x = engine.randn(2, 4, 3, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(m.train()(x).detach().numpy(), m.eval()(x).detach().numpy())
