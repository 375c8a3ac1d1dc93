"""The job configuration: one object from the flag to the worker, owning defaults, checks, record and fingerprint."""

import dataclasses
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import cluster
import zoo
from cluster import storage
from cluster.config import JobConfig, flag
from cluster.errors import InputError
from jobs.options import build_parser, parse

ROOT = Path(__file__).parent.parent
CLI_OPTIONS = [f for f in dataclasses.fields(JobConfig) if f.metadata["cli"]]


def imported_ray(code: str) -> list[str]:
    """The Ray modules a fresh interpreter has imported after running `code`."""
    probe = f"{code}\nimport sys\nprint(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])


def test_importing_every_cluster_module_but_the_pool_imports_no_ray():
    modules = [m.name for m in pkgutil.iter_modules(cluster.__path__) if m.name != "pool"]
    assert {"config", "planner", "reader", "evaluator", "job"} <= set(modules)
    assert imported_ray("\n".join(f"import cluster.{m}" for m in modules)) == []


def test_the_evaluate_commands_help_imports_no_ray():
    code = ("import runpy, sys\nsys.argv = ['jobs.evaluate', '--help']\n"
            "try:\n    runpy.run_module('jobs.evaluate', run_name='__main__')\nexcept SystemExit:\n    pass")
    assert imported_ray(code) == []


def test_only_the_pool_module_imports_ray():
    importers = sorted(p.name for p in (ROOT / "cluster").glob("*.py")
                       if any(line.startswith(("import ray", "from ray")) for line in p.read_text().splitlines()))
    assert importers == ["pool.py"]


def test_every_option_has_exactly_one_flag_named_after_its_field():
    parser_flags = {s for a in build_parser()._actions for s in a.option_strings}
    for option in CLI_OPTIONS:
        assert flag(option.name) in parser_flags
    help_text = build_parser().format_help()
    assert "(default 1024)" in help_text and "(default no_grad)" in help_text  # defaults shown from the fields


def test_no_flags_give_the_configs_own_defaults():
    assert parse([])[0] == JobConfig()


def test_flags_and_python_keywords_build_the_same_config():
    config, _ = parse(["--data", "a.parquet", "--data", "b.parquet", "--features", "x,y", "--input-shape", "2x1",
                       "--batch-size", "7", "--cpus-per-worker", "0.5", "--save-scores"])
    assert config == JobConfig(data=["a.parquet", "b.parquet"], features=("x", "y"), input_shape=(2, 1),
                               batch_size=7, cpus_per_worker=0.5, save_scores=True)


def test_every_option_can_come_from_a_toml_file_under_the_flags_name(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text('data = "a.parquet"\nbatch-size = 64\ntop_k = 3\ninput-shape = [1, 8, 8]\n')
    config, _ = parse(["--config", str(job), "--batch-size", "32"])
    assert (config.data, config.batch_size, config.top_k, config.input_shape) == (("a.parquet",), 32, 3, (1, 8, 8))


def test_without_data_the_job_is_the_bundled_demo():
    config = JobConfig()
    assert config.data == (str(zoo.DIGITS_TEST),) and (config.label, config.id) == ("label", "id")
    assert config.model == ("convnet",) and config.weights == (str(zoo.WEIGHTS["convnet"]),)
    assert config.input_shape == zoo.INPUT_SHAPES["convnet"]


def test_a_zoo_model_brings_its_checkpoint_and_input_shape_unless_given():
    assert JobConfig(model="mlp").input_shape == (64,)
    assert JobConfig(model="mlp", input_shape="8", weights="w.safetensors").input_shape == (8,)
    assert JobConfig(model="mlp", weights="w.safetensors").weights == (str(Path("w.safetensors").absolute()),)


@pytest.mark.parametrize("options, message", [
    ({"batch_size": 0}, "--batch-size must be positive, got 0"),
    ({"workers": -1}, "--workers must be positive, got -1"),
    ({"cpus_per_worker": 0}, "--cpus-per-worker must be positive"),
    ({"task": "ranking"}, "unknown task 'ranking'"),
    ({"grad_mode": "off"}, "unknown grad mode 'off'"),
    ({"task": "regression", "top_k": 3}, "--top-k needs a classification task"),
    ({"resume": True, "overwrite": True}, "--resume and --overwrite contradict each other"),
    ({"input_shape": "1,a"}, "--input-shape: expected numbers like 1,8,8"),
    ({"input_shape": "0,8"}, "--input-shape: expected positive numbers"),
    ({"features": "a,,b"}, "--features: expected column names"),
])
def test_a_bad_value_is_one_input_error_naming_the_option(options, message):
    with pytest.raises(InputError, match=message):
        JobConfig(**options)


def test_the_model_is_resolved_by_the_config_with_errors_naming_it():
    assert JobConfig(model="mlp").models()[0].factory() is zoo.FACTORIES["mlp"]
    assert JobConfig(model="fixture_models:mlp").models()[0].factory().__name__ == "mlp"
    with pytest.raises(InputError, match="unknown model 'resnet9000'"):
        JobConfig(model="resnet9000").models()[0].factory()
    with pytest.raises(InputError, match="module 'fixture_models' has no 'nope'"):
        JobConfig(model="fixture_models:nope").models()[0].factory()


def test_the_record_holds_every_option_with_credentials_redacted():
    config = JobConfig(data=["s3://KEY:SECRET@bucket/test/"], weights="s3://KEY:SECRET@bucket/w.safetensors",
                       output="s3://bucket/out?secret_key=SECRET", model=lambda: None)
    record = config.record()
    assert set(record) == {f.name for f in dataclasses.fields(JobConfig)}
    assert "SECRET" not in repr(record) and record["data"] == ["s3://***@bucket/test/"]
    assert record["model"].endswith("<lambda>")


def test_the_fingerprint_follows_the_results_not_how_the_work_is_spread():
    base = JobConfig(model="mlp")
    same = [dataclasses.replace(base, workers=4), dataclasses.replace(base, address="auto"),
            dataclasses.replace(base, max_attempts=9), dataclasses.replace(base, cpus_per_worker=2.0)]
    different = [dataclasses.replace(base, batch_size=7), dataclasses.replace(base, top_k=2),
                 dataclasses.replace(base, grad_mode="enabled"), dataclasses.replace(base, model="convnet")]
    assert all(c.fingerprint([], []) == base.fingerprint([], []) for c in same)
    assert len({c.fingerprint([], []) for c in different} | {base.fingerprint([], [])}) == 5


def test_the_fingerprint_follows_the_weights_content_not_their_name(tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(zoo.WEIGHTS["mlp"].read_bytes())
    config = JobConfig(model="mlp", weights=str(weights))
    before = config.fingerprint([], [])
    weights.write_bytes(zoo.WEIGHTS["convnet"].read_bytes())  # retrained, same name
    assert config.fingerprint([], []) != before


def test_the_fingerprint_follows_each_input_files_size_and_time(tmp_path):
    data = tmp_path / "d.parquet"
    data.write_bytes(zoo.DIGITS_TEST.read_bytes())
    config = JobConfig(data=[str(data)])
    before = config.fingerprint([], storage.list_inputs(config.data))
    os.utime(data, ns=(0, 1_000_000_000))  # regenerated: same size and name, another time
    assert config.fingerprint([], storage.list_inputs(config.data)) != before


def test_the_fingerprint_tells_two_lambdas_apart_and_knows_an_edited_factory():
    first, second = JobConfig(model=lambda: 1), JobConfig(model=lambda: 2)
    assert first.model_name() == second.model_name()
    assert first.fingerprint([], []) != second.fingerprint([], [])
    assert JobConfig(model=lambda: 1).fingerprint([], []) == first.fingerprint([], [])


def test_a_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        JobConfig().batch_size = 5


def test_several_models_pair_with_their_weights_in_order():
    config = JobConfig(model=["fixture_models:mlp", "mlp"], weights=["a.safetensors", "b.safetensors"])
    assert config.weights == (str(Path("a.safetensors").absolute()), str(Path("b.safetensors").absolute()))


def test_fewer_weights_than_models_pair_with_the_models_that_are_not_zoo_names():
    config = JobConfig(model=["convnet", "fixture_models:mlp", "mlp", "fixture_models:mlp"],
                       weights=["a.safetensors", "b.safetensors"])
    assert config.weights == (str(zoo.WEIGHTS["convnet"]), str(Path("a.safetensors").absolute()),
                              str(zoo.WEIGHTS["mlp"]), str(Path("b.safetensors").absolute()))
    assert JobConfig(model=["convnet", "fixture_models:mlp"]).weights == (str(zoo.WEIGHTS["convnet"]), None)


@pytest.mark.parametrize("models, weights, message", [
    (["convnet", "mlp"], ["a"], "1 --weights for 2 --model"),
    (["convnet", "fixture_models:mlp"], ["a", "b", "c"], "3 --weights for 2 --model"),
    (["fixture_models:mlp", "fixture_models:mlp", "mlp"], ["a"], "1 --weights for 3 --model .2 of them not zoo"),
])
def test_any_other_count_of_weights_is_an_input_error_naming_the_counts(models, weights, message):
    with pytest.raises(InputError, match=message):
        JobConfig(model=models, weights=weights)


def test_models_are_named_after_their_factories_made_unique():
    config = JobConfig(model=["convnet", "fixture_models:mlp", "fixture_models:mlp", "mlp"])
    assert config.name == ("convnet", "mlp", "mlp-2", "mlp-3")
    assert [spec.name for spec in config.models()] == list(config.name)


def test_given_names_must_be_one_per_model_and_distinct():
    assert JobConfig(model=["mlp", "convnet"], name=["small", "big"]).name == ("small", "big")
    with pytest.raises(InputError, match="1 --name for 2 --model"):
        JobConfig(model=["mlp", "convnet"], name=["small"])
    with pytest.raises(InputError, match="--name 'x' is given to several models"):
        JobConfig(model=["mlp", "convnet"], name=["x", "x"])


def test_model_kwargs_are_a_dict_for_every_model_or_one_dict_per_model():
    assert JobConfig(model=["mlp", "convnet"], model_kwargs={"a": 1}).model_kwargs == ({"a": 1}, {"a": 1})
    assert JobConfig(model=["mlp", "convnet"], model_kwargs=[{"a": 1}, {}]).model_kwargs == ({"a": 1}, {})
    with pytest.raises(InputError, match="a list of 2 dicts"):
        JobConfig(model=["mlp", "convnet"], model_kwargs=[{"a": 1}])


def test_repeated_flags_give_several_models_and_slicings():
    config, _ = parse(["--model", "mlp", "--model", "fixture_models:mlp", "--weights", "w.safetensors", "--name", "a",
                       "--name", "b", "--slice-by", "source", "--slice-by", "source,day", "--ci", "0.9"])
    assert config == JobConfig(model=("mlp", "fixture_models:mlp"), weights=("w.safetensors",), name=("a", "b"),
                               slice_by=["source", "source,day"], ci=0.9)
    assert config.slice_by == (("source",), ("source", "day"))


def test_a_one_model_record_keeps_single_values_and_a_several_model_record_lists_them():
    one = JobConfig(model="mlp").record()
    assert (one["model"], one["name"], one["weights"]) == ("mlp", "mlp", str(zoo.WEIGHTS["mlp"]))
    several = JobConfig(model=["mlp", "convnet"], name=["a", "b"], slice_by="x,y").record()
    assert several["model"] == ["mlp", "convnet"] and several["name"] == ["a", "b"]
    assert several["weights"] == [str(zoo.WEIGHTS["mlp"]), str(zoo.WEIGHTS["convnet"])]
    assert several["slice_by"] == ["x,y"]


def test_the_fingerprint_covers_every_model_and_the_reported_figures():
    base = JobConfig(model=["mlp", "convnet"])
    different = [JobConfig(model=["mlp", "mlp"]), JobConfig(model=["mlp", "convnet"], name=["a", "b"]),
                 JobConfig(model=["convnet", "mlp"]), JobConfig(model="mlp"), dataclasses.replace(base, ci=0.9),
                 dataclasses.replace(base, seed=1), dataclasses.replace(base, bootstrap=50),
                 dataclasses.replace(base, slice_by="label"), dataclasses.replace(base, min_slice_rows=5)]
    prints = {c.fingerprint([], []) for c in different}
    assert len(prints) == len(different) and base.fingerprint([], []) not in prints


@pytest.mark.parametrize("options, message", [
    ({"ci": 1.0}, "--ci must be a level between 0 and 1"),
    ({"ci": -0.1}, "--ci must be a level between 0 and 1"),
    ({"bootstrap": 0}, "--bootstrap must be positive"),
    ({"min_slice_rows": -1}, "--min-slice-rows must be 0 or more"),
    ({"slice_by": "a,,b"}, "--slice-by: expected column names"),
    ({"model": []}, "--model: give at least one model"),
])
def test_a_bad_results_option_is_one_input_error_naming_it(options, message):
    with pytest.raises(InputError, match=message):
        JobConfig(**options)
