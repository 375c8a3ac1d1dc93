"""The job configuration: every option of an evaluation, its default, its check, its record and its fingerprint.

One frozen JobConfig travels from the command line (or a Python call) to every worker. Each field
carries its own help text: the command line's flags are made from these fields, so an option is
one field here, and the one place that uses it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from importlib import metadata as _metadata

import engine
import zoo
from cluster import storage, tracking
from cluster.errors import InputError

TASKS = ("classification", "regression", "raw")
# The option's spelling -> the engine's mode, in the order --compare-grad-modes shows them.
# `enabled` records the graph, to measure what no_grad saves.
GRAD_MODES = {"enabled": engine.enable_grad, "no_grad": engine.no_grad, "inference_mode": engine.inference_mode}


def option(default, help: str, *, cli: bool = True, **flag):  # noqa: A002 (argparse's name)
    """A JobConfig field: its default, its one-line help, and how the command line spells it."""
    default_kind = {"default_factory": default} if callable(default) else {"default": default}
    return field(**default_kind, metadata={"help": help, "cli": cli, **flag})


def flag(name: str) -> str:
    """The command-line spelling of a field (also the key in a TOML job file)."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class JobConfig:
    """One evaluation job: what to evaluate, how, where the results go, and on what cluster."""

    # What to evaluate.
    data: tuple[str, ...] = option(None, "Parquet/Arrow files, directories, globs or URIs (repeatable); "
                                   "default: the bundled digits test set", metavar="PATH", action="append")
    model: str | Callable = option("convnet", f"a zoo name ({', '.join(sorted(zoo.FACTORIES))}) or "
                                   "'package.module:factory' returning an engine.nn.Module")
    weights: str | None = option(None, "a safetensors checkpoint to load (a zoo model defaults to its shipped one)")
    model_kwargs: dict = option(dict, "keyword arguments for the model factory", cli=False)
    features: tuple[str, ...] = option("features", "the feature column (a list column), or several numeric "
                                       "columns comma-separated")
    label: str | None = option(None, "the label column, for metrics")
    id: str | None = option(None, "an integer id column to carry into the predictions "
                            "(default: the global row number)")
    input_shape: tuple[int, ...] | None = option(None, "the per-row input shape, e.g. 1,8,8 (default: a flat vector)")
    limit: int | None = option(None, "evaluate only the first N rows, for a quick look")
    # How.
    task: str = option("classification", "what the outputs are: classes, values, or raw outputs", choices=TASKS)
    batch_size: int = option(1024, "rows per forward pass")
    grad_mode: str = option("no_grad", "the engine's grad mode in the workers; enabled records the graph, to measure",
                            choices=sorted(GRAD_MODES))
    top_k: int | None = option(None, "also write the top-k classes per row and report top-k accuracy")
    save_scores: bool = option(False, "also write class probabilities per row")
    # Where the results go.
    output: str = option("eval-output", "where outputs go: a directory or URI")
    resume: bool = option(False, "continue an interrupted run in --output")
    overwrite: bool = option(False, "replace whatever --output holds")
    mlflow: str | None = option(None, "log the run to this MLflow tracking server", metavar="URI")
    # On what cluster.
    address: str | None = option(None, "Ray cluster: 'auto', 'ray://host:port' or host:port (also RAY_ADDRESS); "
                                 "none starts a local Ray")
    workers: int | None = option(None, "evaluation actors (default: one per CPU of the cluster)")
    cpus_per_worker: float = option(1.0, "CPUs (and BLAS threads) per actor")
    shard_rows: int = option(65536, "about how many rows a shard holds")
    max_attempts: int = option(3, "attempts per shard when worker processes die")
    skip_bad_shards: bool = option(False, "record shards with bad data and carry on")

    def __post_init__(self):
        self._set("data", _locations(self.data))
        self._set("features", _names(self.features))
        self._set("input_shape", _shape(self.input_shape))
        self._set("weights", storage.absolute(str(self.weights)) if self.weights else None)
        self._set("output", storage.absolute(str(self.output)))
        self._bundled_defaults()
        self._check()

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # normalising a frozen dataclass's own fields, once

    def _bundled_defaults(self) -> None:
        """Without data: the bundled digits test set. A zoo model: its shipped checkpoint and input shape."""
        if not self.data:
            self._set("data", (str(zoo.DIGITS_TEST),))
            self._set("label", self.label or "label")
            self._set("id", self.id or "id")
        if isinstance(self.model, str) and self.model in zoo.FACTORIES:
            self._set("weights", self.weights or str(zoo.WEIGHTS[self.model]))
            self._set("input_shape", self.input_shape or zoo.INPUT_SHAPES[self.model])

    def _check(self) -> None:
        for name in ("batch_size", "workers", "shard_rows", "max_attempts", "top_k", "limit", "cpus_per_worker"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(f"{flag(name)} must be positive, got {value}")
        if self.task not in TASKS:
            raise InputError(f"unknown task {self.task!r}; expected one of {', '.join(TASKS)}")
        if self.grad_mode not in GRAD_MODES:
            raise InputError(f"unknown grad mode {self.grad_mode!r}; expected one of {', '.join(GRAD_MODES)}")
        if self.top_k is not None and self.task != "classification":
            raise InputError("--top-k needs a classification task")
        if self.resume and self.overwrite:
            raise InputError("--resume and --overwrite contradict each other: choose one")
        if self.mlflow:
            tracking.check_available()
        if not isinstance(self.model, str) and not callable(self.model):
            raise InputError(f"--model must be a name or a callable, got {type(self.model).__name__}")

    def factory(self) -> Callable:
        """The callable that builds the model; InputError naming the model when it cannot be found."""
        if callable(self.model):
            return self.model
        if ":" not in self.model:
            if self.model not in zoo.FACTORIES:
                raise InputError(f"unknown model {self.model!r}: give a zoo name "
                                 f"({', '.join(sorted(zoo.FACTORIES))}) or 'package.module:factory'")
            return zoo.FACTORIES[self.model]
        module_name, _, attribute = self.model.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise InputError(f"model {self.model!r}: cannot import module {module_name!r} ({e})") from None
        try:
            return getattr(module, attribute)
        except AttributeError:
            raise InputError(f"model {self.model!r}: module {module_name!r} has no {attribute!r}") from None

    def model_name(self) -> str:
        """The model as a person reads it: its zoo or factory name, or a callable's qualified name."""
        return self.model if isinstance(self.model, str) else getattr(self.model, "__qualname__", "factory")

    def record(self) -> dict:
        """The configuration as job.json records it: every option, with credentials redacted."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(data=[storage.redact(d) for d in self.data], output=storage.redact(self.output),
                      weights=storage.redact(self.weights) if self.weights else None, model=self.model_name(),
                      mlflow=storage.redact(self.mlflow) if self.mlflow else None)
        return json.loads(json.dumps(values, default=str))  # tuples as lists, anything else as text

    def fingerprint(self, shards) -> str:
        """What makes two runs' outputs interchangeable: the shards, the model, and every option that changes a value.

        Options that only change how the work is spread (workers, CPUs, attempts, address) leave it alone,
        so a run may be resumed on another cluster.
        """
        identity = {
            "shards": [(s.location, s.start, s.stop, s.first_row, s.rows) for s in shards],
            "model": self.model_name(), "weights": self.weights, "kwargs": self.model_kwargs,
            "columns": [self.features, self.label, self.id, self.input_shape],
            "task": self.task, "batch_size": self.batch_size, "grad_mode": self.grad_mode, "top_k": self.top_k,
            "save_scores": self.save_scores,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def versions() -> dict:
    """The versions job.json records, read from package metadata (importing Ray for them would be slow)."""
    import numpy
    import pyarrow
    return {"project": engine.__version__, "ray": _metadata.version("ray"), "numpy": numpy.__version__,
            "pyarrow": pyarrow.__version__}


def _locations(value) -> tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, str) or not hasattr(value, "__iter__") else list(value)
    return tuple(str(v) for v in values)  # as given: messages name them so; listing makes them absolute


def _names(value) -> tuple[str, ...]:
    names = tuple(c.strip() for c in value.split(",")) if isinstance(value, str) else tuple(value)
    if not names or not all(names):
        raise InputError(f"--features: expected column names like pixels or a,b,c, got {value!r}")
    return names


def _shape(value) -> tuple[int, ...] | None:
    if value is None or value == ():
        return None
    try:
        parts = str(value).replace("x", ",").split(",") if isinstance(value, str) else list(value)
        shape = tuple(int(n) for n in parts if str(n).strip())
    except (TypeError, ValueError):
        raise InputError(f"--input-shape: expected numbers like 1,8,8, got {value!r}") from None
    if not shape or min(shape) <= 0:
        raise InputError(f"--input-shape: expected positive numbers like 1,8,8, got {value!r}")
    return shape

