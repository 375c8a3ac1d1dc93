"""Convolution beyond the basics: every forward path of the kernels (depthwise, 1x1, channels-first and -last
columns, chunks of samples, taps that only see padding), ConvTranspose1d/2d, padding modes, and 1-D and adaptive
max pooling: PyTorch's values, gradients, reprs, keys, saved bytes and errors."""

import numpy as np
import pytest
from gradcheck import gradcheck
from module_parity import assert_runs_match, run, twins

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.ops import conv_kernels

rng = np.random.default_rng(0)

# name: (factory(nn), input shape). Shapes are chosen to take each forward path of conv_kernels, with 9 samples
# where the GEMM runs over chunks (a full chunk of 8 and a last chunk of one, which the GEMM writes in place).
MODULES = {
    "conv_channels_first_chunks": (lambda nn: nn.Conv2d(4, 6, 3, padding=1), (9, 4, 16, 16)),
    "conv_channels_last_chunks": (lambda nn: nn.Conv2d(20, 8, 3, stride=2, padding=1), (9, 20, 32, 32)),
    "conv_channels_last_dilated": (lambda nn: nn.Conv2d(16, 8, 3, padding=2, dilation=2, bias=False), (2, 16, 9, 7)),
    "conv_deep_kernel": (lambda nn: nn.Conv2d(288, 4, 3, padding=1), (2, 288, 4, 4)),
    "conv_depthwise": (lambda nn: nn.Conv2d(24, 24, 3, padding=1, groups=24), (3, 24, 9, 9)),
    "conv_depthwise_channels_last": (lambda nn: nn.Conv2d(48, 48, 3, stride=2, padding=1, groups=48), (3, 48, 9, 9)),
    "conv_depthwise_5x5_stride_2": (lambda nn: nn.Conv2d(12, 12, 5, stride=2, padding=2, groups=12), (3, 12, 9, 8)),
    "conv_depthwise_few_channels_stride_2": (lambda nn: nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8),
                                             (3, 8, 14, 13)),
    "conv_depthwise_small_map": (lambda nn: nn.Conv2d(40, 40, 5, padding=2, groups=40, bias=False), (3, 40, 7, 7)),
    "conv_depthwise_multiplier": (lambda nn: nn.Conv2d(6, 12, 3, padding=1, groups=6), (2, 6, 7, 7)),
    "conv_pointwise_large_map": (lambda nn: nn.Conv2d(8, 5, 1), (3, 8, 20, 20)),
    "conv_pointwise_small_map": (lambda nn: nn.Conv2d(32, 16, 1), (5, 32, 4, 4)),
    "conv_pointwise_one_pixel": (lambda nn: nn.Conv2d(8, 4, 1), (3, 8, 1, 1)),
    "conv_padding_only_taps": (lambda nn: nn.Conv2d(32, 16, 3, padding=1), (4, 32, 1, 1)),
    "conv_padding_only_rows": (lambda nn: nn.Conv2d(16, 8, (5, 3), padding=(2, 1)), (3, 16, 1, 6)),
    "conv_reflect": (lambda nn: nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), (2, 3, 6, 7)),
    "conv_replicate_same_even": (lambda nn: nn.Conv2d(3, 4, 4, padding="same", padding_mode="replicate"),
                                 (2, 3, 6, 7)),
    "conv_circular_per_axis": (lambda nn: nn.Conv2d(3, 4, 3, padding=(2, 1), padding_mode="circular"),
                               (2, 3, 6, 7)),
    "conv_reflect_unbatched": (lambda nn: nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), (3, 6, 7)),
    "conv1d_circular": (lambda nn: nn.Conv1d(3, 4, 3, padding=2, padding_mode="circular"), (2, 3, 8)),
    "conv_transpose2d": (lambda nn: nn.ConvTranspose2d(4, 6, 3), (2, 4, 5, 6)),
    "conv_transpose2d_upsampling": (lambda nn: nn.ConvTranspose2d(8, 4, 2, stride=2), (2, 8, 5, 5)),
    "conv_transpose2d_everything": (lambda nn: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1,
                                                                   groups=2, dilation=2), (2, 4, 5, 4)),
    "conv_transpose2d_unbatched": (lambda nn: nn.ConvTranspose2d(4, 2, 3, stride=2, bias=False), (4, 3, 3)),
    "conv_transpose1d": (lambda nn: nn.ConvTranspose1d(3, 5, 4, stride=2, padding=1), (2, 3, 7)),
    "max_pool1d": (lambda nn: nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 9)),
    "max_pool1d_dilation_ceil": (lambda nn: nn.MaxPool1d(2, 2, 0, 2, ceil_mode=True), (2, 3, 10)),
    "avg_pool1d": (lambda nn: nn.AvgPool1d(3, 2, 1, count_include_pad=False), (2, 3, 9)),
    "avg_pool1d_unbatched": (lambda nn: nn.AvgPool1d(2), (3, 9)),
    "adaptive_avg_pool1d": (lambda nn: nn.AdaptiveAvgPool1d(4), (2, 3, 9)),
    "adaptive_max_pool1d": (lambda nn: nn.AdaptiveMaxPool1d(4), (2, 3, 9)),
    "adaptive_max_pool2d": (lambda nn: nn.AdaptiveMaxPool2d((3, 2)), (2, 3, 7, 5)),
    "adaptive_max_pool2d_none": (lambda nn: nn.AdaptiveMaxPool2d((None, 2)), (2, 3, 4, 5)),
    "adaptive_max_pool2d_unbatched": (lambda nn: nn.AdaptiveMaxPool2d(1), (3, 4, 5)),
}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")


@pytest.mark.parity
@pytest.mark.parametrize("name", list(MODULES))
def test_module_values_and_gradients_match_torch(torch, name):
    factory, shape = MODULES[name]
    torch_module, engine_module = twins(torch, factory)
    x = rng.standard_normal(shape).astype(np.float32)
    assert_runs_match(run(engine_module, engine, x), run(torch_module, torch, x))


@pytest.mark.parity
@pytest.mark.parametrize("name", list(MODULES))
def test_repr_and_state_dict_keys_match_torch(torch, name):
    factory, _ = MODULES[name]
    assert repr(factory(nn)) == repr(factory(torch.nn))
    ours, theirs = factory(nn).state_dict(), factory(torch.nn).state_dict()
    assert [(k, tuple(v.shape)) for k, v in ours.items()] == [(k, tuple(v.shape)) for k, v in theirs.items()]


@pytest.mark.parity
@pytest.mark.parametrize("output_size", [[11, 11], [12, 12], [2, 4, 11, 12]])
def test_conv_transpose_output_size_picks_the_output_padding(torch, output_size):
    torch_module, engine_module = twins(torch, lambda nn: nn.ConvTranspose2d(4, 3, 3, stride=2))
    x = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    with torch.no_grad():
        expected = torch_module(torch.from_numpy(x), output_size=output_size).numpy()
    np.testing.assert_allclose(engine_module(engine.tensor(x), output_size=output_size).detach().numpy(), expected,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("return_indices_of", ["max_pool1d", "adaptive_max_pool1d", "adaptive_max_pool2d"])
def test_pool_indices_match_torch(torch, return_indices_of):
    x = np.round(rng.standard_normal((2, 3, 6, 7)), 1).astype(np.float32)  # rounding makes ties to break
    args = {"max_pool1d": (3, 2, 1), "adaptive_max_pool1d": (4,), "adaptive_max_pool2d": ((3, 4),)}[return_indices_of]
    x = x[..., 0, :] if "1d" in return_indices_of else x
    _, ours = getattr(F, return_indices_of)(engine.tensor(x), *args, return_indices=True)
    _, theirs = getattr(torch.nn.functional, return_indices_of)(torch.from_numpy(x), *args, return_indices=True)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def _torch_saved_bytes(torch, fn) -> int:
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


@pytest.mark.parity
@pytest.mark.parametrize("name", ["conv_channels_last_dilated", "conv_depthwise", "conv_transpose2d_everything"])
@pytest.mark.parametrize("input_requires_grad", [True, False])
def test_conv_keeps_for_backward_what_torch_keeps(torch, name, input_requires_grad):
    factory, shape = MODULES[name]
    torch_module, engine_module = twins(torch, factory)
    x = rng.standard_normal(shape).astype(np.float32)
    theirs = _torch_saved_bytes(torch, lambda: torch_module(torch.tensor(x, requires_grad=input_requires_grad)))
    before = engine.memory_stats()["saved_bytes.current"]
    out = engine_module(engine.tensor(x, requires_grad=input_requires_grad))
    assert out.requires_grad and engine.memory_stats()["saved_bytes.current"] - before == theirs


def test_conv_keeps_nothing_for_backward_under_no_grad():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, groups=8), nn.ConvTranspose2d(8, 4, 2, 2))
    engine.reset_peak_memory_stats()
    with engine.no_grad():
        model(engine.randn(2, 3, 8, 8))
    assert engine.memory_stats()["saved_bytes.peak"] == 0


@pytest.mark.parametrize("groups, channels_in", [(1, 16), (1, 3), (2, 4), (4, 4)])
def test_gradients_over_several_chunks_of_samples_match_finite_differences(monkeypatch, groups, channels_in):
    monkeypatch.setattr(conv_kernels, "GEMM_COLUMNS", 8)  # two output rows of 4 per chunk: 3 samples, 2 chunks
    x, w = rng.standard_normal((3, channels_in, 3, 4)), rng.standard_normal((4, channels_in // groups, 2, 2))
    gradcheck(lambda x, w: F.conv2d(x, w, padding=(0, 1), stride=(1, 2), groups=groups), x, w)


# Each depthwise forward path, forced on small inputs: (matrix preference, channels-last from, stride, dilation)
DEPTHWISE_PATHS = {
    "spatial_matrix": (0.0, 32, 2, (1, 2)),
    "whole_rows": (1e9, 32, 1, (1, 2)),
    "column_phases": (1e9, 32, (1, 2), (2, 1)),
    "channels_last_windows": (1e9, 2, 2, (1, 2)),
    "channels_first_taps_in_chunks": (1e9, 32, 2, (1, 2)),
}


@pytest.mark.parametrize("path", list(DEPTHWISE_PATHS))
def test_each_depthwise_path_matches_finite_differences(monkeypatch, path):
    matrix, channels_last, stride, dilation = DEPTHWISE_PATHS[path]
    monkeypatch.setattr(conv_kernels, "DEPTHWISE_MATRIX_PREFERENCE", matrix)
    monkeypatch.setattr(conv_kernels, "DEPTHWISE_CHANNELS_LAST_MIN_CHANNELS", channels_last)
    monkeypatch.setattr(conv_kernels, "DEPTHWISE_CHUNK_ELEMENTS", 36)  # chunks of two samples of 2 x 3 x 3 outputs
    x, w, b = rng.standard_normal((3, 2, 5, 6)), rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2)
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=(1, 2), dilation=dilation, groups=2), x, w, b)


def test_dropping_padding_only_taps_keeps_the_output_exact():
    x, w = engine.randn(2, 5, 1, 1, dtype=engine.float64), engine.randn(3, 5, 3, 3, dtype=engine.float64)
    expected = np.einsum("nc,oc->no", x.numpy()[:, :, 0, 0], w.numpy()[:, :, 1, 1])
    np.testing.assert_allclose(F.conv2d(x, w, padding=1).numpy()[:, :, 0, 0], expected, rtol=1e-12)


def test_conv_transpose_is_the_adjoint_of_conv():
    x, y = engine.randn(2, 3, 7, 6, dtype=engine.float64), engine.randn(2, 4, 4, 3, dtype=engine.float64)
    w = engine.randn(4, 3, 3, 3, dtype=engine.float64)
    conv_y = (F.conv2d(x, w, stride=2, padding=1) * y).sum().item()
    x_convt = (x * F.conv_transpose2d(y, w, stride=2, padding=1, output_padding=(0, 1))).sum().item()
    assert conv_y == pytest.approx(x_convt, rel=1e-12)


def test_conv_transpose_takes_only_zeros_padding():
    with pytest.raises(ValueError, match='Only "zeros" padding mode is supported for ConvTranspose2d'):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")


def test_conv_transpose_output_padding_must_be_below_stride_or_dilation():
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride or dilation"):
        F.conv_transpose2d(engine.randn(1, 2, 3, 3), engine.randn(2, 2, 3, 3), stride=2, output_padding=2)


def test_conv_transpose_input_channels_must_match_the_weight():
    with pytest.raises(RuntimeError, match=r"Given transposed=1, weight of size \[3, 3, 3, 3\], expected input\[2, 4, "
                                           r"5, 5\] to have 3 channels, but got 4 channels instead"):
        F.conv_transpose2d(engine.randn(2, 4, 5, 5), engine.randn(3, 3, 3, 3))


def test_conv_transpose_output_size_out_of_reach_is_an_error():
    with pytest.raises(ValueError, match=r"requested an output size of \[14, 14\], but valid sizes range from "
                                         r"\[11, 11\] to \[12, 12\]"):
        nn.ConvTranspose2d(4, 3, 3, stride=2)(engine.randn(2, 4, 5, 5), output_size=[14, 14])


def test_conv_transpose_to_an_empty_output_is_an_error():
    with pytest.raises(RuntimeError, match="Output size is too small"):
        F.conv_transpose2d(engine.randn(1, 4, 1, 1), engine.randn(4, 3, 1, 1), padding=1)


def test_max_pool1d_padding_over_half_the_kernel_is_an_error():
    with pytest.raises(RuntimeError, match="max_pool1d\\(\\) padding should be at most half of kernel size"):
        F.max_pool1d(engine.randn(2, 3, 5), 3, padding=2)


def test_adaptive_max_pool2d_of_an_empty_plane_is_an_error():
    with pytest.raises(RuntimeError, match="with dimension 2 being empty"):
        F.adaptive_max_pool2d(engine.randn(1, 2, 0, 3), 2)


def test_one_dimensional_pooling_of_a_vector_is_an_error():
    with pytest.raises(RuntimeError, match="Expected 2 to 3 dimensions, but got 1-dimensional tensor"):
        F.avg_pool1d(engine.randn(5), 2)
