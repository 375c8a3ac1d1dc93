"""gradcheck: an op's backward against central finite differences, in float64 (HIPS/autograd style)."""

from __future__ import annotations

import numpy as np

import engine


def _outputs(result) -> tuple:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def gradcheck(fn, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Assert that backward of fn(*inputs) gives every input the finite-difference gradient.

    fn takes and returns engine tensors (one, or a tuple: split, chunk); each output is paired
    with a random upstream gradient, so the checked scalar is sum((out * upstream).sum()).
    """
    arrays = [np.array(x, dtype=np.float64) for x in inputs]
    leaves = [engine.tensor(a, requires_grad=True) for a in arrays]
    outs = _outputs(fn(*leaves))
    rng = np.random.default_rng(0)
    upstreams = [rng.standard_normal(out.shape) for out in outs]
    engine.autograd.backward(outs, [engine.tensor(u, dtype=out.dtype) for out, u in zip(outs, upstreams)])

    def objective() -> float:
        with engine.no_grad():
            results = _outputs(fn(*[engine.tensor(a) for a in arrays]))
        return sum(float((out.numpy().astype(np.float64) * u).sum()) for out, u in zip(results, upstreams))

    for i, (a, leaf) in enumerate(zip(arrays, leaves)):
        numeric = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            centre = a[idx]
            a[idx] = centre + eps
            above = objective()
            a[idx] = centre - eps
            below = objective()
            a[idx] = centre
            numeric[idx] = (above - below) / (2 * eps)
        assert leaf.grad is not None, f"input {i} got no gradient"
        grad = leaf.grad.numpy()
        assert type(grad) is np.ndarray and grad.dtype == np.float64 and grad.shape == a.shape, f"input {i}"
        np.testing.assert_allclose(grad, numeric, rtol=rtol, atol=atol, err_msg=f"input {i}")
