"""Private Ray clusters for tests: their own temp dir, ports and token, so they never meet another Ray here.

`ray start` and `ray.cluster_utils.Cluster` record "the latest cluster" in the temp dir, where a plain
ray.init() elsewhere would find it; a private RAY_TMPDIR keeps that record to the test. Everything is
stopped by process id: the processes of a session this test started, never others by name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
BIN = Path(sys.executable).parent  # this interpreter's scripts: `ray`, and the `python` a job's entrypoint runs
RAY_CLI = str(BIN / "ray") if (BIN / "ray").exists() else "ray"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRay:
    """A temp dir and a token; `env` is what a process needs to use (or start) a Ray in them."""

    def __init__(self):
        # Short: Ray's unix sockets live under it, and their paths are limited to ~107 characters.
        self.root = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
        self.token = self.root / "token"
        self.token.write_text(secrets.token_hex(16))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
        self.env.update(RAY_TMPDIR=str(self.root), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(self.token),
                        RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]),
                        # Ray's switch for "this machine's address is the loopback one": without it a driver
                        # given 127.0.0.1:port dials the machine's outward address instead.
                        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
                        PATH=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))

    def run(self, args: list[str], timeout: float = 300, env: dict | None = None, **kwargs):
        """Run a command in this environment (its own session, so that stray children can be ended)."""
        process = subprocess.Popen(args, env={**self.env, **(env or {})}, cwd=ROOT, start_new_session=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            end_session(process)
            output = process.communicate()[0] + f"\n[timed out after {timeout} s]"
        finally:
            end_session(process)
        return subprocess.CompletedProcess(args, process.returncode, output)

    def auth_header(self) -> dict:
        return {"Authorization": f"Bearer {self.token.read_text()}"}

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Head(PrivateRay):
    """`ray start --head --block` on 127.0.0.1 with free ports, a dashboard for job submission, token auth."""

    def __init__(self, cpus: int = 2):
        super().__init__()
        self.port, self.dashboard_port = free_port(), free_port()
        ports = {"--port": self.port, "--dashboard-port": self.dashboard_port}
        for option in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
                       "--metrics-export-port", "--node-manager-port", "--object-manager-port",
                       "--ray-client-server-port"):
            ports[option] = free_port()
        command = [RAY_CLI, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                   "--dashboard-host", "127.0.0.1", "--include-dashboard", "true", "--num-cpus", str(cpus),
                   "--object-store-memory", str(128 * 2**20), "--temp-dir", str(self.root),
                   "--min-worker-port", "0", "--max-worker-port", "0", "--disable-usage-stats"]
        command += [str(x) for pair in ports.items() for x in pair]
        self.log = open(self.root / "head.log", "w")  # noqa: SIM115 (open while the head runs)
        self.process = subprocess.Popen(command, env=self.env, cwd=self.root, start_new_session=True,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}"
        self.address = f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the job API answers an authenticated request."""
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(f"{self.dashboard}/api/jobs/", headers=self.auth_header())
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.process.returncode}: {self.logs()}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(request, timeout=2):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Ray head at {self.dashboard} did not come up: {self.logs()}")
            time.sleep(0.5)

    def logs(self) -> str:
        return (self.root / "head.log").read_text()[-3000:]

    def stop(self) -> None:
        end_session(self.process)
        self.log.close()
        self.remove()


def interruptible() -> None:
    """A child's preexec_fn: SIGINT back to its default, whatever the test run inherited.

    A test run started in the background (`pytest &`) ignores SIGINT, and children inherit that:
    a job under test would never see the Ctrl-C the test sends it.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def end_session(process: subprocess.Popen, grace: float = 20) -> None:
    """Stop a process started with start_new_session=True, and every process left in its session."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in _session_members(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _session_members(session: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                # Fields after the parenthesised command name: state, ppid, pgrp, session, ...
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == session:
                    members.append(int(entry.name))
    return members
