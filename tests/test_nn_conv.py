"""Convolution and pooling: gradients by finite differences, PyTorch parity, init, reprs, dtypes and errors."""

import math

import numpy as np
import pytest
from gradcheck import gradcheck

import engine
import engine.nn as nn
import engine.nn.functional as F

# PyTorch warns that its own 'same' padding of even kernels copies the input; the engine pads the same way.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float64) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


# -- gradients against finite differences (float64) -------------------------------------------------------
# name: (fn of engine tensors, input shapes)
CONV_CASES = {
    "plain": (lambda x, w, b: F.conv2d(x, w, b), [(2, 3, 5, 4), (4, 3, 3, 2), (4,)]),
    "stride_2": (lambda x, w, b: F.conv2d(x, w, b, stride=2), [(1, 2, 6, 7), (3, 2, 3, 3), (3,)]),
    "padding_1": (lambda x, w, b: F.conv2d(x, w, b, padding=1), [(1, 2, 4, 4), (3, 2, 3, 3), (3,)]),
    "padding_per_axis": (lambda x, w, b: F.conv2d(x, w, b, padding=(2, 0)), [(1, 2, 4, 5), (2, 2, 3, 3), (2,)]),
    "dilation_2": (lambda x, w, b: F.conv2d(x, w, b, dilation=2), [(1, 2, 6, 6), (2, 2, 3, 2), (2,)]),
    "stride_padding_dilation": (lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2)),
                                [(1, 2, 5, 6), (2, 2, 3, 3), (2,)]),
    "groups_2": (lambda x, w, b: F.conv2d(x, w, b, groups=2, padding=1), [(1, 4, 4, 4), (6, 2, 3, 3), (6,)]),
    "depthwise": (lambda x, w, b: F.conv2d(x, w, b, groups=3), [(2, 3, 4, 4), (6, 1, 3, 3), (6,)]),
    "same_even_kernel": (lambda x, w, b: F.conv2d(x, w, b, padding="same"), [(1, 2, 5, 4), (2, 2, 4, 2), (2,)]),
    "same_dilated": (lambda x, w, b: F.conv2d(x, w, b, padding="same", dilation=2), [(1, 2, 5, 5), (2, 2, 3, 3), (2,)]),
    "no_bias": (lambda x, w: F.conv2d(x, w, stride=2, padding=1), [(1, 2, 5, 5), (3, 2, 3, 3)]),
    "unbatched": (lambda x, w, b: F.conv2d(x, w, b, padding=1), [(2, 4, 3), (3, 2, 3, 3), (3,)]),
    "conv1d": (lambda x, w, b: F.conv1d(x, w, b), [(2, 3, 7), (4, 3, 3), (4,)]),
    "conv1d_stride_padding_dilation": (lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=2, dilation=2),
                                       [(2, 2, 8), (3, 2, 3), (3,)]),
    "conv1d_groups_same": (lambda x, w, b: F.conv1d(x, w, b, groups=2, padding="same"), [(1, 4, 6), (4, 2, 4), (4,)]),
    "conv1d_unbatched": (lambda x, w: F.conv1d(x, w, padding=1), [(2, 5), (3, 2, 3)]),
}

POOL_CASES = {
    "max_2": (lambda x: F.max_pool2d(x, 2), (2, 2, 4, 6)),
    "max_3_stride_2_padding_1": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1), (1, 2, 7, 6)),
    "max_overlapping": (lambda x: F.max_pool2d(x, (3, 2), stride=1), (1, 2, 5, 4)),
    "max_dilation_2": (lambda x: F.max_pool2d(x, 2, stride=1, dilation=2), (1, 1, 5, 6)),
    "max_ceil_mode": (lambda x: F.max_pool2d(x, 3, stride=2, ceil_mode=True), (1, 2, 6, 8)),
    "max_ceil_mode_padding": (lambda x: F.max_pool2d(x, 2, stride=2, padding=1, ceil_mode=True), (1, 1, 5, 6)),
    "max_unbatched": (lambda x: F.max_pool2d(x, 2), (2, 4, 4)),
    "avg_2": (lambda x: F.avg_pool2d(x, 2), (2, 2, 4, 6)),
    "avg_3_stride_2_padding_1": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1), (1, 2, 7, 6)),
    "avg_exclude_pad": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False), (1, 2, 7, 6)),
    "avg_ceil_mode": (lambda x: F.avg_pool2d(x, 3, stride=2, ceil_mode=True), (1, 2, 6, 8)),
    "avg_ceil_mode_exclude_pad": (lambda x: F.avg_pool2d(x, 2, padding=1, ceil_mode=True, count_include_pad=False),
                                  (1, 1, 5, 6)),
    "avg_divisor_override": (lambda x: F.avg_pool2d(x, 2, stride=1, divisor_override=3), (1, 1, 4, 4)),
    "adaptive_to_1": (lambda x: F.adaptive_avg_pool2d(x, 1), (2, 2, 5, 4)),
    "adaptive_non_divisible": (lambda x: F.adaptive_avg_pool2d(x, (3, 4)), (1, 2, 5, 7)),
    "adaptive_larger_than_input": (lambda x: F.adaptive_avg_pool2d(x, (5, 3)), (1, 1, 3, 2)),
    "adaptive_none_keeps_size": (lambda x: F.adaptive_avg_pool2d(x, (None, 2)), (1, 2, 3, 5)),
    "adaptive_unbatched": (lambda x: F.adaptive_avg_pool2d(x, 2), (2, 5, 5)),
}


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_conv_gradients_match_finite_differences(name):
    fn, shapes = CONV_CASES[name]
    gradcheck(fn, *[randn(*s) for s in shapes])


@pytest.mark.parametrize("name", list(POOL_CASES))
def test_pool_gradients_match_finite_differences(name):
    fn, shape = POOL_CASES[name]
    gradcheck(fn, randn(*shape))


def test_max_pool_gradient_goes_to_the_first_of_tied_maxima():
    x = engine.ones(1, 1, 2, 2, requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    assert x.grad.numpy().ravel().tolist() == [1, 0, 0, 0]


# -- shapes, dtypes and modes -----------------------------------------------------------------------------
def test_unbatched_conv2d_input_gives_unbatched_output():
    out = nn.Conv2d(2, 5, 3, padding=1)(engine.randn(2, 6, 7))
    assert out.shape == (5, 6, 7)


def test_conv1d_module_output_shape():
    assert nn.Conv1d(3, 4, 3, stride=2)(engine.randn(2, 3, 9)).shape == (2, 4, 4)


def test_empty_batch_gives_empty_output():
    assert nn.Conv2d(3, 4, 3)(engine.randn(0, 3, 5, 5)).shape == (0, 4, 3, 3)


def test_max_pool_module_stride_defaults_to_kernel_size():
    assert nn.MaxPool2d(2)(engine.randn(1, 1, 6, 6)).shape == (1, 1, 3, 3)


def test_max_pool_return_indices_gives_flat_positions_in_the_unpadded_input():
    x = engine.tensor([[[[1.0, 5.0, 2.0], [7.0, 3.0, 0.0], [4.0, 8.0, 6.0]]]])
    _, indices = F.max_pool2d(x, 2, stride=1, return_indices=True)
    assert indices.dtype is engine.int64 and indices.tolist() == [[[[3, 1], [7, 7]]]]


FLOAT32_CASES = {
    "conv2d": (lambda x: F.conv2d(x, engine.randn(3, 2, 3, 3, requires_grad=True), padding=1), (2, 2, 5, 5)),
    "conv1d": (lambda x: F.conv1d(x, engine.randn(3, 2, 3, requires_grad=True)), (2, 2, 5)),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1), (2, 2, 5, 5)),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False), (2, 2, 5, 5)),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, 3), (2, 2, 5, 5)),
}


@pytest.mark.parametrize("name", list(FLOAT32_CASES))
def test_float32_stays_float32_through_forward_and_backward(name):
    fn, shape = FLOAT32_CASES[name]
    x = engine.tensor(randn(*shape, dtype=np.float32), requires_grad=True)
    out = fn(x)
    out.sum().backward()
    assert out.dtype is engine.float32 and x.grad.dtype is engine.float32


def test_conv_module_parameter_gradients_are_float32():
    conv = nn.Conv2d(2, 3, 3)
    conv(engine.randn(1, 2, 4, 4)).sum().backward()
    assert conv.weight.grad.dtype is engine.float32 and conv.bias.grad.dtype is engine.float32


def test_forward_under_no_grad_records_no_graph():
    conv = nn.Conv2d(2, 3, 3)
    with engine.no_grad():
        out = conv(engine.randn(1, 2, 4, 4))
    assert out.grad_fn is None and not out.requires_grad


# -- default initialisation -------------------------------------------------------------------------------
def test_conv_default_init_is_uniform_within_one_over_sqrt_fan_in():
    conv = nn.Conv2d(16, 32, 3)
    bound = 1 / math.sqrt(16 * 3 * 3)  # kaiming_uniform_(a=sqrt(5)) reduces to this bound
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(b).max() <= bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_grouped_conv_fan_in_counts_channels_per_group():
    conv = nn.Conv1d(8, 8, 5, groups=4)
    assert conv.weight.shape == (8, 2, 5)
    assert np.abs(conv.bias.detach().numpy()).max() <= 1 / math.sqrt(2 * 5)


def test_conv_without_bias_registers_none():
    conv = nn.Conv2d(2, 3, 3, bias=False)
    assert conv.bias is None and [n for n, _ in conv.named_parameters()] == ["weight"]


# -- errors -----------------------------------------------------------------------------------------------
def test_conv2d_wrong_rank_names_the_shape():
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, "
                                           r"but got input of size: \[2, 3\]"):
        F.conv2d(engine.randn(2, 3), engine.randn(4, 3, 3, 3))


def test_conv1d_wrong_rank_names_the_shape():
    with pytest.raises(RuntimeError, match=r"input to conv1d, but got input of size: \[2, 3, 4, 5\]"):
        F.conv1d(engine.randn(2, 3, 4, 5), engine.randn(4, 3, 3))


def test_channel_mismatch_names_weight_and_input_shapes():
    expected = ("Given groups=1, weight of size [16, 3, 3, 3], expected input[8, 1, 8, 8] to have 3 channels, "
                "but got 1 channels instead")
    with pytest.raises(RuntimeError) as info:
        nn.Conv2d(3, 16, 3)(engine.randn(8, 1, 8, 8))
    assert str(info.value) == expected


def test_kernel_larger_than_padded_input_is_an_error():
    with pytest.raises(RuntimeError, match=r"padded input size per channel: \(4 x 4\). Kernel size: \(5 x 5\)"):
        F.conv2d(engine.randn(1, 1, 2, 2), engine.randn(1, 1, 3, 3), padding=1, dilation=2)


def test_bias_of_wrong_length_is_an_error():
    with pytest.raises(RuntimeError, match=r"expected bias to be 1-dimensional with 4 elements, but got bias of size "
                                           r"\[3\]"):
        F.conv2d(engine.randn(1, 2, 4, 4), engine.randn(4, 2, 3, 3), engine.randn(3))


def test_out_channels_not_divisible_by_groups_is_an_error():
    with pytest.raises(RuntimeError, match=r"Given groups=2, expected weight to be divisible by 2 at dimension 0"):
        F.conv2d(engine.randn(1, 4, 4, 4), engine.randn(5, 2, 3, 3), groups=2)


def test_input_and_weight_dtypes_must_match():
    with pytest.raises(RuntimeError, match=r"Input type \(engine.float32\) and weight type \(engine.float64\)"):
        F.conv2d(engine.randn(1, 2, 4, 4), engine.randn(3, 2, 3, 3, dtype=engine.float64))


def test_same_padding_with_stride_is_an_error():
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        nn.Conv2d(2, 2, 3, stride=2, padding="same")


def test_unknown_padding_string_is_an_error():
    with pytest.raises(RuntimeError, match="Invalid padding string: 'full'"):
        F.conv2d(engine.randn(1, 2, 4, 4), engine.randn(3, 2, 3, 3), padding="full")


def test_unknown_padding_mode_is_an_error_naming_it():
    with pytest.raises(ValueError, match="padding_mode='mirror'"):
        nn.Conv2d(2, 2, 3, padding_mode="mirror")


def test_in_channels_not_divisible_by_groups_is_an_error():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)


def test_pool_padding_over_half_the_kernel_is_an_error():
    with pytest.raises(RuntimeError, match="pad should be at most half of effective kernel size"):
        F.max_pool2d(engine.randn(1, 1, 4, 4), 3, padding=2)


def test_pool_window_larger_than_input_is_an_error():
    with pytest.raises(RuntimeError, match=r"Given input size: \(1x2x2\). Calculated output size: \(1x0x0\)"):
        F.avg_pool2d(engine.randn(1, 1, 2, 2), 3)


def test_pool_wrong_rank_names_the_shape():
    with pytest.raises(RuntimeError, match=r"input to max_pool2d, but got input of size: \[4, 4\]"):
        nn.MaxPool2d(2)(engine.randn(4, 4))


def test_adaptive_pool_output_size_of_three_entries_is_an_error():
    with pytest.raises(RuntimeError, match="output_size must be 2"):
        F.adaptive_avg_pool2d(engine.randn(1, 1, 4, 4), (1, 2, 3))


# -- parity with PyTorch (float32) ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")


# name: (module class name, constructor args, constructor kwargs, input shape)
MODULE_CASES = {
    "conv2d_padding_1": ("Conv2d", (3, 8, 3), {"padding": 1}, (2, 3, 9, 8)),
    "conv2d_stride_2": ("Conv2d", (3, 4, (3, 2)), {"stride": 2}, (2, 3, 9, 8)),
    "conv2d_dilation_2": ("Conv2d", (2, 4, 3), {"dilation": 2, "padding": (1, 2)}, (2, 2, 9, 8)),
    "conv2d_groups_2": ("Conv2d", (4, 6, 3), {"groups": 2, "padding": 1, "bias": False}, (2, 4, 7, 7)),
    "conv2d_depthwise": ("Conv2d", (4, 8, 3), {"groups": 4, "stride": 2, "padding": 1}, (2, 4, 9, 9)),
    "conv2d_same_even_kernel": ("Conv2d", (3, 4, 4), {"padding": "same"}, (2, 3, 7, 6)),
    "conv2d_valid": ("Conv2d", (3, 4, 3), {"padding": "valid"}, (2, 3, 6, 6)),
    "conv2d_1x1": ("Conv2d", (6, 4, 1), {}, (2, 6, 5, 5)),
    "conv2d_unbatched": ("Conv2d", (3, 4, 3), {"padding": 1}, (3, 6, 5)),
    "conv1d": ("Conv1d", (3, 5, 3), {"stride": 2, "padding": 1, "dilation": 2}, (2, 3, 11)),
    "conv1d_groups_same": ("Conv1d", (4, 4, 4), {"groups": 2, "padding": "same"}, (2, 4, 9)),
    "conv1d_unbatched": ("Conv1d", (3, 5, 3), {}, (3, 8)),
    "max_pool_2": ("MaxPool2d", (2,), {}, (2, 3, 8, 7)),
    "max_pool_3_2_1": ("MaxPool2d", (3,), {"stride": 2, "padding": 1}, (2, 3, 9, 8)),
    "max_pool_dilation_ceil": ("MaxPool2d", ((3, 2),), {"stride": (2, 1), "dilation": (1, 2), "ceil_mode": True},
                               (2, 3, 8, 7)),
    "max_pool_unbatched": ("MaxPool2d", (2,), {"ceil_mode": True}, (3, 5, 5)),
    "avg_pool_2": ("AvgPool2d", (2,), {}, (2, 3, 8, 7)),
    "avg_pool_3_2_1": ("AvgPool2d", (3,), {"stride": 2, "padding": 1}, (2, 3, 9, 8)),
    "avg_pool_exclude_pad_ceil": ("AvgPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True,
                                                      "count_include_pad": False}, (2, 3, 8, 8)),
    "avg_pool_ceil_include_pad": ("AvgPool2d", ((2, 3),), {"stride": 2, "padding": 1, "ceil_mode": True},
                                  (2, 3, 8, 8)),
    "avg_pool_divisor_override": ("AvgPool2d", (3,), {"stride": 1, "padding": 1, "divisor_override": 4},
                                  (2, 3, 5, 5)),
    "adaptive_to_1": ("AdaptiveAvgPool2d", (1,), {}, (2, 3, 7, 6)),
    "adaptive_non_divisible": ("AdaptiveAvgPool2d", ((3, 4),), {}, (2, 3, 7, 10)),
    "adaptive_upsampling": ("AdaptiveAvgPool2d", ((5, 7),), {}, (2, 3, 3, 4)),
    "adaptive_none": ("AdaptiveAvgPool2d", ((None, 2),), {}, (2, 3, 4, 5)),
}


def _twins(torch, name: str, args, kwargs):
    """The torch module and an engine module holding its parameters (via load_state_dict)."""
    torch_module = getattr(torch.nn, name)(*args, **kwargs)
    engine_module = getattr(nn, name)(*args, **kwargs)
    engine_module.load_state_dict({k: engine.tensor(v.detach().numpy()) for k, v in torch_module.state_dict().items()})
    return torch_module, engine_module


def _run(module, framework, x: np.ndarray, upstream: np.ndarray):
    """Output, input gradient and parameter gradients (by name) after backward of sum(out * upstream)."""
    leaf = framework.tensor(x, requires_grad=True)
    out = module(leaf)
    (out * framework.tensor(upstream)).sum().backward()
    grads = {n: p.grad.numpy() for n, p in module.named_parameters()}
    return out.detach().numpy(), leaf.grad.numpy(), grads


def _close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale)


@pytest.fixture(params=list(MODULE_CASES))
def parity_run(request, torch):
    """(engine run, torch run) of one module case on the same float32 input and upstream gradient."""
    name, args, kwargs, shape = MODULE_CASES[request.param]
    torch_module, engine_module = _twins(torch, name, args, kwargs)
    x = randn(*shape, dtype=np.float32)
    with torch.no_grad():
        upstream = randn(*torch_module(torch.from_numpy(x)).shape, dtype=np.float32)
    return _run(engine_module, engine, x, upstream), _run(torch_module, torch, x, upstream)


@pytest.mark.parity
def test_module_forward_matches_torch(parity_run):
    (e_out, _, _), (t_out, _, _) = parity_run
    _close(e_out, t_out)


@pytest.mark.parity
def test_module_input_gradient_matches_torch(parity_run):
    (_, e_grad, _), (_, t_grad, _) = parity_run
    _close(e_grad, t_grad)


@pytest.mark.parity
def test_module_parameter_gradients_match_torch(parity_run):
    (_, _, e_grads), (_, _, t_grads) = parity_run
    assert e_grads.keys() == t_grads.keys()
    for name in t_grads:
        _close(e_grads[name], t_grads[name])


@pytest.mark.parity
def test_convnet_forward_and_gradients_match_torch(torch):
    def build(m):
        return m.Sequential(m.Conv2d(3, 8, 3, padding=1), m.ReLU(), m.MaxPool2d(2), m.Conv2d(8, 6, 3, padding=1,
                            groups=2), m.ReLU(), m.AvgPool2d(2, ceil_mode=True), m.AdaptiveAvgPool2d(1))
    torch_net, engine_net = build(torch.nn), build(nn)
    engine_net.load_state_dict({k: engine.tensor(v.detach().numpy()) for k, v in torch_net.state_dict().items()})
    x, upstream = randn(4, 3, 12, 12, dtype=np.float32), randn(4, 6, 1, 1, dtype=np.float32)
    (e_out, e_gx, e_grads), (t_out, t_gx, t_grads) = (_run(engine_net, engine, x, upstream),
                                                       _run(torch_net, torch, x, upstream))
    _close(e_out, t_out)
    _close(e_gx, t_gx)
    for name in t_grads:
        _close(e_grads[name], t_grads[name])


MAX_POOL_INDEX_CASES = {
    "plain": {"kernel_size": 2},
    "padding_stride": {"kernel_size": 3, "stride": 2, "padding": 1},
    "dilation_ceil": {"kernel_size": (2, 3), "stride": 2, "dilation": (2, 1), "ceil_mode": True},
}


@pytest.mark.parity
@pytest.mark.parametrize("name", list(MAX_POOL_INDEX_CASES))
def test_max_pool_indices_match_torch(torch, name):
    kwargs = MAX_POOL_INDEX_CASES[name]
    x = randn(2, 3, 9, 8, dtype=np.float32)
    _, e_idx = F.max_pool2d(engine.tensor(x), return_indices=True, **kwargs)
    _, t_idx = torch.nn.functional.max_pool2d(torch.from_numpy(x), return_indices=True, **kwargs)
    np.testing.assert_array_equal(e_idx.numpy(), t_idx.numpy())


@pytest.mark.parity
def test_max_pool_ties_resolve_like_torch_in_indices_and_gradient(torch):
    x = rng.integers(0, 3, (2, 2, 7, 7)).astype(np.float32)  # many tied maxima, in overlapping windows
    kwargs = {"kernel_size": 3, "stride": 2, "padding": 1, "return_indices": True}
    e_x, t_x = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (e_out, e_idx), (t_out, t_idx) = F.max_pool2d(e_x, **kwargs), torch.nn.functional.max_pool2d(t_x, **kwargs)
    e_out.sum().backward()
    t_out.sum().backward()
    np.testing.assert_array_equal(e_idx.numpy(), t_idx.numpy())
    np.testing.assert_array_equal(e_x.grad.numpy(), t_x.grad.numpy())


@pytest.mark.parity
def test_max_pool_nan_and_all_minus_inf_windows_match_torch(torch):
    x = np.full((1, 1, 5, 5), -np.inf, np.float32)
    x[0, 0, 0, :2] = x[0, 0, 1, 0] = np.nan  # torch picks the last NaN in scan order
    x[0, 0, 3:, 3:] = randn(2, 2, dtype=np.float32)
    e_x, t_x = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    e_out, e_idx = F.max_pool2d(e_x, 2, padding=1, return_indices=True)
    t_out, t_idx = torch.nn.functional.max_pool2d(t_x, 2, padding=1, return_indices=True)
    e_out.sum().backward()
    t_out.sum().backward()
    np.testing.assert_array_equal(e_out.detach().numpy(), t_out.detach().numpy())
    np.testing.assert_array_equal(e_idx.numpy(), t_idx.numpy())
    np.testing.assert_array_equal(e_x.grad.numpy(), t_x.grad.numpy())


REPR_CASES = [
    ("Conv2d", (1, 16, 3), {"padding": 1}),
    ("Conv2d", (3, 8, (3, 5)), {}),
    ("Conv2d", (4, 8, 3), {"stride": 2, "padding": (1, 0), "dilation": 2, "groups": 4, "bias": False}),
    ("Conv2d", (4, 8, 4), {"padding": "same"}),
    ("Conv2d", (4, 8, 3), {"padding": "valid"}),
    ("Conv1d", (4, 8, 3), {}),
    ("Conv1d", (4, 8, 3), {"stride": 2, "padding": 1, "dilation": 3, "groups": 2, "bias": False}),
    ("MaxPool2d", (2,), {}),
    ("MaxPool2d", ((3, 2),), {"stride": 1, "padding": 1, "dilation": 2, "return_indices": True, "ceil_mode": True}),
    ("AvgPool2d", (2,), {}),
    ("AvgPool2d", (3, 2, 1), {"ceil_mode": True, "count_include_pad": False, "divisor_override": 2}),
    ("AdaptiveAvgPool2d", (1,), {}),
    ("AdaptiveAvgPool2d", ((None, 7),), {}),
]


@pytest.mark.parity
@pytest.mark.parametrize("case", REPR_CASES, ids=lambda c: f"{c[0]}{c[1]}{c[2]}")
def test_repr_matches_torch(torch, case):
    name, args, kwargs = case
    assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


@pytest.mark.parity
def test_sequential_convnet_repr_matches_torch(torch):
    def build(m):
        return m.Sequential(m.Conv2d(3, 32, 3, padding=1), m.ReLU(), m.MaxPool2d(2), m.AdaptiveAvgPool2d(1))
    assert repr(build(nn)) == repr(build(torch.nn))


@pytest.mark.parity
@pytest.mark.parametrize("shape", [(64, 16, 3, 3), (32, 4, 5)], ids=["conv2d", "conv1d"])
def test_default_init_bounds_and_spread_match_torch(torch, shape):
    name = "Conv2d" if len(shape) == 4 else "Conv1d"
    args = (shape[1], shape[0], shape[2])
    t_conv, e_conv = getattr(torch.nn, name)(*args), getattr(nn, name)(*args)
    bound = 1 / math.sqrt(math.prod(shape[1:]))
    for param in ("weight", "bias"):
        t = getattr(t_conv, param).detach().numpy()
        e = getattr(e_conv, param).detach().numpy()
        assert e.shape == t.shape and e.dtype == t.dtype
        assert np.abs(t).max() <= bound and np.abs(e).max() <= bound
    t_w, e_w = t_conv.weight.detach().numpy(), e_conv.weight.detach().numpy()
    assert e_w.std() == pytest.approx(t_w.std(), rel=0.1)


ERROR_CASES = {
    "rank": lambda m, x: m.nn.functional.conv2d(x(2, 3), x(4, 3, 3, 3)),
    "channels": lambda m, x: m.nn.functional.conv2d(x(8, 1, 8, 8), x(16, 3, 3, 3)),
    "channels_unbatched": lambda m, x: m.nn.functional.conv2d(x(1, 8, 8), x(16, 3, 3, 3)),
    "groups_channels": lambda m, x: m.nn.functional.conv2d(x(1, 4, 8, 8), x(6, 2, 3, 3), groups=3),
    "kernel_too_large": lambda m, x: m.nn.functional.conv2d(x(1, 3, 2, 2), x(4, 3, 3, 3)),
    "kernel_too_large_1d": lambda m, x: m.nn.functional.conv1d(x(2, 3, 2), x(6, 3, 3)),
    "bias": lambda m, x: m.nn.functional.conv2d(x(1, 3, 8, 8), x(6, 3, 3, 3), x(5)),
    "negative_padding": lambda m, x: m.nn.functional.conv2d(x(1, 3, 8, 8), x(6, 3, 3, 3), padding=-1),
    "zero_stride": lambda m, x: m.nn.functional.conv2d(x(1, 3, 8, 8), x(6, 3, 3, 3), stride=0),
    "pool_pad": lambda m, x: m.nn.functional.max_pool2d(x(1, 1, 4, 4), 3, padding=2),
    "pool_too_small": lambda m, x: m.nn.functional.max_pool2d(x(1, 1, 1, 1), 3),
    "pool_negative_pad": lambda m, x: m.nn.functional.avg_pool2d(x(1, 1, 4, 4), 2, padding=-1),
}


@pytest.mark.parity
@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_error_message_matches_torch(torch, name):
    messages = []
    for m in (engine, torch):
        with pytest.raises(RuntimeError) as info:
            ERROR_CASES[name](m, m.randn)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
