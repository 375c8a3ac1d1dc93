"""In-place writes as ported scripts use them, compared with PyTorch: values and gradients.

Each test runs one script with `lib` as `torch` and as `engine`, and the two must agree exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

import engine

torch = pytest.importorskip("torch", reason="in-place parity tests need PyTorch (pip install '.[parity]')")
pytestmark = pytest.mark.parity


def leaf(lib):
    return lib.tensor([1.0, -2.0, 3.0, 0.5, -1.5, 2.0], requires_grad=True)


def same_in_both(script) -> None:
    """script(lib) returns tensors, numbers or None; torch's and the engine's must agree (to float32 rounding)."""
    expected, actual = script(torch), script(engine)
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual):
        if e is None or isinstance(e, (bool, int, float)):
            assert a == e
        else:
            np.testing.assert_allclose(a.detach().numpy(), e.detach().numpy(), rtol=1e-5, atol=1e-7)


# -- fill_, zero_ and copy_ on a tensor in a graph -------------------------------------------------------
def test_fill_on_a_graph_tensor_sends_no_gradient_to_its_old_history():
    def script(lib):
        x = lib.ones(3, requires_grad=True)
        y = x * 2
        y.fill_(5)
        (y * y).sum().backward()
        return y, x.grad
    same_in_both(script)
    x = engine.ones(3, requires_grad=True)
    y = x * 2
    y.fill_(5)
    (y * y).sum().backward()
    assert x.grad.tolist() == [0, 0, 0]


def test_zero_on_a_graph_tensor_sends_no_gradient_to_its_old_history():
    def script(lib):
        x = leaf(lib)
        y = x * 2
        y.zero_()
        (y + x).pow(2).sum().backward()
        return y, x.grad
    same_in_both(script)


def test_fill_with_a_zero_dim_tensor_sends_the_gradient_to_the_value():
    def script(lib):
        x, value = leaf(lib), lib.tensor(2.5, requires_grad=True)
        y = x * 1
        y.fill_(value * 2)
        (y * x).sum().backward()
        return y, x.grad, value.grad
    same_in_both(script)


def test_copy_into_a_graph_tensor_takes_the_gradient_from_its_source_only():
    def script(lib):
        x, source = leaf(lib), lib.tensor([4.0, 5.0, 6.0, 7.0, 8.0, 9.0], requires_grad=True)
        y = x * 3
        y.copy_(source.tanh())
        (y * y).sum().backward()
        return y, x.grad, source.grad
    same_in_both(script)


def test_copy_of_a_constant_into_a_graph_tensor_sends_no_gradient():
    def script(lib):
        x = leaf(lib)
        y = x * 3
        y.copy_(lib.zeros(6))
        (y + 1).pow(2).sum().backward()
        return y, x.grad
    same_in_both(script)


def test_copy_broadcasts_and_casts_its_source_and_its_gradient():
    def script(lib):
        source = lib.tensor([[1.5], [2.5]], dtype=lib.float64, requires_grad=True)
        y = lib.zeros(2, 3, requires_grad=True) * 1
        y.copy_(source)
        (y * lib.arange(6.0).view(2, 3)).sum().backward()
        return y, source.grad
    same_in_both(script)


# -- .data and detach() write the original tensor --------------------------------------------------------
def test_in_place_through_data_writes_the_original_tensor():
    def script(lib):
        p = leaf(lib)
        p.data.mul_(0.5)
        return (p,)
    same_in_both(script)


def test_in_place_through_data_is_not_seen_by_backward_as_a_modification():
    def script(lib):
        x = leaf(lib)
        y = x * x  # saves x
        x.data.mul_(2)  # .data has its own version counter: backward runs, with the new values
        y.sum().backward()
        return x, x.grad
    same_in_both(script)


def test_sgd_step_through_data_updates_the_weight():
    def script(lib):
        w = leaf(lib)
        (w * w).sum().backward()
        w.data.sub_(0.1 * w.grad)
        return w, w.grad
    same_in_both(script)


def test_in_place_through_detach_writes_the_original_tensor():
    def script(lib):
        x = leaf(lib)
        x.detach().zero_()
        return (x,)
    same_in_both(script)


def test_in_place_through_detach_is_seen_by_backward_as_a_modification():
    x = leaf(engine)
    y = x.exp()  # saves its result
    y.detach().zero_()  # detach() shares the version counter
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# -- in-place writes through views rebase the base's history ---------------------------------------------
def test_in_place_on_a_view_rebases_its_base_history():
    def script(lib):
        a = leaf(lib)
        b = a * 1
        rows = b.view(2, 3)
        rows[:, 1:].mul_(a[:4].view(2, 2))
        (b * b).sum().backward()
        return b, a.grad
    same_in_both(script)


def test_in_place_on_a_view_of_a_view_rebases_the_root_and_both_views_follow():
    def script(lib):
        a = leaf(lib)
        b = a * 1
        rows = b.view(2, 3)
        row = rows[1]
        row.mul_(2)
        (rows * rows).sum().backward()
        return b, rows, row, a.grad
    same_in_both(script)


def test_writing_a_tensor_that_requires_grad_into_a_view_of_a_constant_makes_the_base_require_grad():
    def script(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        z = lib.zeros(2, 3)
        z[:, 0].copy_(x * x)
        (z * lib.arange(6.0).view(2, 3)).sum().backward()
        return z, z.requires_grad, x.grad
    same_in_both(script)


def test_sibling_views_see_a_write_through_another_view():
    def script(lib):
        a = leaf(lib)
        b = a * 1
        first, last = b[:4], b[2:]
        first.mul_(3)
        (last * last).sum().backward()
        return last, a.grad
    same_in_both(script)


def test_views_see_an_in_place_write_to_their_base():
    def script(lib):
        a = leaf(lib)
        b = a * 1
        head = b[:3]
        b.mul_(a)
        head.sum().backward()
        return head, a.grad
    same_in_both(script)


def test_a_view_written_under_no_grad_keeps_its_base_history():
    def script(lib):
        a = leaf(lib)
        b = a * 2
        head = b[:3]
        with lib.no_grad():
            head.mul_(5)
        (b * a).sum().backward()
        return b, a.grad
    same_in_both(script)


def test_writing_rows_of_a_preallocated_buffer_step_by_step_matches_torch():
    def script(lib):
        x = leaf(lib)
        states = lib.zeros(4, 6)
        for t in range(1, 4):
            states[t].copy_((states[t - 1] + x).tanh())
        states.sum().backward()
        return states, x.grad
    same_in_both(script)


def test_in_place_on_a_view_of_a_leaf_that_requires_grad_is_refused_with_torchs_message():
    with pytest.raises(RuntimeError, match="^a view of a leaf Variable that requires grad is being used in an "
                                           "in-place operation.$"):
        leaf(engine)[1:].mul_(2)


def test_in_place_on_an_expanded_tensor_is_refused_with_torchs_message():
    with pytest.raises(RuntimeError, match="^unsupported operation: more than one element of the written-to tensor"):
        engine.ones(1).expand(3).mul_(2)


# -- inference mode records nothing, even under enable_grad -----------------------------------------------
def test_enable_grad_inside_inference_mode_records_nothing():
    def script(lib):
        x = leaf(lib)
        with lib.inference_mode(), lib.enable_grad():
            y = x * 2
            return y, lib.is_grad_enabled(), y.requires_grad, y.grad_fn is None, y.is_inference()
    same_in_both(script)


def test_in_place_on_a_leaf_that_requires_grad_is_allowed_inside_inference_mode():
    def script(lib):
        x = leaf(lib)
        with lib.inference_mode(), lib.enable_grad():
            x.add_(1)
        return x, x.requires_grad
    same_in_both(script)
