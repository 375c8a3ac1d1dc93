"""Connecting to Ray: an existing cluster when given an address, else a local single-node Ray."""

from __future__ import annotations

import logging
import os

import ray


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Make sure Ray is up; True when this call started it (and so should shut it down).

    `address` is 'auto', 'ray://host:port' or a head's 'host:port'; without one (and without
    RAY_ADDRESS) a local single-node Ray is started with `num_cpus` CPUs (all cores by default).
    """
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    options = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, **options)
    return True


def cluster_cpus() -> int:
    """CPUs the cluster has now."""
    return int(ray.cluster_resources().get("CPU", 1))


def keep_freed_memory() -> bool:
    """Stop glibc from handing freed arrays back to the OS, so each batch's arrays reuse pages already mapped.

    Without it every large temporary (a 4096x256 activation is 4 MB) is a fresh mmap, page-faulted in
    and unmapped again each batch: on the benchmark MLP that doubled the forward's time. True if set.
    """
    import ctypes
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))


def shutdown() -> None:
    """Stop the local Ray this process started, without waiting a second for the autoscaler monitor.

    ray.shutdown() sends each of its processes SIGTERM and waits up to a second for each; the monitor
    takes the whole second, so every job paid it. It holds no state a finished job needs.
    """
    try:  # Ray's internals: if they change, the plain shutdown below still does the job, a second slower
        node = ray._private.worker._global_node
        for info in node.all_processes.get("monitor", []) if node is not None else []:
            info.process.kill()
            info.process.wait()
    except (AttributeError, OSError):
        pass
    ray.shutdown()
