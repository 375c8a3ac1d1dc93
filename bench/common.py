"""What the pipeline studies share: running a job as a process and watching its memory, verdicts, the record.

The studies time whole jobs the way a user runs them: a fresh process that starts (and stops) its
own Ray. run() starts one, samples its memory while it runs, and afterwards ends any process it
left behind (only those: ones that descended from it, by pid and start time).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results.jsonl"
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
PAGE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- running a job ------------------------------------------------------------------------------
@dataclass
class Run:
    """One finished job: wall seconds, exit status, memory peaks, and its output."""

    wall_s: float
    returncode: int
    driver_peak_rss: int  # the job's own process (VmHWM), bytes
    driver_cpu_s: float  # CPU seconds of the job's own process (all its threads), at the last sample
    tree_peak_rss: int  # the highest sum of RSS over the job's process tree, sampled (shared pages counted twice)
    stdout: str
    stderr: str
    leftovers: list = field(default_factory=list)  # pids of descendants still alive at the end (then ended)

    def json_line(self) -> dict:
        """The last JSON line the job printed."""
        lines = [line for line in self.stdout.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


def env(extra: dict | None = None) -> dict:
    """The environment jobs run in: this one, with the repo root on PYTHONPATH (for Ray's worker processes)."""
    environment = {**os.environ, **(extra or {})}
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), environment.get("PYTHONPATH")) if p)
    return environment


def run(command: list[str], *, extra_env: dict | None = None, interval: float = 0.1, timeout: float = 900) -> Run:
    """Run `command` from the repo root; its wall time and memory peaks. RuntimeError if it fails."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env(extra_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    watcher = _Watcher(process.pid, interval)
    watcher.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    wall = time.perf_counter() - start
    watcher.stop()
    done = Run(wall, process.returncode, watcher.driver_hwm, watcher.driver_cpu, watcher.tree_peak, stdout, stderr,
               watcher.end_leftovers())
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}:\n{stderr[-3000:]}")
    return done


class _Watcher(threading.Thread):
    """Samples the job's peak RSS (VmHWM) and its process tree's summed RSS; remembers every descendant."""

    def __init__(self, pid: int, interval: float):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.driver_hwm = self.tree_peak = 0
        self.driver_cpu = 0.0
        self.seen: dict[int, str] = {}  # pid -> start time, so a reused pid is never mistaken for ours
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()

    def sample(self) -> None:
        status = _read(f"/proc/{self.pid}/status")
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.driver_hwm = max(self.driver_hwm, int(line.split()[1]) * 1024)
        stat = _read(f"/proc/{self.pid}/stat")
        if stat:
            fields = stat.rsplit(")", 1)[1].split()
            self.driver_cpu = max(self.driver_cpu, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
        tree = _descendants(self.pid)
        self.seen.update(tree)
        self.tree_peak = max(self.tree_peak, sum(_rss(p) for p in tree) + _rss(self.pid))

    def end_leftovers(self, grace: float = 2.0) -> list[int]:
        """End descendants of the job still running `grace` seconds after it exited (a crashed job's Ray); their pids.

        Ray's workers finish exiting a moment after the driver (they notice the raylet is gone), so
        only a process still there after the grace period counts as left behind.
        """
        deadline = time.monotonic() + grace
        while True:
            left = [pid for pid, started in self.seen.items() if _running(pid, started)]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return left


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _running(pid: int, started: str) -> bool:
    """The process `pid` that started at `started` is still there and not a zombie."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return False
    fields = text.rsplit(")", 1)[1].split()
    return fields[19] == started and fields[0] not in ("Z", "X")


def _stat(pid: int) -> list[str]:
    """[parent pid, start time] of a live process, [] when it is gone."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return []
    fields = text.rsplit(")", 1)[1].split()  # the name may hold spaces; what follows ')' does not
    return [fields[1], fields[19]]


def _descendants(root: int) -> dict[int, str]:
    children: dict[int, list[int]] = {}
    starts = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat:
                children.setdefault(int(stat[0]), []).append(int(entry))
                starts[int(entry)] = stat[1]
    found, stack = {}, list(children.get(root, []))
    while stack:
        pid = stack.pop()
        found[pid] = starts[pid]
        stack.extend(children.get(pid, []))
    return found


def _rss(pid: int) -> int:
    text = _read(f"/proc/{pid}/statm")
    return int(text.split()[1]) * PAGE if text else 0


def run_traced(command: list[str], trace: Path) -> tuple[Run, float | None]:
    """run() with the benchmark models logging their forwards under `trace`; the run and its traced rows/s."""
    from bench import models
    trace.mkdir(parents=True, exist_ok=True)
    done = run(command, extra_env={models.TRACE_DIR: str(trace)})
    return done, models.read_traces(trace)["rows_per_s"]


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def cli_available() -> bool:
    """True once `python -m jobs.evaluate` exists in this checkout (the lead is writing it)."""
    return (ROOT / "jobs" / "evaluate.py").exists()


def pipeline_command(data: Path, output: Path, actors: int, *, model: str = "bench.models:mlp_64_256_10",
                     batch_size: int = 4096, extra: tuple[str, ...] = ()) -> list[str]:
    """The user's command for the pipeline: the jobs.evaluate CLI, or cluster.evaluate until the CLI exists."""
    if cli_available():
        return python("-m", "jobs.evaluate", "--data", str(data), "--model", model, "--label", "label",
                      "--batch-size", str(batch_size), "--workers", str(actors), "--output", str(output),
                      "--overwrite", *extra)
    return python("bench/contenders.py", "api", "--data", str(data), "--model", model, "--batch-size",
                  str(batch_size), "--actors", str(actors), "--output", str(output), *extra)


# -- figures, verdicts, the record ----------------------------------------------------------------
def steady_rate(tiny_rows: int, tiny_s: float, large_rows: int, large_s: float) -> float:
    """Extra rows per extra second between a tiny job and a large one: the rate once the job is up."""
    extra = large_s - tiny_s
    return (large_rows - tiny_rows) / extra if extra > 0 else float("inf")


def verdict(value, op: str, limit) -> dict:
    compare = {">=": lambda v, lim: v >= lim, "<=": lambda v, lim: v <= lim, "==": lambda v, lim: v == lim}
    return {"value": value, "op": op, "limit": limit, "pass": bool(compare[op](value, limit))}


def machine() -> dict:
    """CPU, cores, memory, numpy's BLAS, the OpenBLAS overrides in force, and versions."""
    import numpy
    import pyarrow
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) * 1024 for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal:")), 0)
    versions = {"python": platform.python_version(), "numpy": numpy.__version__, "pyarrow": pyarrow.__version__}
    for name in ("ray", "torch", "pandas"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    try:
        from threadpoolctl import threadpool_info
        blas = [{k: info.get(k) for k in ("internal_api", "architecture", "version")}
                for info in threadpool_info() if info.get("user_api") == "blas"]
    except ImportError:
        blas = []
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "memory_bytes": memory, "numpy_blas": blas,
            "openblas_env": {k: os.environ.get(k) for k in OPENBLAS_OVERRIDES}, "versions": versions,
            "load_average": os.getloadavg()}


def warn_if_slow_blas(quick: bool) -> None:
    if any(os.environ.get(k) for k in OPENBLAS_OVERRIDES) and not quick:
        print(f"warning: {' and '.join(OPENBLAS_OVERRIDES)} are set and slow numpy's BLAS; "
              "run under `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`", file=sys.stderr)


def emit(study: str, started: datetime.datetime, quick: bool, result: dict, targets: dict, record: bool) -> dict:
    """Print the study's JSON line (and a PASS/FAIL line per target on stderr); append it to results.jsonl."""
    line = {"study": study, "date": started.isoformat(timespec="seconds"),
            "command": " ".join(["python", os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]), "quick": quick,
            "machine": machine(), **result, "targets": targets, "all_pass": all(t["pass"] for t in targets.values()),
            "seconds": round((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(), 1)}
    text = json.dumps(line)
    print(text)
    for name, t in targets.items():
        value = f"{t['value']:.4g}" if isinstance(t["value"], float) else str(t["value"])
        print(f"{'PASS' if t['pass'] else 'FAIL'}  {name}: {value} (target {t['op']} {t['limit']})", file=sys.stderr)
    if record:
        with RESULTS.open("a") as f:
            f.write(text + "\n")
    return line


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
