"""A pickle reader that admits only what `torch.load(weights_only=True)` admits, and runs nothing from the file.

`find_class` hands out engine stand-ins for an allow-list of globals: PyTorch's tensor rebuild functions,
storage types and dtypes, `OrderedDict`, `Counter`, and the few builtins pickle needs for plain values.
Any other global is refused before anything is called, so a `__reduce__` to `os.system` or a custom class
never runs. Storages arrive through `persistent_load`, read by the container (zip or legacy) on request.
"""

from __future__ import annotations

import pickle
from collections import Counter, OrderedDict
from collections.abc import Callable

import numpy as np

from engine import dtypes
from engine.checkpoints.storage import Storage
from engine.device import device
from engine.nn.parameter import Parameter
from engine.tensor import Size, Tensor


class UnpicklingError(pickle.UnpicklingError, ValueError):
    """A checkpoint that is not weights-only or not valid (PyTorch's error type, and a ValueError)."""


# Element types of PyTorch's storage classes; bfloat16 is read as float32 (exactly: see widen_bfloat16).
_STORAGE_ELEMENTS = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "?", "UntypedStorage": "u1",
}
_DTYPES = {d.name: d for d in (dtypes.float64, dtypes.float32, dtypes.float16, dtypes.int64, dtypes.int32,
                               dtypes.int16, dtypes.int8, dtypes.uint8, dtypes.bool)}
_DTYPES["bfloat16"] = dtypes.float32  # the engine holds bfloat16 tensors widened to float32


class StorageType:
    """What a pickled `torch.FloatStorage` (and the like) stands for: the element type of a storage."""

    __slots__ = ("name", "element")

    def __init__(self, name: str, element: str):
        self.name, self.element = name, element


class _TensorType:
    """What a pickled `torch.Tensor` or `torch.nn.Parameter` class stands for (only _rebuild_from_type_v2 uses it)."""

    def __init__(self, parameter: bool):
        self.parameter = parameter


def _ints(values, what: str) -> tuple:
    if not isinstance(values, (tuple, list)) or not all(type(v) is int and v >= 0 for v in values):
        raise ValueError(f"a tensor's {what} must be a tuple of non-negative ints, got {values!r}")
    return tuple(values)


def _strided(storage, storage_offset, size, stride, element: str | None = None) -> Tensor:
    """A tensor viewing `storage` (PyTorch's `set_`), refused if it would reach outside the storage."""
    if not isinstance(storage, Storage):
        raise ValueError(f"expected a storage, got {type(storage).__name__}")
    flat = storage.elements(element)
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    (offset,) = _ints((storage_offset,), "storage offset")
    if len(size) != len(stride):
        raise ValueError(f"a tensor's size {list(size)} and stride {list(stride)} differ in length")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if 0 not in size else offset - 1
    if last >= len(flat) or offset > len(flat):
        raise ValueError(f"a tensor of size {list(size)}, stride {list(stride)} and offset {offset} "
                         f"reaches outside its storage of {len(flat)} elements")
    data = np.lib.stride_tricks.as_strided(flat[offset:], size, tuple(s * flat.itemsize for s in stride))
    return Tensor._make(data, owns=False)  # a view of the mapped file: memory the engine did not allocate


def _with_grad(t: Tensor, requires_grad) -> Tensor:
    if requires_grad:
        t.requires_grad_(True)
    return t


def _no_metadata(metadata) -> None:
    if metadata:
        raise ValueError(f"tensor metadata {metadata!r} (conjugate or negative bits) is not supported by the engine")


def _rebuild_tensor(storage, storage_offset, size, stride) -> Tensor:
    return _strided(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    _no_metadata(metadata)
    return _with_grad(_strided(storage, storage_offset, size, stride), requires_grad)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    _no_metadata(metadata)
    if not isinstance(dtype, dtypes.dtype):
        raise ValueError(f"expected a dtype, got {type(dtype).__name__}")
    return _with_grad(_strided(storage, storage_offset, size, stride, dtype.np.str[1:]), requires_grad)


def _rebuild_parameter(data, requires_grad, backward_hooks) -> Parameter:
    if not isinstance(data, Tensor):
        raise ValueError(f"a Parameter's data must be a tensor, got {type(data).__name__}")
    return Parameter(data, bool(requires_grad))


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state) -> Parameter:
    _no_state(state)
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _no_state(state) -> None:
    """Refuse Python attributes on a tensor: `state` is None, a dict, or (dict, slots)."""
    if any(state if isinstance(state, tuple) else (state,)):
        raise ValueError("tensors with Python attributes are not supported by the engine")


def _rebuild_from_type_v2(func, new_type, args, state) -> Tensor:
    """How PyTorch pickles a tensor subclass or a tensor with attributes: admitted for Tensor and Parameter."""
    if not any(func is f for f in _REBUILDS) or not isinstance(new_type, _TensorType) or not isinstance(args, tuple):
        raise ValueError("_rebuild_from_type_v2 expects a tensor rebuild function, a tensor type and arguments")
    _no_state(state)
    t = func(*args)
    return Parameter(t, t.requires_grad) if new_type.parameter and not isinstance(t, Parameter) else t


def _encode(text, encoding="latin1") -> bytes:
    """How protocol 2 pickles bytes: `_codecs.encode(str, 'latin1')`."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ValueError("_codecs.encode is admitted only for bytes pickled as latin1 text")
    return text.encode("latin1")


_REBUILDS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter,
             _rebuild_parameter_with_state)

_ALLOWED: dict = {
    "collections.OrderedDict": OrderedDict,
    "collections.Counter": Counter,
    "builtins.set": set,
    "builtins.bytearray": bytearray,
    "builtins.complex": complex,
    "_codecs.encode": _encode,
    "torch.Size": Size,
    "torch.device": device,
    "torch.Tensor": _TensorType(parameter=False),
    "torch.nn.parameter.Parameter": _TensorType(parameter=True),
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    **{f"torch._utils.{f.__name__}": f for f in _REBUILDS},
    **{f"torch.{name}": d for name, d in _DTYPES.items()},
    **{f"torch.{name}": StorageType(name, element) for name, element in _STORAGE_ELEMENTS.items()},
    "torch.storage.UntypedStorage": StorageType("UntypedStorage", "u1"),
}

StorageLoader = Callable[[str, StorageType, int], Storage]


class WeightsUnpickler(pickle.Unpickler):
    """Unpickles one pickle of checkpoint `name`; `load_storage(key, type, numel)` supplies its storages."""

    def __init__(self, file, name: str, load_storage: StorageLoader | None = None):
        super().__init__(file, encoding="bytes")
        self.name, self._load_storage = name, load_storage

    def find_class(self, module: str, name: str):
        """The engine stand-in for an allowed global; any other global is refused, naming it and the file."""
        module = "builtins" if module == "__builtin__" else module  # protocol 2 spells builtins so
        found = _ALLOWED.get(f"{module}.{name}")
        if found is not None:
            return found
        if module.split(".")[0] == "torch":  # admitted by PyTorch, or a whole pickled model: not weights the engine has
            raise UnpicklingError(
                f"{self.name} holds '{module}.{name}', which the engine does not read: it reads dense tensors of "
                f"dtypes {', '.join(_DTYPES)} in plain containers (a model saved whole with torch.save(model) "
                "must be saved as model.state_dict())")
        raise UnpicklingError(
            f"{self.name}: refusing to load the global '{module}.{name}': a weights-only checkpoint holds only "
            "tensors, storages, OrderedDict, plain containers and scalars (nothing in it was run)")

    def persistent_load(self, pid):
        """A storage, from its persistent id ('storage', type, key, location, numel[, view])."""
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and _text(pid[0]) == "storage"):
            raise UnpicklingError(f"{self.name}: unexpected persistent id {pid!r} (expected a storage)")
        storage_type, key, numel = pid[1], _text(pid[2]), pid[4]
        if not isinstance(storage_type, StorageType) or type(numel) is not int or self._load_storage is None:
            raise UnpicklingError(f"{self.name}: malformed storage id {pid!r}")
        storage = self._load_storage(key, storage_type, numel)
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return storage
        _, offset, size = view  # a legacy storage view: a slice of its root storage
        return storage.slice(offset, size)


def _text(value) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else value


class StorageSurvey(WeightsUnpickler):
    """A first pass over a legacy checkpoint's pickle, whose storages' bytes come after it in the file.

    It notes each storage's type and size by key (in `.storages`) and builds no tensor.
    """

    _SKIPPED = frozenset(name for name, value in _ALLOWED.items() if value in _REBUILDS + (_rebuild_from_type_v2,))

    def __init__(self, file, name: str):
        super().__init__(file, name, self._note)
        self.storages: dict = {}

    def find_class(self, module: str, name: str):
        found = super().find_class(module, name)
        return _build_nothing if f"{module}.{name}" in self._SKIPPED else found

    def _note(self, key: str, storage_type: StorageType, numel: int) -> Storage:
        self.storages.setdefault(key, (storage_type, numel))
        return Storage(np.empty(0, np.uint8), storage_type.element)


def _build_nothing(*args) -> None:
    return None
