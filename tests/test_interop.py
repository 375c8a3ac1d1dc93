"""Checkpoints cross between PyTorch and the engine through safetensors; bad files fail with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import engine
import zoo
from engine.nn import init
from zoo.models import convnet

FIXTURES = Path(__file__).parent / "fixtures"
TORCH_CHECKPOINT = FIXTURES / "torch_convnet.safetensors"
TORCH_IO = FIXTURES / "torch_convnet_io.safetensors"


def engine_outputs(model, inputs: np.ndarray) -> np.ndarray:
    """The model's logits for `inputs`, in eval mode under no_grad."""
    model.eval()
    with engine.no_grad():
        return model(engine.from_numpy(inputs)).numpy()


def randomise_batch_norm(model) -> None:
    """Running statistics and affine terms away from their defaults, so a wrong mapping would show."""
    for module in model.modules():
        if isinstance(module, engine.nn.BatchNorm2d):
            init.uniform_(module.running_mean, -0.5, 0.5)
            init.uniform_(module.running_var, 0.5, 2.0)
            init.uniform_(module.weight, 0.5, 1.5)
            init.uniform_(module.bias, -0.2, 0.2)


# -- the committed fixture: no torch needed ------------------------------------------------------------
def test_torch_saved_convnet_loads_into_the_zoo_convnet_and_matches_torch_outputs():
    model = convnet()
    model.load_state_dict(engine.load(TORCH_CHECKPOINT))
    io = engine.load(TORCH_IO)
    out = engine_outputs(model, io["input"].numpy())
    np.testing.assert_allclose(out, io["output"].numpy(), rtol=1e-5, atol=1e-5)


def test_torch_saved_convnet_has_exactly_the_zoo_convnet_keys_and_shapes():
    saved = engine.load(TORCH_CHECKPOINT)
    own = convnet().state_dict()
    assert {k: tuple(v.shape) for k, v in saved.items()} == {k: tuple(v.shape) for k, v in own.items()}


def test_engine_save_keeps_a_zero_dim_buffer_zero_dim(tmp_path):
    model = convnet()
    engine.save(model.state_dict(), tmp_path / "convnet.safetensors")
    assert tuple(engine.load(tmp_path / "convnet.safetensors")["bn1.num_batches_tracked"].shape) == ()


# -- bad files ------------------------------------------------------------------------------------------
def test_truncated_checkpoint_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "truncated.safetensors"
    data = TORCH_CHECKPOINT.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.safetensors is not a valid safetensors file"):
        engine.load(path)


def test_non_safetensors_file_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "digits.safetensors"
    path.write_bytes(zoo.DIGITS_TEST.read_bytes())  # a Parquet file under the wrong name
    with pytest.raises(ValueError, match="digits.safetensors is not a valid safetensors file"):
        engine.load(path)


def test_missing_checkpoint_is_refused_naming_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        engine.load(tmp_path / "nowhere.safetensors")


def test_checkpoint_of_another_shape_is_refused_naming_the_key_and_both_shapes():
    state = engine.load(TORCH_CHECKPOINT)
    state["fc2.weight"] = engine.zeros(7, 64)
    with pytest.raises(RuntimeError, match=r"fc2\.weight.*\[7, 64\].*\[10, 64\]"):
        convnet().load_state_dict(state)


def test_checkpoint_of_another_model_is_refused_naming_the_missing_keys():
    with pytest.raises(RuntimeError, match=r'Missing key\(s\).*"conv1\.weight"'):
        convnet().load_state_dict(engine.load(zoo.WEIGHTS["mlp"]))


# -- live parity with PyTorch ---------------------------------------------------------------------------
@pytest.mark.parity
@pytest.mark.parametrize("name", zoo.FACTORIES)
def test_torch_checkpoint_gives_the_engine_model_torch_outputs(name, tmp_path):
    torch = pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    reference = zoo.FACTORIES[name](torch.nn).eval()
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            with torch.no_grad():
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    save_file(reference.state_dict(), str(tmp_path / "model.safetensors"))
    model = zoo.FACTORIES[name]()
    model.load_state_dict(engine.load(tmp_path / "model.safetensors"))
    inputs = np.random.default_rng(0).random((16, *zoo.INPUT_SHAPES[name]), dtype=np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(inputs)).numpy()
    np.testing.assert_allclose(engine_outputs(model, inputs), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("name", zoo.FACTORIES)
def test_engine_checkpoint_gives_the_torch_model_engine_outputs(name, tmp_path):
    torch = pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")
    from safetensors.torch import load_file

    engine.manual_seed(0)
    model = zoo.FACTORIES[name]()
    randomise_batch_norm(model)
    engine.save(model.state_dict(), tmp_path / "model.safetensors")
    reference = zoo.FACTORIES[name](torch.nn)
    reference.load_state_dict(load_file(str(tmp_path / "model.safetensors")))  # strict: keys and shapes agree
    inputs = np.random.default_rng(1).random((16, *zoo.INPUT_SHAPES[name]), dtype=np.float32)
    with torch.no_grad():
        expected = reference.eval()(torch.from_numpy(inputs)).numpy()
    np.testing.assert_allclose(engine_outputs(model, inputs), expected, rtol=1e-5, atol=1e-5)
