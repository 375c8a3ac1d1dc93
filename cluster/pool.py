"""The Ray layer, and the only module that imports Ray: connect, size the pool, run shards on actors, shut down.

Actors get shard descriptors, never data: each reads its own shard from storage, so no separate
read task ever waits for a CPU that the actors hold. Shards go out dynamically, a few in flight
per actor, so a faster actor takes more. An actor whose process dies loses nothing: the shard it
was running goes back to the queue (its attempt counted) and a replacement actor starts. A shard
whose data is bad fails the job at once, naming its file and rows, unless bad shards are skipped.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable

import ray
import ray.exceptions as rex

from cluster.config import JobConfig
from cluster.errors import JobFailed, ShardDataError
from cluster.evaluator import ShardEvaluator
from cluster.planner import Shard
from cluster.records import ShardRecord, ShardSummary, WorkerRecord

# A process that ends this way took the shard down with it; another process may well succeed.
PROCESS_LOST = (rex.RayActorError, rex.WorkerCrashedError, rex.OutOfMemoryError, rex.NodeDiedError,
                rex.LocalRayletDiedError, rex.ObjectLostError)
IN_FLIGHT = 2  # shards queued per actor: the next one is ready the moment the current one ends


def run(config: JobConfig, shards: list[Shard], on_ready: Callable[[], None] | None = None,
        on_shard_done: Callable[[ShardRecord], None] | None = None) -> tuple[list[ShardRecord], list[WorkerRecord]]:
    """Evaluate every shard exactly once on a pool of actors: a record per shard (in order), one per worker.

    Connects to the job's Ray (starting a local one if there is none, and stopping it at the end);
    on_ready() is called once connected, before the first actor starts.
    """
    with _connected(config.address):
        if on_ready is not None:
            on_ready()
        workers = config.workers or max(1, int(_cluster_cpus() // config.cpus_per_worker))
        pool_run = PoolRun(config, workers, on_shard_done)
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

    def __init__(self, config: JobConfig):
        from threadpoolctl import threadpool_limits

        from cluster.process_memory import keep_freed_memory
        self._blas_limit = threadpool_limits(limits=max(1, int(config.cpus_per_worker)))  # lasts while it lives
        keep_freed_memory()
        self.evaluator = ShardEvaluator(config)

    def identity(self) -> dict:
        """pid, node id and host of this actor."""
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname()}

    def evaluate(self, shard: Shard) -> ShardSummary:
        return self.evaluator.evaluate(shard)


class PoolRun:
    """One run of shards on a pool of actors, until each shard is done once (or the job fails).

    Its state lives here: the queue of shards, the evaluations in flight, the actors starting, and
    a record per shard and per worker.
    """

    def __init__(self, config: JobConfig, workers: int, on_shard_done: Callable | None = None):
        self.config, self.size, self.on_shard_done = config, workers, on_shard_done
        self.workers: list[WorkerRecord] = []
        self.results: dict[int, ShardRecord] = {}
        self.queue: collections.deque[Shard] = collections.deque()
        self.pending: dict = {}  # evaluate ref -> (worker, shard)
        self.starting: dict = {}  # identity ref -> worker not yet up
        self._replacements_left = workers * config.max_attempts  # bounds a pool whose processes keep dying
        self._actor_class = ray.remote(EvalActor)

    def run(self, shards: list[Shard]) -> list[ShardRecord]:
        """Evaluate every shard exactly once; a ShardRecord per shard, in shard order."""
        self.results = {s.index: ShardRecord(s) for s in shards}
        self.queue.extend(shards)
        try:
            for _ in range(min(self.size, max(1, len(shards)))):
                self._start_worker()  # all start in parallel
            while self.queue or self.pending:
                self._dispatch()
                if not self.pending and not self.starting:
                    raise JobFailed("no live workers are left to run the remaining shards")
                ready, _ = ray.wait([*self.pending, *self.starting], num_returns=1)
                for ref in ready:
                    if ref in self.starting:
                        self._worker_up(ref, self.starting.pop(ref))
                    elif ref in self.pending:  # (refs of a worker already known dead were dropped)
                        self._collect(ref, *self.pending.pop(ref))
        finally:
            for worker in self.workers:
                if worker.handle is not None:
                    ray.kill(worker.handle, no_restart=True)
                    worker.handle = None
        return [self.results[s.index] for s in shards]

    def _start_worker(self) -> None:
        """Create an actor; it gets shards only once it is up (one that never fits the cluster gets none)."""
        worker = WorkerRecord(name=f"worker-{len(self.workers)}")
        options = {"num_cpus": self.config.cpus_per_worker, "max_restarts": 0, "max_concurrency": 1}
        worker.handle = self._actor_class.options(**options).remote(self.config)
        self.starting[worker.handle.identity.remote()] = worker
        self.workers.append(worker)

    def _worker_up(self, ref, worker: WorkerRecord) -> None:
        """Record the identity of an actor that is up (fetched this once), or replace one that died starting."""
        try:
            identity = ray.get(ref)
        except rex.RayTaskError as e:
            raise JobFailed(f"{worker.name} could not start: {e.cause if e.cause is not None else e}") from None
        except PROCESS_LOST as e:
            if getattr(e, "actor_init_failed", False):  # the model could not be built: no retry will help
                raise JobFailed(f"{worker.name} could not start: {e}") from None
            worker.failures += 1
            self._retire(worker)
            return
        worker.pid, worker.node, worker.host = identity["pid"], identity["node"], identity["host"]
        worker.ready = True

    def _dispatch(self) -> None:
        for worker in self.workers:
            while worker.ready and self.queue and len(worker.in_flight) < IN_FLIGHT:
                shard = self.queue.popleft()
                ref = worker.handle.evaluate.remote(shard)
                worker.in_flight.append((ref, shard))
                self.pending[ref] = (worker, shard)

    def _collect(self, ref, worker: WorkerRecord, shard: Shard) -> None:
        record = self.results[shard.index]
        try:
            summary = ray.get(ref)
        except rex.RayTaskError as e:
            worker.in_flight.remove((ref, shard))
            self._shard_failed(e, worker, record)
            return
        except PROCESS_LOST as e:
            self._worker_died(worker, e)
            return
        worker.in_flight.remove((ref, shard))
        record.attempts += 1
        record.summary, record.worker, record.node = summary, worker.name, worker.node
        worker.absorb(summary)
        if self.on_shard_done is not None:
            self.on_shard_done(record)

    def _shard_failed(self, error: rex.RayTaskError, worker: WorkerRecord, record: ShardRecord) -> None:
        """An exception inside the evaluation: the data or the model is at fault, so no blind retry."""
        cause = error.cause if error.cause is not None else error
        record.attempts += 1
        worker.failures += 1
        if isinstance(cause, ShardDataError) and self.config.skip_bad_shards:
            record.skipped = str(cause)
            if self.on_shard_done is not None:
                self.on_shard_done(record)
            return
        raise JobFailed(f"shard {record.shard.index} failed: {cause}") from None

    def _worker_died(self, worker: WorkerRecord, error: Exception) -> None:
        """Requeue everything the worker held; only the shard it was running counts an attempt."""
        running = worker.in_flight[0][1]
        for ref, shard in reversed(worker.in_flight):
            self.pending.pop(ref, None)
            self.queue.appendleft(shard)
        worker.in_flight.clear()
        record = self.results[running.index]
        record.attempts += 1
        worker.failures += 1
        if record.attempts >= self.config.max_attempts:
            raise JobFailed(f"shard {running.index} ({running.describe()}) failed {record.attempts} attempts: "
                            f"the worker process died each time ({type(error).__name__})")
        self._retire(worker)

    def _retire(self, worker: WorkerRecord) -> None:
        """Stop a worker whose process is gone and start its replacement."""
        worker.ready = False
        worker.finished = time.monotonic()
        ray.kill(worker.handle, no_restart=True)
        worker.handle = None
        if self._replacements_left == 0:
            raise JobFailed(f"worker processes died {len(self.workers)} times; giving up")
        self._replacements_left -= 1
        self._start_worker()
