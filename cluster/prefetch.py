"""Reading ahead: a shard's batches are read and decoded on a background thread while the model runs.

pyarrow's readers, Pillow's decoders and BLAS all release the GIL, so on one core the read of the
next batch overlaps the forward of this one, and on more the two run side by side. The queue holds
at most `depth` batches, so memory stays bounded by a few batches.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator

_DONE = object()


class Ahead:
    """Iterate over `items` produced on a background thread, up to `depth` ahead (0: in turn, on this thread).

    `busy_s` is the time spent producing them (reading and decoding), whichever thread did it. An
    exception raised while producing is raised here, at the item it replaced.
    """

    def __init__(self, items: Iterable, depth: int):
        self.items, self.depth, self.busy_s = items, depth, 0.0

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
        thread = threading.Thread(target=self._fill, args=(buffer, stop), name="evalpipe-read-ahead", daemon=True)
        thread.start()
        try:
            while (item := buffer.get()) is not _DONE:
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting for room, then let it close the reader
                try:
                    buffer.get(timeout=0.05)
                except queue.Empty:
                    pass
            thread.join()

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
