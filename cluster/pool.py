"""The Ray layer, and the only module that imports Ray: connect, size the pool, run shards on actors, shut down.

Actors get shard descriptors, never data: each reads its own shard from storage, so no separate
read task ever waits for a CPU that the actors hold. Shards go out dynamically, a few in flight
per actor, so a faster actor takes more. Every shard is committed exactly once, by this driver:
a worker writes each attempt under its own name, the first attempt whose summary arrives becomes
the shard's part, and any other attempt is deleted. So a shard can safely run again elsewhere
whenever its first attempt is in doubt:

- a worker whose process died: what it held goes back to the queue (the shard it was running
  counts an attempt) and a replacement starts;
- a worker that is unreachable (it may or may not finish): its shards go back to the queue, it
  gets no more work, a replacement starts, and a late result of it is taken if it still comes first;
- a shard running far longer than its peers: a speculative copy runs on another worker;
- a transient I/O error (a storage timeout, a reset connection): the shard runs again after a backoff.

Bad data or a broken model fails the job at once, naming the file and row; so does a pool in
which no worker can start within the start timeout.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import logging
import os
import socket
import statistics
import time
import uuid
from collections.abc import Callable

import pyarrow as pa
import ray
import ray.exceptions as rex

from cluster import storage
from cluster.config import JobConfig
from cluster.errors import JobFailed
from cluster.evaluator import ShardEvaluator
from cluster.outputs import Output
from cluster.planner import Shard
from cluster.records import ShardRecord, ShardSummary, WorkerIdentity, WorkerRecord

# A process that ends this way took the shard down with it; another process may well succeed.
PROCESS_LOST = (rex.RayActorError, rex.WorkerCrashedError, rex.OutOfMemoryError, rex.NodeDiedError,
                rex.LocalRayletDiedError, rex.ObjectLostError)
IN_FLIGHT = 2  # shards queued per actor: the next one is ready the moment the current one ends
POLL_S = 1.0  # how often the watchdog looks at running shards while nothing completes
BACKOFF_S, BACKOFF_MAX_S = 1.0, 30.0  # after a transient I/O error: 1 s, 2 s, 4 s ... at most 30 s


def run(config: JobConfig, shards: list[Shard], schema: pa.Schema | None, run_index: int,
        on_ready: Callable[[], None] | None = None,
        on_shard_done: Callable[[ShardRecord], None] | None = None) -> tuple[list[ShardRecord], list[WorkerRecord]]:
    """Evaluate every shard exactly once on a pool of actors: a record per shard (in order), one per worker.

    Connects to the job's Ray (starting a local one if there is none, and stopping it at the end);
    on_ready() is called once connected, before the first actor starts.
    """
    with _connected(config.address):
        if on_ready is not None:
            on_ready()
        workers = config.workers or max(1, int(_cluster_cpus() // config.cpus_per_worker))
        pool_run = PoolRun(config, workers, schema, run_index, on_shard_done)
        return pool_run.run(shards), pool_run.workers


@contextlib.contextmanager
def _connected(address: str | None):
    """Ray up for the block: the cluster at `address` (or RAY_ADDRESS), else a local single-node Ray we stop after."""
    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    options = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(include_dashboard=False, **options)
    try:
        yield
    finally:
        _shutdown()


def _cluster_cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 1))


def _shutdown() -> None:
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


class EvalActor:
    """A Ray actor around ShardEvaluator: BLAS threads limited to its CPUs, freed memory kept, model built once."""

    def __init__(self, config: JobConfig, name: str, run_index: int, schema: pa.Schema | None):
        from threadpoolctl import threadpool_limits

        from cluster.process_memory import keep_freed_memory
        self._blas_limit = threadpool_limits(limits=max(1, int(config.cpus_per_worker)))  # lasts while it lives
        keep_freed_memory()
        self.identity = WorkerIdentity(name, run_index, os.getpid(), ray.get_runtime_context().get_node_id(),
                                       socket.gethostname())
        self.evaluator = ShardEvaluator(config, self.identity, schema)

    def whoami(self) -> WorkerIdentity:
        """This actor's identity (asked once, when it is up)."""
        return self.identity

    def evaluate(self, shard: Shard, attempt: str) -> ShardSummary:
        return self.evaluator.evaluate(shard, attempt)


class PoolRun:
    """One run of shards on a pool of actors, until each shard is committed once (or the job fails).

    Its state lives here: the queue of shards (and those waiting out a backoff), the attempts in
    flight, the actors starting, the shards committed, and a record per shard and per worker.
    """

    def __init__(self, config: JobConfig, workers: int, schema: pa.Schema | None, run_index: int,
                 on_shard_done: Callable | None = None):
        self.config, self.size, self.schema, self.run_index = config, workers, schema, run_index
        self.on_shard_done = on_shard_done
        self.output = Output(config.output)
        self.workers: list[WorkerRecord] = []
        self.results: dict[int, ShardRecord] = {}
        self.queue: collections.deque[Shard] = collections.deque()
        self.delayed: list[tuple[float, int, Shard]] = []  # (due, index, shard): a heap of backed-off retries
        self.pending: dict = {}  # evaluate ref -> (worker, shard, attempt)
        self.starting: dict = {}  # whoami ref -> worker not yet up
        self.committed: set[int] = set()
        self.seconds: list[float] = []  # committed shards' run times, for the watchdog's median
        self.none_ready_since = self.watched_at = time.monotonic()
        self._replacements_left = workers * config.max_attempts  # bounds a pool whose processes keep dying
        self._actor_class = ray.remote(EvalActor)

    def run(self, shards: list[Shard]) -> list[ShardRecord]:
        """Evaluate every shard exactly once; a ShardRecord per shard, in shard order."""
        self.results = {s.index: ShardRecord(s) for s in shards}
        self.queue.extend(shards)
        try:
            for _ in range(min(self.size, max(1, len(shards)))):
                self._start_worker()  # all start in parallel
            while len(self.committed) < len(shards):
                self._release_delayed()
                self._dispatch()
                self._watch()
                refs = [*self.pending, *self.starting]
                if not refs:  # only backed-off retries left: wait for the first to be due
                    time.sleep(self._wait_s())
                    continue
                ready, _ = ray.wait(refs, num_returns=1, timeout=self._wait_s())
                for ref in ready:
                    if ref in self.starting:
                        self._worker_up(ref, self.starting.pop(ref))
                    elif ref in self.pending:
                        self._collect(ref, *self.pending.pop(ref))
        finally:
            for worker in self.workers:
                if worker.handle is not None:
                    ray.kill(worker.handle, no_restart=True)
                    worker.handle = None
        return [self.results[s.index] for s in shards]

    def _wait_s(self) -> float:
        if self.delayed:
            return max(0.0, min(POLL_S, self.delayed[0][0] - time.monotonic()))
        return POLL_S

    # -- workers ---------------------------------------------------------------------------------------
    def _start_worker(self) -> None:
        """Create an actor; it gets shards only once it is up (one that never fits the cluster gets none)."""
        worker = WorkerRecord(WorkerIdentity(f"worker-{len(self.workers)}", self.run_index))
        options = {"num_cpus": self.config.cpus_per_worker, "max_restarts": 0, "max_concurrency": 1}
        worker.handle = self._actor_class.options(**options).remote(self.config, worker.name, self.run_index,
                                                                    self.schema)
        self.starting[worker.handle.whoami.remote()] = worker
        self.workers.append(worker)

    def _worker_up(self, ref, worker: WorkerRecord) -> None:
        """Take the identity of an actor that is up (asked this once), or replace one that died starting."""
        try:
            worker.identity = ray.get(ref)
        except rex.RayTaskError as e:
            raise JobFailed(f"{worker.name} could not start: {e.cause if e.cause is not None else e}") from None
        except PROCESS_LOST as e:
            if getattr(e, "actor_init_failed", False):  # the model could not be built: no retry will help
                raise JobFailed(f"{worker.name} could not start: {e}") from None
            worker.failures += 1
            self._retire(worker, kill=True)
            return
        worker.ready = True

    def _retire(self, worker: WorkerRecord, kill: bool) -> None:
        """Give a worker no more shards (killing it if its process is gone) and start its replacement."""
        worker.ready = False
        worker.finished = time.monotonic()
        if kill:
            ray.kill(worker.handle, no_restart=True)
            worker.handle = None
        if self._replacements_left == 0:
            raise JobFailed(f"worker processes failed {len(self.workers)} times; giving up")
        self._replacements_left -= 1
        self._start_worker()

    # -- shards out ------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        for worker in self.workers:
            while worker.ready and not worker.stalled and len(worker.in_flight) < IN_FLIGHT:
                shard = self._next_for(worker)
                if shard is None:
                    break
                attempt = uuid.uuid4().hex[:12]
                ref = worker.handle.evaluate.remote(shard, attempt)
                if not worker.in_flight:
                    worker.running_since = time.monotonic()
                worker.in_flight.append((ref, shard, attempt))
                self.pending[ref] = (worker, shard, attempt)

    def _next_for(self, worker: WorkerRecord) -> Shard | None:
        """The first queued shard not yet committed that this worker is not already running."""
        running = {shard.index for _, shard, _ in worker.in_flight}
        i = 0
        while i < len(self.queue):
            shard = self.queue[i]
            if shard.index in self.committed:
                del self.queue[i]
            elif shard.index not in running:
                del self.queue[i]
                return shard
            else:
                i += 1
        return None

    def _release_delayed(self) -> None:
        now = time.monotonic()
        while self.delayed and self.delayed[0][0] <= now:
            self.queue.appendleft(heapq.heappop(self.delayed)[2])

    def _watch(self) -> None:
        """Fail when no worker can start; (at most once a POLL_S) run a stalled worker's shards again elsewhere."""
        now = time.monotonic()
        if any(w.ready for w in self.workers):
            self.none_ready_since = now
        elif not self.starting:
            raise JobFailed("no live workers are left to run the remaining shards")
        elif now - self.none_ready_since > self.config.start_timeout_s:
            raise JobFailed(self._no_worker_message())
        if now - self.watched_at < POLL_S:
            return  # a median per completion would cost the driver more than shards cost it
        self.watched_at = now
        limit = self.config.stall_s
        if self.seconds:
            limit = max(limit, self.config.stall_factor * statistics.median(self.seconds))
        for worker in self.workers:
            stalled = worker.running_since is not None and now - worker.running_since > limit
            if worker.ready and not worker.stalled and worker.in_flight and stalled:
                worker.stalled = True  # no more shards for it until it finishes one
                self.results[worker.in_flight[0][1].index].speculative = True
                self._requeue_held(worker)

    def _no_worker_message(self) -> str:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        largest = max((n.get("Resources", {}).get("CPU", 0) for n in nodes), default=0)
        return (f"no worker could start within {self.config.start_timeout_s:.0f} s (--start-timeout-s): each needs "
                f"{self.config.cpus_per_worker:g} CPU(s) (--cpus-per-worker) and the largest of the cluster's "
                f"{len(nodes)} node(s) has {largest:g}")

    # -- results in ------------------------------------------------------------------------------------
    def _collect(self, ref, worker: WorkerRecord, shard: Shard, attempt: str) -> None:
        record = self.results[shard.index]
        try:
            summary = ray.get(ref)
        except rex.RayTaskError as e:
            self._finished_one(worker, ref)
            self._shard_failed(e.cause if e.cause is not None else e, worker, record)
            return
        except rex.ActorUnavailableError:  # may or may not have run: the shard runs elsewhere, first commit wins
            self._finished_one(worker, ref)
            self._unreachable(worker, shard, record)
            return
        except PROCESS_LOST as e:
            self._worker_died(worker, e)
            return
        self._finished_one(worker, ref)
        record.attempts += 1
        if shard.index in self.committed:  # a late or speculative attempt that lost
            self.output.discard(shard.index, attempt)
            return
        self._commit(record, summary, worker)

    def _finished_one(self, worker: WorkerRecord, ref) -> None:
        worker.in_flight = collections.deque(entry for entry in worker.in_flight if entry[0] != ref)
        worker.running_since = time.monotonic() if worker.in_flight else None
        worker.stalled = False

    def _requeue_held(self, worker: WorkerRecord) -> None:
        """Queue again (at the front, in order) every shard a worker holds that is not committed.

        Its attempts stay in flight: if one of them still finishes first, it is committed.
        """
        for _, shard, _ in reversed(worker.in_flight):
            self._queue_front(shard)

    def _queue_front(self, shard: Shard) -> None:
        """Queue a shard to run next, unless it is committed or queued already."""
        if shard.index not in self.committed and shard not in self.queue:
            self.queue.appendleft(shard)

    def _commit(self, record: ShardRecord, summary: ShardSummary, worker: WorkerRecord) -> None:
        index = record.shard.index
        try:
            self.output.commit(index, summary.attempt, bad_rows=summary.bad_rows > 0)
        except OSError as e:
            raise JobFailed(f"shard {index}: {worker.name} on {worker.identity.host} wrote its part, but it is not at "
                            f"{storage.redact(self.output.part(index))} as seen from this driver: --output must be "
                            f"storage every node shares (a URI such as s3://bucket/run, or a shared filesystem) "
                            f"({type(e).__name__})") from None
        self.committed.add(index)
        self.seconds.append(summary.seconds)
        record.summary, record.worker, record.node = summary, worker.name, worker.identity.node
        worker.absorb(summary)
        if self.on_shard_done is not None:
            self.on_shard_done(record)

    def _shard_failed(self, cause: BaseException, worker: WorkerRecord, record: ShardRecord) -> None:
        """An exception inside the evaluation: transient I/O runs again after a backoff; anything else fails."""
        record.attempts += 1
        worker.failures += 1
        transient = isinstance(cause, OSError)  # storage timeouts, reset connections (data errors are not OSError)
        if not transient or record.attempts >= self.config.max_attempts:
            tried = f" after {record.attempts} attempts" if transient else ""
            raise JobFailed(f"shard {record.shard.index} failed{tried}: {cause}") from None
        due = time.monotonic() + min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (record.attempts - 1))
        heapq.heappush(self.delayed, (due, record.shard.index, record.shard))

    def _unreachable(self, worker: WorkerRecord, shard: Shard, record: ShardRecord) -> None:
        """The worker may still be running the shard: run it and what it holds elsewhere, give it no more."""
        record.attempts += 1
        worker.failures += 1
        if shard.index not in self.committed:
            self._requeue_or_fail(record, "its worker became unreachable")
        if worker.ready:
            self._requeue_held(worker)
            self._retire(worker, kill=False)  # not killed: it may yet finish, and a late result is still welcome

    def _worker_died(self, worker: WorkerRecord, error: Exception) -> None:
        """Requeue everything the worker held; only the shard it was running counts an attempt."""
        held = list(worker.in_flight)
        for ref, _, _ in held:
            self.pending.pop(ref, None)
        worker.in_flight.clear()
        worker.running_since = None
        if not held or not worker.ready:  # already replaced when it became unreachable, its shards queued then
            return
        for _, shard, _ in reversed(held):
            self._queue_front(shard)
        running = held[0][1]
        record = self.results[running.index]
        record.attempts += 1
        worker.failures += 1
        if record.attempts >= self.config.max_attempts and running.index not in self.committed:
            raise JobFailed(f"shard {running.index} ({running.describe()}) failed {record.attempts} attempts: "
                            f"the worker process died each time ({type(error).__name__})")
        self._retire(worker, kill=True)

    def _requeue_or_fail(self, record: ShardRecord, why: str) -> None:
        if record.attempts >= self.config.max_attempts:
            raise JobFailed(f"shard {record.shard.index} ({record.shard.describe()}) failed {record.attempts} "
                            f"attempts: {why}")
        self._queue_front(record.shard)
