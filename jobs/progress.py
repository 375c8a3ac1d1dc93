"""Progress of a running job: a bar on a terminal, plain periodic lines elsewhere (CI, cluster job logs)."""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts rows as shards finish; call start(total, done) once, then shard_done(record) per shard."""

    def __init__(self, stream=None, interval_s: float = 10.0, terminal: bool | None = None):
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.interval_s = interval_s
        self.total = self.done = self._resumed = 0
        self._bar = None
        self._started = self._last_line = time.monotonic()

    def start(self, total: int, resumed: int) -> None:
        self.total, self.done, self._resumed = total, resumed, resumed
        self._started = self._last_line = time.monotonic()
        if self.terminal:
            from tqdm import tqdm
            self._bar = tqdm(total=total, initial=resumed, unit="rows", unit_scale=True, file=self.stream,
                             desc="evaluating", dynamic_ncols=True)
        else:
            note = f" ({resumed:,} already done in an earlier run)" if resumed else ""
            self._line(f"evaluating {total:,} rows{note}")

    def shard_done(self, record) -> None:
        rows = record.summary.rows if record.summary is not None else record.shard.rows
        self.done += rows
        if self._bar is not None:
            self._bar.update(rows)
        elif time.monotonic() - self._last_line >= self.interval_s or self.done >= self.total:
            self._report()

    def _report(self) -> None:
        elapsed = time.monotonic() - self._started
        rate = (self.done - self._resumed) / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        percent = 100 * self.done / self.total if self.total else 100.0
        self._line(f"progress: {self.done:,}/{self.total:,} rows ({percent:.0f}%), {rate:,.0f} rows/s, "
                   f"ETA {left:.0f} s")

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
        self._last_line = time.monotonic()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
