"""Module parity harness: a module built in torch and in the engine with the same parameters, run on the same input.

`factory(nn)` builds the module from torch.nn or engine.nn, so each case is written once.
"""

from __future__ import annotations

import numpy as np

import engine
import engine.nn as nn


def twins(torch, factory) -> tuple:
    """(torch module, engine module holding the same parameters and buffers, loaded strictly)."""
    torch_module, engine_module = factory(torch.nn), factory(nn)
    engine_module.load_state_dict({k: engine.tensor(v.detach().numpy()) for k, v in torch_module.state_dict().items()})
    return torch_module, engine_module


def run(module, framework, x: np.ndarray, upstream: np.ndarray | None = None, seed: int = 0) -> tuple:
    """(output, input gradient, {parameter name: gradient}) after backward of sum(out * upstream)."""
    leaf = framework.tensor(x, requires_grad=True)
    out = module(leaf)
    if upstream is None:
        upstream = np.random.default_rng(seed).standard_normal(tuple(out.shape)).astype(x.dtype)
    (out * framework.tensor(upstream)).sum().backward()
    return out.detach().numpy(), leaf.grad.numpy(), {n: p.grad.numpy() for n, p in module.named_parameters()}


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Same dtype and shape, values within rtol and atol scaled by the largest expected magnitude."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale)


def assert_runs_match(ours: tuple, theirs: tuple) -> None:
    """Outputs, input gradients and every parameter gradient of two `run` results agree."""
    for a, b in zip(ours[:2], theirs[:2]):
        assert_close(a, b)
    assert ours[2].keys() == theirs[2].keys()
    for name in theirs[2]:
        assert_close(ours[2][name], theirs[2][name])
