"""Module: registration, traversal, state dicts, modes, hooks and printing, as PyTorch's."""

import numpy as np
import pytest

import engine
import engine.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))
        self.head = nn.Linear(8, 2)
        self.register_buffer("scale", engine.ones(2))
        self.register_buffer("cache", engine.zeros(2), persistent=False)
        self.note = "plain attribute"

    def forward(self, x):
        return self.head(self.features(x)) * self.scale


def test_parameters_register_by_attribute_in_definition_order():
    names = [name for name, _ in Net().named_parameters()]
    assert names == ["features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
                     "head.weight", "head.bias"]


def test_state_dict_keys_hold_parameters_and_persistent_buffers_only():
    keys = list(Net().state_dict())
    assert keys == ["scale", "features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
                    "head.weight", "head.bias"]


def test_state_dict_values_are_detached():
    sd = Net().state_dict()
    assert not any(v.requires_grad for v in sd.values())


def test_buffers_children_and_modules():
    net = Net()
    assert [n for n, _ in net.named_buffers()] == ["scale", "cache"]
    assert [n for n, _ in net.named_children()] == ["features", "head"]
    assert [n for n, _ in net.named_modules()] == ["", "features", "features.0", "features.1", "features.2", "head"]
    assert net.note == "plain attribute"


def test_a_shared_module_is_listed_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, shared)
    assert len(list(seq.parameters())) == 2 and len(list(seq.modules())) == 2


def test_load_state_dict_round_trip_gives_identical_outputs():
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    x = engine.randn(3, 4)
    with engine.no_grad():
        assert engine.equal(a(x), b(x))


def test_load_state_dict_strict_reports_missing_unexpected_and_mismatched_in_one_error():
    net = Net()
    sd = net.state_dict()
    del sd["head.bias"]
    sd["extra"] = engine.zeros(1)
    sd["head.weight"] = engine.zeros(3, 8)
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(sd)
    message = str(err.value)
    assert 'Missing key(s) in state_dict: "head.bias"' in message
    assert 'Unexpected key(s) in state_dict: "extra"' in message
    assert "size mismatch for head.weight" in message and "[3, 8]" in message and "[2, 8]" in message


def test_load_state_dict_non_strict_returns_the_incompatible_keys():
    net = Net()
    sd = net.state_dict()
    del sd["head.bias"]
    sd["extra"] = engine.zeros(1)
    result = net.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["extra"]


def test_load_state_dict_copies_into_the_existing_parameters():
    net = Net()
    weight = net.head.weight
    sd = {k: engine.zeros_like(v) for k, v in net.state_dict().items()}
    net.load_state_dict(sd)
    assert net.head.weight is weight and weight.abs().sum().item() == 0
    assert weight.requires_grad


def test_train_and_eval_recurse_and_eval_returns_self():
    net = Net()
    assert net.eval() is net
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_train_rejects_a_non_bool_mode():
    with pytest.raises(ValueError, match="boolean"):
        Net().train(0)


def test_assigning_a_plain_tensor_to_a_parameter_name_is_an_error():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        layer.weight = engine.zeros(2, 2)


def test_unknown_attribute_error_names_the_class():
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'nope'"):
        _ = nn.Linear(2, 2).nope


def test_requires_grad_and_zero_grad():
    net = Net()
    net(engine.randn(2, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_apply_visits_children_before_the_parent():
    order = []
    Net().apply(lambda m: order.append(type(m).__name__))
    assert order == ["Linear", "ReLU", "Linear", "Sequential", "Linear", "Net"]


def test_to_float64_converts_parameters_and_buffers_in_place():
    net = Net()
    weight = net.head.weight
    net.to(engine.float64)
    assert net.head.weight is weight and weight.dtype == engine.float64 and net.scale.dtype == engine.float64
    with engine.no_grad():
        assert net(engine.randn(1, 4, dtype=engine.float64)).dtype == engine.float64


def test_forward_hooks_see_and_may_replace_the_output_and_can_be_removed():
    layer = nn.Linear(2, 2)
    handle = layer.register_forward_hook(lambda module, args, out: out * 0)
    assert layer(engine.ones(1, 2)).abs().sum().item() == 0
    handle.remove()
    assert layer(engine.ones(1, 2)).abs().sum().item() != 0


def test_forward_pre_hook_may_replace_the_input():
    layer = nn.Identity()
    layer.register_forward_pre_hook(lambda module, args: (args[0] * 2,))
    assert layer(engine.ones(2)).tolist() == [2.0, 2.0]


def test_repr_is_laid_out_as_pytorch():
    assert repr(Net()) == (
        "Net(\n"
        "  (features): Sequential(\n"
        "    (0): Linear(in_features=4, out_features=8, bias=True)\n"
        "    (1): ReLU()\n"
        "    (2): Linear(in_features=8, out_features=8, bias=True)\n"
        "  )\n"
        "  (head): Linear(in_features=8, out_features=2, bias=True)\n"
        ")")


def test_sequential_indexing_slicing_len_and_iteration():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]


def test_linear_default_init_is_within_pytorch_bounds():
    layer = nn.Linear(100, 50)
    bound = 1 / np.sqrt(100)
    w = layer.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(layer.bias.detach().numpy()).max() <= bound


def test_parameter_repr_and_defaults():
    p = nn.Parameter(engine.tensor([1.0]))
    assert p.requires_grad and p.is_leaf
    assert repr(p) == "Parameter containing:\ntensor([1.], requires_grad=True)"
