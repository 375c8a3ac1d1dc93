"""`python -m jobs.submit`: run the evaluation job on a Ray cluster through the Ray Jobs API.

    python -m jobs.submit --address http://HEAD:8265 -- --data s3://bucket/test/ --output s3://bucket/runs/1

Everything after `--` goes to `python -m jobs.evaluate` on the cluster, checked here first so that a
typo fails before anything is uploaded. The project travels with the job as its runtime_env
(working_dir without outputs, caches, .git and large files; the project's packages as py_modules
when the working dir does not hold them). The entrypoint reserves no CPU, so every CPU of the
cluster can run an evaluation actor. Logs are followed until the job ends; the exit status is the
job's: 0 succeeded, the entrypoint's own code when it failed (1 failed, 2 bad usage), 1 when it was
stopped or never ran, 2 when it could not be submitted, 130 when following was interrupted (the job
goes on). Token authentication works as with `ray job submit`: RAY_AUTH_MODE=token and the token in
RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token; extra HTTP headers in --headers or RAY_JOB_HEADERS.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import importlib
import json
import os
import shlex
import sys
import time
from pathlib import Path

from cluster import storage

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
PACKAGES = ("engine", "cluster", "jobs", "zoo")  # the project's code, which every node must import
# Never shipped (gitignore syntax, relative to the working dir): VCS data, caches, environments, outputs.
EXCLUDES = [".git/", "__pycache__/", "*.pyc", ".pytest_cache/", ".ruff_cache/", ".benchmarks/", "*.egg-info/",
            ".venv/", "venv/", "build/", "dist/", "/eval-output/", "/bench/data/"]
AWS_VARIABLES = {"access_key": "AWS_ACCESS_KEY_ID", "secret_key": "AWS_SECRET_ACCESS_KEY",
                 "session_token": "AWS_SESSION_TOKEN"}
LARGE_FILE_BYTES = 64 * 2**20  # bigger files are data: read them from shared or object storage instead


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m jobs.submit` (the evaluate job's options follow `--`)."""
    p = argparse.ArgumentParser(
        prog="python -m jobs.submit", usage="%(prog)s [options] -- [python -m jobs.evaluate options]",
        description="Submit `python -m jobs.evaluate` to a Ray cluster as a Ray job, follow its logs, "
                    "and exit with its status.")
    a = p.add_argument
    a("--address", help="the cluster's dashboard, e.g. http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS, "
      "RAY_ADDRESS, or http://localhost:8265)")
    a("--working-dir", default=".", help="directory shipped as the job's working dir (default: the current one)")
    a("--exclude", action="append", default=[], metavar="PATTERN",
      help="also leave out files matching this gitignore-style pattern (repeatable)")
    a("--env", action="append", default=[], metavar="NAME[=VALUE]",
      help="set an environment variable for the job; NAME alone copies it from here (repeatable)")
    a("--runtime-env-json", metavar="JSON", help="more runtime_env fields (pip, env_vars, ...) as JSON")
    a("--entrypoint-num-cpus", type=float, default=0,
      help="CPUs the entrypoint reserves (default 0: the actors get every CPU)")
    a("--submission-id", help="the job's id (default: one Ray makes up)")
    a("--headers", help='extra HTTP headers as JSON, e.g. \'{"Authorization": "Bearer ..."}\' '
      "(default: RAY_JOB_HEADERS)")
    a("--no-wait", action="store_true", help="submit, print the job id and exit without following the job")
    return p


def main(argv: list[str] | None = None) -> int:
    """Check the evaluate options, submit the job, follow it, and return its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    own, evaluate_args = _split(argv)
    options = build_parser().parse_args(own)
    _check_evaluate_args(evaluate_args)
    from ray.exceptions import RayError  # AuthenticationError among them

    try:
        evaluate_args, credentials = _move_credentials(evaluate_args)
        runtime_env = _runtime_env(options, credentials)
        client = _client(options)
        job_id = client.submit_job(entrypoint=shlex.join(["python", "-m", "jobs.evaluate", *evaluate_args]),
                                   submission_id=options.submission_id, runtime_env=runtime_env,
                                   entrypoint_num_cpus=options.entrypoint_num_cpus,
                                   metadata={"job_name": "evalpipe evaluate"})
    except (ConnectionError, RuntimeError, ValueError, OSError, RayError) as e:
        print(f"error: could not submit the job: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"submitted job {job_id} to {client.get_address()}", flush=True)
    if options.no_wait:
        return EXIT_OK
    try:
        return _follow(client, job_id)
    except KeyboardInterrupt:
        print(f"\nstopped following; job {job_id} goes on (stop it with: ray job stop {job_id})", file=sys.stderr)
        return EXIT_INTERRUPTED


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    """This command's options, and the evaluate job's (after the first `--`)."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def _check_evaluate_args(args: list[str]) -> None:
    """Parse them with the job's own parser (exits 2 on a bad option); warn about outputs left on a node."""
    from cluster.config import JobConfig
    from jobs.evaluate import build_parser as evaluate_parser

    options = evaluate_parser().parse_args(args)
    output = options.output or JobConfig.output
    if "://" not in output and not os.path.isabs(output):
        print(f"note: --output {output} is relative: it will land in the job's working directory on the node "
              "that runs the entrypoint; give an absolute path on shared storage or a URI such as "
              "s3://bucket/runs/1", file=sys.stderr)


def _client(options: argparse.Namespace):
    from ray.job_submission import JobSubmissionClient

    headers = options.headers or os.environ.get("RAY_JOB_HEADERS")
    try:
        headers = json.loads(headers) if headers else None
    except ValueError:
        raise ValueError(f"--headers / RAY_JOB_HEADERS must be a JSON object, got {headers!r}") from None
    return JobSubmissionClient(options.address, headers=headers)


def _move_credentials(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The evaluate arguments with no credentials in their URIs, and the environment variables that carry them.

    An entrypoint shows in the dashboard and in `ray job list`: an s3:// URI's key and secret go to the
    job as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN) instead, which pyarrow reads.
    """
    cleaned, env = [], {}
    for arg in args:
        flag, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        uri, found = storage.split_credentials(value)
        if found and not value.startswith("s3://"):
            raise ValueError(f"{storage.redact(value)} carries credentials, which would show in the job's entrypoint: "
                             "give them to the job through its environment with --env NAME")
        for option, secret in found.items():
            name = AWS_VARIABLES[option]
            if env.setdefault(name, secret) != secret:
                raise ValueError(f"the job's URIs carry two different {name} values: pass one through --env {name}")
        cleaned.append(flag + eq + uri if found else arg)
    if env:
        print(f"note: credentials in URIs go to the job as {', '.join(sorted(env))}, not in its entrypoint",
              file=sys.stderr)
    return cleaned, env


def _runtime_env(options: argparse.Namespace, credentials: dict[str, str] | None = None) -> dict:
    """working_dir with excludes, the project's packages when the working dir lacks them, env vars."""
    working_dir = Path(options.working_dir).resolve()
    if not working_dir.is_dir():
        raise ValueError(f"--working-dir {options.working_dir} is not a directory")
    try:
        env = json.loads(options.runtime_env_json) if options.runtime_env_json else {}
    except ValueError as e:
        raise ValueError(f"--runtime-env-json is not valid JSON: {e}") from None
    excludes = [*EXCLUDES, *env.get("excludes", []), *options.exclude]
    large = _large_files(working_dir, excludes)
    for path, size in large:
        print(f"note: not shipping {path} ({size / 2**20:.0f} MiB): put data on shared or object storage",
              file=sys.stderr)
    env["working_dir"] = str(working_dir)
    env["excludes"] = [*excludes, *(f"/{path}" for path, _ in large)]
    modules = [d for d in _package_dirs() if working_dir not in d.parents]
    if modules:
        env["py_modules"] = [*env.get("py_modules", []), *map(str, modules)]
    if options.env or credentials:
        env["env_vars"] = {**env.get("env_vars", {}), **(credentials or {}), **_env_vars(options.env)}
    return env


def _package_dirs() -> list[Path]:
    return [Path(importlib.import_module(name).__file__).resolve().parent for name in PACKAGES]


def _large_files(root: Path, excludes: list[str]) -> list[tuple[str, int]]:
    """Files in the working dir, not excluded already, too big to ship with the code: (relative path, bytes)."""
    found = []
    for directory, subdirs, files in os.walk(root):
        here = Path(directory).relative_to(root)
        subdirs[:] = [d for d in subdirs if not _excluded((here / d).as_posix(), excludes, directory=True)]
        for name in files:
            relative, size = (here / name).as_posix(), Path(directory, name).lstat().st_size
            if size > LARGE_FILE_BYTES and not _excluded(relative, excludes, directory=False):
                found.append((relative, size))
    return found


def _excluded(relative: str, patterns: list[str], directory: bool) -> bool:
    """Whether a gitignore-style pattern (the common forms: 'name', '/path', 'dir/', '*.ext') leaves it out."""
    for pattern in patterns:
        if pattern.endswith("/") and not directory:
            continue
        pattern = pattern.rstrip("/")
        anchored = pattern.startswith("/") or "/" in pattern
        target = relative if anchored else relative.rsplit("/", 1)[-1]
        if fnmatch.fnmatchcase(target, pattern.lstrip("/")):
            return True
    return False


def _env_vars(specs: list[str]) -> dict[str, str]:
    values = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep:
            if name not in os.environ:
                raise ValueError(f"--env {name}: no such variable here (give --env {name}=VALUE)")
            value = os.environ[name]
        values[name] = value
    return values


def _follow(client, job_id: str, poll_s: float = 1.0) -> int:
    """Print the job's logs as they come, wait for its end, and map its status to an exit code."""
    from ray.job_submission import JobStatus

    async def tail() -> None:
        async for lines in client.tail_job_logs(job_id):
            print(lines, end="", flush=True)

    try:
        asyncio.run(tail())
    except RuntimeError as e:  # the log stream broke off: the status below still tells the outcome
        print(f"note: log stream ended early ({e})", file=sys.stderr)
    info = client.get_job_info(job_id)
    while not info.status.is_terminal():
        time.sleep(poll_s)
        info = client.get_job_info(job_id)
    if info.status == JobStatus.SUCCEEDED:
        print(f"job {job_id} succeeded", flush=True)
        return EXIT_OK
    code = info.driver_exit_code if info.status == JobStatus.FAILED and info.driver_exit_code else EXIT_FAILED
    reason = (info.message or "").splitlines()[:1]  # its first line: the logs above hold the rest
    print(f"job {job_id} {info.status.value.lower()} (exit {code}): {' '.join(reason)}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
