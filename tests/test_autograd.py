"""The backward engine: accumulation, graph freeing, hooks, retain_grad, autograd.grad, versions."""

import numpy as np
import pytest

import engine


def leaf(values):
    return engine.tensor(values, requires_grad=True)


def test_grad_accumulates_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]


def test_a_leaf_reached_by_several_paths_gets_the_sum():
    x = leaf([2.0])
    y = x * x + x * 3 + x
    y.backward()
    assert x.grad.tolist() == [2 * 2.0 + 3 + 1]


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(engine.tensor([1.0, 10.0]))
    assert x.grad.tolist() == [2.0, 20.0]


def test_backward_on_a_tensor_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        engine.ones(2).sum().backward()


def test_second_backward_through_freed_graph_names_retain_graph():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_intermediate_grad_is_none_with_a_warning_unless_retained():
    x = leaf([1.0, 2.0])
    h = x * 2
    kept = x * 3
    kept.retain_grad()
    (h * kept).sum().backward()
    with pytest.warns(UserWarning, match="not a leaf"):
        assert h.grad is None
    assert kept.retains_grad and kept.grad.tolist() == [2.0, 4.0]


def test_hooks_see_and_can_replace_the_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    h = x * 2
    h.register_hook(lambda g: g * 10)
    h.sum().backward()
    assert seen == [[20.0, 20.0]]
    assert x.grad.tolist() == [20.0, 20.0]


def test_a_removed_hook_no_longer_runs():
    x = leaf([1.0])
    handle = x.register_hook(lambda g: g * 100)
    handle.remove()
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0]


def test_leaf_hook_runs_once_with_the_total_gradient():
    x = leaf([1.0])
    calls = []
    x.register_hook(lambda g: calls.append(g.item()))
    (x * 2 + x * 3).sum().backward()
    assert calls == [5.0]


def test_autograd_grad_returns_gradients_without_touching_dot_grad():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = (x * w).sum()
    gx, gw = engine.autograd.grad(y, [x, w])
    assert gx.tolist() == [3.0, 4.0] and gw.tolist() == [1.0, 2.0]
    assert x.grad is None and w.grad is None


def test_autograd_grad_of_an_intermediate():
    x = leaf([1.0, 2.0])
    h = x * 2
    y = (h * h).sum()
    (gh,) = engine.autograd.grad(y, h)
    assert gh.tolist() == [4.0, 8.0]


def test_autograd_grad_unused_input_needs_allow_unused():
    x, unused = leaf([1.0]), leaf([1.0])
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        engine.autograd.grad(y, [x, unused], retain_graph=True)
    gx, gu = engine.autograd.grad(y, [x, unused], allow_unused=True)
    assert gx.tolist() == [2.0] and gu is None


def test_autograd_grad_with_grad_outputs():
    x = leaf([1.0, 2.0])
    (g,) = engine.autograd.grad(x * x, x, grad_outputs=engine.tensor([1.0, 0.5]))
    assert g.tolist() == [2.0, 2.0]


def test_create_graph_is_reported_as_not_implemented():
    x = leaf([1.0])
    with pytest.raises(NotImplementedError, match="create_graph"):
        engine.autograd.grad((x * x).sum(), x, create_graph=True)


def test_backward_with_inputs_accumulates_only_into_them():
    x, w = leaf([1.0]), leaf([2.0])
    (x * w).sum().backward(inputs=[x])
    assert x.grad.tolist() == [2.0] and w.grad is None


def test_a_deep_graph_does_not_hit_the_recursion_limit():
    x = leaf([1.0])
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 5000, rel=1e-3)


def test_modifying_a_saved_tensor_in_place_is_caught_at_backward():
    x = leaf([1.0, 2.0])
    h = x * 1
    y = h.exp()  # exp saves its output y ...
    y.add_(1)  # ... which is then changed in place
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_in_place_op_on_a_non_leaf_rebases_its_history():
    x = leaf([1.0, 2.0])
    h = x * 2
    h.mul_(x)  # h = 2x * x
    h.sum().backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_setitem_on_a_non_leaf_is_differentiable():
    a, b = leaf([1.0, 2.0, 3.0]), leaf([10.0])
    h = a * 1
    h[1] = b * 2
    (h * engine.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert a.grad.tolist() == [1.0, 0.0, 3.0]
    assert b.grad.tolist() == [4.0]


def test_detach_cuts_the_graph_and_shares_storage():
    x = leaf([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    d.numpy()[0] = 5.0
    assert x.tolist()[0] == 5.0


def test_requires_grad_only_for_floating_tensors():
    with pytest.raises(RuntimeError, match="floating point"):
        engine.tensor([1, 2], requires_grad=True)


def test_requires_grad_flag_of_a_non_leaf_cannot_be_cleared():
    h = leaf([1.0]) * 2
    with pytest.raises(RuntimeError, match="leaf variables"):
        h.requires_grad_(False)


def test_grad_fn_names_and_next_functions():
    x = leaf([1.0])
    y = x * 2 + 1
    assert y.grad_fn.name() == "AddBackward0"
    (mul, _), (none, _) = y.grad_fn.next_functions
    assert mul.name() == "MulBackward0" and none is None
    ((acc, _), _) = mul.next_functions
    assert acc.name() == "AccumulateGrad" and acc.variable is x


def test_gradients_keep_float32():
    x = leaf([1.0, 2.0])
    (x * 0.5 + x.exp()).sum().backward()
    assert x.grad.dtype == engine.float32


def test_no_grad_result_used_later_with_grad_has_no_history():
    x = leaf([1.0])
    with engine.no_grad():
        c = x * 2
    y = (c * x).sum()
    y.backward()
    assert x.grad.tolist() == [2.0]


def test_numpy_gradient_matches_analytic_for_a_small_network():
    rng = np.random.default_rng(0)
    w = engine.tensor(rng.standard_normal((3, 4)), dtype=engine.float64, requires_grad=True)
    x = engine.tensor(rng.standard_normal((5, 4)), dtype=engine.float64)
    loss = (x @ w.T).tanh().sum()
    loss.backward()
    analytic = ((1 - np.tanh(x.numpy() @ w.detach().numpy().T) ** 2).T @ x.numpy())
    np.testing.assert_allclose(w.grad.numpy(), analytic, rtol=1e-12)
