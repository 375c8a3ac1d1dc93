"""Data and outputs on S3: a real S3 endpoint (moto's server) on 127.0.0.1, read and written through pyarrow.fs.

Two ways to point at the endpoint, both tested: options in the URI (s3://key:secret@bucket/path?endpoint_override=...)
for a Ray that is already running, and the standard AWS_* environment variables for the job's command line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import feature_table
from private_ray import ROOT, PrivateRay, end_session, interruptible
from s3_endpoint import BUCKET, S3, SECRET

import cluster
import zoo
from cluster import storage
from cluster.outputs import SUMMARY_KEY

SLOW_ROWS, SLOW_SHARD_ROWS = 600, 50


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on a free loopback port, with one bucket; stopped at the end of the module."""
    with S3.serving() as endpoint:
        yield endpoint


def test_atomic_output_publishes_the_complete_object(s3):
    with storage.atomic_output(s3.uri("atomic/complete.bin")) as stream:
        stream.write(b"every byte")
    with s3.fs.open_input_stream(f"{BUCKET}/atomic/complete.bin") as f:
        assert f.read() == b"every byte"


def test_an_exception_inside_atomic_output_publishes_nothing(s3):
    with pytest.raises(RuntimeError, match="writer failed"):
        with storage.atomic_output(s3.uri("atomic/failed.bin")) as stream:
            stream.write(b"half of it")
            raise RuntimeError("writer failed")
    assert "atomic/failed.bin" not in s3.keys("atomic/")


def test_child_locations_keep_the_uri_options_at_the_end():
    location = "s3://bucket/runs/1?endpoint_override=127.0.0.1:9000&scheme=http"
    assert storage.join(location, "predictions", "part-000000.parquet") == (
        "s3://bucket/runs/1/predictions/part-000000.parquet?endpoint_override=127.0.0.1:9000&scheme=http")


def test_listing_a_prefix_keeps_the_uri_options_on_every_file(s3):
    s3.put("listing/a.parquet", zoo.DIGITS_TEST)
    s3.put("listing/b.parquet", zoo.DIGITS_TEST)
    files = storage.list_inputs([s3.uri("listing/")])
    assert [f.location for f in files] == [s3.uri("listing/a.parquet"), s3.uri("listing/b.parquet")]


@pytest.mark.usefixtures("ray_cluster")
def test_evaluation_reads_from_and_writes_to_s3(s3):
    s3.put("digits/test.parquet", zoo.DIGITS_TEST)
    output = s3.uri("runs/digits")
    result = cluster.evaluate([s3.uri("digits/")], "convnet", output, weights=str(zoo.WEIGHTS["convnet"]),
                              label="label", id="id", input_shape=(1, 8, 8), shard_rows=128, workers=2)
    assert "runs/digits/_SUCCESS" in s3.keys("runs/digits/")
    fs, path = storage.resolve(storage.join(output, "predictions"))
    predictions = ds.dataset(path, filesystem=fs, format="parquet").to_table()
    expected = pq.read_table(zoo.DIGITS_TEST, columns=["id", "label"])
    assert sorted(predictions.column("row_id").to_pylist()) == sorted(expected.column("id").to_pylist())
    correct = np.mean(predictions.column("prediction").to_numpy() == predictions.column("label").to_numpy())
    with fs.open_input_stream(storage.resolve(storage.join(output, "metrics.json"))[1]) as f:
        metrics = json.loads(f.read())
    assert metrics["rows"] == result.metrics["rows"] == expected.num_rows
    assert metrics["accuracy"] == pytest.approx(correct) and correct > 0.9


def evaluate_command(s3_bucket_uri: str, *extra: str) -> list[str]:
    """The job's command line on slow data in S3, configured by AWS_* variables alone."""
    return [sys.executable, "-m", "jobs.evaluate", "--data", f"{s3_bucket_uri}/slow/", "--model", "fixture_models:slow",
            "--label", "label", "--output", f"{s3_bucket_uri}/runs/interrupted", "--shard-rows", str(SLOW_SHARD_ROWS),
            "--batch-size", str(SLOW_SHARD_ROWS), "--workers", "1", *extra]


@pytest.fixture(scope="module")
def interrupted(s3, tmp_path_factory):
    """A job on S3 data sent Ctrl-C once its first part file is in the bucket; its exit code."""
    local = tmp_path_factory.mktemp("slow") / "rows.parquet"
    pq.write_table(feature_table(SLOW_ROWS, seed=5), local, row_group_size=SLOW_SHARD_ROWS)
    s3.put("slow/rows.parquet", local)
    ray_env = PrivateRay()
    process = subprocess.Popen(evaluate_command(f"s3://{BUCKET}"), env={**ray_env.env, **s3.env()}, cwd=ROOT,
                               preexec_fn=interruptible,
                               start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any("/part-" in k for k in s3.keys("runs/interrupted/")) and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[0]
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        end_session(process)
    yield process.returncode, output, ray_env
    ray_env.remove()


def test_an_interrupted_run_exits_130_and_leaves_no_completion_marker(s3, interrupted):
    returncode, output, _ = interrupted
    assert returncode == 130, output[-3000:]
    keys = s3.keys("runs/interrupted/")
    assert "runs/interrupted/_SUCCESS" not in keys and "runs/interrupted/job.json" in keys


def test_an_interrupted_run_leaves_only_complete_part_files(s3, interrupted):
    parts = s3.keys("runs/interrupted/predictions/")
    assert 1 <= len(parts) < SLOW_ROWS // SLOW_SHARD_ROWS
    for key in parts:
        with s3.fs.open_input_file(f"{BUCKET}/{key}") as f:
            footer = pq.ParquetFile(f).metadata
        assert footer.num_rows == SLOW_SHARD_ROWS and SUMMARY_KEY.encode() in footer.metadata


def test_resuming_an_interrupted_run_on_s3_evaluates_every_row_exactly_once(s3, interrupted):
    _, _, ray_env = interrupted
    before = len([k for k in s3.keys("runs/interrupted/predictions/") if k.rsplit("/", 1)[-1].startswith("part-")])
    done = ray_env.run(evaluate_command(f"s3://{BUCKET}", "--resume"), env=s3.env(), timeout=240)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "runs/interrupted/_SUCCESS" in s3.keys("runs/interrupted/")
    predictions = ds.dataset(f"{BUCKET}/runs/interrupted/predictions", filesystem=s3.fs, format="parquet")
    assert sorted(predictions.to_table().column("row_id").to_pylist()) == list(range(SLOW_ROWS))
    with s3.fs.open_input_file(f"{BUCKET}/runs/interrupted/shards.parquet") as f:
        reused = pq.read_table(f).column("run").to_pylist().count(0)
    assert reused == before
    assert not [k for k in s3.keys("runs/interrupted/predictions/") if not k.rsplit("/", 1)[-1].startswith("part-")]


def test_no_credential_reaches_a_record_a_message_or_an_output(s3):
    s3.put("secret/digits/test.parquet", zoo.DIGITS_TEST)
    s3.put("secret/convnet.safetensors", zoo.WEIGHTS["convnet"])
    ray_env = PrivateRay()
    try:
        done = ray_env.run([sys.executable, "-m", "jobs.evaluate", "--data", s3.uri("secret/digits/"),
                            "--weights", s3.uri("secret/convnet.safetensors"), "--output", s3.uri("secret/run"),
                            "--label", "label", "--id", "id"], timeout=240)
        failed = ray_env.run([sys.executable, "-m", "jobs.evaluate", "--data", s3.uri("secret/digits/"),
                              "--weights", s3.uri("secret/missing.safetensors"), "--output", s3.uri("secret/run2")],
                             timeout=240)
    finally:
        ray_env.remove()
    assert done.returncode == 0, done.stdout[-3000:]
    assert failed.returncode == 2 and "missing.safetensors" in failed.stdout  # (stdout holds stderr too)
    written = s3.keys("secret/run/")
    assert "secret/run/_SUCCESS" in written and "secret/run/job.json" in written
    seen = [done.stdout, failed.stdout, *(s3.read(k).decode("latin-1") for k in written)]
    assert not [text for text in seen if SECRET in text]
    assert "***@" in s3.read("secret/run/job.json").decode()
