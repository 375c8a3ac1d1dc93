"""engine.autograd: `backward` and `grad`, as in PyTorch."""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.autograd.graph import accumulate, run_backward
from engine.tensor import Tensor

__all__ = ["Function", "backward", "grad"]


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _root_grads(outputs, grad_outputs) -> list:
    """The gradient each output starts from: given, or 1 for a scalar output."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    grad_outputs = _as_tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"got {len(grad_outputs)} gradients for {len(outputs)} outputs")
    grads = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs (output {i} has shape "
                    f"{list(out.shape)}); pass gradient= (or grad_outputs=) of the same shape")
            grads.append(np.ones_like(out._data))
            continue
        g = g._data if isinstance(g, Tensor) else np.asarray(g, dtype=out._data.dtype)
        if g.shape != out._data.shape:
            raise RuntimeError(f"mismatch in shape: grad_output[{i}] has a shape of {list(g.shape)} "
                               f"and output[{i}] has a shape of {list(out.shape)}")
        grads.append(g.astype(out._data.dtype, copy=False))
    return grads


def _no_create_graph(create_graph: bool) -> None:
    if create_graph:
        raise NotImplementedError("create_graph=True (higher-order gradients) is not supported by the engine")


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) -> None:
    """Accumulate into the leaves' `.grad` the gradients of `tensors` (PyTorch's autograd.backward)."""
    _no_create_graph(create_graph)
    tensors = _as_tuple(tensors)
    roots = _root_grads(tensors, grad_tensors)
    if inputs is None:
        run_backward(tensors, roots, bool(retain_graph))
        return
    inputs = _as_tuple(inputs)
    captured = run_backward(tensors, roots, bool(retain_graph), capture={t.grad_fn or t for t in inputs})
    for t in inputs:
        g = captured.get(t.grad_fn or t)
        if g is not None:
            accumulate(t, g)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         materialize_grads=False) -> tuple:
    """The gradients of `outputs` with respect to `inputs`, without touching any `.grad`."""
    _no_create_graph(create_graph)
    outputs, inputs = _as_tuple(outputs), _as_tuple(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"One of the differentiated Tensors (input {i}) does not require grad")
    keys = [t.grad_fn or t for t in inputs]
    captured = run_backward(outputs, _root_grads(outputs, grad_outputs), bool(retain_graph), capture=set(keys))
    result = []
    for i, (t, key) in enumerate(zip(inputs, keys)):
        g = captured.get(key)
        if g is None:
            if materialize_grads:
                g = np.zeros_like(t._data)
            elif not (allow_unused or materialize_grads):
                raise RuntimeError(f"One of the differentiated Tensors (input {i}) appears to not have been "
                                   "used in the graph. Set allow_unused=True if this is the desired behavior.")
        result.append(None if g is None else Tensor._make(np.array(g)))
    return tuple(result)
