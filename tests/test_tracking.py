"""--mlflow: a run logged to a real MLflow tracking server, started here on 127.0.0.1 with a SQLite store.

What the server holds is read back through MlflowClient: the configuration as params, every metric
with its interval, and the output's small files with report.html as artifacts.
"""

import importlib.metadata
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from synthetic_output import write_synthetic_output

from cluster import JobConfig, evaluate
from cluster.errors import InputError, JobFailed
from cluster.report import write_report
from cluster.tracking import flatten_metrics, flatten_params, log_run
from jobs.options import parse


def _has_mlflow_server() -> bool:
    try:
        importlib.metadata.version("mlflow")  # the full package: mlflow-skinny has no server
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    """`mlflow server` on a free port of 127.0.0.1, SQLite store and artifacts in a temporary folder; stopped after."""
    if not _has_mlflow_server():  # (a skip fails CI: tests/no_skips.py)
        pytest.skip("needs MLflow's server: pip install -e '.[tracking,tracking-server]' (CI installs it)")
    root = tmp_path_factory.mktemp("mlflow")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "art")]
    log = open(root / "server.log", "wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(uri, server, root / "server.log")
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # its own session: the server and the workers it started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _wait_healthy(uri: str, server: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow server did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def client(mlflow_uri):
    from mlflow.tracking import MlflowClient
    return MlflowClient(tracking_uri=mlflow_uri)


@pytest.fixture(scope="module")
def logged(mlflow_uri, client, tmp_path_factory) -> dict:
    """A two-model output with slices, its report, logged with a configuration whose locations hold credentials."""
    out = write_synthetic_output(tmp_path_factory.mktemp("tracked") / "out")
    write_report(str(out))
    config = JobConfig(data="s3://AKIAKEY:SECRET-1@bucket/test/*.parquet", model="mlp", top_k=3,
                       output="s3://bucket/runs/1?secret_key=SECRET-2", mlflow="http://me:SECRET-3@127.0.0.1:5000")
    metrics = json.loads((out / "metrics.json").read_text())
    run_id = log_run(mlflow_uri, str(out), config.record(), metrics)
    return {"out": out, "config": config, "metrics": metrics, "run": client.get_run(run_id)}


def test_the_configuration_is_logged_as_params(logged):
    params = logged["run"].data.params
    assert params == flatten_params(logged["config"].record())
    assert params["model"] == "mlp" and params["top_k"] == "3" and params["batch_size"] == "1024"


def test_credentials_in_the_configuration_never_reach_the_server(logged):
    run = logged["run"]
    logged_text = json.dumps([run.data.params, run.data.tags])
    assert not any(secret in logged_text for secret in ("SECRET-1", "SECRET-2", "SECRET-3", "AKIAKEY"))
    assert run.data.params["data"] == "s3://***@bucket/test/*.parquet"


def test_every_metric_is_logged_with_its_interval(logged):
    logged_metrics, metrics = logged["run"].data.metrics, logged["metrics"]
    assert logged_metrics == pytest.approx(flatten_metrics(metrics))
    convnet = metrics["models"]["convnet"]
    assert logged_metrics["convnet.accuracy"] == pytest.approx(convnet["accuracy"])
    assert [logged_metrics["convnet.accuracy_lo"], logged_metrics["convnet.accuracy_hi"]] == pytest.approx(
        convnet["ci"]["accuracy"])
    assert logged_metrics["convnet.calibration.ece"] == pytest.approx(convnet["calibration"]["ece"])
    assert logged_metrics["mlp.slices.source.rare.accuracy_lo"] == pytest.approx(
        metrics["models"]["mlp"]["slices"]["source"][3]["accuracy_ci"][0])
    comparison = metrics["comparisons"][0]
    assert logged_metrics["comparisons.convnet_vs_mlp.accuracy_diff_hi"] == pytest.approx(
        comparison["accuracy_diff_ci"][1])
    assert logged_metrics["comparisons.convnet_vs_mlp.mcnemar_p"] == pytest.approx(comparison["mcnemar_p"])


def test_the_outputs_small_files_and_the_report_are_logged_as_artifacts(logged, client, tmp_path):
    run_id = logged["run"].info.run_id
    assert {a.path for a in client.list_artifacts(run_id)} == {"metrics.json", "job.json", "workers.parquet",
                                                               "shards.parquet", "report.html"}
    copy = client.download_artifacts(run_id, "report.html", str(tmp_path))
    assert Path(copy).read_bytes() == (logged["out"] / "report.html").read_bytes()


def test_a_job_with_mlflow_logs_its_run_when_it_finishes(ray_cluster, mlflow_uri, client, tmp_path):
    result = evaluate(output=str(tmp_path / "digits"), mlflow=mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("evalpipe").experiment_id],
                              filter_string=f"tags.`evalpipe.output` = '{result.output}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert "report.html" in {a.path for a in client.list_artifacts(runs[0].info.run_id)}


def test_an_unreachable_server_fails_the_job_naming_it_and_leaves_the_outputs(tmp_path, monkeypatch, mlflow_uri):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    out = write_synthetic_output(tmp_path / "out")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(JobFailed, match=f"could not log the run to MLflow at {closed}.*are complete"):
        log_run(closed, str(out), {"model": "m"}, {"accuracy": 0.5})
    assert (out / "_SUCCESS").exists()


def test_without_a_uri_nothing_is_logged(tmp_path):
    assert log_run(None, str(tmp_path), {"model": "m"}, {"accuracy": 0.5}) is None


def test_a_missing_mlflow_package_is_an_input_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(InputError, match=r"pip install 'evalpipe\[tracking\]'"):
        JobConfig(mlflow="http://127.0.0.1:5000")


def test_the_mlflow_flag_sets_the_option():
    config, _ = parse(["--mlflow", "http://127.0.0.1:5000"])
    assert config.mlflow == "http://127.0.0.1:5000"
