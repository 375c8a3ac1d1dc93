"""Every differentiable op's backward against finite differences, in float64."""

import numpy as np
import pytest
from gradcheck import gradcheck
from op_cases import CASES

import engine


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_matches_finite_differences(name):
    fn, inputs, tol = CASES[name]
    gradcheck(lambda *xs: fn(engine, *xs), *inputs, **tol)


def test_gradient_of_a_0d_leaf_is_an_array():
    gradcheck(lambda x: x.exp(), np.array(0.5))
