"""Every row exactly once when a worker is only unreachable, a shard stalls, storage hiccups or no worker fits."""

import os
import socket
import threading
import time

import numpy as np
import psutil
import pyarrow.dataset as ds
import pytest
from conftest import feature_table, write_parquet

import cluster
from cluster.errors import JobFailed

pytestmark = pytest.mark.usefixtures("ray_cluster")


def run(data, out, **options):
    options.setdefault("label", "label")
    options.setdefault("workers", 2)
    return cluster.evaluate([str(data)], options.pop("model", "fixture_models:mlp"), str(out), **options)


def cut_connections_to(pid: int) -> int:
    """Shut down this process's TCP connections to process `pid`, as a network partition would (it lives on)."""
    theirs = {(c.laddr, c.raddr) for c in psutil.Process(pid).net_connections(kind="inet") if c.raddr}
    cut = 0
    for c in psutil.Process().net_connections(kind="inet"):
        if c.raddr and (c.raddr, c.laddr) in theirs:
            with socket.socket(fileno=os.dup(c.fd)) as s:
                s.shutdown(socket.SHUT_RDWR)
            cut += 1
    return cut


def when_marked(marker, action) -> threading.Thread:
    """Run action(pid) once the Hiccup model has written its worker's pid into the marker."""
    def watch():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = marker.read_text() if marker.exists() else ""
            if text.strip():
                action(int(text))
                return
            time.sleep(0.02)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def assert_exactly_once(result, out, rows):
    parts = sorted(p.name for p in (out / "predictions").iterdir())
    assert parts == [f"part-{i:06d}.parquet" for i in range(result.shards.num_rows)]  # no attempt left behind
    table = ds.dataset(out / "predictions").to_table()
    ids = table.column("row_id").to_pylist()
    assert sorted(ids) == list(range(rows))
    correct = np.mean(table.column("prediction").to_numpy() == table.column("label").to_numpy())
    assert result.metrics["rows"] == rows and result.metrics["accuracy"] == pytest.approx(correct)


def test_an_unreachable_worker_that_comes_back_and_finishes_is_committed_once(tmp_path):
    data = write_parquet(tmp_path / "d" / "a.parquet", feature_table(2400), row_group_size=100)
    marker, cuts = tmp_path / "hiccup", []
    watcher = when_marked(marker, lambda pid: cuts.append(cut_connections_to(pid)))
    result = run(data, tmp_path / "out", model="fixture_models:hiccup", shard_rows=100, batch_size=100,
                 model_kwargs={"marker": str(marker), "seconds": 1.5, "pause": 0.3})
    watcher.join()
    assert cuts and cuts[0] >= 1
    assert (tmp_path / "hiccup.done").exists()  # the unreachable worker did come back and finish its shard
    assert_exactly_once(result, tmp_path / "out", 2400)
    assert max(result.shards.column("attempts").to_pylist()) >= 2
    assert sum(result.workers.column("failures").to_pylist()) >= 1


def test_a_stalled_shard_runs_again_elsewhere_and_the_first_to_finish_wins(tmp_path):
    data = write_parquet(tmp_path / "d" / "a.parquet", feature_table(1200), row_group_size=100)
    started = time.monotonic()
    result = run(data, tmp_path / "out", model="fixture_models:hiccup", shard_rows=100, batch_size=100,
                 model_kwargs={"marker": str(tmp_path / "hiccup"), "seconds": 20.0}, stall_s=1.0, stall_factor=3)
    assert time.monotonic() - started < 20  # nobody waited for the straggler
    shards = result.shards.to_pylist()
    speculative = [s for s in shards if s["speculative"]]
    assert len(speculative) == 1 and speculative[0]["seconds"] < 5  # the copy won
    assert_exactly_once(result, tmp_path / "out", 1200)


def test_transient_storage_errors_are_retried_with_backoff(tmp_path):
    data = write_parquet(tmp_path / "d" / "a.parquet", feature_table(400), row_group_size=100)
    (tmp_path / "flaky").mkdir()
    result = run(data, tmp_path / "out", model="fixture_models:flaky_storage", shard_rows=100, batch_size=100,
                 model_kwargs={"marker_dir": str(tmp_path / "flaky")})
    assert result.shards.column("attempts").to_pylist() == [2, 2, 2, 2]
    assert_exactly_once(result, tmp_path / "out", 400)


def test_transient_errors_still_fail_after_the_attempts(tmp_path):
    data = write_parquet(tmp_path / "d" / "a.parquet", feature_table(100), row_group_size=100)
    (tmp_path / "flaky").mkdir()
    with pytest.raises(JobFailed, match="failed after 1 attempts: connection reset by peer"):
        run(data, tmp_path / "out", model="fixture_models:flaky_storage", max_attempts=1,
            model_kwargs={"marker_dir": str(tmp_path / "flaky")})


def test_a_worker_no_node_can_place_fails_the_job_instead_of_waiting_forever(dataset, tmp_path):
    started = time.monotonic()
    with pytest.raises(JobFailed, match=r"no worker could start within 3 s.*needs 64 CPU\(s\).*largest.*has 2"):
        run(dataset, tmp_path / "out", cpus_per_worker=64, start_timeout_s=3)
    assert time.monotonic() - started < 30


def test_success_is_never_marked_over_a_missing_part(dataset, tmp_path):
    out = tmp_path / "out"

    def lose_the_first_part(record):  # as if it had been written to another node's local disk
        if record.shard.index == 0:
            (out / "predictions" / "part-000000.parquet").unlink()

    with pytest.raises(JobFailed, match="1 committed part file.*missing.*shard 0.*storage every node"):
        cluster.evaluate([str(dataset)], "fixture_models:mlp", str(out), label="label", workers=1,
                         shard_rows=100, on_shard_done=lose_the_first_part)
    assert not (out / "_SUCCESS").exists()


def test_an_attempt_written_where_the_driver_cannot_see_it_fails_with_a_clear_message(dataset, tmp_path, monkeypatch):
    from cluster.outputs import Output
    real_commit = Output.commit

    def elsewhere(self, index, attempt, bad_rows):
        os.remove(self.attempt(index, attempt))  # the driver does not find the worker's file
        return real_commit(self, index, attempt, bad_rows)

    monkeypatch.setattr(Output, "commit", elsewhere)
    with pytest.raises(JobFailed, match=r"shard \d+: worker-\d on .* wrote its part, but it is not at .*storage "
                                        r"every node shares"):
        run(dataset, tmp_path / "out")
    assert not (tmp_path / "out" / "_SUCCESS").exists()
