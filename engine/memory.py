"""Memory accounting, cheap enough to stay always on.

Three gauges, each with a current value and a peak:
- allocated_bytes: storage the engine allocated for tensors (results of ops, factories,
  `tensor()` copies). Views share their base's storage and count nothing; `from_numpy` and
  zero-copy `as_tensor` borrow the caller's numpy buffer, which the engine did not allocate.
- saved_bytes: bytes of the distinct storages the autograd graph holds for backward, counted when
  a recording op keeps an array whose storage no other node holds, uncounted when the last node
  holding it lets go (backward, or the graph's death). An activation that two nodes save counts
  once, and so do two views of one buffer (the whole buffer, as PyTorch counts storages).
- tensors: live Tensor objects.

The gauges are process-wide, like a device allocator's statistics.
"""

from __future__ import annotations

import numpy as np


class _Gauges:
    __slots__ = ("allocated", "allocated_peak", "saved", "saved_peak", "tensors", "tensors_peak")

    def __init__(self):
        self.allocated = self.allocated_peak = 0
        self.saved = self.saved_peak = 0
        self.tensors = self.tensors_peak = 0


gauges = _Gauges()


_holders: dict[int, list] = {}  # id(storage) -> [arrays held on it, its bytes]; the holders keep the id valid


def _storage(a):
    """The array that owns a's memory (a itself unless a is a view)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def hold(arrays) -> None:
    """Count arrays a node now keeps for backward (each distinct storage once, however many nodes keep it)."""
    for a in arrays:
        owner = _storage(a)
        entry = _holders.get(id(owner))
        if entry is not None:
            entry[0] += 1
            continue
        _holders[id(owner)] = [1, owner.nbytes]
        gauges.saved += owner.nbytes
        if gauges.saved > gauges.saved_peak:
            gauges.saved_peak = gauges.saved


def let_go(arrays) -> None:
    """Uncount arrays a node no longer keeps; a storage's bytes go when its last holder lets go."""
    for a in arrays:
        key = id(_storage(a))
        entry = _holders[key]
        entry[0] -= 1
        if not entry[0]:
            del _holders[key]
            gauges.saved -= entry[1]


def memory_stats() -> dict[str, int]:
    """Current and peak values of the engine's gauges, as a flat dict."""
    g = gauges
    return {
        "allocated_bytes.current": g.allocated,
        "allocated_bytes.peak": g.allocated_peak,
        "saved_bytes.current": g.saved,
        "saved_bytes.peak": g.saved_peak,
        "tensors.current": g.tensors,
        "tensors.peak": g.tensors_peak,
    }


def reset_peak_memory_stats() -> None:
    """Set every peak to its gauge's current value."""
    g = gauges
    g.allocated_peak, g.saved_peak, g.tensors_peak = g.allocated, g.saved, g.tensors


def memory_summary() -> str:
    """The gauges as a small table a person can read."""
    stats = memory_stats()
    rows = [("allocated bytes", "allocated_bytes"), ("saved for backward", "saved_bytes"), ("live tensors", "tensors")]
    lines = [f"{'':<20}{'current':>16}{'peak':>16}"]
    for label, key in rows:
        lines.append(f"{label:<20}{stats[key + '.current']:>16,}{stats[key + '.peak']:>16,}")
    return "\n".join(lines)
