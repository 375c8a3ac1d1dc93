"""Reading ahead: a shard's batches are read and decoded on a background thread while the model runs.

pyarrow's readers, Pillow's decoders and BLAS all release the GIL, so on one core the read of the
next batch overlaps the forward of this one, and on more the two run side by side. The queue holds
at most `depth` batches, so memory stays bounded by a few batches.

The thread is the caller's, kept for a worker's life (ReadAhead): a fresh thread per shard would get
a fresh glibc malloc arena whenever another thread of the process had taken the last one's, each
keeping what it once held (with the worker keeping freed memory), so a worker's memory grew with
the shards it ran (by 50 MB over 20 shards in a Ray actor).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

_DONE = object()


class ReadAhead:
    """The one background thread a worker reads ahead on, for every shard it runs (started on first use)."""

    def __init__(self):
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalpipe-read-ahead")

    def close(self) -> None:
        self.executor.shutdown(wait=True)


class Ahead:
    """Iterate over `items` produced on `thread` (a ReadAhead), up to `depth` ahead (0: in turn, on this thread).

    `busy_s` is the time spent producing them (reading and decoding), whichever thread did it. An
    exception raised while producing is raised here, at the item it replaced.
    """

    def __init__(self, items: Iterable, depth: int, thread: ReadAhead | None = None):
        self.items, self.depth, self.busy_s = items, depth, 0.0
        self.thread = thread

    def __iter__(self) -> Iterator:
        return self._inline() if self.depth == 0 else self._threaded()

    def _produce(self, iterator: Iterator):
        start = time.perf_counter()
        try:
            return next(iterator)
        finally:
            self.busy_s += time.perf_counter() - start

    def _inline(self) -> Iterator:
        iterator = iter(self.items)
        while True:
            try:
                yield self._produce(iterator)
            except StopIteration:
                return

    def _threaded(self) -> Iterator:
        buffer: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()
        own = self.thread is None  # a thread of its own, for this iteration only
        thread = ReadAhead() if own else self.thread
        filling = thread.executor.submit(self._fill, buffer, stop)
        try:
            while (item := buffer.get()) is not _DONE:
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            stop.set()
            while not filling.done():  # unblock a producer waiting for room, then let it close the reader
                try:
                    buffer.get(timeout=0.05)
                except queue.Empty:
                    pass
            filling.result()
            if own:
                thread.close()

    def _fill(self, buffer: queue.Queue, stop: threading.Event) -> None:
        iterator = iter(self.items)
        try:
            while not stop.is_set():
                try:
                    item = self._produce(iterator)
                except StopIteration:
                    break
                _put(buffer, item, stop)
        except BaseException as e:  # handed to the consumer, raised where the item would have been
            _put(buffer, _Failure(e), stop)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # the reader's files are closed on the thread that opened them
            _put(buffer, _DONE, stop)


def _put(buffer: queue.Queue, item, stop: threading.Event) -> None:
    """Put, waiting for room, unless the consumer has stopped."""
    while not stop.is_set():
        try:
            buffer.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error
