"""The backward pass: an iterative walk of the graph in dependency order.

A node runs once every node that feeds it a gradient has run, so each node and each leaf sees
its whole gradient at once (hooks fire once, leaves accumulate once). Unless the graph is
retained, each node frees what it saved as soon as its backward has run.
"""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.tensor import Tensor


def _dependency_counts(starts) -> dict:
    """For every node or leaf reachable from `starts`, how many edges lead into it."""
    deps: dict = {}
    seen = set()
    stack = list(starts)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if isinstance(node, Function):
            for edge in node.next_functions_:
                if edge is not None:
                    deps[edge] = deps.get(edge, 0) + 1
                    stack.append(edge)
    return deps


def _run_hooks(hooks, grad: np.ndarray) -> np.ndarray:
    for hook in hooks or ():
        replaced = hook(Tensor._make(grad, owns=False))
        if replaced is not None:
            grad = replaced._data
    return grad


def accumulate(t: Tensor, grad: np.ndarray) -> None:
    """Add `grad` into `t.grad` (a copy the first time: gradients may be shared between inputs)."""
    if t._grad is None:
        t._grad = Tensor._make(np.array(grad))
    else:
        t._grad = Tensor._make(np.asarray(t._grad._data + grad))


def run_backward(roots, root_grads, retain_graph: bool, capture=None) -> dict:
    """Send `root_grads` back from `roots` through the graph.

    Without `capture`, leaves accumulate into `.grad`. With `capture` (a set of nodes/leaves),
    `.grad` is left alone and the gradients reaching those keys are returned instead.
    """
    grads: dict = {}
    for t, g in zip(roots, root_grads):
        key = t.grad_fn or t
        grads[key] = grads[key] + g if key in grads else g
    deps = _dependency_counts(grads)
    ready = [key for key in grads if deps.get(key, 0) == 0]
    captured = {}
    while ready:
        node = ready.pop()
        grad = grads.pop(node)
        if isinstance(node, Tensor):  # a leaf
            grad = _run_hooks(node._hooks, grad)
            if capture is None:
                accumulate(node, grad)
            elif node in capture:
                captured[node] = grad
            continue
        grad = _run_hooks(node._hooks, grad)
        if node._retained is not None and (out := node._retained()) is not None and capture is None:
            accumulate(out, grad)
        if capture is not None and node in capture:
            captured[node] = grad
        input_grads = node.backward(grad)
        if not retain_graph:
            node.release()
        for edge, input_grad in zip(node.next_functions_, input_grads):
            if edge is None:
                continue
            grads[edge] = grads[edge] + input_grad if edge in grads else input_grad
            deps[edge] -= 1
            if deps[edge] == 0:
                ready.append(edge)
    return captured
