"""engine.save / engine.load: the engine writes safetensors, and reads safetensors and torch.save checkpoints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from engine.checkpoints.safetensors_format import read_safetensors
from engine.checkpoints.storage import map_file
from engine.checkpoints.torch_format import is_pickle, is_zip, read_legacy, read_zip
from engine.tensor import Tensor


def save(obj: dict, path) -> None:
    """Write a flat dict of name -> tensor to `path` in the safetensors format, atomically."""
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
        raise TypeError("engine.save writes state dicts: a dict of str -> Tensor (safetensors holds no other objects)")
    path = Path(path)
    arrays = {name: np.require(t.detach()._data, requirements="C") for name, t in obj.items()}  # keeps 0-d as 0-d
    partial = path.with_name(f".{path.name}.partial")
    try:
        save_file(arrays, str(partial))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)  # safetensors writes owner-only files; workers may run as others
        os.replace(partial, path)  # a reader never sees a half-written checkpoint
    finally:
        partial.unlink(missing_ok=True)


def load(f, map_location=None, pickle_module=None, *, weights_only: bool = True, mmap=None, **kwargs) -> Any:
    """Read a checkpoint from a path or file: safetensors, or what `torch.save` writes (zip or legacy).

    The format is told by content, not name. Only weights come back (tensors, nested dicts and lists, numbers,
    strings): a pickle naming any other global is refused and nothing in it runs, as with PyTorch's
    `weights_only=True`. Tensors are views of the file mapped copy-on-write (bfloat16 ones are float32).
    map_location, pickle_module, weights_only and mmap are PyTorch's and change nothing (CPU only, always
    weights-only, always mapped).
    """
    if hasattr(f, "read"):
        return load_bytes(f.read(), name=str(getattr(f, "name", "<file>")))
    path = Path(f)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return _read(map_file(path), str(path))


def load_bytes(data: bytes, name: str = "<bytes>") -> Any:
    """`load` from bytes in memory; a ValueError naming `name` if they are not a checkpoint."""
    return _read(data, name)


def _read(buffer, name: str) -> Any:
    if is_zip(buffer):
        return read_zip(buffer, name)
    if is_pickle(buffer):
        return read_legacy(buffer, name)
    try:
        return read_safetensors(buffer)
    except ValueError as e:
        raise ValueError(f"{name} is not a valid safetensors file ({e}), nor a torch.save checkpoint") from None
