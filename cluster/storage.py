"""Where files live: local paths or any URI pyarrow.fs resolves, listing inputs, and atomic writes."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import uuid
from dataclasses import dataclass
from functools import lru_cache

import pyarrow.fs as pafs

from cluster.errors import InputError

# File name endings the reader understands, and the format each means.
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".parq": "parquet",
           ".arrow": "ipc", ".feather": "ipc", ".ipc": "ipc"}


@dataclass(frozen=True)
class DataFile:
    """One input file: its location (a local path or URI) and its format ('parquet' or 'ipc')."""

    location: str
    format: str


def is_uri(location: str) -> bool:
    return "://" in location


@lru_cache(maxsize=64)
def _filesystem_for(scheme_and_authority: str) -> pafs.FileSystem:
    filesystem, _ = pafs.FileSystem.from_uri(scheme_and_authority)
    return filesystem


def resolve(location: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding `location` and the path within it (filesystems are cached per bucket/host)."""
    if not is_uri(location):
        return pafs.LocalFileSystem(), os.path.abspath(location)
    scheme, rest = location.split("://", 1)
    authority, _, _ = rest.partition("/")
    filesystem = _filesystem_for(f"{scheme}://{authority}")
    _, path = pafs.FileSystem.from_uri(location)
    return filesystem, path


def join(location: str, *names: str) -> str:
    """A child location of a local path or URI."""
    if is_uri(location):
        return "/".join([location.rstrip("/"), *names])
    return os.path.join(location, *names)


def _as_location(template: str, path: str) -> str:
    """The path a filesystem returned, spelled like the user's location (URI or local)."""
    if is_uri(template):
        scheme = template.split("://", 1)[0]
        return f"{scheme}://{path}"
    return path


def _format_of(location: str) -> str | None:
    return FORMATS.get(os.path.splitext(location.lower())[1])


def _is_data_file(path: str) -> bool:
    name = os.path.basename(path)
    return not name.startswith(("_", ".")) and _format_of(name) is not None


def list_inputs(locations: list[str]) -> list[DataFile]:
    """Every input file, in the order given; within a directory or glob, sorted by path."""
    if isinstance(locations, str):
        locations = [locations]
    if not locations:
        raise InputError("no input data given")
    files: list[DataFile] = []
    for location in locations:
        files.extend(_expand(str(location)))
    return files


def _expand(location: str) -> list[DataFile]:
    filesystem, path = resolve(location)
    if any(ch in path for ch in "*?["):
        return _expand_glob(location, filesystem, path)
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"input not found: {location}")
    if info.type == pafs.FileType.Directory:
        found = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
        paths = sorted(f.path for f in found if f.type == pafs.FileType.File and _is_data_file(f.path))
        if not paths:
            raise InputError(f"no Parquet or Arrow files in directory {location} "
                             f"(looked for names ending in {', '.join(sorted(FORMATS))})")
        return [DataFile(_as_location(location, p), _format_of(p)) for p in paths]
    fmt = _format_of(path)
    if fmt is None:
        raise InputError(f"unknown file format for {location}: expected a name ending in "
                         f"{', '.join(sorted(FORMATS))}")
    return [DataFile(location, fmt)]


def _expand_glob(location: str, filesystem: pafs.FileSystem, pattern: str) -> list[DataFile]:
    base = pattern
    while any(ch in base for ch in "*?["):
        base = os.path.dirname(base)
    listing = filesystem.get_file_info(pafs.FileSelector(base or ".", recursive=True, allow_not_found=True))
    matches = sorted(f.path for f in listing
                     if f.type == pafs.FileType.File and _glob_match(f.path, pattern) and _is_data_file(f.path))
    if not matches:
        raise InputError(f"no Parquet or Arrow files match {location}")
    return [DataFile(_as_location(location, p), _format_of(p)) for p in matches]


def _glob_match(path: str, pattern: str) -> bool:
    """Shell-style matching where '*' stays within one directory level and '**' crosses levels."""
    if "**" not in pattern and path.count("/") != pattern.count("/"):
        return False
    return fnmatch.fnmatchcase(path, pattern.replace("**", "*"))


@contextlib.contextmanager
def atomic_output(location: str):
    """A writable stream whose file appears at `location` complete or not at all.

    On a local filesystem the data goes to a temporary name in the same directory and is renamed
    into place. Object stores have no rename, but they publish an object only when its upload
    completes, so there the stream writes the final name directly.
    """
    filesystem, path = resolve(location)
    if isinstance(filesystem, pafs.LocalFileSystem):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # Hidden (leading dot), so that dataset discovery never picks up a partial file.
        partial = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{uuid.uuid4().hex}.partial")
        try:
            with filesystem.open_output_stream(partial) as stream:
                yield stream
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
        return
    with filesystem.open_output_stream(path) as stream:
        yield stream


def exists(location: str) -> bool:
    filesystem, path = resolve(location)
    return filesystem.get_file_info(path).type != pafs.FileType.NotFound
