"""The driver's lease on its output: one driver per output at a time, and a dead driver's lease expires.

The lease is a small JSON file in the output (owner, host, pid, heartbeat). The driver that holds it
rewrites the heartbeat every few seconds from a background thread; a lease whose heartbeat is older
than LEASE_TTL_S, or whose driver is a process on this host that no longer exists, is stale and may
be taken over. On a local filesystem taking a free lease is atomic (O_EXCL); on an object store,
which has no create-if-absent here, the lease is written and then read back, which narrows the
window in which two drivers starting in the same second could both proceed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid

import pyarrow.fs as pafs

from cluster import storage
from cluster.errors import InputError

LEASE = "_LEASE"
LEASE_TTL_S = 60.0
HEARTBEAT_S = 10.0


class Lease:
    """Held while a driver writes an output: `with Lease(location): ...`."""

    def __init__(self, output_location: str):
        self.output = output_location
        self.location = storage.join(output_location, LEASE)
        self.owner = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lease, or raise InputError naming the driver that holds it."""
        holder = self._read()
        if holder is not None and not _stale(holder):
            raise InputError(_refusal(self.output, holder))
        if holder is None and not self._create():
            raise InputError(_refusal(self.output, self._read() or {}))
        if holder is not None:
            self._write()  # taking over a stale lease
        if (self._read() or {}).get("owner") != self.owner:  # another driver took it in the meantime
            raise InputError(_refusal(self.output, self._read() or {}))
        self._thread = threading.Thread(target=self._beat, name="evalpipe-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if (self._read() or {}).get("owner") == self.owner:
            storage.delete(self.location)

    def _record(self) -> dict:
        return {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time()}

    def _create(self) -> bool:
        """Write the lease only if there is none (atomically where the filesystem allows)."""
        filesystem, path = storage.resolve(self.location)
        if not isinstance(filesystem, pafs.LocalFileSystem):
            self._write()
            return True
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(self._record(), f)
        return True

    def _write(self) -> None:
        with storage.atomic_output(self.location) as stream:
            stream.write(json.dumps(self._record()).encode())

    def _read(self) -> dict | None:
        filesystem, path = storage.resolve(self.location)
        try:
            with filesystem.open_input_stream(path) as stream:
                return json.loads(stream.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"heartbeat": 0}  # unreadable: treat as stale rather than block forever

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                if (self._read() or {}).get("owner") == self.owner:
                    self._write()


def _stale(holder: dict) -> bool:
    if time.time() - float(holder.get("heartbeat", 0)) > LEASE_TTL_S:
        return True
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return True  # its driver is gone
        except PermissionError:
            return False
    return False


def _refusal(output: str, holder: dict) -> str:
    age = time.time() - float(holder.get("heartbeat", time.time()))
    return (f"output {storage.redact(output)} is in use by another driver (pid {holder.get('pid')} "
            f"on {holder.get('host')}, last heartbeat {age:.0f} s ago); wait for it to finish, or, if it died, "
            f"for its lease ({LEASE}) to expire {LEASE_TTL_S:.0f} s after its last heartbeat")
