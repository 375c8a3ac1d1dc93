"""Module.load_state_dict reports missing and unexpected keys as PyTorch does: its return value and its error text."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn as nn

torch = pytest.importorskip("torch", reason="load_state_dict parity tests need PyTorch (pip install '.[parity]')")
pytestmark = pytest.mark.parity


def build(lib):
    """The same small model in PyTorch (lib=torch.nn) and in the engine (lib=engine.nn)."""
    return lib.Sequential(lib.Linear(2, 3), lib.BatchNorm1d(3), lib.Sequential(lib.Linear(3, 1, bias=False)))


def both(edit=None):
    """(torch model, engine model, torch state dict, engine state dict), the state dicts edited alike by `edit`.

    Plain dicts, as safetensors files give: without the per-module versions torch's own state dicts carry.
    """
    torch_model, engine_model = build(torch.nn), build(nn)
    torch_state = dict(torch_model.state_dict())
    if edit is not None:
        edit(torch_state)
    engine_state = {k: engine.tensor(v.numpy()) for k, v in torch_state.items()}
    return torch_model, engine_model, torch_state, engine_state


def outcome(model, state, **kwargs) -> str:
    """What load_state_dict says: its error text, or the repr of what it returns."""
    try:
        return repr(model.load_state_dict(state, **kwargs))
    except RuntimeError as e:
        return str(e)


def assert_same_outcome(edit, **kwargs) -> str:
    torch_model, engine_model, torch_state, engine_state = both(edit)
    expected = outcome(torch_model, torch_state, **kwargs).replace("torch.Size", "engine.Size")
    assert outcome(engine_model, engine_state, **kwargs) == expected
    return expected


def test_matching_state_dict_reports_all_keys_matched():
    assert assert_same_outcome(None) == "<All keys matched successfully>"


def test_missing_parameter_error_text_is_torchs():
    assert "Missing key(s)" in assert_same_outcome(lambda sd: sd.pop("0.bias"))


def test_missing_buffer_error_text_is_torchs():
    assert '"1.running_mean"' in assert_same_outcome(lambda sd: sd.pop("1.running_mean"))


def test_unexpected_keys_error_text_is_torchs_in_torchs_order():
    def edit(sd):
        sd["extra"] = torch.zeros(1)
        sd["0.extra"] = torch.zeros(1)
        sd["9.weight"] = torch.zeros(1)
        sd["2.0.bias"] = torch.zeros(1)  # the Linear has no bias
    assert "Unexpected key(s)" in assert_same_outcome(edit)


def test_missing_and_unexpected_together_error_text_is_torchs():
    def edit(sd):
        sd.pop("2.0.weight")
        sd["extra"] = torch.zeros(1)
    assert "Missing key(s)" in assert_same_outcome(edit)


def test_size_mismatch_error_text_is_torchs():
    def edit(sd):
        sd["0.weight"] = torch.zeros(4, 2)
    assert "size mismatch for 0.weight" in assert_same_outcome(edit)


def test_size_mismatch_is_an_error_even_when_not_strict():
    def edit(sd):
        sd["0.weight"] = torch.zeros(4, 2)
    assert "size mismatch" in assert_same_outcome(edit, strict=False)


def test_non_strict_returns_torchs_missing_and_unexpected_keys():
    def edit(sd):
        sd.pop("1.running_var")
        sd["extra"] = torch.zeros(1)
    assert "missing_keys=['1.running_var']" in assert_same_outcome(edit, strict=False)


def test_batch_norm_loads_a_state_dict_without_num_batches_tracked():
    assert assert_same_outcome(lambda sd: sd.pop("1.num_batches_tracked")) == "<All keys matched successfully>"


def test_batch_norm_without_num_batches_tracked_keeps_its_own_count():
    _, model, _, state = both(lambda sd: sd.pop("1.num_batches_tracked"))
    model[1].num_batches_tracked.fill_(5)
    model.load_state_dict(state)
    assert model[1].num_batches_tracked.item() == 5


def test_version_2_checkpoint_without_num_batches_tracked_is_refused_as_by_torch(tmp_path):
    torch_model, engine_model = build(torch.nn), build(nn)
    state = torch_model.state_dict()  # carries torch's per-module versions, which torch.save keeps
    del state["1.num_batches_tracked"]
    torch.save(state, tmp_path / "v2.pt")
    expected = outcome(torch_model, torch.load(tmp_path / "v2.pt"))
    assert outcome(engine_model, engine.load(tmp_path / "v2.pt")) == expected
    assert '"1.num_batches_tracked"' in expected


def test_non_tensor_value_is_reported_with_its_key():
    _, model, _, state = both()
    state["0.bias"] = "not a tensor"
    with pytest.raises(RuntimeError, match=r'While copying the parameter named "0\.bias".*<class \'str\'>'):
        model.load_state_dict(state)


def test_state_dict_that_is_not_a_mapping_is_a_type_error():
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like, got <class 'list'>"):
        build(nn).load_state_dict([])


def test_assign_puts_the_checkpoint_tensors_in_place_keeping_requires_grad():
    _, model, _, state = both()
    model.load_state_dict(state, assign=True)
    assert isinstance(model[0].weight, nn.Parameter) and model[0].weight.requires_grad
    assert model[1].running_mean is state["1.running_mean"]
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), state["0.weight"].numpy())


def test_one_element_vector_loads_into_a_zero_dim_buffer_as_in_torch():
    _, model, _, state = both(lambda sd: sd.update({"1.num_batches_tracked": torch.tensor([7])}))
    model.load_state_dict(state)
    assert model[1].num_batches_tracked.shape == () and model[1].num_batches_tracked.item() == 7
