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
    "transformer_encoder_b16_throughput_vs_torch", "lstm_bidirectional_b32_throughput_vs_torch",
    "seq_outputs_max_abs_diff", "seq_saved_bytes_no_grad", "seq_saved_bytes_grad_vs_torch",
    "resnet18_3x112x112_b16_throughput_vs_torch", "resnet18_3x32x32_b64_throughput_vs_torch",
    "mobilenet_v3_small_3x112x112_b32_throughput_vs_torch", "conv_families_saved_bytes_vs_torch",
    "conv_families_saved_bytes_no_grad",
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
                           "saved_for_backward", "conv", "conv_saved_for_backward", "train", "seq", "targets",
                           "all_pass"}
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
    assert measured[:3] == [("zoo_convnet", [1, 8, 8], 256), ("zoo_convnet", [1, 8, 8], 4096),
                            ("convnet_3x32x32", [3, 32, 32], 256)]


def test_conv_families_are_measured_resnet18_at_two_sizes_and_mobilenet(record):
    measured = [(row["model"], row["input"], row["batch"]) for row in record["conv"]][3:]
    assert measured == [("resnet18_3x112x112", [3, 112, 112], 16), ("resnet18_3x32x32", [3, 32, 32], 64),
                        ("mobilenet_v3_small_3x112x112", [3, 112, 112], 32)]


def test_conv_families_keep_for_backward_at_most_what_torch_keeps_and_nothing_under_no_grad(record):
    rows = record["conv_saved_for_backward"]
    assert [row["model"] for row in rows] == ["resnet18", "mobilenet_v3_small"]
    for row in rows:
        assert 0 < row["engine_grad_distinct"] <= row["torch_grad_distinct"] and row["engine_no_grad"] == 0
    for row in record["conv"]:
        assert row["engine_rows_per_s"] > 0 and row["torch_rows_per_s"] > 0


def test_sequence_models_are_measured_with_their_saved_bytes(record):
    measured = [(row["model"], row["input"], row["batch"]) for row in record["seq"]]
    assert measured == [("transformer_encoder", [128, 256], 16), ("lstm_bidirectional", [64, 256], 32)]
    for row in record["seq"]:
        assert row["engine_rows_per_s"] > 0 and row["torch_rows_per_s"] > 0
        assert set(row["saved_bytes"]) == {"engine_no_grad", "engine_grad", "torch_grad", "engine_grad_vs_torch"}


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


# -- the pipeline studies (bench/vs_raydata.py, bench/scaling.py, bench/memory.py): their --quick runs --------
# Each starts local Rays of its own as subprocesses (about a minute per study on 2 cores).

def quick_record(script: str) -> dict:
    """Run a study with --quick --no-record; its one JSON line, parsed."""
    done = subprocess.run([sys.executable, script, "--quick", "--no-record"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0])


def assert_targets_have_verdicts(record: dict) -> None:
    assert record["targets"]
    for verdict in record["targets"].values():
        assert set(verdict) == {"value", "op", "limit", "pass"} and isinstance(verdict["pass"], bool)
    assert record["all_pass"] == all(v["pass"] for v in record["targets"].values())


@pytest.fixture(scope="module")
def vs_raydata() -> dict:
    pytest.importorskip("ray.data", reason="bench/vs_raydata.py compares against Ray Data (pip install 'ray[data]')")
    return quick_record("bench/vs_raydata.py")


@pytest.fixture(scope="module")
def scaling() -> dict:
    return quick_record("bench/scaling.py")


@pytest.fixture(scope="module")
def memory() -> dict:
    return quick_record("bench/memory.py")


def test_vs_raydata_times_every_contender_on_both_sets(vs_raydata):
    assert vs_raydata["study"] == "vs_raydata" and vs_raydata["quick"] is True
    assert set(vs_raydata["contenders"]) == {"pipeline/1", "pipeline_no_ci/1", "ray_data_engine/1",
                                             "ray_data_torch/1", "plain/1", "plain_kept_memory/1"}
    for figures in vs_raydata["contenders"].values():
        assert figures["fixed_s"] > 0 and figures["large_s"] > 0 and figures["steady_rows_per_s"] > 0
        assert set(figures["runs"]) == {"tiny", "large"}


def test_vs_raydata_checks_the_issues_targets(vs_raydata):
    assert_targets_have_verdicts(vs_raydata)
    assert {"steady_vs_ray_data_engine_1_actors", "steady_vs_1x_plain_loop_1_actors",
            "fixed_cost_vs_ray_data_engine_1_actors", "issue4_one_actor_vs_plain_loop",
            "no_ci_steady_vs_ray_data_engine_1_actors", "no_ci_issue4_one_actor_vs_plain_loop_traced"} \
        <= set(vs_raydata["targets"])
    assert {"intervals_cost_1_actors", "pipeline_no_ci_vs_ray_data_torch_1_actors"} <= set(vs_raydata["ratios"])


def test_vs_raydata_leaves_no_process_behind(vs_raydata):
    for figures in vs_raydata["contenders"].values():
        assert all(run["leftovers"] == 0 for runs in figures["runs"].values() for run in runs)


def test_scaling_measures_both_actor_counts_and_the_driver(scaling):
    assert set(scaling["steady"]) == {"1", "2"}
    assert scaling["driver"]["extra_shards"] > 0 and scaling["driver"]["capacity_shards_per_s"] > 0
    assert_targets_have_verdicts(scaling)


def test_scaling_projects_to_many_nodes(scaling):
    table = scaling["projection"]["table"]
    assert [row["nodes"] for row in table] == sorted(row["nodes"] for row in table)
    assert all(row["rows_per_s"] > 0 for row in table)


def test_memory_covers_every_model_batch_and_grad_mode(memory):
    grid = {(row["model"], row["batch"], row["grad_mode"]) for row in memory["grad_modes"]["table"]}
    assert grid == {(m, b, g) for m in ("mlp", "convnet") for b in (256, 4096)
                    for g in ("enabled", "no_grad", "inference_mode")}


def test_memory_saved_for_backward_is_zero_only_without_grad(memory):
    for row in memory["grad_modes"]["table"]:
        assert (row["engine_saved_peak_bytes"] > 0) == (row["grad_mode"] == "enabled")


def test_memory_compares_peaks_at_1m_and_10m_rows(memory):
    assert set(memory["streaming"]["growth_10x_rows"]) == {"driver", "worker"}
    assert_targets_have_verdicts(memory)


# -- the cost of intervals and a second model (bench/results_cost.py): a worker's loop in one process ------------

@pytest.fixture(scope="module")
def results_cost() -> dict:
    return quick_record("bench/results_cost.py")


def test_results_cost_measures_each_variant_of_both_models_with_and_without_read_ahead(results_cost):
    assert results_cost["study"] == "results_cost" and results_cost["quick"] is True
    assert [(r["model"], r["prefetch"]) for r in results_cost["results"]] == \
        [("mlp", 2), ("mlp", 0), ("convnet", 2), ("convnet", 0)]
    for r in results_cost["results"]:
        assert set(r["variants"]) == {"baseline", "intervals", "second_model"}
        for variant in r["variants"].values():
            assert variant["rows_per_s"] > 0 and variant["compute_s"] > 0 and variant["read_s"] > 0


def test_results_cost_checks_the_issues_targets(results_cost):
    assert_targets_have_verdicts(results_cost)
    assert {name.rsplit("_", 2)[0] for name in results_cost["targets"]} == \
        {"intervals_cost", "second_model_extra_vs_its_compute", "second_model_reads_once"}


# -- study 6, images (bench/images.py): its --quick run -------------------------------------------------------

@pytest.fixture(scope="module")
def images() -> dict:
    pytest.importorskip("ray.data", reason="bench/images.py compares against Ray Data (pip install 'ray[data]')")
    pytest.importorskip("PIL", reason="bench/images.py decodes PNGs with Pillow")
    return quick_record("bench/images.py")


def test_images_times_the_pipeline_and_ray_data_with_both_models_on_both_sets(images):
    assert images["study"] == "images" and images["quick"] is True
    assert set(images["contenders"]) == {"pipeline/1", "ray_data_engine/1", "ray_data_torch/1"}
    for figures in images["contenders"].values():
        assert figures["fixed_s"] > 0 and figures["large_s"] > 0 and figures["steady_rows_per_s"] > 0
        assert set(figures["runs"]) == {"tiny", "large"}


def test_images_splits_the_pipelines_time_into_read_compute_and_write(images):
    split = images["stages"]["pipeline/1"]
    assert split["rows"] == images["sets"]["large"]["rows"]
    assert split["read_s"] > 0 and split["compute_s"] > 0 and split["write_s"] >= 0


def test_images_splits_ray_datas_time_into_decode_and_forward_and_its_operators(images):
    for name in ("ray_data_engine/1", "ray_data_torch/1"):
        split = images["stages"][name]
        assert split["rows"] == images["sets"]["large"]["rows"]
        assert split["decode_s"] > 0 and split["forward_s"] > 0
        assert any(op.startswith("MapBatches(ImageUDF)") for op in split["operators"])


def test_images_measures_one_image_decoded_and_run_through_each_model(images):
    assert set(images["per_image"]["us_per_image"]) == {"ray_data_decode", "pipeline_decode",
                                                        f"engine_forward_b{images['batch_size']['pipeline']}",
                                                        f"torch_forward_b{images['batch_size']['ray_data']}"}


def test_images_contenders_decode_the_same_pixels_and_their_models_agree(images):
    assert images["targets"]["decoders_agree"]["pass"] and images["targets"]["resnet_outputs_max_abs_diff"]["pass"]


def test_images_checks_the_issues_targets(images):
    assert_targets_have_verdicts(images)
    assert {"steady_vs_ray_data_torch_1_actors", "steady_vs_ray_data_engine_1_actors",
            "steady_vs_ray_data_torch_1_actors_traced", "steady_vs_ray_data_engine_1_actors_traced"} \
        <= set(images["targets"])


def test_images_leaves_no_process_behind(images):
    for figures in images["contenders"].values():
        assert all(run["leftovers"] == 0 for runs in figures["runs"].values() for run in runs)
