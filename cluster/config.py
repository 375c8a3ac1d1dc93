"""The job configuration: every option of an evaluation, its default, its check, its record and its fingerprint.

One frozen JobConfig travels from the command line (or a Python call) to every worker. Each field
carries its own help text: the command line's flags are made from these fields, so an option is
one field here, and the one place that uses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from importlib import metadata as _metadata

import engine
import zoo
from cluster import model_specs, storage, tracking
from cluster.errors import InputError
from cluster.model_specs import ModelSpec, is_zoo, listed, reference

TASKS = ("classification", "regression", "raw")
# Options that change how the work is spread or kept, not a single value written: a run may resume with others.
SPREAD = frozenset({"data", "output", "resume", "overwrite", "address", "workers", "cpus_per_worker", "max_attempts",
                    "start_timeout_s", "stall_factor", "stall_s", "prefetch", "max_bad_rows", "limit"})
BAD_ROW_POLICIES = ("fail", "skip")
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
    model: tuple[str | Callable, ...] = option("convnet", f"a zoo name ({', '.join(sorted(zoo.FACTORIES))}) or "
                                               "'package.module:factory' returning an engine.nn.Module; repeat it "
                                               "to evaluate several models in one pass over the data",
                                               action="append")
    weights: tuple[str | None, ...] = option(None, "a checkpoint to load: safetensors or torch.save (.pt/.pth/.bin); "
                                             "repeatable, paired with --model in order (or with the models that are "
                                             "not zoo names, which default to their shipped ones)", action="append")
    name: tuple[str, ...] = option(None, "a name for each --model (repeatable, in order), prefixing its prediction "
                                   "columns and keying its metrics (default: the zoo or factory function's name, "
                                   "made unique with -2, -3 ...)", action="append")
    model_kwargs: tuple[dict, ...] = option(dict, "keyword arguments for the model factory: a dict for every model, "
                                            "or a list of dicts, one per model", cli=False)
    features: tuple[str, ...] | None = option(None, "the one model input: a column (a list, tensor, token or "
                                              "image column), or several numeric columns comma-separated "
                                              "(default: features)")
    inputs: tuple[str, ...] | None = option(None, "several model inputs, comma-separated: each column is its own "
                                            "positional argument of forward(), in order (instead of --features)")
    label: str | None = option(None, "the label column, for metrics")
    id: str | None = option(None, "an integer id column to carry into the predictions "
                            "(default: the global row number)")
    input_shape: tuple[int, ...] | None = option(None, "the per-row input shape, e.g. 1,8,8 (default: the shape the "
                                                 "column's type declares, else a flat vector)")
    pad_value: int = option(0, "the id that pads token sequences to their batch's longest")
    max_length: int | None = option(None, "cut token sequences to this many ids")
    image_mode: str = option("RGB", "the Pillow mode images are converted to: RGB, L (grey), RGBA ...")
    image_size: tuple[int, ...] | None = option(None, "resize images to H,W (bilinear) where they differ "
                                                "(default: keep their size; a batch's images must then agree)")
    mean: tuple[float, ...] | None = option(None, "per-channel means subtracted from images scaled to [0, 1], "
                                            "e.g. 0.485,0.456,0.406")
    std: tuple[float, ...] | None = option(None, "per-channel standard deviations images are divided by, "
                                           "e.g. 0.229,0.224,0.225")
    transform: str | Callable | None = option(None, "'package.module:function' run on each batch in the worker: it "
                                              "gets a dict of column name -> numpy array and returns the model's "
                                              "inputs (one array or a tuple)")
    output_key: str | None = option(None, "the logits among a model's outputs when forward() returns a tuple, dict "
                                    "or dataclass: a key, field name or index (default: 'logits', else the first)")
    limit: int | None = option(None, "evaluate only the first N rows, for a quick look")
    # How.
    task: str = option("classification", "what the outputs are: classes, values, or raw outputs", choices=TASKS)
    batch_size: int = option(1024, "rows per forward pass")
    grad_mode: str = option("no_grad", "the engine's grad mode in the workers; enabled records the graph, to measure",
                            choices=sorted(GRAD_MODES))
    top_k: int | None = option(None, "also write the top-k classes per row and report top-k accuracy")
    save_scores: bool = option(False, "also write class probabilities per row")
    # What to report beside the metrics.
    ci: float = option(0.95, "the level of the confidence intervals (Wilson for accuracies; Poisson bootstrap for "
                             "loss, macro-F1, slice accuracies and model differences); 0 leaves them out, and the "
                             "bootstrap's cost with them", metavar="LEVEL")
    bootstrap: int = option(200, "bootstrap replicates for the intervals that need them", metavar="B")
    seed: int = option(0, "the seed of the bootstrap's row weights, 0 unless given (each weight a function of the "
                          "seed, the row id and the replicate, so results do not depend on sharding or workers)")
    slice_by: tuple[tuple[str, ...], ...] = option(None, "report the metrics per value of a column of the data (any "
                                                   "column; nulls are a value of their own); COL1,COL2 slices by "
                                                   "their combinations; repeatable", metavar="COL[,COL...]",
                                                   action="append")
    min_slice_rows: int = option(30, "slices with fewer rows are flagged small (not hidden)")
    prefetch: int = option(2, "batches each worker reads and decodes ahead on a background thread, while the model "
                              "runs (0: read in turn)")
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
    on_bad_rows: str = option("fail", "a row whose features or label cannot be evaluated (null, wrong length, "
                              "not finite, no class) fails the job naming it, or is skipped into bad_rows.parquet",
                              choices=BAD_ROW_POLICIES)
    max_bad_rows: float | None = option(None, "with --on-bad-rows skip, fail the job when more rows than this are "
                                        "skipped: a count, or below 1 a fraction of the rows")
    start_timeout_s: float = option(600.0, "fail when no worker has started after this many seconds (an actor no "
                                    "node can place)")
    stall_factor: float = option(5.0, "a shard running longer than this many times the median shard time (and "
                                 "than --stall-s) is run again on another worker; the first attempt to finish wins")
    stall_s: float = option(60.0, "the least time in seconds before a slow shard is run again on another worker")

    def __post_init__(self):
        self._set("data", _locations(self.data))
        if self.features is not None and self.inputs is not None:
            raise InputError("--features and --inputs both name the model's inputs: give one (--features for one "
                             "input, --inputs for several)")
        self._set("inputs", _names(self.inputs, "--inputs") if self.inputs is not None else None)
        self._set("features", None if self.inputs is not None else _names(self.features or "features", "--features"))
        self._set("input_shape", _shape(self.input_shape, "--input-shape"))
        self._set("image_size", _shape(self.image_size, "--image-size"))
        self._set("mean", _floats(self.mean, "--mean"))
        self._set("std", _floats(self.std, "--std"))
        self._models()
        self._set("slice_by", _slicings(self.slice_by))
        self._set("output", storage.absolute(str(self.output)))
        self._bundled_defaults()
        self._check()

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # normalising a frozen dataclass's own fields, once

    def _models(self) -> None:
        """--model, --weights, --name and model_kwargs as one entry per model, paired (model_specs)."""
        models = listed(self.model)
        if not models:
            raise InputError("--model: give at least one model")
        for model in models:
            if not isinstance(model, str) and not callable(model):
                raise InputError(f"--model must be a name or a callable, got {type(model).__name__}")
        self._set("model", models)
        self._set("weights", model_specs.paired_weights(models, listed(self.weights)))
        self._set("name", model_specs.unique_names(models, listed(self.name)))
        self._set("model_kwargs", model_specs.per_model_kwargs(self.model_kwargs, len(models)))

    def _bundled_defaults(self) -> None:
        """Without data: the bundled digits test set. A zoo model: its shipped checkpoint and input shape."""
        if not self.data:
            self._set("data", (str(zoo.DIGITS_TEST),))
            self._set("label", self.label or "label")
            self._set("id", self.id or "id")
        if is_zoo(self.model[0]):  # its shipped weights are paired in _models
            self._set("input_shape", self.input_shape or zoo.INPUT_SHAPES[self.model[0]])

    def _check(self) -> None:
        for name in ("batch_size", "workers", "shard_rows", "max_attempts", "top_k", "limit", "cpus_per_worker",
                     "start_timeout_s", "stall_factor", "stall_s", "bootstrap"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(f"{flag(name)} must be positive, got {value}")
        if self.max_bad_rows is not None and not self.max_bad_rows >= 0:
            raise InputError(f"--max-bad-rows must be a count or a fraction, got {self.max_bad_rows}")
        if not 0 <= self.ci < 1:
            raise InputError(f"--ci must be a level between 0 and 1 (0: no intervals), got {self.ci}")
        if self.min_slice_rows < 0:
            raise InputError(f"--min-slice-rows must be 0 or more, got {self.min_slice_rows}")
        if self.prefetch < 0:
            raise InputError(f"--prefetch must be 0 or more, got {self.prefetch}")
        if self.max_length is not None and self.max_length < 1:
            raise InputError(f"--max-length must be positive, got {self.max_length}")
        if self.image_size is not None and len(self.image_size) != 2:
            raise InputError(f"--image-size: expected H,W, got {','.join(map(str, self.image_size))}")
        self._check_image_options()
        if self.std is not None and min(self.std) <= 0:
            raise InputError(f"--std must be positive, got {','.join(map(str, self.std))}")
        if self.on_bad_rows not in BAD_ROW_POLICIES:
            raise InputError(f"--on-bad-rows must be one of {', '.join(BAD_ROW_POLICIES)}, got {self.on_bad_rows!r}")
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

    def _check_image_options(self) -> None:
        from PIL import ImageMode
        try:
            channels = len(ImageMode.getmode(self.image_mode).bands)
        except KeyError:
            raise InputError(f"--image-mode: {self.image_mode!r} is not a Pillow mode (RGB, L, RGBA ...)") from None
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and len(value) not in (1, channels):
                raise InputError(f"{flag(name)}: {len(value)} values for {channels}-channel {self.image_mode} images")

    def models(self) -> tuple[ModelSpec, ...]:
        """The job's models in the given order: each one's name, factory, weights and keyword arguments."""
        return tuple(ModelSpec(name, model, weights, kwargs, zoo.INPUT_SHAPES[model] if is_zoo(model) else None)
                     for name, model, weights, kwargs in zip(self.name, self.model, self.weights, self.model_kwargs))

    def with_model(self, index: int) -> JobConfig:
        """This job with only its model number `index` (its name kept)."""
        return dataclasses.replace(self, model=self.model[index], weights=self.weights[index],
                                   name=self.name[index], model_kwargs=self.model_kwargs[index])

    def transform_function(self) -> Callable | None:
        """The --transform function, if any; InputError naming it when it cannot be found."""
        if self.transform is None or callable(self.transform):
            return self.transform
        return model_specs.imported(self.transform, "transform")

    def model_name(self) -> str:
        """The models as a person reads them: each one's zoo or factory name, or a callable's qualified name."""
        return ", ".join(reference(m) for m in self.model)

    def record(self) -> dict:
        """The configuration as job.json records it: every option, with credentials redacted.

        With one model, its options are single values (as before several models existed); with several, lists.
        """
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        weights = [storage.redact(w) if w else None for w in self.weights]
        per_model = {"model": [reference(m) for m in self.model], "weights": weights, "name": list(self.name),
                     "model_kwargs": list(self.model_kwargs)}
        values.update({k: v[0] if len(self.model) == 1 else v for k, v in per_model.items()})
        values.update(data=[storage.redact(d) for d in self.data], output=storage.redact(self.output),
                      address=storage.redact(self.address) if self.address else None,
                      mlflow=storage.redact(self.mlflow) if self.mlflow else None,
                      slice_by=[",".join(s) for s in self.slice_by])
        return json.loads(json.dumps(values, default=str))  # tuples as lists, anything else as text

    def fingerprint(self, shards, files) -> str:
        """What makes two runs' outputs interchangeable: the data, the model, and every option that changes a value.

        The data by each file's size and modification time besides its shards, the weights by their
        content, the model factory and transform by their code, and the engine by its version: a
        regenerated file, a retrained checkpoint or an edited factory under the same name is a
        different run. Options that only change how the work is spread (SPREAD) leave it alone, so a
        run may be resumed on another cluster.
        """
        options = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in SPREAD}
        transform = self.transform_function()
        options.update(model=[_code_identity(m.factory()) for m in self.models()],
                       transform=transform and _code_identity(transform),
                       weights=[_content_hash(w) if w else None for w in self.weights])
        identity = {"shards": [(s.location, s.start, s.stop, s.first_row, s.rows) for s in shards],
                    "files": [(f.location, f.size, f.mtime_ns) for f in files], "engine": engine.__version__,
                    "options": options}
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def versions() -> dict:
    """The versions job.json records, read from package metadata (importing Ray for them would be slow)."""
    import numpy
    import pyarrow
    return {"project": engine.__version__, "ray": _metadata.version("ray"), "numpy": numpy.__version__,
            "pyarrow": pyarrow.__version__}


def _content_hash(location: str) -> str:
    """SHA-256 of a file's bytes, streamed from a local path or any URI."""
    digest = hashlib.sha256()
    filesystem, path = storage.resolve(location)
    try:
        with filesystem.open_input_stream(path) as stream:
            while chunk := stream.read(1 << 22):
                digest.update(chunk)
    except OSError as e:
        raise InputError(f"weights: cannot read {storage.redact(location)}: {e}") from None
    return digest.hexdigest()


def _code_identity(factory: Callable) -> str:
    """A factory by what it does: its qualified name, and a hash of its code, defaults and closure.

    Two lambdas share a __qualname__; their bytecode and constants tell them apart, and an edited
    factory gets a new identity. (A closure over objects without a stable repr changes identity
    between runs: resuming then refuses, which is the safe side.)
    """
    function = getattr(factory, "__func__", factory)
    code = getattr(function, "__code__", None)
    if code is None:  # a class or another callable: its type's code
        return f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', type(factory).__qualname__)}"
    digest = hashlib.sha256(_code_bytes(code))
    cells = [cell.cell_contents for cell in function.__closure__ or ()]
    digest.update(repr((function.__defaults__, function.__kwdefaults__, cells)).encode())
    return f"{function.__module__}.{function.__qualname__}:{digest.hexdigest()[:16]}"


def _code_bytes(code: types.CodeType) -> bytes:
    """The parts of a code object that say what it does, stable across processes (marshal's output is not)."""
    parts = [code.co_code, repr(code.co_names).encode()]
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            parts.append(_code_bytes(constant))
        else:  # a frozenset's order follows string hashing, which differs between processes
            parts.append(repr(sorted(map(repr, constant)) if isinstance(constant, frozenset) else constant).encode())
    return b"\0".join(parts)


def _locations(value) -> tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, str) or not hasattr(value, "__iter__") else list(value)
    return tuple(str(v) for v in values)  # as given: messages name them so; listing makes them absolute


def _slicings(value) -> tuple[tuple[str, ...], ...]:
    """--slice-by as slicings, each a tuple of columns: "a" and "a,b" are one slicing; a list holds several."""
    return tuple(_names(s, "--slice-by") for s in listed(value))


def _names(value, option: str) -> tuple[str, ...]:
    names = tuple(c.strip() for c in value.split(",")) if isinstance(value, str) else tuple(value)
    if not names or not all(names):
        raise InputError(f"{option}: expected column names like pixels or a,b,c, got {value!r}")
    return names


def _shape(value, option: str) -> tuple[int, ...] | None:
    if value is None or value == ():
        return None
    try:
        parts = str(value).replace("x", ",").split(",") if isinstance(value, str) else list(value)
        shape = tuple(int(n) for n in parts if str(n).strip())
    except (TypeError, ValueError):
        raise InputError(f"{option}: expected numbers like 1,8,8, got {value!r}") from None
    if not shape or min(shape) <= 0:
        raise InputError(f"{option}: expected positive numbers like 1,8,8, got {value!r}")
    return shape


def _floats(value, option: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        parts = str(value).split(",") if isinstance(value, str) else list(value)
        return tuple(float(n) for n in parts if str(n).strip())
    except (TypeError, ValueError):
        raise InputError(f"{option}: expected numbers like 0.485,0.456,0.406, got {value!r}") from None

