"""The benchmark's --quick run: one parseable JSON line holding every figure and a verdict per target."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the benchmark compares against PyTorch (pip install '.[parity]')")
pytest.importorskip("threadpoolctl", reason="the benchmark pins BLAS threads with threadpoolctl")

pytestmark = pytest.mark.parity
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def stdout() -> str:
    done = subprocess.run([sys.executable, "bench/engine_vs_torch.py", "--quick", "--no-record"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def record(stdout: str) -> dict:
    return json.loads(stdout)


def test_quick_run_prints_exactly_one_json_line(stdout):
    assert len(stdout.strip().splitlines()) == 1
    assert isinstance(json.loads(stdout), dict)


def test_record_holds_every_figure_and_the_machine(record):
    assert set(record) >= {"date", "command", "quick", "threads", "machine", "blas_peak", "mlp", "add_4",
                           "saved_for_backward", "targets", "all_pass"}
    assert set(record["machine"]) >= {"cpu", "numpy_blas", "openblas_env", "versions"}
    assert record["quick"] is True and record["threads"] == 1


def test_mlp_is_measured_at_batches_64_512_and_4096(record):
    assert [row["batch"] for row in record["mlp"]] == [64, 512, 4096]
    for row in record["mlp"]:
        assert row["engine_rows_per_s"] > 0 and row["torch_rows_per_s"] > 0


def test_add_overhead_is_measured_with_and_without_grad(record):
    for mode in ("no_grad", "grad"):
        assert set(record["add_4"][mode]) == {"torch_ns", "engine_ns", "time_vs_torch"}


def test_every_target_has_a_value_a_limit_and_a_verdict(record):
    assert record["targets"]
    for verdict in record["targets"].values():
        assert set(verdict) == {"value", "op", "limit", "pass"} and isinstance(verdict["pass"], bool)


def test_engine_and_torch_mlps_compute_the_same_outputs(record):
    assert record["targets"]["mlp_outputs_agree"]["pass"]


def test_no_grad_forward_saves_nothing_and_grad_forward_saves_something(record):
    saved = record["saved_for_backward"]
    assert saved["engine_no_grad"] == 0
    assert saved["engine_grad"] > 0
