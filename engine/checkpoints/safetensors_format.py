"""safetensors files, read in place: an 8-byte header length, a JSON header, then the tensors' bytes.

Read here rather than by the safetensors package so that tensors are views of the mapped file and BF16
loads (as float32, exactly: numpy has no bfloat16). The checks are the package's: every tensor's byte
range matches its dtype and shape, and the ranges tile the data section without gaps or overlaps.
"""

from __future__ import annotations

import json
import math

from engine.checkpoints.storage import Storage, byte_range, itemsize
from engine.tensor import Tensor

_ELEMENTS = {"F64": "f8", "F32": "f4", "F16": "f2", "BF16": "bf16", "I64": "i8", "I32": "i4", "I16": "i2",
             "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_safetensors(buffer) -> dict:
    """name -> tensor, in name order (as safetensors' own loaders give them); ValueError saying what is wrong."""
    if len(buffer) < 8:
        raise ValueError(f"{len(buffer)} bytes is too short for a header")
    header_size = int.from_bytes(bytes(buffer[:8]), "little")
    if header_size > len(buffer) - 8:
        raise ValueError(f"the header of {header_size} bytes runs past the end of the file ({len(buffer)} bytes)")
    try:
        header = json.loads(bytes(buffer[8:8 + header_size]))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"the header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    header.pop("__metadata__", None)
    start, end = 8 + header_size, 0
    tensors = {}
    for key, entry in sorted(header.items(), key=lambda item: _offsets(*item)):
        begin, stop = _offsets(key, entry)
        if begin != end:
            raise ValueError(f"tensor {key!r} starts at byte {begin} of the data, expected {end}")
        tensors[key] = _tensor(key, entry, byte_range(buffer, start + begin, stop - begin))
        end = stop
    if start + end != len(buffer):
        raise ValueError(f"the header describes {end} bytes of data, the file holds {len(buffer) - start}")
    return {key: tensors[key] for key in sorted(tensors)}


def _offsets(key: str, entry) -> tuple:
    offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise ValueError(f"tensor {key!r} has no valid data_offsets: {entry!r}")
    return tuple(offsets)


def _tensor(key: str, entry: dict, raw) -> Tensor:
    element, shape = _ELEMENTS.get(entry.get("dtype")), entry.get("shape")
    if element is None:
        raise ValueError(f"tensor {key!r} has dtype {entry.get('dtype')!r}; the engine reads "
                         f"{', '.join(_ELEMENTS)}")
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
        raise ValueError(f"tensor {key!r} has an invalid shape {shape!r}")
    if len(raw) != math.prod(shape) * itemsize(element):
        raise ValueError(f"tensor {key!r} of dtype {entry['dtype']} and shape {shape} does not fit its "
                         f"{len(raw)} bytes")
    flat = Storage(raw, element).elements()
    return Tensor._make(flat.reshape(shape), owns=False)  # a view of the mapped file
