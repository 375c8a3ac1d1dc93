"""The plain records of a run: who a worker is, what it reports per shard, and the driver's account of both."""

from __future__ import annotations

import collections
import json
import time
from dataclasses import asdict, dataclass, field

from cluster.planner import Shard


@dataclass(frozen=True)
class WorkerIdentity:
    """A worker as the records name it: its name and run, and where its process lives."""

    name: str = "in-process"
    run: int = 0
    pid: int = -1
    node: str = ""
    host: str = ""


@dataclass
class ShardSummary:
    """What a worker reports for one attempt at a shard: rows, partial metrics, bad rows, time and memory peaks.

    It is also written into the attempt's part-file footer, so a resumed run knows the shard without reading it.
    """

    shard: int
    attempt: str
    worker: WorkerIdentity
    rows: int  # rows evaluated (the shard's rows less its bad rows)
    bad_rows: int
    bad_row_reasons: dict[str, int]
    started_at: float  # unix seconds
    seconds: float
    read_s: float  # reading and decoding (on the read-ahead thread, overlapping the rest)
    compute_s: float  # the forward, predictions and metrics
    write_s: float  # writing the part file
    partial: dict  # the shard's results as JSON (cluster.results.ShardResults.to_json): sums and counts, no rows
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
        values["worker"] = WorkerIdentity(**values["worker"])
        return cls(**values)


@dataclass
class WorkerRecord:
    """One worker's life in this run: identity, shards and rows done, time, memory peaks, failed attempts."""

    identity: WorkerIdentity
    handle: object = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    shards: int = 0
    rows: int = 0
    busy_s: float = 0.0
    read_s: float = 0.0
    compute_s: float = 0.0
    write_s: float = 0.0
    rss_peak_bytes: int = 0
    engine_allocated_peak_bytes: int = 0
    engine_saved_peak_bytes: int = 0
    arrow_peak_bytes: int = 0
    failures: int = 0
    ready: bool = False  # up and taking shards
    stalled: bool = False  # its running shard has run far too long: it gets no more until that one ends
    in_flight: collections.deque = field(default_factory=collections.deque)  # (ref, shard, attempt), oldest first
    running_since: float | None = None  # when the oldest shard in flight started running (monotonic)

    @property
    def name(self) -> str:
        return self.identity.name

    def absorb(self, summary: ShardSummary) -> None:
        """Count a committed shard."""
        self.shards += 1
        self.rows += summary.rows
        self.busy_s += summary.seconds
        self.read_s += summary.read_s
        self.compute_s += summary.compute_s
        self.write_s += summary.write_s
        self.rss_peak_bytes = max(self.rss_peak_bytes, summary.process_rss_peak_bytes, summary.rss_peak_bytes)
        self.engine_allocated_peak_bytes = max(self.engine_allocated_peak_bytes, summary.engine_allocated_peak_bytes)
        self.engine_saved_peak_bytes = max(self.engine_saved_peak_bytes, summary.engine_saved_peak_bytes)
        self.arrow_peak_bytes = max(self.arrow_peak_bytes, summary.arrow_peak_bytes)
        self.finished = time.monotonic()

    @classmethod
    def from_summaries(cls, summaries: list[ShardSummary]) -> list[WorkerRecord]:
        """The workers of earlier runs, rebuilt from the summaries in their committed parts' footers."""
        workers: dict[tuple[int, str], WorkerRecord] = {}
        for summary in summaries:
            key = (summary.worker.run, summary.worker.name)
            workers.setdefault(key, cls(summary.worker)).absorb(summary)
        return [workers[k] for k in sorted(workers)]


@dataclass
class ShardRecord:
    """How a shard went: the committed attempt's summary, the worker (and node) behind it, attempts, speculation."""

    shard: Shard
    attempts: int = 0
    summary: ShardSummary | None = None
    worker: str | None = None
    node: str | None = None
    speculative: bool = False  # a second attempt was started while the first still ran
