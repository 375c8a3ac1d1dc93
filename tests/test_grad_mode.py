"""Grad modes: no_grad, enable_grad, set_grad_enabled, inference_mode, as PyTorch defines them."""

import threading

import pytest

import engine


@pytest.fixture
def x():
    return engine.tensor([1.0, 2.0, 3.0], requires_grad=True)


def test_grad_is_enabled_by_default():
    assert engine.is_grad_enabled()


def test_results_under_no_grad_do_not_require_grad(x):
    with engine.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert (x * 2).requires_grad


def test_no_grad_restores_the_mode_on_exit_even_after_an_exception():
    with pytest.raises(ValueError), engine.no_grad():
        raise ValueError
    assert engine.is_grad_enabled()


def test_no_grad_as_decorator_with_and_without_parentheses(x):
    @engine.no_grad()
    def with_parens():
        return x * 2

    @engine.no_grad
    def bare():
        return x * 2

    assert with_parens().grad_fn is None and bare().grad_fn is None
    assert engine.is_grad_enabled()


def test_decorated_function_keeps_its_name_and_arguments():
    @engine.no_grad()
    def double(value, factor=2):
        """doc"""
        return value * factor

    assert double.__name__ == "double" and double.__doc__ == "doc"
    assert double(3, factor=4) == 12


def test_no_grad_on_a_generator_holds_at_every_resume_and_releases_at_every_yield():
    seen_inside = []

    @engine.no_grad()
    def gen():
        for _ in range(3):
            seen_inside.append(engine.is_grad_enabled())
            yield engine.is_grad_enabled()

    seen_outside = []
    for _ in gen():
        seen_outside.append(engine.is_grad_enabled())
    assert seen_inside == [False, False, False]
    assert seen_outside == [True, True, True]


def test_generator_send_and_return_value_pass_through_the_decorator():
    @engine.no_grad()
    def echo():
        received = yield "ready"
        while received is not None:
            received = yield (received, engine.is_grad_enabled())
        return "done"

    g = echo()
    assert next(g) == "ready"
    assert g.send(5) == (5, False)
    with pytest.raises(StopIteration) as stop:
        g.send(None)
    assert stop.value.value == "done"


def test_modes_nest_and_unwind_in_order(x):
    with engine.no_grad():
        with engine.enable_grad():
            assert (x * 2).requires_grad
            with engine.no_grad():
                assert not engine.is_grad_enabled()
            assert engine.is_grad_enabled()
        assert not engine.is_grad_enabled()
    assert engine.is_grad_enabled()


def test_enable_grad_as_decorator_inside_no_grad(x):
    @engine.enable_grad()
    def compute():
        return x * 2

    with engine.no_grad():
        assert compute().requires_grad


def test_set_grad_enabled_works_as_a_plain_call():
    engine.set_grad_enabled(False)
    try:
        assert not engine.is_grad_enabled()
    finally:
        engine.set_grad_enabled(True)
    assert engine.is_grad_enabled()


def test_set_grad_enabled_as_context_manager_restores_the_previous_mode():
    with engine.set_grad_enabled(False):
        assert not engine.is_grad_enabled()
        with engine.set_grad_enabled(True):
            assert engine.is_grad_enabled()
        assert not engine.is_grad_enabled()
    assert engine.is_grad_enabled()


def test_set_grad_enabled_as_decorator_switches_only_during_calls():
    @engine.set_grad_enabled(False)
    def inside():
        return engine.is_grad_enabled()

    assert engine.is_grad_enabled()
    assert inside() is False
    assert engine.is_grad_enabled()


def test_set_grad_enabled_rejects_non_bool():
    with pytest.raises(TypeError):
        engine.set_grad_enabled(1)


def test_grad_mode_is_per_thread_and_a_new_thread_starts_enabled():
    seen = {}

    def worker():
        seen["enabled"] = engine.is_grad_enabled()
        with engine.no_grad():
            seen["inner"] = engine.is_grad_enabled()

    with engine.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert not engine.is_grad_enabled()
    assert seen == {"enabled": True, "inner": False}


def test_no_grad_in_one_thread_does_not_leak_into_another():
    entered, release, seen = threading.Event(), threading.Event(), {}

    def holder():
        with engine.no_grad():
            entered.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    entered.wait(5)
    seen["main"] = engine.is_grad_enabled()
    release.set()
    t.join()
    assert seen["main"] is True


def test_in_place_update_of_a_leaf_is_allowed_under_no_grad():
    w = engine.tensor([1.0, 2.0], requires_grad=True)
    with engine.no_grad():
        w -= 0.5 * engine.ones(2)
    assert w.tolist() == [0.5, 1.5]
    assert w.is_leaf and w.requires_grad


def test_in_place_update_of_a_leaf_that_requires_grad_is_an_error_outside_no_grad():
    w = engine.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w += 1


def test_inference_mode_disables_grad_and_marks_tensors(x):
    with engine.inference_mode():
        assert not engine.is_grad_enabled() and engine.is_inference_mode_enabled()
        y = x * 2
        z = engine.ones(2)
    assert not y.requires_grad and y.grad_fn is None
    assert y.is_inference() and z.is_inference()
    assert not x.is_inference()
    assert engine.is_grad_enabled() and not engine.is_inference_mode_enabled()


def test_inference_mode_as_decorator_with_and_without_parentheses():
    @engine.inference_mode()
    def a():
        return engine.is_inference_mode_enabled()

    @engine.inference_mode
    def b():
        return engine.is_inference_mode_enabled()

    assert a() and b() and not engine.is_inference_mode_enabled()


def test_inference_tensor_cannot_be_saved_for_backward_outside_inference_mode(x):
    with engine.inference_mode():
        t = engine.ones(3)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        x * t  # mul saves t to compute x's gradient


def test_inference_tensor_can_join_an_op_that_saves_nothing(x):
    with engine.inference_mode():
        t = engine.ones(3)
    y = x + t  # add saves nothing for backward
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


def test_in_place_update_of_an_inference_tensor_outside_inference_mode_is_an_error():
    with engine.inference_mode():
        t = engine.ones(3)
        t.add_(1)  # fine inside
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode"):
        t.add_(1)
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor"):
        t[0] = 5.0


def test_inference_mode_false_inside_inference_mode_restores_normal_behaviour(x):
    with engine.inference_mode():
        with engine.inference_mode(False):
            assert engine.is_grad_enabled() and not engine.is_inference_mode_enabled()
            y = x * 2
            assert y.requires_grad and not y.is_inference()
        assert engine.is_inference_mode_enabled()


def test_inference_tensor_can_be_cloned_into_a_normal_tensor(x):
    with engine.inference_mode():
        t = engine.ones(3)
    normal = t.clone()
    assert not normal.is_inference()
    (x * normal).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


def test_views_of_inference_tensors_are_inference_tensors():
    with engine.inference_mode():
        t = engine.ones(2, 3)
    assert t[0].is_inference() and t.view(6).is_inference()
