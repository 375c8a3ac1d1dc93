"""PyTorch's checkpoint containers, read without PyTorch: the zip archive `torch.save` writes, and the legacy
stream of pickles (`_use_new_zipfile_serialization=False`). Tensors are views of the file's bytes."""

from __future__ import annotations

import struct
import zipfile
import zlib

from engine.checkpoints.storage import Storage, as_file, byte_range, itemsize
from engine.checkpoints.weights_unpickler import StorageSurvey, StorageType, UnpicklingError, WeightsUnpickler

ZIP_MAGIC = b"PK\x03\x04"
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # the first pickle of a legacy checkpoint
LEGACY_PROTOCOL_VERSION = 1001


def is_zip(buffer) -> bool:
    """Whether the bytes start as a zip archive (torch.save's format since PyTorch 1.6)."""
    return bytes(buffer[:4]) == ZIP_MAGIC


def is_pickle(buffer) -> bool:
    """Whether the bytes start as a pickle: a legacy torch.save checkpoint opens with its magic-number pickle."""
    return bytes(buffer[:1]) == b"\x80"  # PROTO: pickle protocol 2 or later


def read_zip(buffer, name: str):
    """The object in a `torch.save` zip archive: `<folder>/data.pkl`, its storages in `<folder>/data/<key>`."""
    try:
        archive = zipfile.ZipFile(as_file(buffer))
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise UnpicklingError(f"{name} is not a valid zip archive: {e}") from None
    records = {info.filename: info for info in archive.infolist()}
    pickles = [path for path in records if path.endswith("/data.pkl") and path.count("/") == 1]
    if any(path.endswith("/constants.pkl") for path in records):  # as torch.load tells them apart
        raise UnpicklingError(f"{name} is a TorchScript archive (torch.jit.save), which holds code; engine.load "
                              "reads what torch.save writes")
    if len(pickles) != 1:
        raise UnpicklingError(f"{name} is a zip archive without one <folder>/data.pkl: not a torch.save checkpoint")
    folder = pickles[0][: -len("data.pkl")]
    order = _record(buffer, records.get(folder + "byteorder"), name)
    if order is not None and bytes(order) not in (b"little", b"big"):
        raise UnpicklingError(f"{name}: unknown byte order {bytes(order)!r}")
    big_endian = order is not None and bytes(order) == b"big"
    storages: dict = {}

    def load_storage(key: str, storage_type: StorageType, numel: int) -> Storage:
        if key not in storages:
            raw = _record(buffer, records.get(f"{folder}data/{key}"), name)
            if raw is None or len(raw) != numel * itemsize(storage_type.element):
                raise UnpicklingError(f"{name}: storage {key!r} of {numel} {storage_type.name} elements is "
                                      f"missing or of another size in the archive")
            storages[key] = Storage(raw, storage_type.element, big_endian)
        return storages[key]

    pickle_bytes = _record(buffer, records[pickles[0]], name).tobytes()
    return _unpickle(WeightsUnpickler(as_file(pickle_bytes), name, load_storage), name)


def _record(buffer, info: zipfile.ZipInfo | None, name: str):
    """A record's bytes as a uint8 array, read in place when stored uncompressed (as torch.save writes them)."""
    if info is None:
        return None
    header = bytes(buffer[info.header_offset:info.header_offset + 30])
    if len(header) < 30 or header[:4] != ZIP_MAGIC:
        raise UnpicklingError(f"{name}: the zip entry of {info.filename} is damaged")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    try:
        if info.compress_type == zipfile.ZIP_STORED:
            return byte_range(buffer, start, info.file_size)
        if info.compress_type == zipfile.ZIP_DEFLATED:
            inflated = zlib.decompress(bytes(buffer[start:start + info.compress_size]), -15)
            return byte_range(bytearray(inflated), 0, len(inflated))
    except (ValueError, zlib.error) as e:
        raise UnpicklingError(f"{name}: cannot read {info.filename}: {e}") from None
    raise UnpicklingError(f"{name}: {info.filename} uses zip compression method {info.compress_type}")


def read_legacy(buffer, name: str):
    """The object in a legacy checkpoint: magic, protocol and system pickles, the object, its storage keys,
    then each storage's bytes (an 8-byte element count, then the elements), in the order of those keys."""
    file = as_file(buffer)
    magic, protocol, system = (_unpickle(WeightsUnpickler(file, name), name) for _ in range(3))
    if magic != LEGACY_MAGIC_NUMBER or protocol != LEGACY_PROTOCOL_VERSION or not isinstance(system, dict):
        raise UnpicklingError(f"{name} is neither a safetensors file nor a torch.save checkpoint")
    big_endian = not system.get("little_endian", True)
    start = file.tell()
    survey = StorageSurvey(file, name)
    _unpickle(survey, name)
    keys = _unpickle(WeightsUnpickler(file, name), name)
    storages, offset = {}, file.tell()
    for key in keys if isinstance(keys, list) else ():
        if key not in survey.storages:
            raise UnpicklingError(f"{name}: storage {key!r} is listed but never used")
        storage_type, _ = survey.storages[key]
        numel = int.from_bytes(bytes(buffer[offset:offset + 8]), "big" if big_endian else "little")
        size = numel * itemsize(storage_type.element)
        try:
            storages[key] = Storage(byte_range(buffer, offset + 8, size), storage_type.element, big_endian)
        except ValueError as e:
            raise UnpicklingError(f"{name}: storage {key!r}: {e} (is the file truncated?)") from None
        offset += 8 + size
    file.seek(start)

    def load_storage(key: str, storage_type: StorageType, numel: int) -> Storage:
        if key not in storages:
            raise UnpicklingError(f"{name}: storage {key!r} has no data in the file")
        return storages[key]

    return _unpickle(WeightsUnpickler(file, name, load_storage), name)


def _unpickle(unpickler: WeightsUnpickler, name: str):
    """Run the restricted unpickler; any failure is one error naming the file."""
    try:
        return unpickler.load()
    except UnpicklingError:
        raise
    except Exception as e:  # a malformed pickle fails in many ways; all of them mean "not a valid checkpoint"
        raise UnpicklingError(f"{name} is not a valid torch.save checkpoint: {type(e).__name__}: {e}") from None
