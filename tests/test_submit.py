"""`python -m jobs.submit` and plain `ray job submit` against a real head (`ray start --head`) on 127.0.0.1.

The head runs with token authentication on, its own temp dir, ports and token; the submitting
processes find the token as Ray's own CLI does (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN_PATH). The head
has one CPU: a job succeeds only if its entrypoint leaves that CPU to the evaluation actor.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from private_ray import RAY_CLI, ROOT, Head

import zoo
from jobs.submit import EXCLUDES, PACKAGES, _excluded, build_parser, main

DIGITS_ROWS = pq.ParquetFile(zoo.DIGITS_TEST).metadata.num_rows


@pytest.fixture(scope="module")
def head():
    started = Head(cpus=1)
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def submit(head: Head, *args: str, env: dict | None = None):
    return head.run([sys.executable, "-m", "jobs.submit", "--address", head.dashboard, *args], env=env, timeout=240)


def job_info(head: Head, submission_id: str):
    from ray.job_submission import JobSubmissionClient
    return JobSubmissionClient(head.dashboard, headers=head.auth_header()).get_job_info(submission_id)


@pytest.fixture(scope="module")
def submitted(head):
    """The bundled evaluation submitted through jobs.submit: (process result, output dir, job id)."""
    out = head.root / "digits-out"
    done = submit(head, "--submission-id", "digits", "--", "--output", str(out), "--shard-rows", "100")
    return done, out, "digits"


def test_a_submitted_evaluation_exits_0_after_following_the_jobs_logs(submitted):
    done, out, _ = submitted
    assert done.returncode == 0, done.stdout[-4000:]
    assert "Running entrypoint for job digits" in done.stdout and str(out) in done.stdout


def test_a_submitted_evaluation_writes_every_row_and_the_completion_marker(submitted):
    _, out, _ = submitted
    assert (out / "_SUCCESS").exists()
    predictions = ds.dataset(out / "predictions").to_table()
    assert sorted(predictions.column("row_id").to_pylist()) == sorted(
        pq.read_table(zoo.DIGITS_TEST, columns=["id"]).column("id").to_pylist())
    correct = np.mean(predictions.column("prediction").to_numpy() == predictions.column("label").to_numpy())
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == pytest.approx(correct) and correct > 0.9


def test_the_job_runs_its_actors_on_the_cluster_it_was_submitted_to(head, submitted):
    _, out, job_id = submitted
    driver_node = job_info(head, job_id).driver_node_id
    workers = pq.read_table(out / "workers.parquet").to_pylist()
    assert [w["node"] for w in workers] == [driver_node]  # one CPU: one actor, on the head (not a private Ray)
    assert workers[0]["rows"] == DIGITS_ROWS


def test_a_failing_job_exits_with_the_jobs_non_zero_status(head):
    out = head.root / "bad-data-out"
    done = submit(head, "--", "--data", "/nonexistent/test.parquet", "--output", str(out))
    assert done.returncode == 2, done.stdout[-4000:]  # the entrypoint's own code: inputs that do not fit
    assert "/nonexistent/test.parquet" in done.stdout and not (out / "_SUCCESS").exists()


def test_without_the_clusters_token_submission_is_refused_with_exit_2(head):
    done = submit(head, "--", "--output", str(head.root / "never"), env={"RAY_AUTH_MODE": "disabled"})
    assert done.returncode == 2 and "could not submit" in done.stdout and "token" in done.stdout


def test_plain_ray_job_submit_runs_the_evaluate_job_too(head):
    out = head.root / "plain-out"
    done = head.run([RAY_CLI, "job", "submit", "--address", head.dashboard, "--working-dir", str(ROOT), "--",
                     "python", "-m", "jobs.evaluate", "--address", "auto", "--limit", "50", "--output", str(out)],
                    timeout=240)
    assert done.returncode == 0, done.stdout[-4000:]
    assert json.loads((out / "metrics.json").read_text())["rows"] == 50 and (out / "_SUCCESS").exists()


def test_bad_evaluate_options_fail_with_exit_2_before_anything_is_submitted(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--address", "http://127.0.0.1:9", "--", "--batch-size", "many"])
    assert stopped.value.code == 2 and "--batch-size" in capsys.readouterr().err


def test_the_entrypoint_reserves_no_cpu_by_default():
    assert build_parser().parse_args([]).entrypoint_num_cpus == 0


@pytest.mark.parametrize("path, directory", [(".git", True), ("cluster/__pycache__", True), ("eval-output", True),
                                             ("bench/data", True), ("evalpipe.egg-info", True), ("x.pyc", False)])
def test_caches_outputs_and_vcs_data_are_not_shipped(path, directory):
    assert _excluded(path, EXCLUDES, directory)


@pytest.mark.parametrize("path", ["zoo/data/digits/test.parquet", "zoo/weights/convnet.safetensors", "jobs/submit.py"])
def test_the_bundled_data_weights_and_code_are_shipped(path):
    assert not _excluded(path, EXCLUDES, directory=False)


def runtime_env(*args: str) -> dict:
    from jobs.submit import _runtime_env
    return _runtime_env(build_parser().parse_args(list(args)))


def test_a_working_dir_inside_the_checkout_ships_the_project_without_extra_modules():
    env = runtime_env("--working-dir", str(ROOT))
    assert env["working_dir"] == str(ROOT) and "py_modules" not in env


def test_a_working_dir_without_the_project_gets_its_packages_as_py_modules(tmp_path):
    env = runtime_env("--working-dir", str(tmp_path))
    assert sorted(Path(m).name for m in env["py_modules"]) == sorted(PACKAGES)


def test_files_over_the_size_limit_are_left_out_by_name(tmp_path, monkeypatch):
    monkeypatch.setattr("jobs.submit.LARGE_FILE_BYTES", 10)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.parquet").write_bytes(b"x" * 11)
    (tmp_path / "small.py").write_bytes(b"x" * 10)
    excludes = runtime_env("--working-dir", str(tmp_path))["excludes"]
    assert "/data/big.parquet" in excludes and not any("small" in e for e in excludes)


def test_env_copies_a_named_variable_or_sets_a_given_value(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    env = runtime_env("--env", "AWS_ENDPOINT_URL", "--env", "AWS_REGION=eu-west-1")
    assert env["env_vars"] == {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_REGION": "eu-west-1"}


def test_credentials_in_uris_reach_the_job_through_its_environment_never_its_entrypoint(head):
    from s3_endpoint import S3, SECRET
    with S3.serving() as s3:
        s3.put("digits/test.parquet", zoo.DIGITS_TEST)
        out = head.root / "secret-out"
        done = submit(head, "--submission-id", "secret", "--", "--data", s3.uri("digits/"),
                      f"--output={out}", "--label", "label", "--id", "id")
        entrypoint = job_info(head, "secret").entrypoint
    assert done.returncode == 0, done.stdout[-4000:]
    assert SECRET not in entrypoint and "s3://evalpipe/digits/" in entrypoint
    assert "AWS_SECRET_ACCESS_KEY" in done.stdout and SECRET not in done.stdout  # (stdout holds stderr too)
    assert json.loads((out / "metrics.json").read_text())["rows"] == DIGITS_ROWS
    assert not [p for p in out.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
