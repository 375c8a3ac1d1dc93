"""Saved bytes as arrays: a checkpoint file mapped copy-on-write, byte ranges of it, and typed storages."""

from __future__ import annotations

import io
import mmap
from pathlib import Path

import numpy as np

from engine import dtypes


def map_file(path: Path):
    """The file's bytes, mapped privately: pages are read on first touch, and writes never reach the file."""
    with open(path, "rb") as f:
        try:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        except ValueError:  # an empty file cannot be mapped
            return b""


def as_file(buffer):
    """A file-like reader over `buffer` from its start (a mapped file is one already)."""
    if isinstance(buffer, mmap.mmap):
        buffer.seek(0)
        return buffer
    return io.BytesIO(buffer)


def byte_range(buffer, offset: int, count: int) -> np.ndarray:
    """Bytes [offset, offset + count) as a writable uint8 array: a view of a mapped file, else a copy."""
    if offset < 0 or count < 0 or offset + count > len(buffer):
        raise ValueError(f"bytes {offset}..{offset + count} lie outside the file's {len(buffer)} bytes")
    array = np.frombuffer(buffer, np.uint8, count, offset) if count else np.empty(0, np.uint8)
    return array if array.flags.writeable else array.copy()


def itemsize(element: str) -> int:
    """Bytes per element of a storage element type ('f4', 'bf16', '?', ...)."""
    return 2 if element == "bf16" else np.dtype(element).itemsize


class Storage:
    """One saved storage: raw bytes and the element type they hold ('f4', 'i8', 'bf16', ...)."""

    def __init__(self, raw: np.ndarray, element: str, big_endian: bool = False):
        self.raw, self.element, self.big_endian = raw, element, big_endian
        self._typed: dict = {}

    def elements(self, element: str | None = None) -> np.ndarray:
        """The storage as a flat array of `element` (its own type by default), native byte order, cached.

        bfloat16 comes back as float32, exactly: the engine has no bfloat16 dtype.
        """
        element = element or self.element
        if element not in self._typed:
            stored = np.dtype((">" if self.big_endian else "<") + ("u2" if element == "bf16" else element))
            if len(self.raw) % stored.itemsize:
                raise ValueError(f"a storage of {len(self.raw)} bytes does not hold whole {element} elements")
            flat = self.raw.view(stored)
            if element == "bf16":
                flat = dtypes.widen_bfloat16(flat)
            elif not stored.isnative:
                flat = flat.astype(stored.newbyteorder("="))
            self._typed[element] = flat
        return self._typed[element]

    def slice(self, offset: int, numel: int) -> Storage:
        """Elements [offset, offset + numel) as a storage of their own (a legacy storage view)."""
        size = itemsize(self.element)
        return Storage(self.raw[offset * size:(offset + numel) * size], self.element, self.big_endian)
