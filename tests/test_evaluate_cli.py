"""`python -m jobs.evaluate` end to end on a real local Ray: defaults, options, outputs, exit codes, resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import feature_table, write_parquet
from private_ray import interruptible

import zoo
from jobs.evaluate import main
from jobs.options import build_parser

ROOT = Path(__file__).parent.parent


def cli(tmp_path, *args, **kwargs) -> subprocess.CompletedProcess:
    """The job as a user runs it: its own process, its own local Ray, cwd in tmp_path."""
    return subprocess.run([sys.executable, "-m", "jobs.evaluate", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, **kwargs)


def read_outputs(out: Path):
    predictions = ds.dataset(out / "predictions").to_table()
    return predictions, json.loads((out / "metrics.json").read_text())


def test_the_default_command_evaluates_the_bundled_convnet_on_the_bundled_digits(tmp_path):
    done = cli(tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "eval-output"
    predictions, metrics = read_outputs(out)
    test_rows = pq.read_metadata(zoo.DIGITS_TEST).num_rows
    assert predictions.num_rows == metrics["rows"] == test_rows
    ids = predictions.column("row_id").to_pylist()
    assert len(set(ids)) == test_rows
    assert sorted(ids) == sorted(pq.read_table(zoo.DIGITS_TEST, columns=["id"]).column("id").to_pylist())
    assert metrics["accuracy"] >= 0.98
    assert "accuracy" in done.stdout and "Workers:" in done.stdout and "eval-output" in done.stdout
    assert {p.name for p in out.iterdir()} == {"predictions", "workers.parquet", "shards.parquet", "metrics.json",
                                              "job.json", "report.html", "_SUCCESS"}
    job = json.loads((out / "job.json").read_text())
    assert job["config"]["model"] == "convnet" and {"ray", "numpy", "pyarrow", "project"} <= set(job["versions"])
    assert "progress:" in done.stderr  # not a terminal: plain progress lines

    again = cli(tmp_path)
    assert again.returncode == 2 and "already holds a finished run" in again.stderr
    assert "Traceback" not in again.stderr


def test_metrics_equal_metrics_recomputed_from_the_predictions(tmp_path, ray_cluster):
    assert main(["--output", str(tmp_path / "o"), "--model", "mlp", "--shard-rows", "128"]) == 0
    predictions, metrics = read_outputs(tmp_path / "o")
    labels = np.array(predictions.column("label").to_pylist())
    predicted = np.array(predictions.column("prediction").to_pylist())
    assert metrics["accuracy"] == pytest.approx((labels == predicted).mean())
    matrix = np.zeros((10, 10), int)
    np.add.at(matrix, (labels, predicted), 1)
    assert metrics["confusion_matrix"] == matrix.tolist()
    assert [c["support"] for c in metrics["per_class"]] == np.bincount(labels, minlength=10).tolist()


def test_top_k_and_scores_are_written_when_asked(tmp_path, ray_cluster):
    assert main(["--output", str(tmp_path / "o"), "--top-k", "3", "--save-scores"]) == 0
    predictions, metrics = read_outputs(tmp_path / "o")
    assert predictions.schema.names == ["row_id", "label", "prediction", "topk", "scores"]
    topk = np.stack(predictions.column("topk").to_numpy(zero_copy_only=False))
    assert topk.shape == (predictions.num_rows, 3)
    assert (topk[:, 0] == np.array(predictions.column("prediction").to_pylist())).all()
    assert metrics["top_k_accuracy"] >= metrics["accuracy"] and metrics["top_k"] == 3


def test_limit_grad_mode_and_workers(tmp_path, ray_cluster):
    assert main(["--output", str(tmp_path / "o"), "--limit", "100", "--grad-mode", "enabled", "--workers", "1"]) == 0
    predictions, metrics = read_outputs(tmp_path / "o")
    assert predictions.num_rows == metrics["rows"] == 100
    workers = pq.read_table(tmp_path / "o" / "workers.parquet").to_pylist()
    assert len(workers) == 1 and workers[0]["grad_mode"] == "enabled" and workers[0]["engine_saved_peak_bytes"] > 0


def test_regression_and_raw_tasks_on_scalar_feature_columns(tmp_path, ray_cluster):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 8)).astype(np.float32)
    table = pa.table({f"x{i}": x[:, i] for i in range(8)} | {"y": x.sum(1)})
    pq.write_table(table, tmp_path / "r.parquet")
    common = ["--data", str(tmp_path / "r.parquet"), "--model", "fixture_models:regressor",
              "--features", ",".join(f"x{i}" for i in range(8))]
    assert main([*common, "--task", "regression", "--label", "y", "--output", str(tmp_path / "reg")]) == 0
    predictions, metrics = read_outputs(tmp_path / "reg")
    assert predictions.schema.field("prediction").type == pa.float32()
    assert {"mse", "mae", "r2"} <= set(metrics)
    y, p = np.array(predictions.column("label").to_pylist()), np.array(predictions.column("prediction").to_pylist())
    assert metrics["mse"] == pytest.approx(((p - y) ** 2).mean(), rel=1e-5)
    assert main([*common, "--task", "raw", "--output", str(tmp_path / "raw")]) == 0
    raw, metrics = read_outputs(tmp_path / "raw")
    assert raw.schema.field("prediction").type.shape == [1] and metrics["rows"] == 200  # a fixed_shape_tensor


def test_toml_job_file_and_flags_winning_over_it(tmp_path, ray_cluster):
    config = tmp_path / "job.toml"
    config.write_text(f'model = "mlp"\nlimit = 50\ntop-k = 2\noutput = "{tmp_path / "o"}"\n')
    assert main(["--config", str(config), "--limit", "20"]) == 0
    predictions, metrics = read_outputs(tmp_path / "o")
    assert predictions.num_rows == 20 and metrics["top_k"] == 2
    assert json.loads((tmp_path / "o" / "job.json").read_text())["config"]["model"] == "mlp"


def test_an_unknown_key_in_the_job_file_is_a_usage_error(tmp_path, capsys):
    config = tmp_path / "job.toml"
    config.write_text('modle = "mlp"\n')
    assert main(["--config", str(config)]) == 2
    assert "unknown option 'modle'" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--data", "missing.parquet"], "input not found: missing.parquet"),
    (["--data", "nothing-*.parquet"], "no Parquet or Arrow files match"),
    (["--data", "{bad}"], "bad.parquet"),
    (["--data", "{good}", "--label", "nope"], "no column 'nope'; available: features, label"),
    (["--data", "{good}", "--input-shape", "1,3,3"], "8 features per row do not fit input shape 1x3x3"),
    (["--data", "{good}", "--model", "fixture_models:mlp", "--features", "features", "--input-shape", "8",
      "--weights", "{bad}"], "not a valid safetensors file"),
    (["--model", "no_such_module:factory"], "cannot import module 'no_such_module'"),
    (["--model", "resnet9000"], "unknown model 'resnet9000'"),
    (["--batch-size", "0"], "--batch-size must be positive"),
    (["--data", "{good}", "--model", "mlp"], "8 features per row do not fit input shape 64"),
    (["--data", "{good}", "--model", "fixture_models:mlp", "--input-shape", "2,4", "--features", "features"],
     "does not take rows of shape 2x4"),
])
def test_inputs_that_cannot_work_exit_2_with_one_line_naming_the_culprit(tmp_path, capsys, args, message):
    good = write_parquet(tmp_path / "good.parquet", feature_table(20))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    args = [a.format(good=good, bad=tmp_path / "bad.parquet") for a in args]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(args) == 2
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "eval-output" / "_SUCCESS").exists()


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "missing.parquet"), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_a_job_that_fails_exits_1(tmp_path, capsys, ray_cluster):
    table = feature_table(50).set_column(1, "label", pa.array([9] * 50, pa.int64()))
    data = write_parquet(tmp_path / "d.parquet", table)
    code = main(["--data", str(data), "--model", "fixture_models:mlp", "--label", "label",
                 "--output", str(tmp_path / "o")])
    assert code == 1 and "label 9 is out of range" in capsys.readouterr().err
    assert not (tmp_path / "o" / "_SUCCESS").exists()


def test_interrupted_run_exits_130_and_resumes_to_the_uninterrupted_result(tmp_path, ray_cluster):
    data = write_parquet(tmp_path / "d.parquet", feature_table(1200), row_group_size=100)
    common = ["--data", str(data), "--model", "fixture_models:slow", "--label", "label", "--shard-rows", "100",
              "--batch-size", "100", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a test run started in the background
    try:
        job = subprocess.Popen([sys.executable, "-m", "jobs.evaluate", *common, "--output", str(tmp_path / "cut")],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=interruptible)
    finally:
        signal.signal(signal.SIGINT, ignored)
    parts = tmp_path / "cut" / "predictions"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(parts.glob("part-*.parquet")) if parts.exists() else []) < 2:
        time.sleep(0.2)
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 130, err
    assert "--resume" in err and not (tmp_path / "cut" / "_SUCCESS").exists()
    finished_before = len(list(parts.glob("part-*.parquet")))
    assert 2 <= finished_before < 12

    assert main([*common, "--output", str(tmp_path / "cut"), "--resume"]) == 0
    assert main([*common, "--output", str(tmp_path / "whole")]) == 0
    resumed, resumed_metrics = read_outputs(tmp_path / "cut")
    whole, whole_metrics = read_outputs(tmp_path / "whole")
    assert resumed.sort_by("row_id").equals(whole.sort_by("row_id"))
    assert resumed_metrics["accuracy"] == whole_metrics["accuracy"] and resumed_metrics["rows"] == 1200


def test_help_explains_every_option_in_a_line():
    text = build_parser().format_help()
    for option in ("--data", "--model", "--weights", "--features", "--label", "--id", "--input-shape", "--task",
                   "--batch-size", "--workers", "--cpus-per-worker", "--shard-rows", "--max-attempts", "--grad-mode",
                   "--top-k", "--save-scores", "--output", "--resume", "--overwrite", "--address", "--limit",
                   "--debug", "--config", "--compare-grad-modes"):
        assert option in text


def test_compare_grad_modes_prints_the_three_side_by_side(capsys):
    assert main(["--compare-grad-modes", "--limit", "64"]) == 0
    out = capsys.readouterr().out
    assert all(mode in out for mode in ("enabled", "no_grad", "inference_mode"))
