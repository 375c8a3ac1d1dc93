"""Model families against PyTorch: torchvision's ResNet-18, a MobileNetV3-small-style net and a small UNet
(zoo/families.py), built in PyTorch with seeded weights and non-trivial normalisation statistics, written with
safetensors and with torch.save, loaded strictly into the engine's twin, and compared in eval under no_grad."""

import numpy as np
import pytest

import engine
import engine.nn as nn
from zoo.families import mobilenet_v3_small, resnet18, unet

torch = pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")
from torch_checkpoints import FORMATS, torch_state_dicts  # noqa: E402 (needs torch)

pytestmark = pytest.mark.parity

# name: (factory(nn), input shape); small inputs keep the whole file to a few seconds
FAMILIES = {
    "resnet18": (lambda nn: resnet18(nn, num_classes=10), (2, 3, 32, 32)),
    "mobilenet_v3_small": (lambda nn: mobilenet_v3_small(nn, num_classes=10), (2, 3, 64, 64)),
    "unet": (lambda nn: unet(nn, in_channels=3, classes=2, width=8), (2, 3, 32, 32)),
}
ATOL, RTOL = 2e-4, 2e-3


def _reference(name: str):
    """The PyTorch model: seeded weights, normalisation layers with random affine parameters and running
    statistics (a few training forwards, then random values on top), in eval mode."""
    factory, shape = FAMILIES[name]
    torch.manual_seed(0)
    model = factory(torch.nn)
    with torch.no_grad():
        model.train()
        for _ in range(2):
            model(torch.randn(*shape))
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.GroupNorm, torch.nn.InstanceNorm2d)):
                if module.weight is not None:
                    module.weight.normal_(1.0, 0.2)
                    module.bias.normal_(0.0, 0.2)
                if getattr(module, "running_mean", None) is not None:
                    module.running_mean.normal_(0.0, 0.2)
                    module.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request, tmp_path_factory):
    """(name, torch model, {format: state dict read by engine.load}, input)."""
    name = request.param
    reference = _reference(name)
    states = torch_state_dicts(reference, tmp_path_factory.mktemp(name))
    x = np.random.default_rng(1).standard_normal(FAMILIES[name][1]).astype(np.float32)
    return name, reference, states, x


def test_engine_model_has_torchs_state_dict_keys_and_shapes(family):
    name, reference, _, _ = family
    ours = FAMILIES[name][0](nn).state_dict()
    assert [(k, tuple(v.shape)) for k, v in ours.items()] == [(k, tuple(v.shape))
                                                              for k, v in reference.state_dict().items()]


@pytest.mark.parametrize("fmt", FORMATS)
def test_checkpoint_loads_strictly_and_eval_outputs_match_torch(family, fmt):
    name, reference, states, x = family
    model = FAMILIES[name][0](nn)
    model.load_state_dict(states[fmt])  # strict: every key, shape and buffer
    model.eval()
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    with engine.no_grad():
        out = model(engine.from_numpy(x)).numpy()
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=ATOL, rtol=RTOL)


def test_eval_forward_under_no_grad_keeps_nothing_for_backward(family):
    name, _, states, x = family
    model = FAMILIES[name][0](nn)
    model.load_state_dict(states["safetensors"])
    engine.reset_peak_memory_stats()
    with engine.no_grad():
        model.eval()(engine.from_numpy(x))
    assert engine.memory_stats()["saved_bytes.peak"] == 0


def test_eval_outputs_match_torch_under_inference_mode_too(family):
    name, reference, states, x = family
    model = FAMILIES[name][0](nn)
    model.load_state_dict(states["torch.save"])
    with torch.inference_mode():
        expected = reference(torch.from_numpy(x)).numpy()
    with engine.inference_mode():
        out = model.eval()(engine.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, expected, atol=ATOL, rtol=RTOL)
