"""Function: one op's forward and backward side by side; an instance is a node of the graph.

`Function.apply` is the one place that decides whether the graph is recorded: it reads the
grad mode, and only when some input requires grad does it keep the node, count what the node
saved for backward, and snapshot the versions of saved tensors so that later in-place changes
are caught at backward time instead of silently giving wrong gradients.
"""

from __future__ import annotations

import numpy as np

from engine import memory
from engine.broadcast import raise_if_mismatched
from engine.grad_mode import state as _mode


class _SavedArrays:
    """Keeps a node's saved arrays counted in the memory gauges for exactly as long as it lives."""

    __slots__ = ("arrays",)

    def __init__(self, saved: tuple):
        self.arrays = tuple([a for a in saved if isinstance(a, np.ndarray)])
        memory.hold(self.arrays)

    def __del__(self, _let_go=memory.let_go):
        _let_go(self.arrays)


class Function:
    """Base of all ops. Subclasses define forward (numpy in, numpy out) and backward beside it.

    forward(*arrays, **params) computes the result and calls `self.save(...)` with what backward
    needs. backward(grad) returns one gradient (or None) per input of forward; it may consult
    `self.needs_input_grad` to skip work. Gradients are numpy arrays of the input's shape.
    """

    view = False  # True for ops whose result may share its first input's storage
    saved = ()
    next_functions_ = ()
    needs_input_grad = ()
    _saved_guard = None  # a _SavedArrays while the node holds saved arrays
    _versions = ()  # (version cell, value at save time) of each saved tensor
    _hooks = None  # hooks registered on the output tensor
    _retained = None  # weak reference to the output tensor when it retains its grad

    def needs(self, i: int) -> bool:
        """Whether input i's gradient will be computed (False when the graph is not recorded)."""
        return i < len(self.needs_input_grad) and self.needs_input_grad[i]

    def save(self, *arrays) -> None:
        """Keep arrays for backward (dropped with the node when the graph is not recorded)."""
        self.saved = arrays

    def forward(self, *args, **params):
        raise NotImplementedError

    def backward(self, grad: np.ndarray):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on tensors (and plain values) and return the result tensor."""
        fn = cls()
        grad_mode = _mode.recording
        recording = False
        if grad_mode:
            needs = tuple([isinstance(x, Tensor) and x.requires_grad for x in inputs])
            if True in needs:
                recording = True
                fn.needs_input_grad = needs  # set before forward, so it saves only what backward will use
        try:
            out = fn.forward(*[x._data if isinstance(x, Tensor) else x for x in inputs], **params)
        except ValueError:
            # numpy's broadcasting error, in PyTorch's words
            raise_if_mismatched(*[x for x in inputs if isinstance(x, (Tensor, np.ndarray))])
            raise
        if type(out) is not np.ndarray:  # numpy turns 0-d results into scalars
            out = np.asarray(out)
        if cls.view and np.may_share_memory(out, inputs[0]._data):
            result = inputs[0]._view(out, tracked=grad_mode)  # shares the input's storage
        else:
            result = Tensor._make(out)
        if recording:
            fn._record(inputs, result)
        return result

    def _record(self, inputs, result) -> None:
        self.next_functions_ = tuple([(x.grad_fn or x) if need else None
                                      for x, need in zip(inputs, self.needs_input_grad)])
        result._requires_grad = True
        result._grad_fn = self
        if self.saved:
            self._check_saved(inputs, result)
            self._saved_guard = _SavedArrays(self.saved)

    def _check_saved(self, inputs, result) -> None:
        """Refuse to save inference tensors; remember versions of saved tensors."""
        versions = []
        for t in (*inputs, result):
            if isinstance(t, Tensor) and any(a is t._data for a in self.saved):
                if t._inference:
                    raise RuntimeError(
                        "Inference tensors cannot be saved for backward. To work around, make a clone "
                        "to get a normal tensor and use it in autograd.")
                versions.append((t._version, t._version[0]))
        self._versions = tuple(versions)

    def release(self) -> None:
        """Free what the node saved; a later backward through it is an error."""
        if self._saved_guard is not None:
            self.saved = None
            self._saved_guard = None

    def own_saved(self, array: np.ndarray, version_cell: list) -> None:
        """Replace saved references to `array`, about to be overwritten in place, by copies."""
        if self.saved and any(a is array for a in self.saved):
            self.saved = tuple(a.copy() if a is array else a for a in self.saved)
            self._versions = tuple(v for v in self._versions if v[0] is not version_cell)
            self._saved_guard = _SavedArrays(self.saved)  # count the copies; the old guard lets go

    def adopt_saved(self, array: np.ndarray, tensor) -> None:
        """Replace saved references to `array` by `tensor`'s storage, which an in-place op has just filled with
        the same values: the node keeps the written tensor itself, checked at backward against later writes,
        as PyTorch's in-place ops that save their result do (relu_ keeps its input, not a copy)."""
        if self.saved and any(a is array for a in self.saved):
            self.saved = tuple(tensor._data if a is array else a for a in self.saved)
            self._versions = (*self._versions, (tensor._version, tensor._version[0]))
            self._saved_guard = _SavedArrays(self.saved)  # counts the tensor's storage; the old guard lets go

    def saved_arrays(self) -> tuple:
        """What forward saved, checked to be still there and unmodified."""
        if self.saved is None:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved tensors "
                "after they have already been freed). Saved intermediate values of the graph are freed "
                "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
                "backward through the graph a second time or if you need to access saved tensors after "
                "calling backward.")
        for cell, version in self._versions:
            if cell[0] != version:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified by an "
                    f"inplace operation: the output of {self.name()} needed it at version {version}, "
                    f"but it is now at version {cell[0]}.")
        return self.saved

    # Introspection as in PyTorch: grad_fn.name(), grad_fn.next_functions.
    @classmethod
    def name(cls) -> str:
        return f"{cls.__name__}Backward0"

    @property
    def next_functions(self) -> tuple:
        return tuple((edge if isinstance(edge, Function) else AccumulateGrad(edge) if edge is not None else None, 0)
                     for edge in self.next_functions_)

    def register_hook(self, hook) -> None:
        """Call hook(grad) on the gradient of this node's output (it may return a replacement)."""
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"


class AccumulateGrad:
    """How PyTorch shows a leaf in next_functions; the engine itself keeps the leaf tensor."""

    def __init__(self, variable):
        self.variable = variable

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"


from engine.tensor import Tensor  # noqa: E402 (Tensor calls ops, ops build Tensors)
