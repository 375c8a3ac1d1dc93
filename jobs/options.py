"""The evaluate job's options: flags, an optional TOML job file under the same names, and the bundled defaults.

Precedence: built-in defaults < the TOML file given with --config < flags on the command line.
Without --data the job evaluates the bundled digits test split; a zoo model without --weights
gets its shipped checkpoint and its input shape.
"""

from __future__ import annotations

import argparse
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import zoo
from cluster import storage
from cluster.errors import InputError
from cluster.metrics import TASKS
from cluster.worker import GRAD_MODES

DEFAULT_OUTPUT = "eval-output"


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m jobs.evaluate`."""
    p = argparse.ArgumentParser(
        prog="python -m jobs.evaluate",
        description="Evaluate a model on Arrow/Parquet test data with Ray actors, in eval() under no_grad. "
                    "Without arguments: the bundled ConvNet on the bundled digits test set, on a local Ray.")
    a = p.add_argument
    a("--config", metavar="TOML", help="a TOML job file holding any of these options (flags win over it)")
    a("--data", action="append", metavar="PATH", help="Parquet/Arrow files, directories, globs or URIs (repeatable)")
    zoo_names = ", ".join(sorted(zoo.FACTORIES))
    a("--model", help=f"a zoo name ({zoo_names}) or 'package.module:factory' returning an engine.nn.Module")
    a("--weights", help="a safetensors checkpoint to load (a zoo model defaults to its shipped one)")
    a("--features", help="the feature column (a list column), or several numeric columns comma-separated")
    a("--label", help="the label column, for metrics")
    a("--id", help="an integer id column to carry into the predictions (default: the global row number)")
    a("--input-shape", help="the per-row input shape, e.g. 1,8,8 (default: a flat vector)")
    a("--task", choices=TASKS, help="classification (default), regression or raw outputs")
    a("--batch-size", type=int, help="rows per forward pass (default 1024)")
    a("--workers", type=int, help="evaluation actors (default: one per CPU of the cluster)")
    a("--cpus-per-worker", type=float, help="CPUs (and BLAS threads) per actor (default 1)")
    a("--shard-rows", type=int, help="about how many rows a shard holds (default 65536)")
    a("--max-attempts", type=int, help="attempts per shard when worker processes die (default 3)")
    a("--grad-mode", choices=sorted(GRAD_MODES), help="no_grad (default), inference_mode, or enabled (to measure)")
    a("--top-k", type=int, help="also write the top-k classes per row and report top-k accuracy")
    a("--save-scores", action="store_true", default=None, help="also write class probabilities per row")
    a("--output", help=f"where outputs go: a directory or URI (default ./{DEFAULT_OUTPUT})")
    a("--resume", action="store_true", default=None, help="continue an interrupted run in --output")
    a("--overwrite", action="store_true", default=None, help="replace whatever --output holds")
    a("--address", help="Ray cluster: 'auto', 'ray://host:port' or host:port (also RAY_ADDRESS); "
      "none starts a local Ray")
    a("--limit", type=int, help="evaluate only the first N rows, for a quick look")
    a("--skip-bad-shards", action="store_true", default=None, help="record shards with bad data and carry on")
    a("--compare-grad-modes", action="store_true", default=None,
      help="time one sample under enabled, no_grad and inference_mode, print the three side by side, and exit")
    a("--debug", action="store_true", default=None, help="show tracebacks")
    return p


def _read_toml(path: str, parser: argparse.ArgumentParser) -> dict:
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except OSError as e:
        raise InputError(f"--config: cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"--config: {path} is not valid TOML: {e}") from None
    known = {action.dest for action in parser._actions} - {"help", "config"}
    options = {}
    for key, value in values.items():
        dest = key.replace("-", "_")
        if dest not in known:
            raise InputError(f"--config: unknown option {key!r} in {path}")
        options[dest] = [value] if dest == "data" and isinstance(value, str) else value
    return options


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Flags over TOML over defaults, with the bundled defaults filled in. InputError for bad values."""
    parser = build_parser()
    flags = parser.parse_args(argv)
    options = _read_toml(flags.config, parser) if flags.config else {}
    options.update({k: v for k, v in vars(flags).items() if v is not None})
    return _resolve(argparse.Namespace(**{**{k: None for k in vars(flags)}, **options}))


def _resolve(o: argparse.Namespace) -> argparse.Namespace:
    bundled_data = not o.data
    if bundled_data:
        o.data = [str(zoo.DIGITS_TEST)]
        o.label = o.label or "label"
        o.id = o.id or "id"
    o.model = o.model or "convnet"
    if o.model in zoo.FACTORIES:
        o.weights = o.weights or str(zoo.WEIGHTS[o.model])
        o.input_shape = o.input_shape or ",".join(map(str, zoo.INPUT_SHAPES[o.model]))
    defaults = {"features": "features", "task": "classification", "batch_size": 1024, "cpus_per_worker": 1,
                "shard_rows": 65536, "max_attempts": 3, "grad_mode": "no_grad", "output": DEFAULT_OUTPUT}
    for name, value in defaults.items():
        if getattr(o, name) is None:
            setattr(o, name, value)
    o.input_shape = _shape(o.input_shape)
    for name in ("batch_size", "workers", "shard_rows", "max_attempts", "top_k", "limit", "cpus_per_worker"):
        value = getattr(o, name)
        if value is not None and value <= 0:
            raise InputError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if o.resume and o.overwrite:
        raise InputError("--resume and --overwrite contradict each other: choose one")
    return o


def _shape(text) -> tuple[int, ...] | None:
    if text is None or isinstance(text, (list, tuple)):
        return tuple(text) if text else None
    try:
        shape = tuple(int(n) for n in str(text).replace("x", ",").split(",") if n.strip())
    except ValueError:
        raise InputError(f"--input-shape: expected numbers like 1,8,8, got {text!r}") from None
    if not shape or min(shape) <= 0:
        raise InputError(f"--input-shape: expected positive numbers like 1,8,8, got {text!r}")
    return shape


def job_record(o: argparse.Namespace) -> dict:
    """The resolved configuration, as job.json records it."""
    record = {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(vars(o).items())
              if k not in ("debug", "config", "compare_grad_modes")}
    record["data"] = [storage.redact(d) for d in record["data"]]
    record["output"] = storage.redact(record["output"])
    return record
