"""This process's memory: resident-set probes for the per-shard and per-worker peaks, and glibc's tuning."""

from __future__ import annotations

import os
import resource


def current_rss() -> int:
    """Resident memory of this process now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> None:
    """Start a new peak: Linux resets VmHWM to the current RSS on '5' in clear_refs (no-op where it cannot)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_since_reset() -> int:
    """The highest RSS since reset_peak_rss (VmHWM), exact rather than sampled; the current RSS where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return current_rss()


def process_peak_rss() -> int:
    """The highest resident memory this process has had in its life, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


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
