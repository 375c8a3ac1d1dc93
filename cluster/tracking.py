"""Experiment tracking: log a finished run to an MLflow tracking server (the optional `tracking` extra).

The job's configuration (as job.json records it, credentials redacted) becomes the run's params;
every number in metrics.json becomes a metric, flattened into dotted names with intervals as
NAME_lo / NAME_hi; the output's small files and report.html become its artifacts. The experiment
is MLflow's usual MLFLOW_EXPERIMENT_NAME, else "evalpipe"; the server's own credentials, if any,
come from MLflow's environment variables and are never logged.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import tempfile
import time

import pyarrow.fs as pafs

from cluster import storage
from cluster.errors import InputError, JobFailed
from cluster.outputs import MARKER

EXTRA = "pip install 'evalpipe[tracking]'"
EXPERIMENT = "evalpipe"
PARAM_CHARS = 500  # MLflow servers before 2.x refuse longer param values
ARTIFACT_BYTES = 64 * 2 ** 20  # larger top-level files (a big bad_rows.parquet) stay in the output only
NOT_METRICS = ("confusion_matrix", "bins")  # tables, not numbers to track: metrics.json (an artifact) holds them
_METRICS_PER_CALL, _PARAMS_PER_CALL = 1000, 100  # MLflow's limits on one log_batch call


def check_available() -> None:
    """InputError naming the extra when the mlflow package is not installed (cheap: nothing is imported)."""
    try:
        found = importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):  # a module entry set to None, or a broken package
        found = False
    if not found:
        raise InputError(f"--mlflow needs the mlflow package: {EXTRA}")


def log_run(mlflow_uri: str | None, output_location: str, config_record: dict, metrics: dict) -> str | None:
    """Log a finished run to the MLflow server at `mlflow_uri`; its run id, or None (nothing done) without a URI."""
    if not mlflow_uri:
        return None
    check_available()
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=mlflow_uri)
        experiment = _experiment(client, os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT)
        model = config_record.get("model", "evalpipe")
        run = client.create_run(experiment, run_name=",".join(model) if isinstance(model, list) else str(model),
                                tags={"evalpipe.output": storage.redact(output_location)})
        run_id, now = run.info.run_id, int(time.time() * 1000)
        params = [Param(k, v) for k, v in flatten_params(config_record).items()]
        for start in range(0, len(params), _PARAMS_PER_CALL):
            client.log_batch(run_id, params=params[start:start + _PARAMS_PER_CALL])
        numbers = [Metric(k, v, now, 0) for k, v in flatten_metrics(metrics).items()]
        for start in range(0, len(numbers), _METRICS_PER_CALL):
            client.log_batch(run_id, metrics=numbers[start:start + _METRICS_PER_CALL])
        with tempfile.TemporaryDirectory(prefix="evalpipe-artifacts-") as folder:
            _copy_small_files(output_location, folder)
            client.log_artifacts(run_id, folder)
        client.set_terminated(run_id)
    except Exception as e:  # MLflow's and its HTTP client's errors have no common base worth naming
        raise JobFailed(f"could not log the run to MLflow at {storage.redact(mlflow_uri)}: {e} (the outputs in "
                        f"{storage.redact(output_location)} are complete)") from e
    return run_id


def _experiment(client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def flatten_params(record: dict) -> dict[str, str]:
    """The configuration as MLflow params: lists comma-joined, dicts as JSON, each at most PARAM_CHARS long."""
    params = {}
    for key, value in record.items():
        if isinstance(value, list):
            text = ",".join(map(str, value))
        elif isinstance(value, dict):
            text = json.dumps(value, sort_keys=True)
        else:
            text = str(value)
        params[key] = text if len(text) <= PARAM_CHARS else text[:PARAM_CHARS - 1] + "…"
    return params


def flatten_metrics(metrics: dict, prefix: str = "") -> dict[str, float]:
    """Every number in metrics.json under a dotted name, intervals [lo, hi] as NAME_lo and NAME_hi.

    A model's metrics go under its name, a class's, slice's, comparison's or run's under theirs; the
    intervals in "ci" sit beside their metric (accuracy_lo), and ci's level is ci_level.
    """
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if key in NOT_METRICS:
            continue
        name = _name(prefix, "" if key == "models" else key)
        if key == "ci" and isinstance(value, dict):
            flat.update(flatten_metrics({("ci_level" if k == "level" else k): v for k, v in value.items()}, prefix))
        elif isinstance(value, dict):
            flat.update(flatten_metrics(value, name))
        elif isinstance(value, list) and len(value) == 2 and all(_number(v) or v is None for v in value):
            base = name.removesuffix("_ci")  # a slice's accuracy_ci: accuracy_lo, accuracy_hi
            flat.update({f"{base}_lo": value[0], f"{base}_hi": value[1]})
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    label, rest = _item(item, index)
                    flat.update(flatten_metrics(rest, _name(name, label)))
        elif _number(value):
            flat[name] = value
    return {k: float(v) for k, v in flat.items() if v is not None and math.isfinite(v)}


def _item(item: dict, index: int) -> tuple[str, dict]:
    """A list entry's name (its class, slice value, model pair or run) and the rest of its fields."""
    if "a" in item and "b" in item:
        return f"{item['a']}_vs_{item['b']}", {k: v for k, v in item.items() if k not in ("a", "b")}
    for key in ("class", "value", "run"):
        if key in item:
            value = item[key]
            label = "/".join(map(str, value)) if isinstance(value, list) else str(value)
            return label, {k: v for k, v in item.items() if k != key}
    return str(index), item


def _name(prefix: str, key: str) -> str:
    key = re.sub(r"[^A-Za-z0-9_\-. /]", "_", str(key))  # the characters MLflow takes in a metric's name
    return f"{prefix}.{key}" if prefix and key else prefix or key


def _number(value) -> bool:
    return isinstance(value, (int, float))  # booleans too (a slice's "small" flag), as 0 and 1


def _copy_small_files(output_location: str, folder: str) -> None:
    """The output's top-level files (not predictions/, not the marker), up to ARTIFACT_BYTES each, into `folder`."""
    filesystem, path = storage.resolve(output_location)
    for info in filesystem.get_file_info(pafs.FileSelector(path)):
        name = info.path.rsplit("/", 1)[-1]
        if info.type != pafs.FileType.File or name == MARKER or name.startswith(".") or info.size > ARTIFACT_BYTES:
            continue
        with filesystem.open_input_stream(info.path) as source, open(os.path.join(folder, name), "wb") as target:
            target.write(source.read())
