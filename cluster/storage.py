"""Where files live: local paths or any URI pyarrow.fs resolves, listing inputs, and atomic writes."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import tempfile
import uuid
from dataclasses import dataclass
from functools import lru_cache

import pyarrow as pa
import pyarrow.fs as pafs

from cluster.errors import InputError

# File name endings the reader understands, and the format each means.
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".parq": "parquet",
           ".arrow": "ipc", ".feather": "ipc", ".ipc": "ipc"}


@dataclass(frozen=True)
class DataFile:
    """One input file: its location (a local path or URI), format ('parquet' or 'ipc'), size and modification time.

    Size and time (nanoseconds) tell a regenerated file from the one a run started on (resume checks them).
    """

    location: str
    format: str
    size: int = -1
    mtime_ns: int = -1


def _data_file(location: str, info: pafs.FileInfo) -> DataFile:
    return DataFile(location, _format_of(info.path), info.size if info.size is not None else -1,
                    info.mtime_ns if info.mtime_ns is not None else -1)


def is_uri(location: str) -> bool:
    return "://" in location


_SECRET_OPTIONS = ("secret_key", "session_token", "access_key")


def redact(location: str) -> str:
    """`location` safe to print or record: a URI's user:secret@ and secret options become '***'."""
    if not is_uri(location):
        return location
    scheme, authority, path, options = _split_uri(location)
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    if options:
        pairs = [p.partition("=") for p in options[1:].split("&")]
        options = "?" + "&".join(k + (sep and ("=***" if k in _SECRET_OPTIONS else sep + v)) for k, sep, v in pairs)
    return f"{scheme}://{authority}/{path}{options}"


def split_credentials(location: str) -> tuple[str, dict[str, str]]:
    """A URI without its credentials, and the credentials it carried (user/secret, *_key and token options)."""
    if not is_uri(location):
        return location, {}
    scheme, authority, path, options = _split_uri(location)
    found: dict[str, str] = {}
    if "@" in authority:
        credentials, _, authority = authority.rpartition("@")
        user, _, secret = credentials.partition(":")
        found.update({"access_key": user, "secret_key": secret} if secret else {"access_key": user})
    kept = []
    for pair in filter(None, options[1:].split("&")):
        key, _, value = pair.partition("=")
        if key in _SECRET_OPTIONS:
            found[key] = value
        else:
            kept.append(pair)
    return f"{scheme}://{authority}/{path}" + ("?" + "&".join(kept) if kept else ""), found


def absolute(location: str) -> str:
    """A local path made absolute (workers do not share the driver's working directory); URIs as they are."""
    return location if is_uri(location) else os.path.abspath(location)


@lru_cache(maxsize=64)
def _filesystem_for(scheme_and_authority: str) -> pafs.FileSystem:
    filesystem, _ = pafs.FileSystem.from_uri(scheme_and_authority)
    return filesystem


def _split_uri(location: str) -> tuple[str, str, str, str]:
    """scheme, authority ('[user:secret@]bucket-or-host'), path, and options ('' or '?key=value&...').

    The options (e.g. s3://bucket/data?endpoint_override=host:port&region=eu-west-1) configure the
    filesystem, so every location derived from this one carries them along.
    """
    base, mark, options = location.partition("?")
    scheme, rest = base.split("://", 1)
    authority, _, path = rest.partition("/")
    return scheme, authority, path, mark + options


def resolve(location: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding `location` and the path within it (filesystems are cached per bucket/host)."""
    if not is_uri(location):
        return pafs.LocalFileSystem(), os.path.abspath(location)
    scheme, authority, _, options = _split_uri(location)
    filesystem = _filesystem_for(f"{scheme}://{authority}{options}")
    return filesystem, _path_in(location)


@lru_cache(maxsize=4096)
def _path_in(location: str) -> str:
    """The path part of a URI as its filesystem spells it (cached: parsing may ask the store for a region)."""
    return pafs.FileSystem.from_uri(location)[1]


def join(location: str, *names: str) -> str:
    """A child location of a local path or URI (a URI's options stay at its end)."""
    if is_uri(location):
        base, mark, options = location.partition("?")
        return "/".join([base.rstrip("/"), *names]) + mark + options
    return os.path.join(location, *names)


def _as_location(template: str, path: str) -> str:
    """The path a filesystem returned, spelled like the user's location (URI or local)."""
    if not is_uri(template):
        return path
    scheme, authority, _, options = _split_uri(template)
    credentials, _, host = authority.rpartition("@")
    if not path.startswith(f"{host}/"):  # object stores list 'bucket/key'; others, paths under the host
        path = f"{host}/{path.lstrip('/')}"
    return f"{scheme}://{credentials + '@' if credentials else ''}{path}{options}"


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
        raise InputError(f"input not found: {redact(location)}")
    if info.type == pafs.FileType.Directory:
        found = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
        files = sorted((f for f in found if f.type == pafs.FileType.File and _is_data_file(f.path)),
                       key=lambda f: f.path)
        if not files:
            raise InputError(f"no Parquet or Arrow files in directory {redact(location)} "
                             f"(looked for names ending in {', '.join(sorted(FORMATS))})")
        return [_data_file(_as_location(location, f.path), f) for f in files]
    if _format_of(path) is None:
        raise InputError(f"unknown file format for {redact(location)}: expected a name ending in "
                         f"{', '.join(sorted(FORMATS))}")
    return [_data_file(absolute(location), info)]


def _expand_glob(location: str, filesystem: pafs.FileSystem, pattern: str) -> list[DataFile]:
    base = pattern
    while any(ch in base for ch in "*?["):
        base = os.path.dirname(base)
    listing = filesystem.get_file_info(pafs.FileSelector(base or ".", recursive=True, allow_not_found=True))
    matches = sorted((f for f in listing
                      if f.type == pafs.FileType.File and _glob_match(f.path, pattern) and _is_data_file(f.path)),
                     key=lambda f: f.path)
    if not matches:
        raise InputError(f"no Parquet or Arrow files match {redact(location)}")
    return [_data_file(_as_location(location, f.path), f) for f in matches]


def _glob_match(path: str, pattern: str) -> bool:
    """Shell-style matching where '*' stays within one directory level and '**' crosses levels."""
    if "**" not in pattern and path.count("/") != pattern.count("/"):
        return False
    return fnmatch.fnmatchcase(path, pattern.replace("**", "*"))


@contextlib.contextmanager
def atomic_output(location: str):
    """A writable stream whose file appears at `location` complete or not at all.

    On a local filesystem the data goes to a temporary name in the same directory and is renamed
    into place. Object stores have no rename, and pyarrow cannot abort an upload (closing the
    stream, as an exception does, publishes what was written: apache/arrow#40502), so there the
    data is spooled to a local file and uploaded under the final name only once it is complete.
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
    with tempfile.NamedTemporaryFile(prefix="evalpipe-", suffix=".spool") as spool:
        with pa.OSFile(spool.name, "wb") as stream:
            yield stream
        _upload(filesystem, path, spool.name)


def _upload(filesystem: pafs.FileSystem, path: str, source: str) -> None:
    """Upload a complete local file in one write call, so that no signal can land halfway through it."""
    with pa.memory_map(source) as spooled:
        data, stream = spooled.read_buffer(), None
        try:
            stream = filesystem.open_output_stream(path)
            stream.write(data)
        except BaseException:
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()  # publishes what was written: take it back
                    filesystem.delete_file(path)
            raise
        stream.close()


def open_ipc(location: str):
    """An Arrow IPC file for random access; a local one memory-mapped, so reading headers skips the data."""
    filesystem, path = resolve(location)
    if isinstance(filesystem, pafs.LocalFileSystem):
        return pa.memory_map(path)
    return filesystem.open_input_file(path)


def exists(location: str) -> bool:
    filesystem, path = resolve(location)
    return filesystem.get_file_info(path).type != pafs.FileType.NotFound


def listing(location: str) -> list[pafs.FileInfo]:
    """What a directory holds, one level deep (nothing when it does not exist)."""
    filesystem, path = resolve(location)
    return filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))


def move(source: str, destination: str) -> None:
    """Rename a file within one filesystem (an object store copies, then deletes the source)."""
    filesystem, path = resolve(source)
    filesystem.move(path, resolve(destination)[1])


def delete(location: str) -> None:
    """Delete one file if it is there."""
    filesystem, path = resolve(location)
    with contextlib.suppress(FileNotFoundError):
        filesystem.delete_file(path)


def overlaps(a: str, b: str) -> bool:
    """True when one location is the other or lies inside it (same filesystem, whole path components)."""
    def parts(location: str) -> tuple[str, ...]:
        if is_uri(location):
            scheme, authority, path, _ = _split_uri(location)
            return (scheme, authority.rpartition("@")[2], *[p for p in path.split("/") if p])
        return ("file", *[p for p in os.path.realpath(location).split(os.sep) if p])

    pa_, pb = parts(a), parts(b)
    return pa_[:len(pb)] == pb or pb[:len(pa_)] == pa_
