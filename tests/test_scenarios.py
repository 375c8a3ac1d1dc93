"""The four grad-mode scenarios of the reference documentation the project was founded on."""

import gc

import engine
import engine.nn as nn


def test_scenario_1_requires_grad_is_false_inside_no_grad_and_true_outside():
    x = engine.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with engine.no_grad():
        y = x * 2
    assert y.requires_grad is False
    y = x * 2
    assert y.requires_grad is True


def test_scenario_2_linear_under_no_grad_gives_a_1_by_2_output_without_grad_fn():
    model = nn.Linear(10, 2)
    with engine.no_grad():
        out = model(engine.randn(1, 10))
    assert out.shape == (1, 2)
    assert out.grad_fn is None and not out.requires_grad


def test_scenario_3_sequential_in_eval_maps_5_by_10_to_5_by_2_under_no_grad():
    model = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 2))
    model.eval()
    assert all(not m.training for m in model.modules())
    with engine.no_grad():
        out = model(engine.randn(5, 10))
    assert out.shape == engine.Size([5, 2])
    assert out.grad_fn is None


def test_scenario_4_the_graph_holds_saved_bytes_with_grad_and_none_under_no_grad():
    model = nn.Linear(1000, 1000)
    batches = [engine.randn(100, 1000) for _ in range(5)]

    gc.collect()
    engine.reset_peak_memory_stats()
    outputs = [model(x) for x in batches]
    with_grad = engine.memory_stats()
    # Each forward keeps its input (400,000 bytes) for the weight's gradient; as in PyTorch, the
    # weight itself is not kept, since the input needs no gradient.
    assert with_grad["saved_bytes.current"] == 5 * 400_000
    del outputs

    gc.collect()
    engine.reset_peak_memory_stats()
    with engine.no_grad():
        outputs = [model(x) for x in batches]
    without = engine.memory_stats()
    assert without["saved_bytes.peak"] == 0
    assert all(o.grad_fn is None for o in outputs)
