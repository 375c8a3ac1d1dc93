"""Memory accounting, cheap enough to stay always on.

Three gauges, each with a current value and a peak:
- allocated_bytes: storage the engine allocated for tensors (results of ops, factories,
  `tensor()` copies). Views share their base's storage and count nothing; `from_numpy` and
  zero-copy `as_tensor` borrow the caller's numpy buffer, which the engine did not allocate.
- saved_bytes: bytes the autograd graph holds for backward, counted when a recording op
  keeps arrays and uncounted when backward (or the graph's death) releases them.
- tensors: live Tensor objects.

The gauges are process-wide, like a device allocator's statistics.
"""

from __future__ import annotations


class _Gauges:
    __slots__ = ("allocated", "allocated_peak", "saved", "saved_peak", "tensors", "tensors_peak")

    def __init__(self):
        self.allocated = self.allocated_peak = 0
        self.saved = self.saved_peak = 0
        self.tensors = self.tensors_peak = 0


gauges = _Gauges()


def add_saved(nbytes: int) -> None:
    """Count `nbytes` newly held by the graph for backward."""
    gauges.saved += nbytes
    if gauges.saved > gauges.saved_peak:
        gauges.saved_peak = gauges.saved


def release_saved(nbytes: int) -> None:
    """Uncount bytes the graph no longer holds."""
    gauges.saved -= nbytes


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
