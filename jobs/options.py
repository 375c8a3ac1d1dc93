"""The evaluate job's command line: a flag for every JobConfig option, and a TOML job file under the same names.

Precedence: JobConfig's defaults < the TOML file given with --config < flags on the command line.
The flags are made from JobConfig's fields (name, help, choices), so an option is added there once.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from cluster.config import JobConfig, flag
from cluster.errors import InputError

CLI_ONLY = ("config", "compare_grad_modes", "debug")  # what this command does, not what the job is


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m jobs.evaluate`."""
    p = argparse.ArgumentParser(
        prog="python -m jobs.evaluate",
        description="Evaluate a model on Arrow/Parquet test data with Ray actors, in eval() under no_grad. "
                    "Without arguments: the bundled ConvNet on the bundled digits test set, on a local Ray.")
    p.add_argument("--config", metavar="TOML", help="a TOML job file holding any of these options (flags win over it)")
    for option in _options():
        p.add_argument(flag(option.name), **_argparse_spec(option))
    p.add_argument("--compare-grad-modes", action="store_true", default=None,
                   help="time one sample under enabled, no_grad and inference_mode, print the three side by side, "
                        "and exit (with several --model, the first model only)")
    p.add_argument("--debug", action="store_true", default=None, help="show tracebacks")
    return p


def _options() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(JobConfig) if f.metadata["cli"]]


def _argparse_spec(option: dataclasses.Field) -> dict:
    """How argparse reads a field: booleans as switches, numbers typed; every default None (unset: the config's)."""
    spec = {k: v for k, v in option.metadata.items() if k != "cli"}
    if option.default not in (None, False, dataclasses.MISSING):
        spec["help"] += f" (default {option.default})"
    spec["default"] = None
    hint = typing.get_type_hints(JobConfig)[option.name]
    kind = next((t for t in typing.get_args(hint) if t is not type(None)), hint)  # int | None -> int
    if kind is bool:
        spec["action"] = "store_true"
    elif kind in (int, float):
        spec["type"] = kind
    return spec


def _read_toml(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except OSError as e:
        raise InputError(f"--config: cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"--config: {path} is not valid TOML: {e}") from None
    known = {option.name for option in _options()}
    options = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in known:
            raise InputError(f"--config: unknown option {key!r} in {path}")
        options[name] = value
    return options


def parse(argv: list[str] | None) -> tuple[JobConfig, argparse.Namespace]:
    """The job's configuration (flags over TOML over defaults), and this command's own flags; InputError if bad."""
    flags = build_parser().parse_args(argv)
    options = _read_toml(flags.config) if flags.config else {}
    options.update({k: v for k, v in vars(flags).items() if v is not None and k not in CLI_ONLY})
    return JobConfig(**options), flags
