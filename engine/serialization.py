"""engine.save / engine.load: state dicts as safetensors files (never pickle)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as _load_safetensors
from safetensors.numpy import save_file

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


def load(path, map_location=None, weights_only: bool = True) -> dict:
    """Read a safetensors file into a dict of name -> tensor (map_location/weights_only: PyTorch's, ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return load_bytes(path.read_bytes(), name=str(path))


def load_bytes(data: bytes, name: str = "<bytes>") -> dict:
    """Parse safetensors bytes into a dict of name -> tensor; ValueError naming `name` if they are not valid."""
    try:
        arrays = _load_safetensors(data)
    except (SafetensorError, ValueError, OSError) as e:
        raise ValueError(f"{name} is not a valid safetensors file: {e}") from None
    return {key: Tensor._make(np.array(array)) for key, array in arrays.items()}
