"""The plain records of a run: what a worker reports per shard, and the driver's account of workers and shards."""

from __future__ import annotations

import collections
import json
import time
from dataclasses import asdict, dataclass, field

from cluster.planner import Shard


@dataclass
class ShardSummary:
    """What a worker reports for one shard: rows, partial metrics, time and memory peaks."""

    shard: int
    rows: int
    seconds: float
    partial: dict  # the metrics' partial sums (cluster.metrics)
    engine_allocated_peak_bytes: int
    engine_saved_peak_bytes: int
    rss_peak_bytes: int  # during this shard
    process_rss_peak_bytes: int  # the worker process's whole life so far
    arrow_peak_bytes: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ShardSummary:
        values = json.loads(text)
        if "confusion" in values["partial"]:
            values["partial"]["confusion"] = tuple(values["partial"]["confusion"])
        return cls(**values)


@dataclass
class WorkerRecord:
    """One worker's life: identity, shards and rows done, time, memory peaks, failed attempts."""

    name: str
    handle: object = None
    pid: int = -1
    node: str = ""
    host: str = ""
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    shards: int = 0
    rows: int = 0
    busy_s: float = 0.0
    rss_peak_bytes: int = 0
    engine_allocated_peak_bytes: int = 0
    engine_saved_peak_bytes: int = 0
    arrow_peak_bytes: int = 0
    failures: int = 0
    ready: bool = False  # up and taking shards
    in_flight: collections.deque = field(default_factory=collections.deque)

    def absorb(self, summary: ShardSummary) -> None:
        """Count a finished shard."""
        self.shards += 1
        self.rows += summary.rows
        self.busy_s += summary.seconds
        self.rss_peak_bytes = max(self.rss_peak_bytes, summary.process_rss_peak_bytes, summary.rss_peak_bytes)
        self.engine_allocated_peak_bytes = max(self.engine_allocated_peak_bytes, summary.engine_allocated_peak_bytes)
        self.engine_saved_peak_bytes = max(self.engine_saved_peak_bytes, summary.engine_saved_peak_bytes)
        self.arrow_peak_bytes = max(self.arrow_peak_bytes, summary.arrow_peak_bytes)
        self.finished = time.monotonic()


@dataclass
class ShardRecord:
    """How a shard went: its summary, the worker (and node) that finished it, its attempts."""

    shard: Shard
    attempts: int = 0
    summary: ShardSummary | None = None
    worker: str | None = None
    node: str | None = None
    skipped: str | None = None
