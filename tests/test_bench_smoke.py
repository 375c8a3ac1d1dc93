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
TARGET_NAMES = {
    "mlp_b512_throughput_vs_torch", "mlp_b4096_throughput_vs_torch", "mlp_b4096_fraction_of_blas_peak",
    "add_no_grad_time_vs_torch", "add_grad_time_vs_torch", "saved_bytes_no_grad", "mlp_outputs_agree",
    "zoo_convnet_b256_throughput_vs_torch", "zoo_convnet_b4096_throughput_vs_torch",
    "convnet_3x32x32_b256_throughput_vs_torch", "conv_outputs_max_abs_diff",
    "mlp_train_b512_throughput_vs_torch", "mlp_train_loss_max_rel_diff",
}


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
                           "saved_for_backward", "conv", "train", "targets", "all_pass"}
    assert set(record["machine"]) >= {"cpu", "numpy_blas", "openblas_env", "versions"}
    assert record["quick"] is True and record["threads"] == 1


def test_mlp_is_measured_at_batches_64_512_and_4096(record):
    assert [row["batch"] for row in record["mlp"]] == [64, 512, 4096]
    for row in record["mlp"]:
        assert row["engine_rows_per_s"] > 0 and row["torch_rows_per_s"] > 0


def test_add_overhead_is_measured_with_and_without_grad(record):
    for mode in ("no_grad", "grad"):
        assert set(record["add_4"][mode]) == {"torch_ns", "engine_ns", "time_vs_torch"}


def test_conv_models_are_measured_on_digits_at_256_and_4096_and_on_3x32x32_at_256(record):
    measured = [(row["model"], row["input"], row["batch"]) for row in record["conv"]]
    assert measured == [("zoo_convnet", [1, 8, 8], 256), ("zoo_convnet", [1, 8, 8], 4096),
                        ("convnet_3x32x32", [3, 32, 32], 256)]
    for row in record["conv"]:
        assert row["engine_rows_per_s"] > 0 and row["torch_rows_per_s"] > 0


def test_training_step_is_measured_at_batch_512_with_both_losses_per_step(record):
    train = record["train"]
    assert train["batch"] == 512
    assert train["engine_steps_per_s"] > 0 and train["torch_steps_per_s"] > 0
    assert len(train["losses"]["engine"]) == len(train["losses"]["torch"]) == 2


def test_targets_are_the_documented_ones(record):
    assert set(record["targets"]) == TARGET_NAMES


def test_every_target_has_a_value_a_limit_and_a_verdict(record):
    assert record["targets"]
    for verdict in record["targets"].values():
        assert set(verdict) == {"value", "op", "limit", "pass"} and isinstance(verdict["pass"], bool)


def test_engine_and_torch_mlps_compute_the_same_outputs(record):
    assert record["targets"]["mlp_outputs_agree"]["pass"]


def test_engine_and_torch_convnets_compute_the_same_outputs(record):
    assert record["targets"]["conv_outputs_max_abs_diff"]["pass"]


def test_engine_and_torch_training_steps_give_the_same_losses(record):
    assert record["targets"]["mlp_train_loss_max_rel_diff"]["pass"]


def test_no_grad_forward_saves_nothing_and_grad_forward_saves_something(record):
    saved = record["saved_for_backward"]
    assert saved["engine_no_grad"] == 0
    assert saved["engine_grad"] > 0
