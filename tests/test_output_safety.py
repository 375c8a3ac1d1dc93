"""The output is the user's disk: never delete what this project did not write, one driver at a time, resume safely."""

import json
import os
import socket

import pyarrow.parquet as pq
import pytest
from conftest import feature_table, write_parquet

import cluster
from cluster.errors import InputError
from cluster.lease import LEASE, LEASE_TTL_S, Lease
from cluster.outputs import MARKER, Output
from jobs.evaluate import main


def run(data, out, **options):
    options.setdefault("label", "label")
    options.setdefault("workers", 1)
    return cluster.evaluate([str(data)], options.pop("model", "fixture_models:mlp"), str(out), **options)


def snapshot(directory):
    """Every file under a directory with its bytes."""
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_overwrite_refuses_a_directory_this_project_did_not_write(dataset, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(InputError, match="holds files this project did not write.*refusing to delete"):
        run(dataset, mine, overwrite=True)
    assert snapshot(mine) == {mine.joinpath("thesis.tex").relative_to(mine): b"years of work"}


def test_overwrite_of_the_current_directory_deletes_nothing(dataset, tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("keep me")
    cwd = os.getcwd()
    os.chdir(home)
    try:
        assert main(["--data", str(dataset), "--model", "fixture_models:mlp", "--output", ".", "--overwrite"]) == 2
    finally:
        os.chdir(cwd)
    assert "did not write" in capsys.readouterr().err
    assert (home / "notes.txt").read_text() == "keep me" and (dataset / "part-0.parquet").exists()


@pytest.mark.parametrize("where", ["the data directory", "inside it", "its parent"])
def test_an_output_overlapping_the_inputs_is_refused_before_anything_is_touched(dataset, tmp_path, where):
    output = {"the data directory": dataset, "inside it": dataset / "out", "its parent": dataset.parent}[where]
    before = snapshot(tmp_path)
    for overwrite in (False, True):
        with pytest.raises(InputError, match="overlaps input"):
            run(dataset, output, overwrite=overwrite)
    assert snapshot(tmp_path) == before


@pytest.mark.usefixtures("ray_cluster")
def test_overwrite_deletes_only_this_projects_files_and_the_marker_first(dataset, tmp_path, monkeypatch):
    out = tmp_path / "out"
    run(dataset, out)
    (out / "README.txt").write_text("my notes about this run")
    deleted = []
    real_delete = cluster.storage.delete
    monkeypatch.setattr(cluster.storage, "delete", lambda location: (deleted.append(location), real_delete(location)))
    Output(str(out)).clear()
    assert deleted[0] == str(out / MARKER)
    assert [p.name for p in out.rglob("*") if p.is_file()] == ["README.txt"]


@pytest.mark.usefixtures("ray_cluster")
def test_resuming_a_finished_run_reports_it_and_changes_nothing(dataset, tmp_path):
    first = run(dataset, tmp_path / "out", shard_rows=100)
    before = snapshot(tmp_path / "out")
    again = run(dataset, tmp_path / "out", shard_rows=100, resume=True)
    assert again.already_finished and again.metrics == first.metrics
    assert again.workers.equals(first.workers)
    assert snapshot(tmp_path / "out") == before


@pytest.mark.usefixtures("ray_cluster")
def test_a_partial_resume_reports_throughput_over_the_rows_it_evaluated(dataset, tmp_path):
    out = tmp_path / "out"
    run(dataset, out, shard_rows=100)
    (out / MARKER).unlink()
    redo = sorted((out / "predictions").glob("part-*.parquet"))[:3]
    redo_rows = sum(pq.read_metadata(p).num_rows for p in redo)
    for p in redo:
        p.unlink()
    resumed = run(dataset, out, shard_rows=100, resume=True)
    runs = resumed.metrics["runs"]
    assert [r["run"] for r in runs] == [0, 1] and runs[1]["rows"] == redo_rows
    assert runs[0]["rows"] + runs[1]["rows"] == resumed.metrics["rows"] == 720
    assert resumed.metrics["rows_per_s"] == pytest.approx(redo_rows / resumed.metrics["wall_s"])
    job = json.loads((out / "job.json").read_text())
    assert [r["run"] for r in job["runs"]] == [0, 1] and "finished" in job["runs"][1]
    assert set(resumed.workers.column("run").to_pylist()) == {0, 1}


def test_a_second_driver_is_refused_naming_the_first(dataset, tmp_path):
    with Lease(str(tmp_path / "out")):  # a live driver of this very process holds the output
        with pytest.raises(InputError, match=rf"in use by another driver \(pid {os.getpid()} on "
                                             rf"{socket.gethostname()}"):
            run(dataset, tmp_path / "out")
    assert not (tmp_path / "out" / LEASE).exists()  # released


def test_a_lease_held_by_another_running_driver_process_refuses_the_cli(dataset, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / LEASE).write_text(json.dumps({"owner": "x", "host": socket.gethostname(), "pid": 1,
                                                       "heartbeat": __import__("time").time()}))
    code = main(["--data", str(dataset), "--model", "fixture_models:mlp", "--output", str(tmp_path / "out")])
    assert code == 2 and "in use by another driver (pid 1" in capsys.readouterr().err


@pytest.mark.parametrize("holder", ["a heartbeat older than the lease time", "a driver process that is gone"])
def test_a_stale_lease_is_taken_over(tmp_path, holder):
    import subprocess
    import sys
    import time
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = {"owner": "old", "host": socket.gethostname(), "pid": os.getpid(),
             "heartbeat": time.time() - LEASE_TTL_S - 1}
    if holder == "a driver process that is gone":
        stale.update(pid=int(gone.stdout), heartbeat=time.time())
    (tmp_path / LEASE).write_text(json.dumps(stale))
    with Lease(str(tmp_path)) as lease:
        assert json.loads((tmp_path / LEASE).read_text())["owner"] == lease.owner
    assert not (tmp_path / LEASE).exists()


@pytest.mark.usefixtures("ray_cluster")
def test_resume_refuses_data_regenerated_under_the_same_name(tmp_path):
    data = write_parquet(tmp_path / "d" / "a.parquet", feature_table(300, seed=1))
    run(data, tmp_path / "out", shard_rows=100)
    (tmp_path / "out" / MARKER).unlink()
    write_parquet(data, feature_table(300, seed=2))  # same name, same size, new rows
    os.utime(data, ns=(0, 10**9))
    with pytest.raises(InputError, match="different configuration or different data"):
        run(data, tmp_path / "out", shard_rows=100, resume=True)
