"""Tests for engine._format: literal expectations, plus parity with PyTorch's repr when torch is present."""

import numpy as np
import pytest

from engine._format import format_tensor

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)


def fmt(arr, extras=(), default_float=F32):
    return format_tensor(arr, default_float=default_float, extras=list(extras))


# --- literal cases (no torch needed) -----------------------------------------------------------------

LITERAL_CASES = {
    "int_mode_requires_grad": (np.array([1, 2, 3], np.float32), ["requires_grad=True"],
                               "tensor([1., 2., 3.], requires_grad=True)"),
    "float32_four_decimals": (np.array([1.23456, -2.5], np.float32), [], "tensor([ 1.2346, -2.5000])"),
    "float64_shows_dtype": (np.array([1.5, 2.25]), [], "tensor([1.5000, 2.2500], dtype=engine.float64)"),
    "int64_no_dtype": (np.array([1, -20, 3], np.int64), [], "tensor([  1, -20,   3])"),
    "int32_shows_dtype": (np.array([1, 2], np.int32), [], "tensor([1, 2], dtype=engine.int32)"),
    "bool": (np.array([True, False]), [], "tensor([ True, False])"),
    "scalar_float": (np.array(3.14159, np.float32), [], "tensor(3.1416)"),
    "scalar_int": (np.array(7, np.int64), [], "tensor(7)"),
    "empty": (np.zeros((0,), np.float32), [], "tensor([])"),
    "empty_2d": (np.zeros((0, 3), np.float32), [], "tensor([], size=(0, 3))"),
    "empty_int64_shows_dtype": (np.zeros((0,), np.int64), [], "tensor([], dtype=engine.int64)"),
    "sci_mode": (np.array([1e-5, 1.0, 1e5], np.float32), [], "tensor([1.0000e-05, 1.0000e+00, 1.0000e+05])"),
    "nonfinite": (np.array([np.nan, np.inf, -np.inf, 1.0], np.float32), [], "tensor([nan, inf, -inf, 1.])"),
    "negative_zero": (np.array([-0.0, 1.0], np.float32), [], "tensor([-0., 1.])"),
    "grad_fn": (np.array([2.0, 4.0], np.float32), ["grad_fn=<MulBackward0>"],
                "tensor([2., 4.], grad_fn=<MulBackward0>)"),
    "wrap_2d": (np.arange(24, dtype=np.float32).reshape(2, 12) * 1.5, [],
                "tensor([[ 0.0000,  1.5000,  3.0000,  4.5000,  6.0000,  7.5000,  9.0000, 10.5000,\n"
                "         12.0000, 13.5000, 15.0000, 16.5000],\n"
                "        [18.0000, 19.5000, 21.0000, 22.5000, 24.0000, 25.5000, 27.0000, 28.5000,\n"
                "         30.0000, 31.5000, 33.0000, 34.5000]])"),
    "3d_blank_line": (np.arange(8).reshape(2, 2, 2), [],
                      "tensor([[[0, 1],\n         [2, 3]],\n\n        [[4, 5],\n         [6, 7]]])"),
    "suffix_wraps": (np.arange(8) + 0.5, ["requires_grad=True"],
                     "tensor([0.5000, 1.5000, 2.5000, 3.5000, 4.5000, 5.5000, 6.5000, 7.5000],\n"
                     "       dtype=engine.float64, requires_grad=True)"),
    # 80 chars with "engine.", 79 with "torch.": stays on one line, as in PyTorch.
    "dtype_wrap_boundary": (np.full(4, -1865703100, np.int32), [],
                            "tensor([" + ", ".join(["-1865703100"] * 4) + "], dtype=engine.int32)"),
    "summarized": (np.arange(2000, dtype=np.float32), [],
                   "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
                   "        1.9990e+03])"),
}


@pytest.mark.parametrize("arr,extras,expected", LITERAL_CASES.values(), ids=LITERAL_CASES.keys())
def test_literal(arr, extras, expected):
    assert fmt(arr, extras) == expected


def test_default_float64_hides_float64_and_shows_float32():
    assert fmt(np.array([1.5]), default_float=F64) == "tensor([1.5000])"
    assert fmt(np.array([1.5], np.float32), default_float=F64) == "tensor([1.5000], dtype=engine.float32)"
    assert fmt(np.zeros((0,), np.float32), default_float=F64) == "tensor([], dtype=engine.float32)"


# --- parity with PyTorch -----------------------------------------------------------------------------

_rng = np.random.default_rng(0)
_ALL_DTYPES = ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]
_FLOAT_DTYPES = ["float32", "float64", "float16"]


def _normal(shape, dtype="float32"):
    return _rng.standard_normal(shape).astype(dtype)


def _parity_cases():
    cases = {}
    for shape in [(), (1,), (5,), (3, 4), (2, 3, 4), (2000,), (50, 50), (3, 1000), (2, 1, 5, 3), (1001,)]:
        cases[f"normal{shape}"] = _normal(shape)
    cases["large_range_sci"] = np.array([1e-3, 1.0, 12345.678], np.float32)
    cases["huge_sci"] = np.array([1.5e9, -2.0, 3.0], np.float32)
    cases["tiny_sci"] = np.array([5e-5, 1e-4, -3e-5], np.float32)
    cases["wide_exponents_f64"] = np.array([1e-300, 1e300, -1.0])
    cases["sci_2d_wrap"] = (_normal((4, 9)) * np.logspace(-6, 6, 9)).astype(np.float32)
    cases["integer_valued"] = np.array([1.0, -2.0, 300.0, 0.0], np.float32)
    cases["integer_valued_big"] = np.array([1e7, 2.0, -5.0], np.float32)
    cases["integer_valued_sci"] = np.array([1e9, 1.0], np.float32)
    cases["integer_valued_2d"] = np.arange(-12, 12, dtype=np.float32).reshape(4, 6)
    cases["nan_inf_mix"] = np.array([np.nan, np.inf, -np.inf, 1.25, -0.5], np.float32)
    cases["nan_inf_ints"] = np.array([np.nan, -np.inf, 3.0], np.float32)
    cases["nan_inf_sci"] = np.array([np.nan, np.inf, 1e-7, 10.0], np.float32)
    cases["all_nan"] = np.array([np.nan, np.nan], np.float32)
    cases["all_zero"] = np.zeros((2, 3), np.float32)
    cases["negative_zero"] = np.array([-0.0, 0.0, 1.0], np.float32)
    cases["negative_zero_frac"] = np.array([-0.0, 0.5], np.float32)
    cases["negative_zero_scalar"] = np.array(-0.0, np.float32)
    cases["scalar_nan"] = np.array(np.nan, np.float32)
    cases["rounding_boundary"] = np.array([0.99995, 9.99995, -0.00005], np.float32)
    cases["long_row_wrap"] = _normal((40,)) * 100
    cases["summarized_3d"] = _normal((10, 10, 12))
    cases["summarized_small_dim"] = _normal((2, 2, 300))
    cases["dtype_wrap_boundary"] = np.full(4, -1865703100, np.int32)
    cases["dtype_wraps"] = np.full(5, -1865703100, np.int32)
    cases["summarized_ints"] = np.arange(-1500, 1500, dtype=np.int64)
    for dt in _ALL_DTYPES:
        if dt == "bool":
            cases[f"dtype_{dt}"] = _rng.random((3, 5)) > 0.5
        elif dt in _FLOAT_DTYPES:
            cases[f"dtype_{dt}"] = _normal((3, 5), dt) * 10
        else:
            info = np.iinfo(dt)
            cases[f"dtype_{dt}"] = _rng.integers(info.min, info.max, (3, 5), dtype=dt, endpoint=True)
        cases[f"scalar_{dt}"] = np.array(cases[f"dtype_{dt}"][0, 0], dtype=dt)
        cases[f"empty_{dt}"] = np.zeros((0,), dt)
        cases[f"empty_0x3_{dt}"] = np.zeros((0, 3), dt)
    cases["float16_large"] = np.array([60000.0, 0.001, 1.0], np.float16)
    cases["empty_2x0x4"] = np.zeros((2, 0, 4), np.float32)
    return cases


PARITY_CASES = _parity_cases()
GRAD_CASES = {k: v for k, v in PARITY_CASES.items() if v.dtype.name in _FLOAT_DTYPES}


def _torch_repr(t):
    return repr(t).replace("torch.", "engine.")


@pytest.mark.parity
@pytest.mark.parametrize("arr", PARITY_CASES.values(), ids=PARITY_CASES.keys())
def test_parity(arr):
    torch = pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")
    assert fmt(arr) == _torch_repr(torch.from_numpy(arr))


@pytest.mark.parity
@pytest.mark.parametrize("arr", GRAD_CASES.values(), ids=GRAD_CASES.keys())
def test_parity_requires_grad(arr):
    torch = pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")
    expected = _torch_repr(torch.from_numpy(arr).requires_grad_())
    assert fmt(arr, ["requires_grad=True"]) == expected


@pytest.mark.parity
@pytest.mark.parametrize("name", ["normal(5,)", "dtype_float64", "long_row_wrap", "normal(3, 1000)"])
def test_parity_grad_fn(name):
    torch = pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")
    arr = PARITY_CASES[name]
    expected = _torch_repr(torch.from_numpy(arr).requires_grad_() * 2)
    assert fmt(arr * 2, ["grad_fn=<MulBackward0>"]) == expected


@pytest.mark.parity
@pytest.mark.parametrize("name", ["normal(3, 4)", "dtype_float32", "dtype_float64", "empty_float32",
                                  "empty_float64", "dtype_int32"])
def test_parity_default_float64(name):
    torch = pytest.importorskip("torch", reason="parity tests need PyTorch (pip install '.[parity]')")
    arr = PARITY_CASES[name]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        expected = _torch_repr(torch.from_numpy(arr))
    finally:
        torch.set_default_dtype(previous)
    assert fmt(arr, default_float=F64) == expected
