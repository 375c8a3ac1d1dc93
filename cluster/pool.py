"""The Ray layer: a pool of evaluation actors and the scheduler that feeds them shards.

Actors get shard descriptors, never data: each reads its own shard from storage, so no separate
read task ever waits for a CPU that the actors hold. Shards go out dynamically, a few in flight
per actor, so a faster actor takes more. An actor whose process dies loses nothing: the shard it
was running goes back to the queue (its attempt counted) and a replacement actor starts. A shard
whose data is bad fails the job at once, naming its file and rows, unless bad shards are skipped.
"""

from __future__ import annotations

import collections
import os
import socket
import time
from dataclasses import dataclass, field

import ray
import ray.exceptions as rex

from cluster.errors import JobFailed, ShardDataError
from cluster.planner import Shard
from cluster.worker import EvalConfig, ShardEvaluator, ShardSummary, peak_rss

# A process that ends this way took the shard down with it; another process may well succeed.
PROCESS_LOST = (rex.RayActorError, rex.WorkerCrashedError, rex.OutOfMemoryError, rex.NodeDiedError,
                rex.LocalRayletDiedError, rex.ObjectLostError)


class EvalActor:
    """A Ray actor around ShardEvaluator: BLAS threads limited to its CPUs, model built once."""

    def __init__(self, config: EvalConfig, cpus: int):
        from threadpoolctl import threadpool_limits

        from cluster.runtime import keep_freed_memory
        self._blas_limit = threadpool_limits(limits=max(1, int(cpus)))  # kept: the limit lasts while it lives
        keep_freed_memory()
        self.evaluator = ShardEvaluator(config)

    def identity(self) -> dict:
        """pid, node id and host of this actor."""
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname()}

    def evaluate(self, shard: Shard) -> ShardSummary:
        summary = self.evaluator.evaluate(shard)
        summary.extra.update(self.identity(), process_rss_peak_bytes=peak_rss())
        return summary


@dataclass
class WorkerRecord:
    """One actor's life: identity, shards and rows done, time, memory peaks, failed attempts."""

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
        self.pid, self.node, self.host = summary.extra["pid"], summary.extra["node"], summary.extra["host"]
        self.shards += 1
        self.rows += summary.rows
        self.busy_s += summary.seconds
        self.rss_peak_bytes = max(self.rss_peak_bytes, summary.extra.get("process_rss_peak_bytes", 0),
                                  summary.rss_peak_bytes)
        self.engine_allocated_peak_bytes = max(self.engine_allocated_peak_bytes, summary.engine_allocated_peak_bytes)
        self.engine_saved_peak_bytes = max(self.engine_saved_peak_bytes, summary.engine_saved_peak_bytes)
        self.arrow_peak_bytes = max(self.arrow_peak_bytes, summary.arrow_peak_bytes)
        self.finished = time.monotonic()


@dataclass
class ShardRecord:
    """How a shard went: its summary, the worker that finished it, its attempts."""

    shard: Shard
    attempts: int = 0
    summary: ShardSummary | None = None
    worker: str | None = None
    skipped: str | None = None


class Scheduler:
    """Runs shards on a pool of actors until each is done once (or the job fails)."""

    def __init__(self, config: EvalConfig, workers: int, cpus_per_worker: float = 1, max_attempts: int = 3,
                 in_flight: int = 2, skip_bad_shards: bool = False, on_shard_done=None):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.config, self.workers, self.cpus = config, workers, cpus_per_worker
        self.max_attempts, self.in_flight, self.skip_bad_shards = max_attempts, in_flight, skip_bad_shards
        self.on_shard_done = on_shard_done
        self.records: list[WorkerRecord] = []
        self._replacements_left = workers * max_attempts  # bounds a pool whose processes keep dying
        self._actor_class = ray.remote(EvalActor)

    def run(self, shards: list[Shard]) -> list[ShardRecord]:
        """Evaluate every shard exactly once; a ShardRecord per shard, in shard order."""
        results = {s.index: ShardRecord(s) for s in shards}
        queue = collections.deque(shards)
        pending: dict = {}  # evaluate ref -> (worker, shard)
        starting: dict = {}  # identity ref -> worker not yet up
        try:
            for _ in range(min(self.workers, max(1, len(shards)))):
                self._start_worker(starting)  # all start in parallel
            while queue or pending:
                self._dispatch(queue, pending)
                if not pending and not starting:
                    raise JobFailed("no live workers are left to run the remaining shards")
                ready, _ = ray.wait([*pending, *starting], num_returns=1)
                for ref in ready:
                    if ref in starting:
                        self._worker_up(ref, starting.pop(ref), starting)
                    elif ref in pending:  # (refs of a worker already known dead were dropped)
                        worker, shard = pending.pop(ref)
                        self._collect(ref, worker, shard, results, queue, pending, starting)
        finally:
            for record in self.records:
                if record.handle is not None:
                    ray.kill(record.handle, no_restart=True)
                    record.handle = None
        return [results[s.index] for s in shards]

    def _start_worker(self, starting: dict) -> None:
        """Create an actor; it gets shards only once it is up (one that never fits the cluster gets none)."""
        record = WorkerRecord(name=f"worker-{len(self.records)}")
        options = {"num_cpus": self.cpus, "max_restarts": 0, "max_concurrency": 1}
        record.handle = self._actor_class.options(**options).remote(self.config, self.cpus)
        starting[record.handle.identity.remote()] = record
        self.records.append(record)

    def _worker_up(self, ref, record: WorkerRecord, starting: dict) -> None:
        try:
            identity = ray.get(ref)
        except rex.RayTaskError as e:
            raise JobFailed(f"{record.name} could not start: {e.cause if e.cause is not None else e}") from None
        except PROCESS_LOST as e:
            if getattr(e, "actor_init_failed", False):  # the model could not be built: no retry will help
                raise JobFailed(f"{record.name} could not start: {e}") from None
            record.failures += 1
            self._retire(record, starting)
            return
        record.pid, record.node, record.host = identity["pid"], identity["node"], identity["host"]
        record.ready = True

    def _dispatch(self, queue: collections.deque, pending: dict) -> None:
        for record in self.records:
            while record.ready and queue and len(record.in_flight) < self.in_flight:
                shard = queue.popleft()
                ref = record.handle.evaluate.remote(shard)
                record.in_flight.append((ref, shard))
                pending[ref] = (record, shard)

    def _collect(self, ref, worker: WorkerRecord, shard: Shard, results: dict, queue: collections.deque,
                 pending: dict, starting: dict) -> None:
        record = results[shard.index]
        try:
            summary = ray.get(ref)
        except rex.RayTaskError as e:
            worker.in_flight.remove((ref, shard))
            self._shard_failed(e, worker, record)
            return
        except PROCESS_LOST as e:
            self._worker_died(worker, e, results, queue, pending, starting)
            return
        worker.in_flight.remove((ref, shard))
        record.attempts += 1
        record.summary, record.worker = summary, worker.name
        worker.absorb(summary)
        if self.on_shard_done is not None:
            self.on_shard_done(record)

    def _shard_failed(self, error: rex.RayTaskError, worker: WorkerRecord, record: ShardRecord) -> None:
        """An exception inside the evaluation: the data or the model is at fault, so no blind retry."""
        cause = error.cause if error.cause is not None else error
        record.attempts += 1
        worker.failures += 1
        if isinstance(cause, ShardDataError) and self.skip_bad_shards:
            record.skipped = str(cause)
            if self.on_shard_done is not None:
                self.on_shard_done(record)
            return
        raise JobFailed(f"shard {record.shard.index} failed: {cause}") from None

    def _worker_died(self, worker: WorkerRecord, error: Exception, results: dict, queue: collections.deque,
                     pending: dict, starting: dict) -> None:
        """Requeue everything the worker held; only the shard it was running counts an attempt."""
        running = worker.in_flight[0][1]
        for ref, shard in reversed(worker.in_flight):
            pending.pop(ref, None)
            queue.appendleft(shard)
        worker.in_flight.clear()
        record = results[running.index]
        record.attempts += 1
        worker.failures += 1
        if record.attempts >= self.max_attempts:
            raise JobFailed(f"shard {running.index} ({running.describe()}) failed {record.attempts} attempts: "
                            f"the worker process died each time ({type(error).__name__})")
        self._retire(worker, starting)

    def _retire(self, worker: WorkerRecord, starting: dict) -> None:
        """Stop a worker whose process is gone and start its replacement."""
        worker.ready = False
        worker.finished = time.monotonic()
        ray.kill(worker.handle, no_restart=True)
        worker.handle = None
        if self._replacements_left == 0:
            raise JobFailed(f"worker processes died {len(self.records)} times; giving up")
        self._replacements_left -= 1
        self._start_worker(starting)
