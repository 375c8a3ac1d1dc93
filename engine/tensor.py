"""Tensor: a numpy array with autograd state; its methods are thin calls into engine.ops."""

from __future__ import annotations

import warnings
import weakref

import numpy as np

from engine import dtypes
from engine._format import format_tensor
from engine.device import check_device
from engine.grad_mode import state as _mode
from engine.memory import gauges as _gauges


class Size(tuple):
    """A tensor's shape: a tuple of ints."""

    def __repr__(self) -> str:
        return f"engine.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n


class Tensor:
    """An n-dimensional array on the CPU, with PyTorch's autograd semantics."""

    __slots__ = ("_data", "_requires_grad", "_grad", "_grad_fn", "_base", "_view_version", "_owner", "_nbytes",
                 "_version", "_inference", "_hooks", "__weakref__")
    __hash__ = object.__hash__  # __eq__ is elementwise, identity stays the hash
    __array_ufunc__ = None  # numpy operands defer to our reflected operators

    def __init__(self, *args):
        """`Tensor(data)` copies data as the default float dtype; `Tensor(*sizes)` makes zeros."""
        float_type = dtypes.get_default_dtype().np
        if len(args) == 1 and not isinstance(args[0], int):
            source = args[0]._data if isinstance(args[0], Tensor) else args[0]
            data = np.array(source, dtype=float_type)
        else:
            data = np.zeros(tuple(args[0]) if args and isinstance(args[0], tuple) else args, float_type)
        _setup(self, data, data.nbytes)

    # -- construction (internal) ----------------------------------------------------------
    @staticmethod
    def _make(data: np.ndarray, owns: bool = True) -> Tensor:
        """A new tensor on `data`; with `owns`, the engine counts its bytes as allocated."""
        t = object.__new__(Tensor)
        _setup(t, data, data.nbytes if owns else 0)
        return t

    def _view(self, data: np.ndarray, tracked: bool = False) -> Tensor:
        """A view made by a view op: `data` shares this tensor's storage, and `_base` is the storage's tensor.

        A view `tracked` by autograd (made while recording) follows its base's history after in-place writes.
        """
        t = object.__new__(Tensor)
        _setup(t, data, 0)
        t._base = self._base if self._base is not None else self
        t._version = self._version
        t._view_version = self._version[0] if tracked else None
        t._inference = self._inference
        return t

    def _alias(self, version: list) -> Tensor:
        """This tensor's storage outside autograd (not a view): detach() shares the version counter, .data not."""
        t = object.__new__(Tensor)
        _setup(t, self._data, 0)
        t._owner = self  # keeps the storage's allocation counted while the alias lives
        t._version = version
        t._inference = self._inference
        return t

    @staticmethod
    def _from_array_like(value) -> Tensor:
        from engine.creation import tensor
        return tensor(value)

    def __del__(self, _g=_gauges):
        _g.tensors -= 1
        _g.allocated -= self._nbytes

    def __reduce__(self):
        return _rebuild, (self._data, self._requires_grad)

    # -- attributes -------------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        """The shape, or the length of one dimension."""
        return Size(self._data.shape) if dim is None else self._data.shape[dim]

    def dim(self) -> int:
        return self._data.ndim

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return self._data.size

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def dtype(self) -> dtypes.dtype:
        return dtypes.from_numpy_dtype(self._data.dtype)

    @property
    def device(self):
        from engine.device import cpu
        return cpu

    @property
    def is_cuda(self) -> bool:
        return False

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def is_contiguous(self) -> bool:
        return self._data.flags.c_contiguous

    def is_inference(self) -> bool:
        """True for tensors made inside `inference_mode()`."""
        return self._inference

    @property
    def requires_grad(self) -> bool:
        self._follow_base()
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    @property
    def grad_fn(self):
        """The node that made this tensor in the graph (None for leaves)."""
        self._follow_base()
        return self._grad_fn

    @grad_fn.setter
    def grad_fn(self, node) -> None:
        self._grad_fn = node

    def _follow_base(self) -> None:
        """If this is a view whose storage was written in place since its history was set, make its history a
        view of its base's current history (PyTorch regenerates a view's grad_fn the same way)."""
        if self._view_version is None or self._view_version == self._version[0]:
            return
        self._view_version = self._version[0]
        if self._grad_fn is not None or self._base._requires_grad:
            self._grad_fn, self._requires_grad = _views.view_history(self, self._base), True

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad(self) -> Tensor | None:
        if self.grad_fn is not None and not self.retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
                "attribute won't be populated during autograd.backward(). If you indeed want the .grad field "
                "to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor.",
                UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None and value.shape != self.shape:
            raise RuntimeError(f"assigned grad has data of a different size: {list(value.shape)} "
                               f"vs the tensor's {list(self.shape)}")
        self._grad = value

    @property
    def retains_grad(self) -> bool:
        fn = self.grad_fn
        return fn is not None and fn._retained is not None and fn._retained() is self

    @property
    def data(self) -> Tensor:
        """This tensor's values outside autograd: the same storage with its own version counter, so writes
        through it (`p.data.mul_(0.5)`) change this tensor without invalidating what backward saved."""
        return self._alias([0])

    @data.setter
    def data(self, value: Tensor) -> None:
        """Hold `value`'s storage (any shape or dtype, as PyTorch allows), keeping this tensor's identity."""
        _gauges.allocated -= self._nbytes  # the storage is value's now, counted where it was allocated
        self._nbytes = 0
        self._data = value._data
        self._base, self._view_version, self._owner = None, None, value
        self._version = value._version

    @property
    def T(self) -> Tensor:  # noqa: N802 (PyTorch's name)
        return _ops.permute(self, *reversed(range(self._data.ndim)))

    @property
    def mT(self) -> Tensor:  # noqa: N802
        return _ops.transpose(self, -2, -1)

    # -- conversion -------------------------------------------------------------------------
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The values as a numpy array sharing this tensor's memory."""
        if self._requires_grad and _mode.grad_enabled and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        return self._data

    def __array__(self, dtype=None, copy=None):
        data = self.numpy()
        return data.astype(dtype) if dtype is not None and data.dtype != dtype else data

    def tolist(self):
        return self._data.tolist()

    def item(self):
        """The single value of a one-element tensor, as a Python number."""
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        return self._data.item()

    def to(self, *args, copy: bool = False, **kwargs) -> Tensor:
        """A tensor of another dtype (device 'cpu' is accepted and changes nothing)."""
        target = to_arguments(args, kwargs)
        if target is None or target.np == self._data.dtype:
            return self.clone() if copy else self
        return _ops.cast(self, target)

    def type(self, target=None):
        if target is None:
            return f"engine.{self.dtype.name.capitalize()}Tensor"
        return self.to(target)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def float(self) -> Tensor:
        return self.to(dtypes.float32)

    def double(self) -> Tensor:
        return self.to(dtypes.float64)

    def half(self) -> Tensor:
        return self.to(dtypes.float16)

    def long(self) -> Tensor:
        return self.to(dtypes.int64)

    def int(self) -> Tensor:
        return self.to(dtypes.int32)

    def bool(self) -> Tensor:
        return self.to(dtypes.bool)

    def cpu(self) -> Tensor:
        return self

    def cuda(self, *args, **kwargs) -> Tensor:
        check_device("cuda")

    def detach(self) -> Tensor:
        """The same storage and version counter, cut off from the graph: writes through it change this tensor."""
        return self._alias(self._version)

    def detach_(self) -> Tensor:
        self._grad_fn, self._requires_grad, self._view_version = None, False, None
        return self

    def clone(self) -> Tensor:
        return _ops.clone(self)

    def contiguous(self) -> Tensor:
        return _ops.contiguous(self)

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {'no' if not self._data.size else 'more than one'} "
                               "value is ambiguous")
        return bool(self._data.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iu" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._data.item())

    def __format__(self, spec: str) -> str:
        return format(self.item(), spec) if self._data.ndim == 0 and spec else repr(self)

    def __repr__(self) -> str:
        extras = []
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return format_tensor(self._data, default_float=dtypes.get_default_dtype().np, extras=extras)

    __str__ = __repr__

    # -- autograd ---------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Make this leaf record operations on it (or stop), in place."""
        if self.grad_fn is not None:
            if not requires_grad:
                raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want to "
                                   "use a computed variable in a subgraph that doesn't require differentiation "
                                   "use var_no_grad = var.detach().")
            return self
        if requires_grad and self._data.dtype.kind != "f":
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, got {self.dtype!r}")
        if requires_grad and self._inference and not _mode.inference:
            raise RuntimeError("Setting requires_grad=True on inference tensor outside InferenceMode is not allowed.")
        self._requires_grad = requires_grad
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`."""
        from engine.autograd import backward
        backward(self, gradient, retain_graph, create_graph, inputs)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in `.grad` during backward."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            self.grad_fn._retained = weakref.ref(self)

    def register_hook(self, hook):
        """Call hook(grad) with this tensor's gradient in backward; a returned tensor replaces it."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            self.grad_fn.register_hook(hook)
            return _RemovableHook(self.grad_fn._hooks, hook)
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return _RemovableHook(self._hooks, hook)

    # -- in place ---------------------------------------------------------------------------
    def _write_(self, result: Tensor) -> Tensor:
        """Make this tensor hold `result`'s values and history: how every in-place op ends."""
        if self._inference and not _mode.inference:
            raise RuntimeError("Inplace update to inference tensor outside InferenceMode is not allowed. "
                               "You can make a clone to get a normal tensor before doing inplace update.")
        if _views.overlaps_itself(self._data):
            raise RuntimeError("unsupported operation: more than one element of the written-to tensor refers to a "
                               "single memory location. Please clone() the tensor before performing the operation.")
        recording = _mode.recording and (result._requires_grad or self.requires_grad)
        if recording:
            self._check_writable_in_graph()
        if result._data.dtype.kind == "f" and self._data.dtype.kind != "f":
            raise RuntimeError(f"result type {result.dtype.name} can't be cast to the desired output type "
                               f"{self.dtype.name}")
        node = result._grad_fn
        if node is not None:
            node.own_saved(self._data, self._version)  # its saved copy must outlive this write
        np.copyto(self._data, np.broadcast_to(result._data, self._data.shape), casting="unsafe")
        self._mark_written()
        if recording and self._base is not None:
            _views.rebase(self, result)  # the base's history takes the write; this view follows it
            self._view_version = self._version[0]
        elif node is not None:
            self._grad_fn, self._requires_grad = node, True
        return self

    def _check_writable_in_graph(self) -> None:
        """PyTorch's refusals of in-place writes that would lose a leaf's gradient."""
        if self._base is not None and self.requires_grad and self._base.is_leaf:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")
        if self.requires_grad and self.is_leaf:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")

    def _mark_written(self) -> None:
        """Record an in-place write to this storage: the version counter views share, checked at backward."""
        self._version[0] += 1

    def add_(self, other, alpha=1) -> Tensor:
        return self._write_(_ops.add(self, other, alpha=alpha))

    def sub_(self, other, alpha=1) -> Tensor:
        return self._write_(_ops.sub(self, other, alpha=alpha))

    def mul_(self, other) -> Tensor:
        return self._write_(_ops.mul(self, other))

    def div_(self, other) -> Tensor:
        return self._write_(_ops.div(self, other))

    def pow_(self, other) -> Tensor:
        return self._write_(_ops.pow(self, other))

    def clamp_(self, min=None, max=None) -> Tensor:  # noqa: A002
        return self._write_(_ops.clamp(self, min, max))

    def copy_(self, src, non_blocking: bool = False) -> Tensor:
        """Copy src's values into this tensor (broadcast, cast), differentiably."""
        return self._write_(_ops.shape.copied_into(self, src))

    def fill_(self, value) -> Tensor:
        return self._write_(_ops.shape.filled(self, value))

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def __setitem__(self, key, value) -> None:
        self._write_(_ops.index_put(self, key, value))

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    # -- arithmetic and comparisons ---------------------------------------------------------
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __floordiv__(self, other):
        return _ops.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _ops.floor_divide(other, self)

    def __mod__(self, other):
        return _ops.remainder(self, other)

    def __pow__(self, other):
        return _ops.pow(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.abs(self)

    def __eq__(self, other):
        return _ops.eq(self, other) if _comparable(other) else NotImplemented

    def __ne__(self, other):
        return _ops.ne(self, other) if _comparable(other) else NotImplemented

    def __lt__(self, other):
        return _ops.lt(self, other)

    def __le__(self, other):
        return _ops.le(self, other)

    def __gt__(self, other):
        return _ops.gt(self, other)

    def __ge__(self, other):
        return _ops.ge(self, other)

    def __and__(self, other):
        return _ops.logical_and(self, other) if self._data.dtype.kind == "b" else _bitwise(np.bitwise_and, self, other)

    def __or__(self, other):
        return _ops.logical_or(self, other) if self._data.dtype.kind == "b" else _bitwise(np.bitwise_or, self, other)

    def __invert__(self):
        return Tensor._make(np.invert(self._data))

    def __getitem__(self, key):
        return _ops.getitem(self, key)

    # -- shape helpers taking another tensor, and factories of the same dtype ----------------
    def view_as(self, other: Tensor) -> Tensor:
        return _ops.view(self, other.shape)

    def reshape_as(self, other: Tensor) -> Tensor:
        return _ops.reshape(self, other.shape)

    def expand_as(self, other: Tensor) -> Tensor:
        return _ops.expand(self, other.shape)

    def new_zeros(self, *size, dtype=None) -> Tensor:
        return self.new_full(_ops.sizes(size), 0, dtype=dtype)

    def new_ones(self, *size, dtype=None) -> Tensor:
        return self.new_full(_ops.sizes(size), 1, dtype=dtype)

    def new_full(self, size, fill_value, dtype=None) -> Tensor:
        return Tensor._make(np.full(tuple(size), fill_value, (dtype or self.dtype).np))

    def new_tensor(self, data, dtype=None) -> Tensor:
        from engine.creation import tensor
        return tensor(data, dtype=dtype or self.dtype)


def _setup(t: Tensor, data: np.ndarray, nbytes: int) -> None:
    """Fill a new tensor's slots and count it (the one place tensors are counted)."""
    t._data = data
    t._requires_grad = False
    t._grad = None
    t._grad_fn = None
    t._base = None  # the tensor whose storage this view shares (None unless made by a view op)
    t._view_version = None  # for a view autograd tracks: the version its history was set at
    t._owner = None  # for aliases (detach, .data, Parameter): the tensor whose allocation they share
    t._nbytes = nbytes
    t._version = [0]  # shared with views, so an in-place write through any of them is seen by all
    t._inference = _mode.inference
    t._hooks = None
    g = _gauges
    g.tensors += 1
    if g.tensors > g.tensors_peak:
        g.tensors_peak = g.tensors
    if nbytes:
        g.allocated += nbytes
        if g.allocated > g.allocated_peak:
            g.allocated_peak = g.allocated


def to_arguments(args: tuple, kwargs: dict):
    """The dtype that `to(...)` asks for (or None), checking that any device named is the CPU."""
    target = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    for arg in (*args, kwargs.pop("device", None)):
        if isinstance(arg, dtypes.dtype):
            target = arg
        elif isinstance(arg, Tensor):
            target = arg.dtype
        elif arg is not None:
            check_device(arg)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    return target


def _rebuild(data: np.ndarray, requires_grad: bool) -> Tensor:
    t = Tensor._make(data)
    t._requires_grad = requires_grad
    return t


def _comparable(other) -> bool:
    return isinstance(other, (Tensor, int, float, np.ndarray, np.generic))


def _bitwise(np_op, a: Tensor, b) -> Tensor:
    other = b._data if isinstance(b, Tensor) else b
    return Tensor._make(np.asarray(np_op(a._data, other)))


class _RemovableHook:
    """What register_hook returns: `.remove()` unregisters the hook."""

    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


from engine import ops as _ops  # noqa: E402 (ops build Tensors: imported once the class exists)
from engine.autograd import views as _views  # noqa: E402

# Methods that are the op itself with the tensor first: Tensor.exp is ops.exp, and so on.
_OP_METHODS = (
    "abs", "add", "all", "amax", "amin", "any", "argmax", "argmin", "argsort", "chunk", "clamp", "div", "eq",
    "exp", "expand", "flatten", "floor_divide", "gather", "ge", "gt", "isfinite", "isnan", "le", "log",
    "log_softmax", "lt", "masked_fill", "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "ne",
    "neg", "norm", "permute", "pow", "prod", "relu", "remainder", "reshape", "sigmoid", "softmax", "sort",
    "split", "sqrt", "squeeze", "std", "sub", "sum", "t", "tanh", "topk", "transpose", "unflatten", "unsqueeze",
    "var", "view",
)
for _name in _OP_METHODS:
    setattr(Tensor, _name, getattr(_ops, _name))
Tensor.clip = Tensor.clamp
Tensor.mm = Tensor.matmul
Tensor.negative = Tensor.neg
Tensor.absolute = Tensor.abs
