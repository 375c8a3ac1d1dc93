"""F.interpolate / Upsample, PixelShuffle / PixelUnshuffle and F.pad: PyTorch's index rules, values, gradients,
reprs and errors. Gradients by finite differences are in op_cases.py."""

import itertools

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F

rng = np.random.default_rng(0)

# Modes with the input rank they take; sizes and scale factors that hit ATen's special cases (same size, twice
# the size) and its float index arithmetic (non-integer factors, downsampling, factors kept vs recomputed).
MODES = {"nearest": 4, "nearest-exact": 4, "bilinear": 4, "bicubic": 4, "linear": 3, "trilinear": 5, "area": 4}
RESIZES = {
    "same_size": {"size": 5},
    "double": {"scale_factor": 2},
    "size_up": {"size": 11},
    "size_down": {"size": 3},
    "size_1": {"size": 1},
    "factor_1_7": {"scale_factor": 1.7},
    "factor_0_6": {"scale_factor": 0.6},
    "factor_3_3_recomputed": {"scale_factor": 3.3, "recompute_scale_factor": True},
    "factor_2_5_kept": {"scale_factor": 2.5, "recompute_scale_factor": False},
}
INTERPOLATE_CASES = {
    f"{mode}-{label}-{align}": (mode, kwargs, align)
    for (mode, rank), (label, kwargs) in itertools.product(MODES.items(), RESIZES.items())
    for align in ((None,) if mode in ("nearest", "nearest-exact", "area") else (False, True))
    if not (mode == "area" and kwargs.get("recompute_scale_factor") is False)
}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")


def _interpolated(framework, x: np.ndarray, g: np.ndarray | None, **kwargs):
    leaf = framework.tensor(x, requires_grad=True)
    out = framework.nn.functional.interpolate(leaf, **kwargs)
    if g is None:
        g = rng.standard_normal(tuple(out.shape)).astype(x.dtype)
    (out * framework.tensor(g)).sum().backward()
    return out.detach().numpy(), leaf.grad.numpy(), g


@pytest.mark.parity
@pytest.mark.parametrize("name", list(INTERPOLATE_CASES))
def test_interpolate_values_and_gradients_match_torch(torch, name):
    mode, kwargs, align = INTERPOLATE_CASES[name]
    x = rng.standard_normal((2, 3) + (5,) * (MODES[mode] - 2)).astype(np.float32)
    t_out, t_grad, g = _interpolated(torch, x, None, mode=mode, align_corners=align, **kwargs)
    e_out, e_grad, _ = _interpolated(engine, x, g, mode=mode, align_corners=align, **kwargs)
    assert e_out.shape == t_out.shape
    np.testing.assert_allclose(e_out, t_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(e_grad, t_grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("n, factor", [(7, 1.3), (10, 0.7), (13, 2.1), (6, 3.0 / 7.0), (9, 1 / 3)])
def test_nearest_picks_the_same_pixels_as_torch(torch, n, factor):
    x = np.arange(n * n, dtype=np.float32).reshape(1, 1, n, n)
    for mode in ("nearest", "nearest-exact"):
        ours = F.interpolate(engine.tensor(x), scale_factor=factor, mode=mode).numpy()
        np.testing.assert_array_equal(ours, torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=factor,
                                                                            mode=mode).numpy())


@pytest.mark.parity
@pytest.mark.parametrize("factory", [
    lambda nn: nn.Upsample(scale_factor=2), lambda nn: nn.Upsample(size=(3, 4), mode="bilinear", align_corners=True),
    lambda nn: nn.Upsample(scale_factor=(2.0, 1.5), mode="bicubic"), lambda nn: nn.UpsamplingNearest2d(size=7),
    lambda nn: nn.UpsamplingBilinear2d(scale_factor=3), lambda nn: nn.PixelShuffle(2), lambda nn: nn.PixelUnshuffle(2)],
    ids=["nearest", "bilinear_size", "bicubic_pair", "nearest_2d", "bilinear_2d", "pixel_shuffle", "pixel_unshuffle"])
def test_resampling_module_matches_torch_with_its_repr(torch, factory):
    x = rng.standard_normal((2, 4, 4, 6)).astype(np.float32)
    assert repr(factory(nn)) == repr(factory(torch.nn))
    with torch.no_grad():
        expected = factory(torch.nn)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(factory(nn)(engine.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_pixel_unshuffle_undoes_pixel_shuffle():
    x = engine.randn(2, 3, 8, 4, 6)
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2).numpy(), x.numpy())


def test_pixel_shuffle_channels_must_divide_by_the_squared_factor():
    with pytest.raises(RuntimeError, match=r"input.size\(-3\)=8 is not divisible by 9"):
        F.pixel_shuffle(engine.randn(1, 8, 3, 3), 3)


def test_pixel_unshuffle_height_must_divide_by_the_factor():
    with pytest.raises(RuntimeError, match=r"expects height to be divisible by downscale_factor, but input.size\(-2\)"):
        F.pixel_unshuffle(engine.randn(1, 2, 5, 4), 2)


def test_interpolate_takes_size_or_scale_factor_not_both():
    with pytest.raises(ValueError, match="only one of size or scale_factor should be defined"):
        F.interpolate(engine.randn(1, 1, 3, 3), size=4, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor should be defined"):
        F.interpolate(engine.randn(1, 1, 3, 3))


def test_interpolate_align_corners_is_refused_for_nearest():
    with pytest.raises(ValueError, match="align_corners option can only be set with the interpolating modes"):
        F.interpolate(engine.randn(1, 1, 3, 3), size=4, align_corners=True)


def test_interpolate_mode_must_fit_the_input_rank():
    with pytest.raises(NotImplementedError, match="Got 3D input, but bilinear mode needs 4D input"):
        F.interpolate(engine.randn(1, 2, 3), scale_factor=2, mode="bilinear")


def test_interpolate_of_a_2d_input_is_an_error():
    with pytest.raises(NotImplementedError, match=r"Only 3D, 4D and 5D input Tensors supported \(got 2D\)"):
        F.interpolate(engine.randn(2, 3), scale_factor=2)


def test_interpolate_to_an_empty_size_is_an_error():
    with pytest.raises(RuntimeError, match="Input and output sizes should be greater than 0"):
        F.interpolate(engine.randn(1, 2, 3, 3), scale_factor=0.2)


def test_interpolate_size_must_name_every_spatial_dim():
    with pytest.raises(ValueError, match="Input and output must have the same number of spatial dimensions"):
        F.interpolate(engine.randn(1, 2, 3, 3), size=(4,))


def test_recompute_scale_factor_with_a_size_is_an_error():
    with pytest.raises(ValueError, match="recompute_scale_factor is not meaningful with an explicit size"):
        F.interpolate(engine.randn(1, 2, 3, 3), size=4, recompute_scale_factor=True)


# -- F.pad ---------------------------------------------------------------------------------------------------
PAD_CASES = {
    "constant_value": ((2, 3, 4), (1, 2), "constant", 2.5),
    "constant_three_dims_crop": ((2, 3, 4), (-1, 1, 0, 2, 1, 0), "constant", None),
    "reflect_1d": ((1, 3, 4), (3, 3), "reflect", None),
    "reflect_negative": ((1, 3, 4), (-1, 2), "reflect", None),
    "reflect_2d_unbatched": ((2, 3, 4), (1, 2, 2, 1), "reflect", None),
    "reflect_3d": ((1, 2, 3, 3, 4), (1, 1, 2, 1, 1, 2), "reflect", None),
    "replicate_wide": ((1, 3, 4), (6, 1), "replicate", None),
    "replicate_2d": ((2, 2, 3, 4), (1, 2, 3, 1), "replicate", None),
    "circular_full_wrap": ((1, 3, 4), (4, 4), "circular", None),
    "circular_negative": ((1, 3, 4), (-1, 2), "circular", None),
    "circular_2d": ((2, 2, 3, 4), (1, 2, 2, 1), "circular", None),
}


@pytest.mark.parity
@pytest.mark.parametrize("name", list(PAD_CASES))
def test_pad_values_and_gradients_match_torch(torch, name):
    shape, pad, mode, value = PAD_CASES[name]
    x = rng.standard_normal(shape).astype(np.float32)
    runs = []
    for framework in (engine, torch):
        leaf = framework.tensor(x, requires_grad=True)
        out = framework.nn.functional.pad(leaf, pad, mode, value)
        weights = np.arange(out.numel(), dtype=np.float32).reshape(tuple(out.shape))
        (out * framework.tensor(weights)).sum().backward()
        runs.append((out.detach().numpy(), leaf.grad.numpy()))
    for ours, theirs in zip(*runs):
        np.testing.assert_array_equal(ours, theirs)


def test_pad_of_an_integer_tensor_casts_the_value_as_torch():
    assert F.pad(engine.tensor([[0, 1]]), (1, 1), value=2.7).tolist() == [[2, 0, 1, 2]]


def test_reflect_pad_must_be_smaller_than_the_dim():
    with pytest.raises(RuntimeError, match=r"Padding size should be less than the corresponding input dimension, but "
                                           r"got: padding \(4, 0\) at dimension 2 of input \[1, 3, 4\]"):
        F.pad(engine.randn(1, 3, 4), (4, 0), "reflect")


def test_circular_pad_may_wrap_around_once_only():
    with pytest.raises(RuntimeError, match="Padding value causes wrapping around more than once"):
        F.pad(engine.randn(1, 3, 4), (5, 0), "circular")


def test_non_constant_pad_needs_a_batch_or_channel_dim():
    with pytest.raises(NotImplementedError, match="Padding size 4 is not supported for 2D input tensor"):
        F.pad(engine.randn(3, 4), (1, 1, 1, 1), "reflect")


def test_pad_length_must_be_even_and_fit_the_dims():
    with pytest.raises(RuntimeError, match="Padding length must be divisible by 2"):
        F.pad(engine.randn(1, 3, 4), (1, 2, 3))
    with pytest.raises(RuntimeError, match="Padding length should be less than or equal to two times the input"):
        F.pad(engine.randn(1, 3, 4), (1,) * 8)


def test_non_constant_pad_takes_no_value():
    with pytest.raises(RuntimeError, match='Padding mode "reflect" doesn\'t take in value argument'):
        F.pad(engine.randn(1, 3, 4), (1, 1), "reflect", value=1.0)


def test_unknown_pad_mode_is_an_error():
    with pytest.raises(NotImplementedError, match="Unrecognised padding mode zeros"):
        F.pad(engine.randn(1, 3, 4), (1, 1), "zeros")
