"""Memory gauges: exact byte counts, peaks, reset, and freeing."""

import gc

import numpy as np
import pytest

import engine
import engine.nn as nn


@pytest.fixture(autouse=True)
def fresh_peaks():
    gc.collect()
    engine.reset_peak_memory_stats()


def stats():
    return engine.memory_stats()


def test_memory_stats_has_the_documented_keys():
    assert set(stats()) >= {"allocated_bytes.current", "allocated_bytes.peak", "saved_bytes.current",
                            "saved_bytes.peak", "tensors.current", "tensors.peak"}


def test_a_float32_100_by_1000_tensor_is_400000_bytes_while_it_lives():
    before = stats()
    t = engine.zeros(100, 1000)
    during = stats()
    assert during["allocated_bytes.current"] - before["allocated_bytes.current"] == 400_000
    assert during["tensors.current"] - before["tensors.current"] == 1
    del t
    after = stats()
    assert after["allocated_bytes.current"] == before["allocated_bytes.current"]
    assert after["tensors.current"] == before["tensors.current"]


def test_dtype_sets_the_byte_count():
    base = stats()["allocated_bytes.current"]
    t = engine.zeros(10, dtype=engine.float64)
    assert stats()["allocated_bytes.current"] - base == 80
    del t


def test_views_share_storage_and_count_no_bytes():
    t = engine.zeros(100, 1000)
    base = stats()["allocated_bytes.current"]
    views = [t.view(1000, 100), t[10:20], t.T, t.unsqueeze(0), t.detach(), t.reshape(-1)]
    assert stats()["allocated_bytes.current"] == base
    del t  # the views keep the storage alive, and with it its count
    assert stats()["allocated_bytes.current"] == base
    del views
    assert stats()["allocated_bytes.current"] == base - 400_000


def test_a_reshape_that_must_copy_counts_its_copy():
    t = engine.zeros(10, 20).T  # not contiguous: flattening it copies
    base = stats()["allocated_bytes.current"]
    flat = t.reshape(-1)
    assert stats()["allocated_bytes.current"] - base == 800
    del flat


def test_from_numpy_borrows_the_buffer_and_counts_nothing():
    array = np.zeros((100, 1000), np.float32)
    base = stats()["allocated_bytes.current"]
    t = engine.from_numpy(array)
    assert stats()["allocated_bytes.current"] == base
    assert np.shares_memory(t.numpy(), array)


def test_peak_survives_freeing_and_reset_brings_it_down_to_current():
    base = stats()["allocated_bytes.current"]
    t = engine.zeros(1000, 1000)
    del t
    assert stats()["allocated_bytes.peak"] >= base + 4_000_000
    engine.reset_peak_memory_stats()
    s = stats()
    assert s["allocated_bytes.peak"] == s["allocated_bytes.current"] == base
    assert s["saved_bytes.peak"] == s["saved_bytes.current"]
    assert s["tensors.peak"] == s["tensors.current"]


def test_op_results_count_their_bytes():
    a = engine.ones(50, 50)
    base = stats()["allocated_bytes.current"]
    b = a * 2
    assert stats()["allocated_bytes.current"] - base == 50 * 50 * 4
    del b


def test_a_recorded_op_counts_what_it_saves_until_backward_frees_it():
    x = engine.ones(250, requires_grad=True)  # 1000 bytes
    w = engine.ones(250, requires_grad=True)
    y = (x * w).sum()  # mul saves both operands
    assert stats()["saved_bytes.current"] == 2000
    y.backward()
    assert stats()["saved_bytes.current"] == 0


def test_an_array_saved_twice_counts_once():
    x = engine.ones(250, requires_grad=True)
    y = (x * x).sum()  # mul keeps x as both operands; y keeps the graph alive
    assert y.requires_grad and stats()["saved_bytes.current"] == 1000


def test_retain_graph_keeps_saved_bytes_until_the_graph_dies():
    x = engine.ones(250, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    assert stats()["saved_bytes.current"] == 1000
    del y
    assert stats()["saved_bytes.current"] == 0


def test_dropping_an_unused_graph_frees_its_saved_bytes():
    x = engine.ones(250, requires_grad=True)
    y = x.exp().sum()
    assert stats()["saved_bytes.current"] == 1000  # exp saves its output
    del y
    assert stats()["saved_bytes.current"] == 0


def test_nothing_is_saved_under_no_grad_or_inference_mode():
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4))
    x = engine.randn(16, 64)
    for mode in (engine.no_grad, engine.inference_mode):
        engine.reset_peak_memory_stats()
        with mode():
            out = model(x)
        assert stats()["saved_bytes.peak"] == 0
        del out


def test_an_mlp_forward_with_grad_holds_its_activations_until_backward():
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4))
    x = engine.randn(16, 64)
    out = model(x)
    held = stats()["saved_bytes.current"]
    # As PyTorch: the first Linear keeps its input (for its weight's gradient) but not its weight (the
    # input needs no gradient); ReLU keeps its output, which the second Linear keeps too (counted once),
    # with its weight.
    assert held == 16 * 64 * 4 + 16 * 32 * 4 + 4 * 32 * 4
    out.sum().backward()
    assert stats()["saved_bytes.current"] == 0


def test_memory_summary_is_a_readable_table():
    text = engine.memory_summary()
    assert "allocated bytes" in text and "saved for backward" in text and "peak" in text


def test_two_views_of_one_buffer_saved_by_two_nodes_count_the_buffer_once():
    x = engine.ones(10, 25, requires_grad=True)  # 1000 bytes
    y = x * 1.0  # a fresh buffer
    halves = y[:5] * x[:5], y[5:] * x[5:]  # each product saves a view of y (and of x)
    assert stats()["saved_bytes.current"] == 2000  # y and x, whole, once each
    del halves
